"""RLlib ``MultiAgentEnv`` over a ctrlgym env (install ``ctrlgym[rllib]``).

RLlib steps one env per copy and batches copies itself (``num_envs_per_env_runner``, env
runners across a Ray cluster), so the adapter holds a ctrlgym env of ``num_envs=1``. A
multi-agent env (one agent per traffic light) gives one RLlib agent per light, with its own
observation and action space, through the PettingZoo adapter's per-agent split; a single-agent
env gives one agent, ``"agent"``. Episodes end for all agents at once: ``terminateds`` and
``truncateds`` carry ``"__all__"`` as RLlib's current API stack expects.
"""

from __future__ import annotations

from typing import Any

from gymnasium import spaces

try:
    from ray.rllib.env.multi_agent_env import MultiAgentEnv
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError("ctrlgym.adapters.rllib needs RLlib: pip install 'ctrlgym[rllib]'") from err

from ctrlgym.single_env import SingleEnv
from ctrlgym.vector_env import AutoresetMode

__all__ = ["RLlibMultiAgentEnv"]

SINGLE_AGENT = "agent"


class RLlibMultiAgentEnv(MultiAgentEnv):
    """``config``: ``{"env_id": "ctrlgym/TrafficTwinEnv-v0", "kwargs": {...}}`` (RLlib passes its
    ``env_config`` here), or ``{"env": a TorchVectorEnv built with num_envs=1, autoreset_mode="disabled"}``.

    Example::

        from ray.rllib.algorithms.ppo import PPOConfig
        config = (PPOConfig().environment(RLlibMultiAgentEnv, env_config={"env_id": "ctrlgym/TrafficTwinEnv-v0"})
                  .multi_agent(policies={"shared"}, policy_mapping_fn=lambda agent_id, episode, **kw: "shared"))
        algo = config.build_algo(); algo.train()
    """

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        config = dict(config or {})
        env = config.get("env")
        if env is None:
            from ctrlgym.registry import make_vector_env

            env = make_vector_env(
                config.get("env_id", "ctrlgym/TrafficTwinEnv-v0"),
                1,
                autoreset_mode="disabled",
                **dict(config.get("kwargs", {})),
            )
        if env.num_envs != 1 or env.autoreset_mode != AutoresetMode.DISABLED:
            raise ValueError(
                f"RLlibMultiAgentEnv needs {env.env_name} built with num_envs=1 and autoreset_mode='disabled' (RLlib batches copies itself)"
            )
        if env.multi_agent:
            from ctrlgym.adapters.pettingzoo import PettingZooEnv

            self._inner: PettingZooEnv | SingleEnv = PettingZooEnv(env)
            self.possible_agents = list(self._inner.possible_agents)
            self.observation_spaces: dict[Any, spaces.Space] = dict(self._inner.observation_spaces)
            self.action_spaces: dict[Any, spaces.Space] = dict(self._inner.action_spaces)
        else:
            self._inner = SingleEnv(env)
            self.possible_agents = [SINGLE_AGENT]
            self.observation_spaces = {SINGLE_AGENT: env.single_observation_space}
            self.action_spaces = {SINGLE_AGENT: env.single_action_space}
        self.agents = []

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        observations, infos = self._inner.reset(seed=seed, options=options)
        self.agents = list(self.possible_agents)
        if isinstance(self._inner, SingleEnv):
            return {SINGLE_AGENT: observations}, {SINGLE_AGENT: infos}
        return observations, infos

    def step(self, action_dict: dict[Any, Any]):
        if isinstance(self._inner, SingleEnv):
            obs, reward, terminated, truncated, info = self._inner.step(action_dict[SINGLE_AGENT])
            observations, rewards, infos = {SINGLE_AGENT: obs}, {SINGLE_AGENT: reward}, {SINGLE_AGENT: info}
            terminateds, truncateds = {SINGLE_AGENT: terminated}, {SINGLE_AGENT: truncated}
        else:
            observations, rewards, terminateds, truncateds, infos = self._inner.step(action_dict)
        ended = any(terminateds.values()) or any(truncateds.values())  # every agent's episode ends with the env's
        terminateds["__all__"] = any(terminateds.values())
        truncateds["__all__"] = ended and not terminateds["__all__"]
        if ended:
            self.agents = []
        return observations, rewards, terminateds, truncateds, infos

    def close(self) -> None:
        self._inner.close()
