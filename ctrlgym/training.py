"""Train an agent on a native batch, with checkpoints and exact resume: PPO and SAC through the
SB3 adapter; independent DQN, Nash DQN and the channel predictor (``ctrlgym.agents``) directly on the batch.

A checkpoint holds everything the rest of the run depends on: the model (and SAC's or DQN's
replay buffer), the RNG states of torch, numpy and Python, the env itself (its tensors and
generator; ``env.resumable``), VecNormalize's statistics, the learning curve and the wall time
so far. SB3 checkpoints are taken between rollouts, so a run killed at any point and resumed
with ``--resume`` ends with the same policy, metrics and step count as an uninterrupted one.
Envs whose state lives outside Python (SUMO) restart their episodes on resume, and say so.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from tqdm.auto import tqdm

from ctrlgym.adapters.sb3 import SB3VecEnv
from ctrlgym.algorithms import get_algorithm
from ctrlgym.config import ConfigError, ExperimentConfig, load_config, save_config
from ctrlgym.runs import RunDirError, torch_save_atomic, write_json_atomic, write_metrics_snapshot
from ctrlgym.threads import hot_path

__all__ = ["train", "latest_checkpoint"]

_CHECKPOINT = re.compile(r"step_(\d+)\.(zip|pt)$")
_STEP_FILE = re.compile(r"_(\d+)\.[a-z]+$")


def latest_checkpoint(seed_dir: Path) -> tuple[int, Path] | None:
    """The (timesteps, path) of the newest complete checkpoint of a seed, or None (the model file is written last)."""
    found = [(int(m.group(1)), p) for p in (seed_dir / "checkpoints").glob("step_*") if (m := _CHECKPOINT.search(p.name))]
    return max(found) if found else None


def final_model_path(seed_dir: Path, algo: str) -> Path:
    return seed_dir / f"final_model{get_algorithm(algo).model_suffix}"


def _prune_checkpoints(folder: Path, keep: int) -> None:
    """Delete unfinished files (``.partial``, ``.tmp``) and every file of checkpoints other than the newest ``keep`` complete ones."""
    for leftover in [*folder.glob("*.partial"), *folder.glob("*.partial.*"), *folder.glob("*.tmp")]:
        leftover.unlink()
    complete = sorted({int(m.group(1)) for p in folder.glob("step_*") if (m := _CHECKPOINT.search(p.name))})
    if not complete:
        return
    kept = set(complete[-keep:])
    for path in folder.iterdir():
        m = _STEP_FILE.search(path.name)
        if m and int(m.group(1)) not in kept:
            path.unlink()


def _random_states() -> dict[str, Any]:
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_random_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _wait_out_older_event_files(folder: Path) -> None:
    """A resumed run's TensorBoard file must sort after the killed run's (TensorBoard reads them by
    name, which starts with the second they were opened): wait until that second has passed."""
    stamps = [int(m.group(1)) for path in folder.glob("events.out.tfevents.*") if (m := re.match(r"events\.out\.tfevents\.(\d+)\.", path.name))]
    while stamps and time.time() < max(stamps) + 1:
        time.sleep(0.05)


def _tensorboard_writer(folder: Path, steps: int):
    """A SummaryWriter that, resumed at ``steps``, makes TensorBoard drop the events the killed run wrote after it."""
    from torch.utils.tensorboard import SummaryWriter

    if steps:
        _wait_out_older_event_files(folder)
    return SummaryWriter(str(folder), purge_step=steps if steps else None)


def _resumed(seed: int, steps: int, path: Path, exact: bool) -> None:
    how = "exactly" if exact else "with fresh episodes (the env's state lives outside Python, e.g. SUMO)"
    tqdm.write(f"seed {seed}: resumed at step {steps:,} from {path}, {how}")


class _Clock:
    """Wall and CPU time (of this process) of a seed's training, accumulated over the processes that ran it."""

    def __init__(self, before: float = 0.0, cpu_before: float = 0.0) -> None:
        self.before, self.started = before, time.perf_counter()
        self.cpu_before, self.cpu_started = cpu_before, time.process_time()

    @classmethod
    def resumed(cls, trainer: dict[str, Any]) -> _Clock:
        return cls(trainer["wall_time_s"], trainer.get("cpu_time_s", 0.0))

    def seconds(self) -> float:
        return round(self.before + time.perf_counter() - self.started, 2)

    def cpu_seconds(self) -> float:
        return round(self.cpu_before + time.process_time() - self.cpu_started, 2)

    def times(self) -> dict[str, float]:
        return {"wall_time_s": self.seconds(), "cpu_time_s": self.cpu_seconds()}


def _open_checkpoints(config: ExperimentConfig, seed_dir: Path) -> tuple[Path, tuple[int, Path, dict[str, Any]] | None]:
    """A seed's checkpoint folder (made, and pruned of unfinished files) and its newest complete
    checkpoint as (steps, model path, trainer state), or None."""
    folder = seed_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    _prune_checkpoints(folder, config.agent.checkpoint_keep)
    found = latest_checkpoint(seed_dir)
    if found is None:
        return folder, None
    steps, path = found
    return folder, (steps, path, torch.load(folder / f"trainer_{steps}.pt", weights_only=False))


# ---------------------------------------------------------------------------------- own agents
def _train_own_agent(config: ExperimentConfig, seed: int, seed_dir: Path, run_dir: Path, bar: tqdm) -> dict[str, Any]:
    """Independent DQN, Nash DQN or the channel predictor on the native batch."""
    agent_config = config.agent
    agent_class = get_algorithm(agent_config.algo).load()
    folder, found = _open_checkpoints(config, seed_dir)
    if found is not None:
        steps, path, trainer = found
        env = trainer["env"] if trainer["env"] is not None else config.make_env(autoreset_mode="same_step")
        agent = agent_class.load(path, env)
        if trainer["env"] is None:
            agent._last_obs = None  # the env starts afresh: learn() resets it with seed + steps
        _set_random_states(trainer["random"])
        curve, clock = json.loads((folder / f"learning_curve_{steps}.json").read_text()), _Clock.resumed(trainer)
        _resumed(seed, steps, path, trainer["env"] is not None)
    else:
        env = config.make_env(autoreset_mode="same_step")
        try:
            agent = agent_class(env, seed=seed, device=agent_config.device, **agent_config.hyperparameters)
        except (TypeError, ValueError) as error:
            raise config.error("agent.hyperparameters", error) from None
        curve, clock = [], _Clock()
        if agent_config.init_from is not None:
            source = final_model_path(Path(agent_config.init_from) / f"seed_{seed}", agent_config.algo)
            if not source.is_file():
                raise RunDirError(f"init_from: {source} is missing (train that run first)")
            agent.load_weights_from(source)
    bar.update(agent.num_timesteps)
    writer = _tensorboard_writer(run_dir / "tensorboard" / f"seed_{seed}", agent.num_timesteps)
    every = agent_config.checkpoint_every
    state = {"next_checkpoint": (agent.num_timesteps // every + 1) * every}

    def checkpoint() -> None:
        steps = agent.num_timesteps
        write_json_atomic(folder / f"learning_curve_{steps}.json", curve)
        trainer = {"env": env if env.resumable else None, "random": _random_states(), **clock.times()}
        torch_save_atomic(trainer, folder / f"trainer_{steps}.pt")
        agent.save(folder / f"step_{steps}.pt")  # last: it marks the checkpoint complete
        _prune_checkpoints(folder, agent_config.checkpoint_keep)

    status = _TrainingStatus(env, seed)

    def on_step(progress: dict[str, Any]) -> None:
        bar.update(min(config.env.num_envs, bar.total - bar.n))
        status.show(bar, progress)
        if progress["episode_returns"]:
            curve.append([progress["timesteps"], float(np.mean(progress["episode_returns"]))])
            writer.add_scalar("rollout/ep_rew_mean", curve[-1][1], progress["timesteps"])
        if progress["timesteps"] % 1000 < config.env.num_envs:
            writer.add_scalar("train/loss", progress["loss"], progress["timesteps"])
            if "epsilon" in progress:
                writer.add_scalar("rollout/exploration_rate", progress["epsilon"], progress["timesteps"])
        if progress["timesteps"] >= state["next_checkpoint"] and progress["timesteps"] < agent_config.total_timesteps:
            checkpoint()
            state["next_checkpoint"] += every

    agent.learn(env, agent_config.total_timesteps, callback=on_step, seed=seed)
    checkpoint()
    agent.save(final_model_path(seed_dir, agent_config.algo), with_replay=False)
    writer.close()
    env.close()
    return {"timesteps": int(agent.num_timesteps), "learning_curve": curve, **clock.times()}


class _TrainingStatus:
    """The bar's postfix: the seed, for envs with a decision clock the simulated hours so far
    (summed over the batch), and the env's headline metric of the latest episodes (traffic: delay)."""

    def __init__(self, env: Any, seed: int) -> None:
        clock = getattr(env, "clock", None)
        self.seconds_per_step = getattr(clock, "delta_time", None)
        self.headline = getattr(env, "headline_metric", (None, True))[0]
        self.postfix: dict[str, Any] = {"seed": seed}
        self.shown_at = -1

    def show(self, bar: tqdm, progress: dict[str, Any]) -> None:
        latest = progress.get("episode_metrics", {}).get(self.headline)
        if latest:
            self.postfix[f"last_{self.headline}"] = f"{np.mean(latest):.4g}"
        steps = progress["timesteps"]
        if not latest and steps - self.shown_at < 2000:
            return
        if self.seconds_per_step:
            self.postfix["sim_h"] = f"{steps * self.seconds_per_step / 3600:,.1f}"
        bar.set_postfix(self.postfix, refresh=False)
        self.shown_at = steps


# ---------------------------------------------------------------------------------- SB3 agents
class _CheckpointAndCurve(BaseCallback):
    """Records the learning curve, advances the bar, and writes checkpoints between rollouts
    (at the start of the first rollout at or past each ``every`` steps), where nothing of a
    rollout is in flight, so that a resumed run repeats the uninterrupted one exactly."""

    def __init__(self, seed_dir: Path, config: ExperimentConfig, curve: list[list[float]], bar: tqdm, clock: _Clock) -> None:
        super().__init__()
        self.seed_dir, self.config, self.curve, self.bar, self.clock = seed_dir, config, curve, bar, clock
        self.every = config.agent.checkpoint_every
        self.finished_returns: list[float] = []
        self.next_checkpoint = 0

    def _on_training_start(self) -> None:
        self.next_checkpoint = (self.num_timesteps // self.every + 1) * self.every

    def _on_rollout_start(self) -> None:
        if self.num_timesteps >= self.next_checkpoint:
            self.save_checkpoint()
            self.next_checkpoint = (self.num_timesteps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        self.bar.update(min(self.training_env.num_envs, self.bar.total - self.bar.n))
        for info in self.locals["infos"]:
            if "episode" in info:
                self.finished_returns.append(info["episode"]["r"])
        return True

    def _on_rollout_end(self) -> None:
        if self.finished_returns:
            self.curve.append([self.num_timesteps, float(np.mean(self.finished_returns))])
            self.finished_returns = []

    def save_checkpoint(self) -> None:
        folder = self.seed_dir / "checkpoints"  # made by _open_checkpoints
        steps = self.num_timesteps
        write_json_atomic(folder / f"learning_curve_{steps}.json", self.curve)
        env, inner = self.model.get_env(), self.model.get_env()
        if isinstance(env, VecNormalize):
            env.save(folder / f"vecnormalize_{steps}.pkl")
            inner = env.venv
        trainer = {
            "env": inner if inner.env.resumable else None,
            "vecnormalize_returns": env.returns.copy() if isinstance(env, VecNormalize) else None,
            "random": _random_states(),
            "action_space_rng": self.model.action_space.np_random.bit_generator.state,
            **self.clock.times(),
        }
        torch_save_atomic(trainer, folder / f"trainer_{steps}.pt")
        if hasattr(self.model, "replay_buffer") and self.model.replay_buffer is not None:
            self.model.save_replay_buffer(folder / f"replay_{steps}.pkl")
        _save_sb3_atomic(self.model, folder / f"step_{steps}.zip")  # last: it marks the checkpoint complete
        _prune_checkpoints(folder, self.config.agent.checkpoint_keep)


def _save_sb3_atomic(model, path: Path) -> None:
    """``model.save`` through a ``.partial.zip`` renamed into place (SB3 adds ``.zip`` to other names)."""
    partial = path.with_name(path.stem + ".partial.zip")
    model.save(partial)
    partial.replace(path)


def _sb3_logger(run_dir: Path, seed: int, steps: int):
    """SB3's logger writing TensorBoard to ``tensorboard/seed_<s>``; resumed at ``steps``, it
    starts with the purge marker that ``SummaryWriter(purge_step=steps)`` writes, so the curve
    continues instead of going back."""
    from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat
    from tensorboard.compat.proto.event_pb2 import Event, SessionLog

    folder = run_dir / "tensorboard" / f"seed_{seed}"
    if steps:
        _wait_out_older_event_files(folder)
    output = TensorBoardOutputFormat(str(folder))
    if steps:
        output.writer.file_writer.add_event(Event(step=steps, session_log=SessionLog(status=SessionLog.START)))
    return Logger(folder=str(folder), output_formats=[output])


def _make_sb3_agent(config: ExperimentConfig, seed: int, seed_dir: Path):
    """A fresh SB3 model on a new env, or the one in the newest checkpoint with its env, RNG and
    VecNormalize state; returns (model, learning curve, clock)."""
    agent = config.agent
    algo = get_algorithm(agent.algo).load()
    folder, found = _open_checkpoints(config, seed_dir)
    if found is None:
        env: VecEnv = SB3VecEnv(config.make_env(autoreset_mode="same_step"))
        if agent.normalize_reward:
            env = VecNormalize(env, norm_obs=False, norm_reward=True, gamma=agent.hyperparameters.get("gamma", 0.99))
        try:
            model = algo(agent.policy, env, seed=seed, device=agent.device, verbose=0, **agent.hyperparameters)
        except (TypeError, ValueError) as error:
            raise config.error("agent.hyperparameters", error) from None
        return model, [], _Clock()
    steps, path, trainer = found
    exact = trainer["env"] is not None
    env = trainer["env"] if exact else SB3VecEnv(config.make_env(autoreset_mode="same_step"))
    if agent.normalize_reward:
        env = VecNormalize.load(str(folder / f"vecnormalize_{steps}.pkl"), env)
        if exact:
            env.returns = trainer["vecnormalize_returns"]
    model = algo.load(path, env=env, device=agent.device, force_reset=not exact)
    if (folder / f"replay_{steps}.pkl").is_file():
        model.load_replay_buffer(folder / f"replay_{steps}.pkl")
    _set_random_states(trainer["random"])  # after load, which reseeds everything with the run's seed
    model.action_space.np_random.bit_generator.state = trainer["action_space_rng"]
    if not exact:
        env.seed(seed + steps)
    _resumed(seed, steps, path, exact)
    return model, json.loads((folder / f"learning_curve_{steps}.json").read_text()), _Clock.resumed(trainer)


def _learn_exactly(model, total: int, callback: BaseCallback) -> None:
    """Learn until exactly ``total`` env steps: PPO's last rollout is shortened to what is left
    (SB3 alone would run whole rollouts past ``total``)."""
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

    if isinstance(model, OnPolicyAlgorithm):
        rollout = model.n_steps * model.n_envs
        whole = (total - model.num_timesteps) // rollout * rollout
        if whole:
            model.learn(total_timesteps=whole, callback=callback, reset_num_timesteps=False)
        rest = total - model.num_timesteps
        if rest:
            model.n_steps = rest // model.n_envs
            buffer = model.rollout_buffer
            model.rollout_buffer = type(buffer)(
                model.n_steps, model.observation_space, model.action_space, device=model.device,
                gamma=model.gamma, gae_lambda=model.gae_lambda, n_envs=model.n_envs,
            )  # fmt: skip
            model.learn(total_timesteps=rest, callback=callback, reset_num_timesteps=False)
        return
    model.learn(total_timesteps=max(total - model.num_timesteps, 0), callback=callback, reset_num_timesteps=False)


def _train_sb3_agent(config: ExperimentConfig, seed: int, seed_dir: Path, run_dir: Path, bar: tqdm) -> dict[str, Any]:
    model, curve, clock = _make_sb3_agent(config, seed, seed_dir)
    model.set_logger(_sb3_logger(run_dir, seed, model.num_timesteps))
    bar.update(model.num_timesteps)
    callback = _CheckpointAndCurve(seed_dir, config, curve, bar, clock)
    _learn_exactly(model, config.agent.total_timesteps, callback)
    callback.save_checkpoint()
    _save_sb3_atomic(model, final_model_path(seed_dir, config.agent.algo))
    model.logger.close()
    model.get_env().close()
    return {"timesteps": int(model.num_timesteps), "learning_curve": curve, **clock.times()}


# ---------------------------------------------------------------------------------- the run
def _has_progress(run_dir: Path, seeds: list[int]) -> bool:
    """Whether these seeds of a run directory hold anything a restart would lose (a checkpoint, a model, a result)."""
    return any(
        any((run_dir / f"seed_{seed}").glob(pattern)) for seed in seeds for pattern in ("checkpoints/step_*", "final_model.*", "training.json")
    )


def _prepare_run_dir(config: ExperimentConfig, seeds: list[int], resume: bool, overwrite: bool) -> Path:
    """Check the run directory against the config and write it there. The same config may be
    trained by several processes at once, each on seeds the others do not touch."""
    run_dir = Path(config.output_dir)
    stored = run_dir / "config.yaml"
    if overwrite and stored.is_file():
        shutil.rmtree(run_dir)
        tqdm.write(f"overwrite: removed the previous run in {run_dir}")
    if resume and not stored.is_file():
        raise RunDirError(f"cannot resume: {run_dir} holds no run (no config.yaml); start without --resume")
    if stored.is_file():
        previous = load_config(stored)
        if previous != config:
            changed = sorted(key for key, value in config.settings().items() if previous.settings().get(key) != value)
            if resume or _has_progress(run_dir, previous.seeds):
                raise ConfigError(
                    f"{run_dir} holds a run of another config ({', '.join(changed)} differ from {stored}); "
                    "start again with --overwrite, or change output_dir"
                )
            tqdm.write(f"{run_dir}: the previous start left no checkpoint; starting again")
        elif not resume and _has_progress(run_dir, seeds):
            raise FileExistsError(
                f"{run_dir} already holds a run of seeds {seeds}; pass --resume to continue it, --overwrite to start again, or change output_dir"
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, stored)  # atomic: concurrent writers and readers never see half a file
    return run_dir


@hot_path
def train(
    config: ExperimentConfig | str | Path, resume: bool = False, progress: bool = True, overwrite: bool = False, seeds: list[int] | None = None
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
        raise ValueError(f"config {config.name} has no agent to train (agent: null); run ctrlgym evaluate CONFIG for its baselines")
    config.check_agent_device()
    unknown = [seed for seed in seeds or [] if seed not in config.seeds]
    if unknown:
        raise ValueError(f"seeds {unknown} are not in the config's seeds {config.seeds}")
    seeds = list(config.seeds if seeds is None else seeds)
    run_dir = _prepare_run_dir(config, seeds, resume, overwrite)
    total = config.agent.total_timesteps
    with tqdm(total=total * len(seeds), desc=f"train {config.name}", unit="step", disable=not progress) as bar:
        for seed in seeds:
            seed_dir = run_dir / f"seed_{seed}"
            bar.set_postfix(seed=seed)
            if final_model_path(seed_dir, config.agent.algo).is_file():
                bar.update(total)
                continue
            sb3 = get_algorithm(config.agent.algo).sb3
            result = (_train_sb3_agent if sb3 else _train_own_agent)(config, seed, seed_dir, run_dir, bar)
            write_json_atomic(seed_dir / "training.json", result)  # this seed's own file: other seeds may train elsewhere
            _prune_checkpoints(seed_dir / "checkpoints", 1)  # finished: the newest checkpoint is enough to train it further
    write_metrics_snapshot(run_dir)
    return run_dir
