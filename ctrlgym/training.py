"""Train an agent on a native batch, with checkpoints and resume: PPO and SAC through the SB3
adapter; independent DQN, Nash DQN and the channel predictor (``ctrlgym.agents``) directly on the batch."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from tqdm.auto import tqdm

from ctrlgym.adapters.sb3 import SB3VecEnv
from ctrlgym.config import SB3_ALGOS, ExperimentConfig, load_config, sb3_class, save_config
from ctrlgym.registry import make_vector_env
from ctrlgym.runs import RunDirError, read_metrics, update_metrics, write_json_atomic
from ctrlgym.threads import hot_path

__all__ = ["train", "latest_checkpoint"]

_CHECKPOINT = re.compile(r"step_(\d+)\.(zip|pt)$")


def latest_checkpoint(seed_dir: Path) -> tuple[int, Path] | None:
    """The (timesteps, path) of the newest complete checkpoint of a seed, or None."""
    found = [(int(m.group(1)), p) for p in (seed_dir / "checkpoints").glob("step_*") if (m := _CHECKPOINT.search(p.name))]
    return max(found) if found else None


def final_model_path(seed_dir: Path, algo: str) -> Path:
    return seed_dir / ("final_model.zip" if algo in SB3_ALGOS else "final_model.pt")


def _train_own_agent(config: ExperimentConfig, seed: int, seed_dir: Path, run_dir: Path, bar: tqdm) -> dict[str, Any]:
    """Independent DQN or Nash DQN on the native batch; checkpoints hold the replay buffer too
    (only the newest is kept), so a resumed run continues where the checkpoint left off."""
    from torch.utils.tensorboard import SummaryWriter

    from ctrlgym.agents import AGENTS

    agent_config = config.agent
    env = make_vector_env(config.env.id, config.env.num_envs, device=config.env.device, autoreset_mode="same_step", **config.env.kwargs)
    agent_class = AGENTS[agent_config.algo]
    found = latest_checkpoint(seed_dir)
    if found is not None:
        agent = agent_class.load(found[1], env)
        curve = json.loads((found[1].parent / f"learning_curve_{found[0]}.json").read_text())
    else:
        agent = agent_class(env, seed=seed, device=agent_config.device, **agent_config.hyperparameters)
        curve = []
        if agent_config.init_from is not None:
            source = final_model_path(Path(agent_config.init_from) / f"seed_{seed}", agent_config.algo)
            if not source.is_file():
                raise RunDirError(f"init_from: {source} is missing (train that run first)")
            pretrained = agent_class.load(source, env, buffer_size=1)
            agent.q_network.load_state_dict(pretrained.q_network.state_dict())
            agent.target_network.load_state_dict(pretrained.q_network.state_dict())
    bar.update(agent.num_timesteps)
    folder = seed_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(str(run_dir / "tensorboard" / f"seed_{seed}"))
    state = {"next_checkpoint": (agent.num_timesteps // agent_config.checkpoint_every + 1) * agent_config.checkpoint_every, "returns": []}

    def checkpoint() -> None:
        steps = agent.num_timesteps
        write_json_atomic(folder / f"learning_curve_{steps}.json", curve)
        agent.save(folder / f"step_{steps}.pt")
        for old in folder.glob("step_*.pt"):  # the replay buffer makes these large: keep the newest
            if old.name != f"step_{steps}.pt":
                old.unlink()

    def on_step(progress: dict[str, Any]) -> None:
        bar.update(min(config.env.num_envs, bar.total - bar.n))
        state["returns"] += progress["episode_returns"]
        if progress["episode_returns"]:
            curve.append([progress["timesteps"], float(np.mean(state["returns"]))])
            writer.add_scalar("rollout/ep_rew_mean", curve[-1][1], progress["timesteps"])
            state["returns"] = []
        if progress["timesteps"] % 1000 < config.env.num_envs:
            writer.add_scalar("train/loss", progress["loss"], progress["timesteps"])
            if "epsilon" in progress:
                writer.add_scalar("rollout/exploration_rate", progress["epsilon"], progress["timesteps"])
        if progress["timesteps"] >= state["next_checkpoint"]:
            checkpoint()
            state["next_checkpoint"] += agent_config.checkpoint_every

    started = time.perf_counter()
    agent.learn(env, agent_config.total_timesteps, callback=on_step, seed=seed)
    checkpoint()
    agent.save(final_model_path(seed_dir, agent_config.algo), with_replay=False)
    writer.close()
    env.close()
    return {"timesteps": int(agent.num_timesteps), "learning_curve": curve, "wall_time_s": round(time.perf_counter() - started, 2)}


class _CheckpointAndCurve(BaseCallback):
    """Records the learning curve, writes checkpoints every ``every`` steps, advances the bar."""

    def __init__(self, seed_dir: Path, every: int, curve: list[list[float]], bar: tqdm) -> None:
        super().__init__()
        self.seed_dir, self.every, self.curve, self.bar = seed_dir, every, curve, bar
        self.finished_returns: list[float] = []
        self.next_checkpoint = 0

    def _on_training_start(self) -> None:
        self.next_checkpoint = (self.num_timesteps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        self.bar.update(min(self.training_env.num_envs, self.bar.total - self.bar.n))
        for info in self.locals["infos"]:
            if "episode" in info:
                self.finished_returns.append(info["episode"]["r"])
        if self.num_timesteps >= self.next_checkpoint:
            self.save_checkpoint()
            self.next_checkpoint += self.every
        return True

    def _on_rollout_end(self) -> None:
        if self.finished_returns:
            self.curve.append([self.num_timesteps, float(np.mean(self.finished_returns))])
            self.finished_returns = []

    def save_checkpoint(self) -> None:
        folder = self.seed_dir / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        steps = self.num_timesteps
        # curve first: a model checkpoint is only ever found next to its curve
        write_json_atomic(folder / f"learning_curve_{steps}.json", self.curve)
        if isinstance(self.training_env, VecNormalize):
            self.training_env.save(folder / f"vecnormalize_{steps}.pkl")
        tmp = folder / f"step_{steps}.partial"
        self.model.save(tmp)
        tmp.replace(folder / f"step_{steps}.zip")


def _prepare_run_dir(config: ExperimentConfig, resume: bool) -> Path:
    run_dir = Path(config.output_dir)
    stored = run_dir / "config.yaml"
    if resume:
        if not stored.is_file():
            raise RunDirError(f"cannot resume: {run_dir} holds no run (no config.yaml); start without --resume")
        previous = load_config(stored)
        if previous.model_dump() != config.model_dump():
            raise ValueError(f"cannot resume {run_dir}: the config differs from the one it was started with ({stored})")
    elif stored.is_file():
        raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it, or change output_dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, stored)
    return run_dir


def _make_agent(config: ExperimentConfig, env: VecEnv, seed: int, seed_dir: Path, run_dir: Path):
    """A fresh agent, or the one in the newest checkpoint; returns (model, learning curve).

    With ``normalize_reward`` the env is wrapped in ``VecNormalize`` (rewards only), whose running
    statistics are restored from the checkpoint.
    """
    found = latest_checkpoint(seed_dir)
    if config.agent.normalize_reward:
        stats = None if found is None else found[1].parent / f"vecnormalize_{found[0]}.pkl"
        if stats is not None and stats.is_file():
            env = VecNormalize.load(str(stats), env)
        else:
            env = VecNormalize(env, norm_obs=False, norm_reward=True, gamma=config.agent.hyperparameters.get("gamma", 0.99))
    if found is None:
        model = sb3_class(config.agent.algo)(
            config.agent.policy,
            env,
            seed=seed,
            device=config.agent.device,
            tensorboard_log=str(run_dir / "tensorboard"),
            verbose=0,
            **config.agent.hyperparameters,
        )
        return model, []
    steps, path = found
    model = sb3_class(config.agent.algo).load(path, env=env, device=config.agent.device)
    env.seed(seed + steps)  # a fresh stream of episodes after the checkpoint
    curve = json.loads((path.parent / f"learning_curve_{steps}.json").read_text())
    return model, curve


@hot_path
def train(config: ExperimentConfig | str | Path, resume: bool = False, progress: bool = True) -> Path:
    """Train the config's agent on every seed; return the run directory.

    ``resume=True`` continues a run from the newest checkpoint of each unfinished seed (seeds
    with a final model are skipped). Killing a run loses at most ``checkpoint_every`` steps.
    """
    if not isinstance(config, ExperimentConfig):
        config = load_config(config)
    if config.agent is None:
        raise ValueError(f"config {config.name} has no agent to train (agent: null); run ctrlgym evaluate CONFIG for its baselines")
    run_dir = _prepare_run_dir(config, resume)
    total = config.agent.total_timesteps
    training: dict[str, Any] = read_metrics(run_dir).get("training", {})
    with tqdm(total=total * len(config.seeds), desc=f"train {config.name}", unit="step", disable=not progress) as bar:
        for seed in config.seeds:
            seed_dir = run_dir / f"seed_{seed}"
            final = final_model_path(seed_dir, config.agent.algo)
            bar.set_postfix(seed=seed)
            if final.is_file():
                bar.update(total)
                continue
            if config.agent.algo not in SB3_ALGOS:
                training[str(seed)] = _train_own_agent(config, seed, seed_dir, run_dir, bar)
                update_metrics(run_dir, "training", training)
                continue
            vector_env = make_vector_env(
                config.env.id, config.env.num_envs, device=config.env.device, autoreset_mode="same_step", **config.env.kwargs
            )
            env = SB3VecEnv(vector_env)
            model, curve = _make_agent(config, env, seed, seed_dir, run_dir)
            bar.update(model.num_timesteps)
            callback = _CheckpointAndCurve(seed_dir, config.agent.checkpoint_every, curve, bar)
            started = time.perf_counter()
            model.learn(
                total_timesteps=max(total - model.num_timesteps, 0),
                callback=callback,
                reset_num_timesteps=False,
                tb_log_name=f"seed_{seed}",
            )
            callback.save_checkpoint()
            model.save(seed_dir / "final_model.partial")
            (seed_dir / "final_model.partial").replace(final)
            training[str(seed)] = {
                "timesteps": int(model.num_timesteps),
                "learning_curve": curve,
                "wall_time_s": round(time.perf_counter() - started, 2),
            }
            update_metrics(run_dir, "training", training)
            env.close()
    return run_dir
