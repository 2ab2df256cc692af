"""PettingZoo ``ParallelEnv`` over a multi-agent ctrlgym env (e.g. traffic signals)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

try:
    from pettingzoo import ParallelEnv
except ImportError as err:  # pragma: no cover
    raise ImportError("ctrlgym.adapters.pettingzoo needs PettingZoo: pip install 'ctrlgym[traffic]'") from err

from ctrlgym.single_env import to_numpy
from ctrlgym.vector_env import AutoresetMode, TorchVectorEnv

__all__ = ["PettingZooEnv"]


class PettingZooEnv(ParallelEnv):
    """One multi-agent env (a batch of one) as a PettingZoo ``ParallelEnv``.

    The env must have an ``agent_ids`` list, a ``(n_agents, obs_dim)`` observation, a
    ``MultiDiscrete`` action (one entry per agent) and per-agent rewards, and be built with
    ``num_envs=1`` and ``autoreset_mode="disabled"``. Agents leave at the end of the episode.

    Example::

        env = PettingZooEnv(TrafficSignalEnv(num_envs=1, autoreset_mode="disabled"))
        observations, infos = env.reset(seed=0)
        observations, rewards, terminations, truncations, infos = env.step({a: 0 for a in env.agents})
    """

    metadata = {"render_modes": [], "name": "ctrlgym_parallel_v0"}

    def __init__(self, env: TorchVectorEnv) -> None:
        if env.num_envs != 1 or env.autoreset_mode != AutoresetMode.DISABLED:
            raise ValueError("PettingZooEnv needs an env built with num_envs=1 and autoreset_mode='disabled'")
        if not isinstance(env.single_action_space, spaces.MultiDiscrete) or not hasattr(env, "agent_ids"):
            raise ValueError(
                f"PettingZooEnv needs a multi-agent env (agent_ids, MultiDiscrete actions); got {env.env_name}"
            )
        self.env = env
        self.possible_agents = list(env.agent_ids)
        self.agents: list[str] = []
        box = env.single_observation_space
        assert isinstance(box, spaces.Box) and isinstance(env.single_action_space, spaces.MultiDiscrete)
        self.observation_spaces = {
            agent: spaces.Box(box.low[i], box.high[i], box.shape[1:], box.dtype.type)  # type: ignore[union-attr,arg-type]
            for i, agent in enumerate(self.possible_agents)
        }
        self.action_spaces: dict[str, spaces.Space] = {
            agent: spaces.Discrete(int(n))
            for agent, n in zip(self.possible_agents, env.single_action_space.nvec, strict=False)
        }
        self.render_mode = None

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def _per_agent(self, batch: torch.Tensor) -> dict[str, Any]:
        values = to_numpy(batch[0])
        return {agent: values[i] for i, agent in enumerate(self.possible_agents) if agent in self.agents}

    def _infos(self, info: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Each agent's own values (info entries of shape ``(1, n_agents)``, e.g. ``light_queue_length``
        as ``queue_length``), and the env-wide ones under ``"network"``."""
        tensors = {
            key: value for key, value in info.items() if isinstance(value, torch.Tensor) and not key.startswith("_")
        }
        network = {key: float(value[0]) for key, value in tensors.items() if value.ndim == 1}
        n = len(self.possible_agents)
        own = {key.removeprefix("light_"): value[0] for key, value in tensors.items() if value.shape == (1, n)}
        return {
            agent: {**{key: float(values[i]) for key, values in own.items()}, "network": dict(network)}
            for i, agent in enumerate(self.possible_agents)
            if agent in self.agents
        }

    def reset(self, seed: int | None = None, options: dict | None = None):
        """Reset the episode; ``options`` are accepted for the API and unused (one env, no mask)."""
        obs, info = self.env.reset(seed=seed)
        self.agents = list(self.possible_agents)
        return self._per_agent(obs), self._infos(info)

    def step(self, actions: dict[str, int]):
        missing = [agent for agent in self.agents if agent not in actions]
        if missing:
            raise ValueError(f"{self.env.env_name}: no action for agents {missing}")
        batch = torch.as_tensor(np.array([[actions[agent] for agent in self.possible_agents]]))
        obs, rewards, terminated, truncated, info = self.env.step(batch)
        observations, reward = self._per_agent(obs), self._per_agent(rewards)
        reward = {agent: float(value) for agent, value in reward.items()}
        terminations = {agent: bool(terminated[0]) for agent in self.agents}
        truncations = {agent: bool(truncated[0]) for agent in self.agents}
        infos = self._infos(info)
        if bool(terminated[0] | truncated[0]):
            self.agents = []
        return observations, reward, terminations, truncations, infos

    def close(self) -> None:
        self.env.close()
