"""The one policy interface shared by agents, baselines and solver policies.

A policy maps a batch of observations ``(num_envs, *obs_shape)`` to a batch of actions
``(num_envs, *action_shape)``, both torch tensors on the env's device. ``evaluate`` and the
reports treat every policy alike through it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = ["Policy", "SB3Policy"]


@runtime_checkable
class Policy(Protocol):
    def __call__(self, observations: torch.Tensor) -> torch.Tensor: ...


class SB3Policy:
    """A trained Stable-Baselines3 model as a :class:`Policy` (deterministic actions by default)."""

    def __init__(self, model, deterministic: bool = True) -> None:
        self.model = model
        self.deterministic = deterministic

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        actions, _ = self.model.predict(observations.detach().cpu().numpy(), deterministic=self.deterministic)
        return torch.as_tensor(actions, device=observations.device)
