"""The slow chain shared by the fast-slow envs: y stays w.p. 1 − ε, else moves uniformly to
another of its ``num_slow_states`` values (independent of the fast state and the action)."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["SlowChainMixin", "switch_slow_state", "uniform_levels"]


def uniform_levels(draws: torch.Tensor, count: int) -> torch.Tensor:
    """Uniforms on [0, 1) mapped to a uniform draw from {0, …, count − 1}."""
    return (draws * count).long().clamp_max(count - 1)


def switch_slow_state(slow_state: torch.Tensor, draws: torch.Tensor, switch_prob: float, count: int) -> torch.Tensor:
    """y moves w.p. ε (``switch_prob``) to another of ``count`` slow states, uniformly, from one
    uniform u per env (``draws``, ``(num_envs,)``): it moves if u < ε, and then u / ε, uniform on
    [0, 1) given u < ε, picks the shift 1..count−1."""
    if count < 2 or switch_prob <= 0:
        return slow_state
    switches = draws < switch_prob
    moved = slow_state + 1 + uniform_levels(draws / switch_prob, count - 1)  # < 2·count: one wrap, no division
    moved = torch.where(moved >= count, moved - count, moved)
    return torch.where(switches, moved, slow_state)


class SlowChainMixin:
    """For a :class:`TorchVectorEnv` with ``num_slow_states``, ``switch_prob`` and ``slow_state``."""

    num_slow_states: int
    switch_prob: float
    slow_state: torch.Tensor
    # from the TorchVectorEnv it is mixed into
    num_envs: int
    device: torch.device
    generator: torch.Generator
    discount: float

    def _uniform(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator, device=self.device)

    def _random_levels(self, count: int) -> torch.Tensor:
        """A uniform draw from {0, …, count − 1} per env, ``(num_envs,)``."""
        return uniform_levels(self._uniform(self.num_envs), count)

    def _switch_slow_state(self) -> None:
        """y moves w.p. ε to another slow state, uniformly (one uniform per env)."""
        if self.num_slow_states < 2:
            return
        self.slow_state = switch_slow_state(
            self.slow_state, self._uniform(self.num_envs), self.switch_prob, self.num_slow_states
        )

    def slow_transition_matrix(self) -> torch.Tensor:
        """Z: stay w.p. 1 − ε, else move uniformly to another slow state, ``(n_slow, n_slow)``."""
        n = self.num_slow_states
        if n == 1:
            return torch.ones(1, 1, dtype=torch.float64)
        matrix = torch.full((n, n), self.switch_prob / (n - 1), dtype=torch.float64)
        matrix.fill_diagonal_(1 - self.switch_prob)
        return matrix

    def factored_model(self, fast_transitions, rewards, device, label: str):
        """The exact :class:`~ctrlgym.solvers.mdp.FiniteMDP` ``P^a = F^a ⊗ Z`` from per-action fast
        transitions ``(n_fast, n_fast)`` and per-action rewards ``(n_fast · n_slow,)`` (or an
        ``(S, A)`` array), states s = x · n_slow + y, discount ``self.discount``."""
        from ctrlgym.solvers.mdp import FiniteMDP

        rewards = np.stack(rewards, axis=1) if isinstance(rewards, (list, tuple)) else rewards
        return FiniteMDP.from_matrices(
            None,
            rewards,
            self.discount,
            num_slow_states=self.num_slow_states,
            slow_transition=self.slow_transition_matrix().cpu().numpy(),
            device=device,
            name=f"{type(self).__name__}({label})",
            fast_transitions=fast_transitions,
        )
