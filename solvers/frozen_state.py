"""Frozen-state approximate dynamic programming (Wang & Jiang, arXiv 2301.00922) and the
"omit the slow state" heuristic, on a :class:`FiniteMDP` with a fast/slow factorisation.

State s = (x, y), x fast, y slow, the slow chain Z independent of x and of the action, so that
P^a[(x,y), (x',y')] = F^a_y[x, x'] · Z[y, y'] (checked). Our reading of the method:

* **Lower level** — with y frozen for T fast steps, a T-step finite-horizon MDP on x:
  U_T = W,   U_t(x, y) = max_a r(x, y, a) + γ Σ_x' F^a_y[x, x'] U_{t+1}(x', y).
* **Upper level** — value iteration on the slow timescale (discount γ^T): the terminal value
  is W_k(x, y) = Σ_y' (Z^T)[y, y'] V_k(x, y') and V_{k+1} = U_0. It stops by the span rule
  sp(V_{k+1} − V_k) < ε(1−γ^T)/γ^T, so it needs about 1/(1−γ^T) upper iterations; each lower
  sweep moves only x (no slow branching), and Z^T is applied once per upper iteration. The
  returned values are the midpoint of Puterman's span bounds, as in ``value_iteration``.
* **Upper-level MPI** (``evaluation_sweeps`` > 0, our extension): the upper level solved by
  modified policy iteration, evaluating the lower-level plan with only its planned actions' rows.
* **Linear features** — ``linear_frozen_state_value_iteration`` fits V(·, y) ≈ φ(x)·θ_y by least
  squares after each upper backup (projected value iteration on the slow timescale).
* **Policies** — ``FrozenStatePolicy`` (the paper's): read y at the start of each period and act
  by the lower-level plan U_t for t = 0..T−1 with y frozen; ``first_step_policy``: the t = 0
  action with the current y at every step (stationary, so its regret is computed exactly).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ctrlgym.solvers.dynamic_programming import value_iteration
from ctrlgym.solvers.mdp import FiniteMDP, to_scipy, to_torch_csr
from ctrlgym.threads import hot_path

__all__ = [
    "FastSlowStructure",
    "FrozenStateResult",
    "frozen_state_value_iteration",
    "LinearFrozenStateResult",
    "linear_frozen_state_value_iteration",
    "omit_slow_state",
    "TabularPolicy",
    "FrozenStatePolicy",
]


class FastSlowStructure:
    """The fast transitions F^a_y ``(n_fast, n_fast)``, rewards ``(n_fast, n_slow, A)`` and Z of a model."""

    def __init__(self, mdp: FiniteMDP, tolerance: float = 1e-9) -> None:
        if mdp.num_slow_states < 2 or mdp.slow_transition is None:
            raise ValueError(
                f"{mdp.name}: frozen-state ADP needs a fast/slow factorisation (num_slow_states > 1 and slow_transition)"
            )
        self.mdp = mdp
        n_fast, n_slow = mdp.num_fast_states, mdp.num_slow_states
        self.num_fast, self.num_slow = n_fast, n_slow
        self.slow = mdp.slow_transition.double()
        self.rewards = mdp.rewards.reshape(n_fast, n_slow, mdp.num_actions)  # (x, y, a)
        if mdp.fast_transitions is not None:  # factors declared (and checked) by the model itself
            self.fast: list[list[torch.Tensor]] = [[f] for f in mdp.fast_transitions]
            self.shared = True
            return
        slow_np = self.slow.cpu().numpy()
        aggregate = sp.kron(sp.identity(n_fast), np.ones((n_slow, 1)), format="csr")  # (S, n_fast): sum over y'
        self.fast = []  # [action][y] -> (n_fast, n_fast), shared when F does not depend on y
        self.shared = True
        for a, full in enumerate(mdp.scipy_transitions()):
            marginal = (full @ aggregate).tocsr()  # (S, n_fast): rows (x, y)
            per_slow = [marginal[y::n_slow] for y in range(n_slow)]
            # check the factorisation on every row: P[(x,y),(x',y')] = F_y[x,x'] * Z[y,y']
            product = self._factor_product(per_slow, slow_np)
            if abs(product - full).max() > tolerance:
                raise ValueError(
                    f"{mdp.name}: P[{a}] does not factor into fast transitions times an action-independent slow chain"
                )
            shared = all((per_slow[y] - per_slow[0]).count_nonzero() == 0 for y in range(1, n_slow))
            self.shared &= shared
            self.fast.append([to_torch_csr(per_slow[y], mdp.device) for y in range(1 if shared else n_slow)])

    def _factor_product(self, per_slow: list[sp.csr_matrix], slow_np: np.ndarray) -> sp.csr_matrix:
        """Rebuild P from F_y and Z, rows ordered s = x * n_slow + y."""
        n_fast, n_slow = self.num_fast, self.num_slow
        blocks = [sp.kron(per_slow[y], slow_np[[y]], format="csr") for y in range(n_slow)]  # rows x, cols (x', y')
        order = np.argsort(np.concatenate([np.arange(n_fast) * n_slow + y for y in range(n_slow)]), kind="stable")
        return sp.vstack(blocks, format="csr")[order]

    def expected_fast(self, values: torch.Tensor) -> torch.Tensor:
        """``E[U(x', y) | x, y, a]`` with y frozen: values ``(n_fast, n_slow)`` -> ``(n_fast, n_slow, A)``."""
        if self.mdp.fast_transitions is not None:  # every action in one sparse product
            stacked = self.mdp.stacked_transitions() @ values  # (A · n_fast, n_slow)
            return stacked.reshape(self.mdp.num_actions, self.num_fast, self.num_slow).permute(1, 2, 0)
        columns = []
        for per_slow in self.fast:
            if len(per_slow) == 1:
                columns.append(per_slow[0] @ values)  # one sparse-dense product for every y
            else:
                columns.append(torch.stack([per_slow[y] @ values[:, y] for y in range(self.num_slow)], dim=1))
        return torch.stack(columns, dim=2)

    def planned_fast(self, policy: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """``U ↦ E[U(x', y) | x, y, a = policy(x, y)]`` with y frozen, ``(n_fast, n_slow)`` both ways.

        For a factored model only the planned action's rows of F are read
        (``FiniteMDP.chosen_rows``), a factor A cheaper than ``expected_fast``; otherwise the
        planned action is gathered from the full backup."""
        if self.mdp.fast_transitions is None:
            return lambda values: self.expected_fast(values).gather(2, policy[..., None])[..., 0]
        matrix = self.mdp.chosen_rows(policy)
        return lambda values: (matrix @ values.reshape(-1)).reshape(self.num_fast, self.num_slow)


@dataclass
class FrozenStateResult:
    values: torch.Tensor  # (S,) upper-level values V(x, y)
    lower_policies: torch.Tensor  # (T, n_fast, n_slow) the lower-level plan
    first_step_policy: torch.Tensor  # (S,) the t = 0 action, a stationary policy
    upper_iterations: int
    lower_sweeps: int
    seconds: float
    converged: bool

    def __repr__(self) -> str:  # one line: sizes and convergence, not the tensors
        state = "converged" if self.converged else "not converged"
        period = self.lower_policies.shape[0]
        return (
            f"FrozenStateResult({self.values.numel():,} states, period {period}, {state} after "
            f"{self.upper_iterations} upper iterations, {self.seconds:.3g} s)"
        )


@hot_path
def frozen_state_value_iteration(
    mdp: FiniteMDP,
    period: int,
    epsilon: float = 1e-4,
    max_upper_iterations: int = 100_000,
    structure: FastSlowStructure | None = None,
    evaluation_sweeps: int = 0,
) -> FrozenStateResult:
    """Frozen-state value iteration with freezing period ``period`` (T); see the module docstring.

    ``evaluation_sweeps`` m > 0 solves the upper level by modified policy iteration instead
    (Puterman §6.5): after each upper backup, m upper-level evaluations with the lower-level plan
    held, each T backups that read only the planned action (``FastSlowStructure.planned_fast``).
    Same fixed point and stopping rule, so the same regret; far less compute when actions are many.
    """
    if period < 1:
        raise ValueError(f"period must be >= 1, got {period}")
    started = time.perf_counter()
    structure = structure or FastSlowStructure(mdp)
    gamma, gamma_period = mdp.discount, mdp.discount**period
    slow_period = torch.linalg.matrix_power(structure.slow, period)  # Z^T
    values = torch.zeros(structure.num_fast, structure.num_slow, dtype=torch.float64, device=mdp.device)
    threshold = epsilon * (1 - gamma_period) / gamma_period
    converged, policies = False, None
    for iteration in range(1, max_upper_iterations + 1):  # noqa: B007 (the count is returned)
        upper = values @ slow_period.T  # W(x, y) = Σ_y' Z^T[y, y'] V(x, y')
        policies = []
        for _ in range(period):
            q = structure.rewards + gamma * structure.expected_fast(upper)  # (x, y, a)
            upper, policy = q.max(dim=2)
            policies.append(policy)
        difference = upper - values
        values = upper
        if float(difference.max() - difference.min()) < threshold:
            converged = True
            # Puterman's span bounds on the slow timescale: move to the midpoint (discount γ^T)
            values = values + gamma_period / (1 - gamma_period) * 0.5 * (difference.max() + difference.min())
            break
        if evaluation_sweeps:
            plan = [
                (structure.rewards.gather(2, policy[..., None])[..., 0], structure.planned_fast(policy))
                for policy in policies
            ]
            for _ in range(evaluation_sweeps):
                upper = values @ slow_period.T
                for reward, planned in plan:  # the backward pass's order: last step of the period first
                    upper = reward + gamma * planned(upper)
                values = upper
    lower = torch.stack(policies[::-1])  # (T, n_fast, n_slow), index 0 = first step of the period
    return FrozenStateResult(
        values.reshape(-1),
        lower,
        lower[0].reshape(-1),
        iteration,
        iteration * period,
        time.perf_counter() - started,
        converged,
    )


@hot_path
def omit_slow_state(mdp: FiniteMDP, epsilon: float = 1e-4, structure: FastSlowStructure | None = None):
    """The heuristic that drops y: average rewards and fast transitions over the slow chain's
    stationary distribution, solve the fast-only MDP, and act on x alone. Returns (policy ``(S,)``, result)."""
    structure = structure or FastSlowStructure(mdp)
    eigenvalues, eigenvectors = np.linalg.eig(structure.slow.cpu().numpy().T)
    stationary = np.real(eigenvectors[:, np.argmin(np.abs(eigenvalues - 1))])
    stationary = stationary / stationary.sum()
    weights = torch.as_tensor(stationary, device=mdp.device)
    rewards = (structure.rewards * weights[None, :, None]).sum(dim=1)  # (n_fast, A)
    transitions = []
    for per_slow in structure.fast:
        matrices = [to_scipy(m) for m in per_slow]
        transitions.append(
            sum(w * m for w, m in zip(stationary, matrices, strict=False)) if len(matrices) > 1 else matrices[0]
        )
    reduced = FiniteMDP.from_matrices(
        transitions, rewards, mdp.discount, device=mdp.device, name=f"{mdp.name} without slow state"
    )
    result = value_iteration(reduced, epsilon=epsilon)
    return result.policy.repeat_interleave(mdp.num_slow_states), result


class TabularPolicy:
    """A policy over model states ``(S,)`` acting on env observations through ``state_index``."""

    def __init__(self, policy: torch.Tensor, state_index) -> None:
        self.policy, self.state_index = policy, state_index

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        return self.policy.to(observations.device)[self.state_index(observations)]


class FrozenStatePolicy:
    """The frozen-state policy: the slow state is read every ``period`` steps and frozen between.

    Stateful: it counts its own calls, so use one instance per batch of envs that start together
    (as ``ctrlgym evaluate`` runs them). ``num_slow_states`` and ``state_index`` map observations
    to (x, y) with s = x * n_slow + y.
    """

    def __init__(self, lower_policies: torch.Tensor, state_index, num_slow_states: int) -> None:
        self.lower_policies, self.state_index, self.num_slow_states = lower_policies, state_index, num_slow_states
        self.period = lower_policies.shape[0]
        self.clock = 0
        self.frozen_slow: torch.Tensor | None = None

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        state = self.state_index(observations)
        fast, slow = state // self.num_slow_states, state % self.num_slow_states
        if self.clock % self.period == 0 or self.frozen_slow is None:
            self.frozen_slow = slow
        plan = self.lower_policies[self.clock % self.period].to(observations.device)
        self.clock += 1
        return plan[fast, self.frozen_slow]


@dataclass
class LinearFrozenStateResult:
    weights: torch.Tensor  # (d, n_slow): V(x, y) ≈ φ(x) · θ_y
    values: torch.Tensor  # (S,) the fitted values
    first_step_policy: torch.Tensor  # (S,)
    upper_iterations: int
    seconds: float
    converged: bool

    def __repr__(self) -> str:  # one line: sizes and convergence, not the tensors
        state = "converged" if self.converged else "not converged"
        return (
            f"LinearFrozenStateResult({self.values.numel():,} states, {tuple(self.weights.shape)} weights, "
            f"{state} after {self.upper_iterations} upper iterations, {self.seconds:.3g} s)"
        )


@hot_path
def linear_frozen_state_value_iteration(
    mdp: FiniteMDP,
    period: int,
    features: torch.Tensor,
    epsilon: float = 1e-4,
    max_upper_iterations: int = 1000,
    ridge: float = 1e-8,
    structure: FastSlowStructure | None = None,
) -> LinearFrozenStateResult:
    """The linear-feature variant: after each upper-level backup, V(·, y) is replaced by its
    least-squares fit φ(x)·θ_y on the fast-state ``features`` ``(n_fast, d)`` (one θ per slow
    state), so the upper level carries ``d × n_slow`` numbers instead of a table. Projected value
    iteration need not converge; it stops when the fitted values change by less than the span
    threshold, or after ``max_upper_iterations``."""
    started = time.perf_counter()
    structure = structure or FastSlowStructure(mdp)
    phi = features.to(device=mdp.device, dtype=torch.float64)
    if phi.shape[0] != structure.num_fast:
        raise ValueError(f"features must have one row per fast state ({structure.num_fast}), got {tuple(phi.shape)}")
    gram = phi.T @ phi + ridge * torch.eye(phi.shape[1], dtype=torch.float64, device=mdp.device)
    projector = torch.linalg.solve(gram, phi.T)  # (d, n_fast): θ = (ΦᵀΦ)^-1 Φᵀ U
    gamma, gamma_period = mdp.discount, mdp.discount**period
    slow_period = torch.linalg.matrix_power(structure.slow, period)
    weights = torch.zeros(phi.shape[1], structure.num_slow, dtype=torch.float64, device=mdp.device)
    fitted = phi @ weights
    threshold = epsilon * (1 - gamma_period) / gamma_period
    converged = False
    for iteration in range(1, max_upper_iterations + 1):  # noqa: B007 (the count is returned)
        upper = fitted @ slow_period.T
        for _ in range(period):
            upper = (structure.rewards + gamma * structure.expected_fast(upper)).max(dim=2).values
        weights = projector @ upper
        new_fitted = phi @ weights
        difference = new_fitted - fitted
        fitted = new_fitted
        if float(difference.max() - difference.min()) < threshold:
            converged = True
            break
    # the first-step action under the fitted continuation (a stationary policy)
    upper = fitted @ slow_period.T
    for _ in range(period):
        upper, first_policy = (structure.rewards + gamma * structure.expected_fast(upper)).max(dim=2)
    return LinearFrozenStateResult(
        weights, fitted.reshape(-1), first_policy.reshape(-1), iteration, time.perf_counter() - started, converged
    )
