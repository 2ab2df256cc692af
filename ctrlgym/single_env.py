"""The single-env Gymnasium view of a batched env (a batch of one, numpy in and out)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ctrlgym.errors import UsageError
from ctrlgym.vector_env import AutoresetMode, TorchVectorEnv

__all__ = ["SingleEnv", "to_numpy"]


def to_numpy(value: Any) -> Any:
    """Tensors (also nested in dicts) to numpy arrays on the host."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, dict):
        return {key: to_numpy(item) for key, item in value.items()}
    return value


def _first(info: dict[str, Any]) -> dict[str, Any]:
    """Env 0's entries of a batched info dict; masked entries only where their mask is set."""
    single = {}
    for key, value in info.items():
        if key.startswith("_"):
            continue
        mask = info.get(f"_{key}")
        if mask is not None and not bool(mask[0]):
            continue
        single[key] = _first(value) if isinstance(value, dict) else to_numpy(value[0])
    return single


class SingleEnv(gym.Env):
    """A ``gymnasium.Env`` over a :class:`TorchVectorEnv` with ``num_envs=1``.

    The batch is built with ``autoreset_mode=DISABLED`` (a single env never resets by itself);
    observations come back as numpy arrays, rewards as floats, infos without the batch axis.
    The dynamics are written once, in the batch.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, vector_env: TorchVectorEnv) -> None:
        if vector_env.num_envs != 1 or vector_env.autoreset_mode != AutoresetMode.DISABLED:
            raise ValueError("SingleEnv needs a batch built with num_envs=1 and autoreset_mode=DISABLED")
        self.vector_env = vector_env
        self.observation_space = vector_env.single_observation_space
        self.action_space = vector_env.single_action_space
        self.render_mode = None

    @classmethod
    def factory(cls, vector_cls: type[TorchVectorEnv] | Callable[[], type[TorchVectorEnv]], name: str | None = None):
        """An entry point for ``gymnasium.register``: keyword arguments go to ``vector_cls``.

        ``vector_cls`` may be a zero-argument function returning the class (resolved on the first
        ``gymnasium.make``, so registering imports nothing); ``name`` is then the class's name.
        """
        name = name or vector_cls.__name__

        def make(**kwargs: Any) -> SingleEnv:
            resolved: type[TorchVectorEnv] = vector_cls if isinstance(vector_cls, type) else vector_cls()
            if resolved.multi_agent:  # refused before anything (a SUMO process) is started
                raise ValueError(
                    f"{name} is multi-agent (one agent per traffic light) and has no single-env Gymnasium view: use "
                    f"gymnasium.make_vec('ctrlgym/{name}-v0', num_envs=N, vectorization_mode='vector_entry_point'), "
                    f"ctrlgym.adapters.pettingzoo.PettingZooEnv({name}(num_envs=1, autoreset_mode='disabled')), "
                    f"or ctrlgym.adapters.torchrl.TorchRLEnv"
                )
            for key in ("num_envs", "autoreset_mode"):
                if key in kwargs:
                    raise ValueError(f"{name}: {key} is fixed for the single env; use gymnasium.make_vec")
            render_mode = kwargs.pop("render_mode", None)
            if render_mode is not None:
                raise UsageError(
                    f"{name} has no renderer (metadata['render_modes'] is empty), so render_mode={render_mode!r} "
                    "cannot be honoured; leave it unset"
                )
            return cls(resolved(num_envs=1, autoreset_mode=AutoresetMode.DISABLED, **kwargs))

        make.__name__ = f"make_single_{name}"
        return make

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        obs, info = self.vector_env.reset(seed=seed, options=options)
        return to_numpy(obs[0]), _first(info)

    def step(self, action):
        batch = torch.as_tensor(np.asarray(action))[None]
        obs, reward, terminated, truncated, info = self.vector_env.step(batch)
        return to_numpy(obs[0]), float(reward[0]), bool(terminated[0]), bool(truncated[0]), _first(info)

    def close(self) -> None:
        self.vector_env.close()
