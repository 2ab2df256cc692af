"""The interfaces shared by agents, baselines and solver policies.

A :class:`Policy` maps a batch of observations ``(num_envs, *obs_shape)`` to a batch of actions
``(num_envs, *action_shape)``, both torch tensors on the env's device. ``evaluate`` and the
reports treat every policy alike through it. An :class:`Agent` is a policy that learns: what
``ctrlgym train`` needs of ctrlgym's own algorithms (registered in :mod:`ctrlgym.algorithms`);
SB3's algorithms are trained through the SB3 adapter instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

__all__ = ["Policy", "Agent", "SB3Policy"]


@runtime_checkable
class Policy(Protocol):
    def __call__(self, observations: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Agent(Protocol):
    """A learning policy on a native batch (``autoreset_mode="same_step"``).

    ``learn`` continues from where the agent stands (``num_timesteps``; after ``load`` of a
    training checkpoint, from its saved observations) until ``total_timesteps`` transitions,
    calling ``callback`` after every batch step with ``{"timesteps", "loss", "episode_returns", ...}``.
    ``save(path, with_replay=True)`` writes a training checkpoint, ``with_replay=False`` the final
    model; ``load`` restores either. Agents that can be fine-tuned (``agent.init_from``) also have
    ``load_weights_from(path)``.
    """

    num_timesteps: int

    def __call__(self, observations: torch.Tensor) -> torch.Tensor: ...

    def learn(self, env: Any, total_timesteps: int, callback: Callable[[dict[str, Any]], None] | None = None, seed: int = 0) -> Agent: ...

    def save(self, path: str | Path, with_replay: bool = True) -> None: ...

    @classmethod
    def load(cls, path: str | Path, env: Any, device: str | torch.device | None = None, **overrides: Any) -> Agent: ...


class SB3Policy:
    """A trained Stable-Baselines3 model as a :class:`Policy` (deterministic actions by default)."""

    def __init__(self, model, deterministic: bool = True) -> None:
        self.model = model
        self.deterministic = deterministic

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        actions, _ = self.model.predict(observations.detach().cpu().numpy(), deterministic=self.deterministic)
        return torch.as_tensor(actions, device=observations.device)
