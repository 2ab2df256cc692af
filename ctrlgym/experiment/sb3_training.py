"""Training of Stable-Baselines3 algorithms (PPO, SAC) on a native batch through the SB3 adapter.

Checkpoints are taken between rollouts, where nothing of a rollout is in flight, and hold the
model, the replay buffer (SAC), VecNormalize's statistics, the env and the RNG states, so a run
killed at any point and resumed ends with the same policy as an uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from tqdm.auto import tqdm

from ctrlgym.adapters.sb3 import SB3VecEnv
from ctrlgym.experiment.algorithms import get_algorithm
from ctrlgym.experiment.checkpoints import (
    TrainingClock,
    announce_resume,
    open_checkpoints,
    random_states,
    save_sb3_atomic,
    set_random_states,
)
from ctrlgym.experiment.config import ExperimentConfig
from ctrlgym.experiment.runs import RunDir, prune_checkpoints
from ctrlgym.experiment.tensorboard import sb3_logger
from ctrlgym.files import torch_save_atomic, write_json_atomic

__all__ = ["train_sb3_seed"]


class _CheckpointAndCurve(BaseCallback):
    """Records the learning curve, advances the bar, and writes checkpoints between rollouts
    (at the start of the first rollout at or past each ``every`` steps), where nothing of a
    rollout is in flight, so that a resumed run repeats the uninterrupted one exactly."""

    def __init__(
        self, folder: Path, config: ExperimentConfig, curve: list[list[float]], bar: tqdm, clock: TrainingClock
    ) -> None:
        super().__init__()
        self.folder, self.config, self.curve, self.bar, self.clock = folder, config, curve, bar, clock
        self.every = config.trained_agent.checkpoint_every
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
        folder = self.folder  # made by open_checkpoints
        steps = self.num_timesteps
        write_json_atomic(folder / f"learning_curve_{steps}.json", self.curve)
        env, inner = self.model.get_env(), self.model.get_env()  # inner: the SB3VecEnv
        assert env is not None
        if isinstance(env, VecNormalize):
            env.save(str(folder / f"vecnormalize_{steps}.pkl"))
            inner = env.venv
        trainer = {
            "env": inner if inner.env.resumable else None,  # type: ignore[union-attr]
            "vecnormalize_returns": env.returns.copy() if isinstance(env, VecNormalize) else None,
            "random": random_states(),
            "action_space_rng": self.model.action_space.np_random.bit_generator.state,
            **self.clock.times(),
        }
        torch_save_atomic(trainer, folder / f"trainer_{steps}.pt")
        if hasattr(self.model, "replay_buffer") and self.model.replay_buffer is not None:
            self.model.save_replay_buffer(folder / f"replay_{steps}.pkl")  # type: ignore[attr-defined]  # off-policy only
        save_sb3_atomic(self.model, folder / f"step_{steps}.zip")  # last: it marks the checkpoint complete
        prune_checkpoints(folder, self.config.trained_agent.checkpoint_keep)


def _make_sb3_agent(run: RunDir, seed: int):
    """A fresh SB3 model on a new env, or the one in the newest checkpoint with its env, RNG and
    VecNormalize state; returns (model, learning curve, clock)."""
    config = run.config
    agent = config.trained_agent
    hyperparameters = agent.hyperparameters or {}
    algo = get_algorithm(agent.algo).load()
    folder, found = open_checkpoints(run, seed)
    if found is None:
        env: VecEnv = SB3VecEnv(config.make_env(autoreset_mode="same_step"))
        if agent.normalize_reward:
            env = VecNormalize(env, norm_obs=False, norm_reward=True, gamma=hyperparameters.get("gamma", 0.99))
        try:
            model = algo(agent.policy, env, seed=seed, device=agent.device, verbose=0, **hyperparameters)
        except (TypeError, ValueError) as error:
            raise config.error("agent.hyperparameters", error) from None
        return model, [], TrainingClock()
    steps, path, trainer = found.steps, found.model, found.trainer
    exact = trainer["env"] is not None
    env = trainer["env"] if exact else SB3VecEnv(config.make_env(autoreset_mode="same_step"))
    if agent.normalize_reward:
        env = VecNormalize.load(str(folder / f"vecnormalize_{steps}.pkl"), env)
        if exact:
            env.returns = trainer["vecnormalize_returns"]
    model = algo.load(path, env=env, device=agent.device, force_reset=not exact)
    if (folder / f"replay_{steps}.pkl").is_file():
        model.load_replay_buffer(folder / f"replay_{steps}.pkl")
    set_random_states(trainer["random"])  # after load, which reseeds everything with the run's seed
    model.action_space.np_random.bit_generator.state = trainer["action_space_rng"]
    if not exact:
        env.seed(seed + steps)
    announce_resume(seed, steps, path, exact)
    return model, found.curve, TrainingClock.resumed(trainer)


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
                model.n_steps,
                model.observation_space,
                model.action_space,
                device=model.device,
                gamma=model.gamma,
                gae_lambda=model.gae_lambda,
                n_envs=model.n_envs,
            )
            model.learn(total_timesteps=rest, callback=callback, reset_num_timesteps=False)
        return
    model.learn(total_timesteps=max(total - model.num_timesteps, 0), callback=callback, reset_num_timesteps=False)


def train_sb3_seed(run: RunDir, seed: int, bar: tqdm) -> dict[str, Any]:
    """Train one seed of the run's SB3 algorithm to ``total_timesteps`` (resuming from its newest
    checkpoint); returns the seed's training result."""
    config = run.config
    model, curve, clock = _make_sb3_agent(run, seed)
    model.set_logger(sb3_logger(run.tensorboard(seed), model.num_timesteps))
    bar.update(model.num_timesteps)
    callback = _CheckpointAndCurve(run.checkpoints(seed), config, curve, bar, clock)
    try:
        _learn_exactly(model, config.trained_agent.total_timesteps, callback)
        callback.save_checkpoint()
        save_sb3_atomic(model, run.final_model(seed))
    finally:  # also on Ctrl-C or an error: the env's simulations (SUMO processes) are ended
        model.logger.close()
        env = model.get_env()
        if env is not None:
            env.close()
    return {"timesteps": int(model.num_timesteps), "learning_curve": curve, **clock.times()}
