"""Train an agent on a native batch, with checkpoints and exact resume: PPO and SAC through the
SB3 adapter (:mod:`ctrlgym.experiment.sb3_training`); independent DQN, Nash DQN, the channel
predictor and plug-in agents (``ctrlgym.policies.Agent``) directly on the batch.

A checkpoint holds everything the rest of the run depends on: the model (and SAC's or DQN's
replay buffer), the RNG states of torch, numpy and Python, the env itself (its tensors and
generator; ``env.resumable``), VecNormalize's statistics, the learning curve and the wall time
so far. SB3 checkpoints are taken between rollouts, so a run killed at any point and resumed
with ``--resume`` ends with the same policy, metrics and step count as an uninterrupted one.
Envs whose state lives outside Python (SUMO) restart their episodes on resume, and say so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ctrlgym.errors import UsageError
from ctrlgym.experiment.algorithms import get_algorithm
from ctrlgym.experiment.checkpoints import (
    TrainingClock,
    announce_resume,
    open_checkpoints,
    random_states,
    set_random_states,
)
from ctrlgym.experiment.config import ExperimentConfig, load_config
from ctrlgym.experiment.progress import TrainingStatus
from ctrlgym.experiment.runs import RunDir, RunDirError, final_model_path, latest_checkpoint, prune_checkpoints
from ctrlgym.experiment.sb3_training import train_sb3_seed
from ctrlgym.experiment.tensorboard import tensorboard_writer
from ctrlgym.files import torch_save_atomic, write_json_atomic
from ctrlgym.policies import TrainingProgress
from ctrlgym.threads import hot_path

__all__ = ["train", "latest_checkpoint", "final_model_path"]


def _train_own_agent(run: RunDir, seed: int, bar: tqdm) -> dict[str, Any]:
    """Independent DQN, Nash DQN, the channel predictor or a plug-in agent on the native batch."""
    config = run.config
    agent_config = config.trained_agent
    agent_class = get_algorithm(agent_config.algo).load()
    folder, found = open_checkpoints(run, seed)
    if found is not None:
        steps, path, trainer = found.steps, found.model, found.trainer
        env = trainer["env"] if trainer["env"] is not None else config.make_env(autoreset_mode="same_step")
        agent = agent_class.load(path, env)
        if trainer["env"] is None:
            agent.set_last_observation(None)  # the env starts afresh: learn() resets it with seed + steps
        set_random_states(trainer["random"])
        curve, clock = found.curve, TrainingClock.resumed(trainer)
        announce_resume(seed, steps, path, trainer["env"] is not None)
    else:
        env = config.make_env(autoreset_mode="same_step")
        try:
            agent = agent_class(env, seed=seed, device=agent_config.device, **(agent_config.hyperparameters or {}))
        except (TypeError, ValueError) as error:
            raise config.error("agent.hyperparameters", error) from None
        curve, clock = [], TrainingClock()
        if agent_config.init_from is not None:
            source = final_model_path(Path(agent_config.init_from) / f"seed_{seed}", agent_config.algo)
            if not source.is_file():
                raise RunDirError(f"init_from: {source} is missing (train that run first)")
            agent.load_weights_from(source)
    bar.update(agent.num_timesteps)
    writer = tensorboard_writer(run.tensorboard(seed), agent.num_timesteps)
    every = agent_config.checkpoint_every
    state = {"next_checkpoint": (agent.num_timesteps // every + 1) * every}

    def checkpoint() -> None:
        steps = agent.num_timesteps
        write_json_atomic(folder / f"learning_curve_{steps}.json", curve)
        trainer = {"env": env if env.resumable else None, "random": random_states(), **clock.times()}
        torch_save_atomic(trainer, folder / f"trainer_{steps}.pt")
        agent.save(folder / f"step_{steps}.pt")  # last: it marks the checkpoint complete
        prune_checkpoints(folder, agent_config.checkpoint_keep)

    status = TrainingStatus(env, seed)

    def on_step(progress: TrainingProgress) -> None:
        bar.update(min(config.env.num_envs, bar.total - bar.n))
        status.show(bar, progress)
        if progress["episode_returns"]:
            curve.append([progress["timesteps"], float(np.mean(progress["episode_returns"]))])
            writer.add_scalar("rollout/ep_rew_mean", curve[-1][1], progress["timesteps"])
        if progress["timesteps"] % 1000 < config.env.num_envs and progress.get("loss") is not None:
            writer.add_scalar("train/loss", progress["loss"], progress["timesteps"])
            if "epsilon" in progress:
                writer.add_scalar("rollout/exploration_rate", progress["epsilon"], progress["timesteps"])
        if progress["timesteps"] >= state["next_checkpoint"] and progress["timesteps"] < agent_config.total_timesteps:
            checkpoint()
            state["next_checkpoint"] += every

    try:
        agent.learn(env, agent_config.total_timesteps, callback=on_step, seed=seed)
        checkpoint()
        agent.save(run.final_model(seed), with_replay=False)
    finally:  # also on Ctrl-C or an error: the env's simulations (SUMO processes) are ended
        writer.close()
        env.close()
    return {"timesteps": int(agent.num_timesteps), "learning_curve": curve, **clock.times()}


@hot_path
def train(
    config: ExperimentConfig | str | Path,
    resume: bool = False,
    progress: bool = True,
    overwrite: bool = False,
    seeds: list[int] | None = None,
) -> Path:
    """Train the config's agent on every seed (or on ``seeds``, a subset); return the run directory.

    ``resume=True`` continues a run from the newest checkpoint of each unfinished seed (seeds
    with a final model are skipped), exactly where the env is ``resumable``; ``overwrite=True``
    deletes the run in ``output_dir`` first. A run that failed before its first checkpoint can
    simply be started again. Processes training different ``seeds`` of one config can share the
    run directory at the same time.
    """
    if not isinstance(config, ExperimentConfig):
        config = load_config(config)
    if config.agent is None:
        raise UsageError(
            f"config {config.name} has no agent to train (agent: null); run ctrlgym evaluate CONFIG for its baselines"
        )
    config.check_agent_device()
    unknown = [seed for seed in seeds or [] if seed not in config.seeds]
    if unknown:
        raise UsageError(f"seeds {unknown} are not in the config's seeds {config.seeds}")
    seeds = list(config.seeds if seeds is None else seeds)
    run = RunDir.prepare_training(config, seeds, resume, overwrite)
    total = config.agent.total_timesteps
    with tqdm(total=total * len(seeds), desc=f"train {config.name}", unit="step", disable=not progress) as bar:
        for seed in seeds:
            bar.set_postfix(seed=seed)
            if run.final_model(seed).is_file():
                bar.update(total)
                continue
            sb3 = get_algorithm(config.agent.algo).sb3
            result = (train_sb3_seed if sb3 else _train_own_agent)(run, seed, bar)
            write_json_atomic(
                run.training_result(seed), result
            )  # this seed's own file: other seeds may train elsewhere
            prune_checkpoints(run.checkpoints(seed), 1)  # finished: the newest checkpoint is enough to train it further
    run.write_snapshot()
    return run.path
