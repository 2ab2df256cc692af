"""Stable-Baselines3 ``VecEnv`` over a native ctrlgym batch."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from ctrlgym.single_env import to_numpy
from ctrlgym.vector_env import AutoresetMode, TorchVectorEnv

__all__ = ["SB3VecEnv"]


class SB3VecEnv(VecEnv):
    """Present a :class:`TorchVectorEnv` to Stable-Baselines3 as a ``VecEnv``.

    SB3 expects finished envs to be reset within the step, so the batch must be built with
    ``autoreset_mode="same_step"``. Infos carry what SB3 reads at episode end:
    ``terminal_observation``, ``TimeLimit.truncated`` and ``episode`` (``r``, ``l``, ``t``), so no
    ``VecMonitor`` is needed.

    Example::

        env = SB3VecEnv(MultiClassQueue(num_envs=16, autoreset_mode="same_step"))
        PPO("MlpPolicy", env).learn(10_000)
    """

    def __init__(self, env: TorchVectorEnv) -> None:
        if env.multi_agent:
            raise ValueError(
                f"SB3VecEnv: {env.env_name} is multi-agent (one agent per light); Stable-Baselines3 trains one agent. "
                "Use its single-agent variant, ctrlgym.agents (dqn, nash_dqn), or the PettingZoo/TorchRL/RLlib adapters"
            )
        if env.autoreset_mode != AutoresetMode.SAME_STEP:
            raise ValueError(
                f"SB3VecEnv: {env.env_name} uses autoreset_mode={env.autoreset_mode.name}; Stable-Baselines3 "
                "needs SAME_STEP (build the env with autoreset_mode='same_step')"
            )
        self.env = env
        self._actions: torch.Tensor | None = None
        self._start_time = time.time()
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)

    def reset(self) -> np.ndarray:
        seed = self._seeds[0]
        obs, _ = self.env.reset(seed=seed)
        self._reset_seeds()
        self._reset_options()
        return to_numpy(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = torch.as_tensor(actions)

    def step_wait(self):
        obs, rewards, terminations, truncations, info = self.env.step(self._actions)
        dones = to_numpy(terminations | truncations)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        finished = np.flatnonzero(dones)
        if finished.size:
            final_obs = to_numpy(info["final_obs"])
            terminated, truncated = to_numpy(terminations), to_numpy(truncations)
            episode_return, episode_length = to_numpy(info["episode"]["r"]), to_numpy(info["episode"]["l"])
            elapsed = round(time.time() - self._start_time, 6)
            for i in finished:
                infos[i] = {
                    "terminal_observation": final_obs[i],
                    "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                    "episode": {"r": float(episode_return[i]), "l": int(episode_length[i]), "t": elapsed},
                }
        return to_numpy(obs), to_numpy(rewards).astype(np.float32), dones, infos

    def close(self) -> None:
        self.env.close()

    def _indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        # one object holds the whole batch: every index sees the same attribute
        return [getattr(self.env, attr_name) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]
