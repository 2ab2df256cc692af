"""Restless multi-armed bandit with an environmental (slow) state."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import torch
from gymnasium import spaces

from ctrlgym.envs.fastslow.slow_chain import SlowChainMixin, switch_slow_state, uniform_levels
from ctrlgym.vector_env import AutoresetMode, PureSteps, TorchVectorEnv

__all__ = ["RestlessBandit"]


class RestlessBandit(SlowChainMixin, PureSteps, TorchVectorEnv):
    r"""N restless arms, M activated per step, payoffs modulated by a slowly switching state.

    ## Description
    The second example of Wang & Jiang (arXiv `2301.00922 <https://arxiv.org/abs/2301.00922>`_):
    a restless bandit (Whittle 1988) whose arms keep moving whether played or not, with an
    environmental state y (a market or season) that decides which arms pay. Fast state:
    the arms' states :math:`x = (s_1, \dots, s_N)`; slow state: y.

    ## Dynamics (one step from (x, y) under action a = a set of M arms)
    1. reward :math:`r = \sum_{i \in a} s_i \cdot m_y[i]` (an active arm pays its state times
       the multiplier of arm i under y; passive arms pay nothing);
    2. each active arm moves by ``active_transitions[i]``, each passive arm by
       ``passive_transitions[i]`` (row-stochastic ``(n, n)`` matrices), independently;
    3. y stays w.p. 1 − ε, else moves uniformly to another environmental state.
    The exact model factorises: :math:`P^a = (\bigotimes_i P_i^{a_i}) \otimes Z`.

    ## Action Space
    ``Discrete(C(N, M))``: the index of an M-subset of arms in ``self.arm_subsets`` ``(n_actions, N)``.

    ## Observation Space
    ``MultiDiscrete([n] * N + [n_env])``: each arm's state, then y.

    ## Rewards
    As above (≥ 0).

    ## Starting State
    Arms uniform over their states, y uniform.

    ## Episode End
    Termination: never. Truncation: ``max_episode_steps`` (default 256).

    ## Arguments
    ``num_arms`` N (4), ``active_arms`` M (1), ``arm_states`` n (3), ``active_transitions`` /
    ``passive_transitions`` (default: playing wears an arm down one level w.p. 0.6, resting
    restores one level w.p. 0.3), ``multipliers`` ``(n_env, N)`` (default: arms 0–1 pay under
    y = 0, arms 2–3 under y = 1, the others a fifth), ``switch_prob`` ε (0.01), ``discount`` (0.99).
    The default instance has 3^4 · 2 = 162 states; ``num_arms=8, arm_states=4, active_arms=2``
    has 131,072 states and 28 actions. ``compile=True`` fuses each step into one compiled kernel
    (``TorchVectorEnv``), with the eager step's results bit for bit.

    ## Version History
    * v0: initial version. Since ctrlgym 0.2 the slow chain takes one uniform per step (u < ε
      switches, u / ε picks the new state) and a step draws its uniforms as one block, so a
      seed's trajectories differ from 0.1's.
    """

    def __init__(
        self,
        num_envs: int = 1,
        *,
        num_arms: int = 4,
        active_arms: int = 1,
        arm_states: int = 3,
        active_transitions: Sequence | None = None,
        passive_transitions: Sequence | None = None,
        multipliers: Sequence[Sequence[float]] | None = None,
        switch_prob: float = 0.01,
        discount: float = 0.99,
        max_episode_steps: int | None = 256,
        device: str | torch.device = "cpu",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        validate_actions: bool = True,
        compile: bool = False,
    ) -> None:
        name = type(self).__name__
        if not 1 <= active_arms <= num_arms:
            raise ValueError(f"{name}: need 1 <= active_arms <= num_arms, got {active_arms}, {num_arms}")
        if arm_states < 2:
            raise ValueError(f"{name}: arm_states must be >= 2, got {arm_states}")
        if not 0 <= switch_prob <= 1 or not 0 <= discount < 1:
            raise ValueError(
                f"{name}: switch_prob must be in [0, 1] and discount in [0, 1), got {switch_prob}, {discount}"
            )
        n = arm_states
        down, up = np.zeros((n, n)), np.zeros((n, n))
        for s in range(n):
            down[s, max(s - 1, 0)] += 0.6
            down[s, s] += 0.4
            up[s, min(s + 1, n - 1)] += 0.3
            up[s, s] += 0.7
        active = np.asarray(
            active_transitions if active_transitions is not None else [down] * num_arms, dtype=np.float64
        )
        passive = np.asarray(
            passive_transitions if passive_transitions is not None else [up] * num_arms, dtype=np.float64
        )
        if multipliers is None:
            half = num_arms // 2
            multipliers = [[1.0] * half + [0.2] * (num_arms - half), [0.2] * half + [1.0] * (num_arms - half)]
        multiplier = np.asarray(multipliers, dtype=np.float64)
        for label, matrices in (("active_transitions", active), ("passive_transitions", passive)):
            if matrices.shape != (num_arms, n, n):
                raise ValueError(f"{name}: {label} must have shape ({num_arms}, {n}, {n}), got {matrices.shape}")
            if (matrices < 0).any() or np.abs(matrices.sum(-1) - 1).max() > 1e-6:
                arm, state = np.argwhere((np.abs(matrices.sum(-1) - 1) > 1e-6) | (matrices < 0).any(-1))[0]
                raise ValueError(f"{name}: {label}[{arm}] row of state {state} is not a probability distribution")
        if multiplier.ndim != 2 or multiplier.shape[1] != num_arms or not np.isfinite(multiplier).all():
            raise ValueError(
                f"{name}: multipliers must be a finite table (n_env, {num_arms}), got shape {multiplier.shape}"
            )

        self.num_arms, self.active_arms, self.arm_states = num_arms, active_arms, n
        self.num_slow_states = multiplier.shape[0]
        self.switch_prob, self.discount = float(switch_prob), float(discount)
        self._active_np, self._passive_np, self._multiplier_np = active, passive, multiplier
        subsets = list(combinations(range(num_arms), active_arms))
        super().__init__(
            num_envs,
            spaces.MultiDiscrete([n] * num_arms + [self.num_slow_states]),
            spaces.Discrete(len(subsets)),
            device=device,
            max_episode_steps=max_episode_steps,
            autoreset_mode=autoreset_mode,
            validate_actions=validate_actions,
            compile=compile,
        )
        self.arm_subsets = torch.zeros(len(subsets), num_arms, dtype=torch.bool, device=self.device)  # (n_actions, N)
        for index, subset in enumerate(subsets):
            self.arm_subsets[index, list(subset)] = True
        # cumulative rows for inverse-CDF sampling: (N, n, n)
        self._active_cdf = torch.as_tensor(active.cumsum(-1), dtype=torch.float32, device=self.device)
        self._passive_cdf = torch.as_tensor(passive.cumsum(-1), dtype=torch.float32, device=self.device)
        self.multipliers = torch.as_tensor(multiplier, dtype=torch.float32, device=self.device)  # (n_env, N)
        self.arm_state = torch.zeros(self.num_envs, num_arms, dtype=torch.long, device=self.device)
        self.slow_state = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self._arms = torch.arange(num_arms, device=self.device)
        self.num_step_draws = num_arms + 1  # one per arm, the slow chain's
        self.num_reset_draws = num_arms + 1  # each arm's first state, the first slow state

    # ------------------------------------------------------------------ the step, as pure functions
    state_names = ("arm_state", "slow_state")

    def _params(self) -> dict:
        return {
            "arm_subsets": self.arm_subsets,
            "active_cdf": self._active_cdf,
            "passive_cdf": self._passive_cdf,
            "multipliers": self.multipliers,
            "arms": self._arms,
            "arm_states": self.arm_states,
            "switch_prob": self.switch_prob,
            "num_slow_states": self.num_slow_states,
        }

    @staticmethod
    def _transition(params, state, actions, draws):
        """Steps 1–3 of the dynamics; ``draws`` rows: one per arm, the slow chain."""
        arm_state, slow = state  # (num_envs, N), (num_envs,)
        num_arms = arm_state.shape[1]
        active = params["arm_subsets"][actions]  # (num_envs, N)
        rewards = (arm_state.float() * params["multipliers"][slow] * active).sum(dim=1)
        arms = params["arms"]
        cdf = torch.where(
            active[..., None], params["active_cdf"][arms, arm_state], params["passive_cdf"][arms, arm_state]
        )
        uniforms = draws[:num_arms].T[..., None]  # (num_envs, N, 1)
        arm_state = (
            (uniforms > cdf).sum(-1).clamp_max(params["arm_states"] - 1)
        )  # inverse CDF: first level with cdf >= u
        slow = switch_slow_state(slow, draws[num_arms], params["switch_prob"], params["num_slow_states"])
        return (arm_state, slow), rewards, torch.zeros_like(rewards, dtype=torch.bool), {}

    @staticmethod
    def _reset_state(params, state, mask, draws):
        """Arms uniform over their states, y uniform; ``draws`` rows: one per arm, then y's."""
        arm_state, slow = state
        num_arms = arm_state.shape[1]
        first_arms = uniform_levels(draws[:num_arms].T, params["arm_states"])
        first_slow = uniform_levels(draws[num_arms], params["num_slow_states"])
        return torch.where(mask[:, None], first_arms, arm_state), torch.where(mask, first_slow, slow)

    @staticmethod
    def _observe_state(params, state):
        arm_state, slow = state
        return torch.cat([arm_state, slow[:, None]], dim=1)

    # ------------------------------------------------------------------ exact model
    def exact_model(self, device: str | torch.device = "cpu"):
        """The exact MDP: per action (arm subset) ``P^a = (⊗_i P_i^{a_i}) ⊗ Z``; s = x * n_env + y."""
        import scipy.sparse as sp

        subsets = self.arm_subsets.cpu().numpy()
        arm_levels = np.stack(
            np.unravel_index(np.arange(self.arm_states**self.num_arms), (self.arm_states,) * self.num_arms), axis=1
        )
        fast_transitions, rewards = [], []
        for subset in subsets:
            matrix = sp.identity(1, format="csr")
            for i in range(self.num_arms):
                matrix = sp.kron(
                    matrix, sp.csr_matrix(self._active_np[i] if subset[i] else self._passive_np[i]), format="csr"
                )
            fast_transitions.append(matrix)
            payoff = (arm_levels[:, None, :] * self._multiplier_np[None, :, :] * subset).sum(-1)  # (n_fast, n_env)
            rewards.append(payoff.reshape(-1))
        return self.factored_model(fast_transitions, rewards, device, f"N={self.num_arms}, M={self.active_arms}")

    def state_index(self, observations: torch.Tensor) -> torch.Tensor:
        weights = self.arm_states ** torch.arange(self.num_arms - 1, -1, -1, device=observations.device)
        return (observations[:, : self.num_arms] * weights).sum(dim=1) * self.num_slow_states + observations[
            :, self.num_arms
        ]
