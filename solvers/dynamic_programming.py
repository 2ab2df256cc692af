"""Exact dynamic programming on a :class:`FiniteMDP`, in torch (CPU or CUDA).

* ``value_iteration`` – Bellman updates with the span-seminorm stopping rule (Puterman,
  *Markov Decision Processes*, Thm 6.6.6): once sp(v_{n+1} − v_n) < ε(1−γ)/γ the greedy policy
  is ε-optimal; the returned values are the midpoint of Puterman's bounds
  v_{n+1} + γ/(1−γ)·[min Δ, max Δ].
* ``policy_iteration`` – exact evaluation (linear solve) and greedy improvement.
* ``modified_policy_iteration`` – m partial evaluation sweeps per improvement, same stopping rule.
* ``inexact_policy_iteration`` – policy iteration whose evaluation is a BiCGSTAB solve stopped
  at a fraction of the current Bellman residual (inexact PI, Gargiani et al., "Dynamic programming
  through the lens of semismooth Newton-type methods", IEEE L-CSS 2022), same stopping rule. On
  slowly mixing chains at γ near 1 it needs far fewer operator applications than VI or MPI; where
  VI already converges fast and P_π is far from normal (near-deterministic moves), Krylov steps
  gain little and VI can be quicker.
* ``backward_induction`` – finite horizon, any terminal values, batched over value columns.
* ``policy_evaluation`` – V^π = (I − γ P_π)^{-1} r_π, for regret.

Values may carry a trailing batch axis ``(S, B)``: B MDPs that share transitions but differ in
rewards are solved in one call (e.g. every frozen slow state at once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from ctrlgym.solvers.krylov import bicgstab
from ctrlgym.solvers.mdp import FiniteMDP, PolicyOperators
from ctrlgym.threads import hot_path

__all__ = [
    "SolverResult",
    "value_iteration",
    "policy_iteration",
    "modified_policy_iteration",
    "inexact_policy_iteration",
    "backward_induction",
    "policy_evaluation",
    "greedy_policy",
]


@dataclass
class SolverResult:
    values: torch.Tensor  # (S,)
    policy: torch.Tensor  # (S,) action indices
    iterations: int
    converged: bool
    history: list[float] = field(default_factory=list)  # span of successive differences

    def __repr__(self) -> str:  # one line: the tensors' sizes, not their values
        state = "converged" if self.converged else "not converged"
        return (
            f"SolverResult({self.values.numel():,} states, {state} after {self.iterations} iterations, "
            f"values in [{float(self.values.min()):.4g}, {float(self.values.max()):.4g}])"
        )


def greedy_policy(mdp: FiniteMDP, values: torch.Tensor) -> torch.Tensor:
    return mdp.q_values(values).argmax(dim=1)


def _span(difference: torch.Tensor) -> float:
    return float(difference.max() - difference.min())


def _span_bounds(values: torch.Tensor, difference: torch.Tensor, discount: float) -> torch.Tensor:
    factor = discount / (1 - discount)
    return values + factor * 0.5 * (difference.max() + difference.min())


@hot_path
def value_iteration(
    mdp: FiniteMDP, epsilon: float = 1e-4, max_iterations: int = 100_000, initial_values: torch.Tensor | None = None
) -> SolverResult:
    """ε-optimal policy by value iteration with span-seminorm stopping.

    Stops once sp(Tv − v) < ε(1 − γ)/γ and returns the greedy policy d of the last backup's input v:
    Tv + γ/(1−γ)·min(Tv − v) ≤ v^d, v* ≤ Tv + γ/(1−γ)·max(Tv − v) (MacQueen's bounds), so
    v* − v^d ≤ γ/(1−γ)·sp(Tv − v) < ε without one more backup."""
    values = (
        torch.zeros(mdp.num_states, dtype=torch.float64, device=mdp.device)
        if initial_values is None
        else initial_values.clone()
    )
    threshold = epsilon * (1 - mdp.discount) / mdp.discount if mdp.discount > 0 else float("inf")
    history = []
    for iteration in range(1, max_iterations + 1):
        new_values, policy = mdp.q_values(values).max(dim=1)
        difference = new_values - values
        history.append(_span(difference))
        values = new_values
        if history[-1] < threshold:
            return SolverResult(_span_bounds(values, difference, mdp.discount), policy, iteration, True, history)
    return SolverResult(values, greedy_policy(mdp, values), max_iterations, False, history)


def _solve_linear(matrix: sp.csr_matrix, rhs: np.ndarray) -> np.ndarray:
    if matrix.shape[0] <= 4096:
        return np.linalg.solve(matrix.toarray(), rhs)
    return spla.spsolve(matrix.tocsc(), rhs)


@hot_path
def _evaluation_operator(
    discount: float, transition: Callable[[torch.Tensor], torch.Tensor]
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``v -> (I - γ P_π) v``, the linear operator of policy evaluation."""
    return lambda values: values - discount * transition(values)


def policy_evaluation(mdp: FiniteMDP, policy: torch.Tensor, relative_tolerance: float = 1e-10) -> torch.Tensor:
    """V^π of a deterministic stationary policy ``(S,)``: solve (I − γ P_π) V = r_π.

    Up to 4,096 states by a dense LU; larger models by BiCGSTAB on the model's device until the
    residual's max-norm is below ``relative_tolerance`` · (1 − γ) · max(1, max|r_π|); as
    ‖(I − γP_π)⁻¹‖_∞ = 1/(1 − γ), V is then within ``relative_tolerance`` · max(1, max|r_π|) of
    the exact values. A sparse LU is the fallback should the iteration stall.
    """
    if mdp.num_states > 4096:
        reward = mdp.rewards[torch.arange(mdp.num_states, device=mdp.device), policy.to(mdp.device)]
        transition = mdp.policy_operator(policy)
        tolerance = relative_tolerance * (1 - mdp.discount) * max(float(reward.abs().max()), 1.0)
        values, residual, _ = bicgstab(
            _evaluation_operator(mdp.discount, transition),
            reward,
            reward / (1 - mdp.discount),
            tolerance,
            20_000,
        )
        if residual <= tolerance:
            return values
    matrix, rewards = mdp.policy_matrix(policy)
    system = sp.identity(mdp.num_states, format="csr") - mdp.discount * matrix
    return torch.as_tensor(_solve_linear(system, rewards), dtype=torch.float64, device=mdp.device)


def _improve(mdp: FiniteMDP, values: torch.Tensor, policy: torch.Tensor, tolerance: float = 1e-12) -> torch.Tensor:
    """Greedy improvement that keeps the current action on ties (so policy iteration terminates)."""
    q = mdp.q_values(values)
    best = q.argmax(dim=1)
    current = q.gather(1, policy[:, None])[:, 0]
    return torch.where(q.max(dim=1).values > current + tolerance, best, policy)


@hot_path
def policy_iteration(mdp: FiniteMDP, max_iterations: int = 1000) -> SolverResult:
    """Optimal policy and its exact values (Howard's policy iteration)."""
    policy = mdp.rewards.argmax(dim=1)
    for iteration in range(1, max_iterations + 1):
        values = policy_evaluation(mdp, policy)
        new_policy = _improve(mdp, values, policy)
        if torch.equal(new_policy, policy):
            return SolverResult(values, policy, iteration, True)
        policy = new_policy
    return SolverResult(values, policy, max_iterations, False)


@hot_path
def modified_policy_iteration(
    mdp: FiniteMDP, epsilon: float = 1e-4, sweeps: int = 20, max_iterations: int = 100_000
) -> SolverResult:
    """Modified policy iteration (Puterman §6.5): greedy step, then ``sweeps`` evaluation sweeps of T_π."""
    values = torch.zeros(mdp.num_states, dtype=torch.float64, device=mdp.device)
    threshold = epsilon * (1 - mdp.discount) / mdp.discount
    rows = torch.arange(mdp.num_states, device=mdp.device)
    history = []
    operators = PolicyOperators(mdp)
    for iteration in range(1, max_iterations + 1):
        q = mdp.q_values(values)
        new_values, policy = q.max(dim=1)
        difference = new_values - values
        history.append(_span(difference))
        if history[-1] < threshold:
            return SolverResult(_span_bounds(new_values, difference, mdp.discount), policy, iteration, True, history)
        values = new_values
        reward, transition = mdp.rewards[rows, policy], operators(policy)
        for _ in range(sweeps):
            values = reward + mdp.discount * transition(values)
    return SolverResult(values, policy, max_iterations, False, history)


@hot_path
def inexact_policy_iteration(
    mdp: FiniteMDP,
    epsilon: float = 1e-4,
    forcing: float = 0.1,
    max_iterations: int = 1000,
    max_products: int = 2000,
    fallback_sweeps: int = 20,
) -> SolverResult:
    """ε-optimal policy by inexact policy iteration.

    Each step takes the greedy policy π of the current values, then solves (I − γP_π)v = r_π by
    BiCGSTAB from Tv until the residual's max-norm is below ``forcing`` · sp(Tv − v) (and never
    asks for less than a quarter of the stopping threshold). The span rule on Tv − v certifies
    the result whatever the inner accuracy, so a loose solve costs iterations, never correctness.
    """
    values = torch.zeros(mdp.num_states, dtype=torch.float64, device=mdp.device)
    threshold = epsilon * (1 - mdp.discount) / mdp.discount if mdp.discount > 0 else float("inf")
    rows = torch.arange(mdp.num_states, device=mdp.device)
    history = []
    operators = PolicyOperators(mdp)  # late policies differ in few states: their rows patched, not selected again
    for iteration in range(1, max_iterations + 1):
        new_values, policy = mdp.q_values(values).max(dim=1)
        difference = new_values - values
        history.append(_span(difference))
        if history[-1] < threshold:
            return SolverResult(_span_bounds(new_values, difference, mdp.discount), policy, iteration, True, history)
        transition, reward = operators(policy), mdp.rewards[rows, policy]
        tolerance = max(forcing * history[-1], 0.25 * threshold)
        values, residual, _ = bicgstab(
            _evaluation_operator(mdp.discount, transition),
            reward,
            new_values,
            tolerance,
            max_products,
            stall_rate=mdp.discount,
        )
        for _ in range(
            fallback_sweeps if residual > tolerance else 0
        ):  # Krylov fell behind plain sweeps: a few of them (MPI)
            swept = reward + mdp.discount * transition(values)
            residual, values = float((swept - values).abs().max()), swept
            if residual <= tolerance:
                break
    return SolverResult(values, greedy_policy(mdp, values), max_iterations, False, history)


@hot_path
def backward_induction(
    mdp: FiniteMDP, horizon: int, terminal_values: torch.Tensor | None = None, rewards: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Finite-horizon DP: returns (values at t=0, policies ``(horizon, S[, B])``).

    ``terminal_values`` ``(S,)`` or ``(S, B)``; ``rewards`` overrides ``mdp.rewards`` and may be
    ``(S, A, B)`` to solve B problems that share transitions in one pass.
    """
    rewards = mdp.rewards if rewards is None else rewards
    batch = (
        rewards.shape[2:] if rewards.dim() == 3 else (terminal_values.shape[1:] if terminal_values is not None else ())
    )
    values = (
        torch.zeros((mdp.num_states, *batch), dtype=torch.float64, device=mdp.device)
        if terminal_values is None
        else terminal_values
    )
    if rewards.dim() == 2 and batch:
        rewards = rewards[..., None]
    policies = []
    for _ in range(horizon):
        q = rewards + mdp.discount * mdp.expected_next(values)  # (S, A[, B])
        values, policy = q.max(dim=1)
        policies.append(policy)
    return values, torch.stack(policies[::-1])
