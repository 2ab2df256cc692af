"""A package outside ctrlgym that brings its own env and agent: what the plug-in tests run.

``MatchingEnv`` is a contextual bandit: each step shows one of ``k`` contexts (one-hot) and pays 1
when the action equals it; an episode lasts ``length`` steps. ``TabularAgent`` learns the mean
reward of each (context, action) pair from sums and counts, exploring epsilon-greedily.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from gymnasium import spaces

from ctrlgym import TorchVectorEnv
from ctrlgym.policies import CheckpointedAgent

__all__ = ["MatchingEnv", "TabularAgent", "BASELINES"]


class MatchingEnv(TorchVectorEnv):
    """A contextual bandit: pay 1 for the action that matches the context shown."""

    def __init__(self, num_envs: int = 1, k: int = 3, length: int = 8, **kwargs: Any) -> None:
        self.k = k
        super().__init__(
            num_envs,
            spaces.Box(0.0, 1.0, (k,)),
            spaces.Discrete(k),
            max_episode_steps=length,
            **kwargs,
        )
        self.context = torch.zeros(num_envs, dtype=torch.long, device=self.device)

    def _reset_envs(self, mask: torch.Tensor) -> None:
        drawn = torch.randint(self.k, (self.num_envs,), generator=self.generator, device=self.device)
        self.context = torch.where(mask, drawn, self.context)

    def _step_envs(self, actions: torch.Tensor):
        rewards = (actions.long() == self.context).float()
        self.context = torch.randint(self.k, (self.num_envs,), generator=self.generator, device=self.device)
        return rewards, torch.zeros(self.num_envs, dtype=torch.bool, device=self.device), {"matched": rewards}

    def _observe(self) -> torch.Tensor:
        return torch.nn.functional.one_hot(self.context, self.k).float()


def _always_zero(env: TorchVectorEnv, seed: int):
    return lambda observations: torch.zeros(observations.shape[0], dtype=torch.long, device=observations.device)


BASELINES = {"always_zero": _always_zero}


class TabularAgent(CheckpointedAgent):
    """Running-average action values per context, epsilon-greedy while learning."""

    algo = "tabular"

    def __init__(self, env: TorchVectorEnv, seed: int = 0, device: str = "cpu", epsilon: float = 0.2) -> None:
        self.hyperparameters = {"epsilon": epsilon}
        self.epsilon = epsilon
        self.k = int(env.single_action_space.n)
        self.sums = torch.zeros(self.k, self.k, dtype=torch.float64)
        self.counts = torch.zeros(self.k, self.k, dtype=torch.float64)
        self.generator = torch.Generator().manual_seed(seed)
        self.num_timesteps = 0

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        values = self.sums / self.counts.clamp_min(1)
        return values[observations.argmax(-1).cpu()].argmax(-1).to(observations.device)

    def learn(self, env: TorchVectorEnv, total_timesteps: int, callback=None, seed: int = 0) -> TabularAgent:
        observations = self._last_obs if self._last_obs is not None else env.reset(seed=seed + self.num_timesteps)[0]
        while self.num_timesteps < total_timesteps:
            greedy = self(observations)
            explore = torch.rand(env.num_envs, generator=self.generator) < self.epsilon
            random_actions = torch.randint(self.k, (env.num_envs,), generator=self.generator)
            actions = torch.where(explore, random_actions, greedy)
            contexts = observations.argmax(-1)
            observations, rewards, terminated, truncated, info = env.step(actions)
            self.counts.index_put_((contexts, actions), torch.ones(env.num_envs, dtype=torch.float64), accumulate=True)
            self.sums.index_put_((contexts, actions), rewards.double(), accumulate=True)
            self.num_timesteps += env.num_envs
            self._last_obs = observations
            done = terminated | truncated
            returns = info["episode"]["r"][done].tolist() if bool(done.any()) else []
            if callback is not None:
                callback({"timesteps": self.num_timesteps, "episode_returns": returns, "epsilon": self.epsilon})
        return self

    def state_dict(self, with_replay: bool = True) -> dict[str, Any]:
        state = {"algo": self.algo, "hyperparameters": self.hyperparameters, "sums": self.sums, "counts": self.counts}
        state["num_timesteps"] = self.num_timesteps
        if with_replay:
            state["last_obs"] = self._last_obs
            state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums, self.counts, self.num_timesteps = state["sums"], state["counts"], state["num_timesteps"]
        if "generator" in state:
            self.generator.set_state(state["generator"])

    def check_compatible(self, state: dict[str, Any], env: Any, path: str | Path) -> None:
        if state["sums"].shape != self.sums.shape:
            raise ValueError(f"{path}: learned on {state['sums'].shape[0]} contexts, the env has {self.k}")
