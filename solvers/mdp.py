"""A finite MDP held once and read by every solver (and built from each env's own parameters).

Transitions are one ``(S, S)`` matrix per action, stored as a torch sparse CSR tensor (or dense
for small models); rewards are ``(S, A)``. States may factor into a fast part x and a slow part
y, indexed ``s = x * num_slow_states + y``, with the slow chain's own transition matrix.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["FiniteMDP", "PolicyOperators", "ROW_SUM_TOLERANCE"]

ROW_SUM_TOLERANCE = 1e-6  # |Σ_s' P(s'|s,a) − 1| allowed per row
#: up to this many actions, a factored model applies P_π as one sparse product over every action
#: followed by a gather (the product over several columns of V Zᵀ streams the matrix once, so it
#: costs about what P_π's rows alone cost, and nothing has to be built per policy)
GATHER_MAX_ACTIONS = 4


def index_dtype(*sizes: int) -> torch.dtype:
    """int32 for CSR indices where every size fits (torch's sparse products take int32 indices as they
    are; int64 ones cost a conversion at every product: 1.8x slower on a 100k-state matrix), else int64."""
    return torch.int32 if max(sizes) < 2**31 - 1 else torch.int64


def to_torch_csr(matrix, device: torch.device) -> torch.Tensor:
    """A scipy (or dense) matrix as a torch sparse CSR tensor of float64 values, with int32 indices where they fit."""
    matrix = sp.csr_matrix(matrix, dtype=np.float64)
    indices = index_dtype(matrix.nnz, *matrix.shape)
    with warnings.catch_warnings():  # torch marks sparse CSR as beta; the matmul we use is stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.as_tensor(matrix.indptr, dtype=indices),
            torch.as_tensor(matrix.indices, dtype=indices),
            torch.as_tensor(matrix.data, dtype=torch.float64),
            size=matrix.shape,
            check_invariants=False,  # scipy built it: indices are sorted and in range
        ).to(device)


def stack_rows(matrices: list[sp.csr_matrix]) -> sp.csr_matrix:
    """The CSR matrices' rows one below the other (``scipy.sparse.vstack`` without its detour
    through COO: 10x faster on 100k-state matrices)."""
    offsets = np.cumsum([0] + [m.nnz for m in matrices])
    indptr = np.concatenate(
        [matrices[0].indptr[:1]] + [m.indptr[1:] + o for m, o in zip(matrices, offsets, strict=False)]
    )
    return sp.csr_matrix(
        (np.concatenate([m.data for m in matrices]), np.concatenate([m.indices for m in matrices]), indptr),
        shape=(sum(m.shape[0] for m in matrices), matrices[0].shape[1]),
    )


def csr_rows(matrix: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Rows ``start:stop`` of a torch sparse CSR matrix, sharing its column indices and values."""
    crow = matrix.crow_indices()[start : stop + 1]
    first, last = int(crow[0]), int(crow[-1])
    with warnings.catch_warnings():  # torch marks sparse CSR as beta; the matmul we use is stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            crow - first,
            matrix.col_indices()[first:last],
            matrix.values()[first:last],
            size=(stop - start, matrix.shape[1]),
            check_invariants=False,
        )


def _validate_stochastic(matrices: list[sp.csr_matrix], size: int, name: str, label: str) -> None:
    """Square ``size`` matrices with finite, non-negative rows summing to 1, or ValueError naming the row."""
    for a, matrix in enumerate(matrices):
        if matrix.shape != (size, size):
            raise ValueError(f"{name}: {label}[{a}] has shape {matrix.shape}, expected ({size}, {size})")
        if not np.isfinite(matrix.data).all():
            s = int(np.searchsorted(matrix.indptr, np.flatnonzero(~np.isfinite(matrix.data))[0], side="right") - 1)
            raise ValueError(f"{name}: {label}[{a}] row of state {s} holds NaN or inf")
        if (matrix.data < 0).any():
            s = int(np.searchsorted(matrix.indptr, np.flatnonzero(matrix.data < 0)[0], side="right") - 1)
            raise ValueError(f"{name}: {label}[{a}] row of state {s} has a negative probability")
        sums = np.asarray(matrix.sum(axis=1)).ravel()
        bad = np.flatnonzero(np.abs(sums - 1) > ROW_SUM_TOLERANCE)
        if bad.size:
            raise ValueError(
                f"{name}: {label}[{a}] row of state {bad[0]} sums to {sums[bad[0]]:.9g}, not 1 (tolerance {ROW_SUM_TOLERANCE})"
            )


@dataclass
class FiniteMDP:
    """``rewards``: ``(S, A)``; transitions per action, either full ``(S, S)`` matrices or, for a
    fast/slow model whose fast dynamics do not depend on y, the factors ``F^a`` with
    ``P^a = F^a ⊗ Z`` (then the full matrices are built only on request, by ``transition_matrix``).

    ``num_slow_states`` > 1 declares the factorisation s = x * num_slow_states + y and
    ``slow_transition`` the ``(n_slow, n_slow)`` matrix Z of the slow chain. Built through
    :meth:`from_matrices`, which validates.
    """

    transitions: list[torch.Tensor] | None
    rewards: torch.Tensor
    discount: float
    num_slow_states: int = 1
    slow_transition: torch.Tensor | None = None
    name: str = "mdp"
    #: per action ``(n_fast, n_fast)`` when P^a = F^a ⊗ Z: the Bellman backup then contracts
    #: F^a (V Zᵀ) instead of multiplying by the full P^a.
    fast_transitions: list[torch.Tensor] | None = None
    _stacked: torch.Tensor | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def num_states(self) -> int:
        return self.rewards.shape[0]

    @property
    def num_actions(self) -> int:
        return self.rewards.shape[1]

    @property
    def num_fast_states(self) -> int:
        return self.num_states // self.num_slow_states

    @property
    def device(self) -> torch.device:
        return self.rewards.device

    @classmethod
    def from_matrices(
        cls,
        transitions: Sequence | np.ndarray | None,
        rewards: np.ndarray | torch.Tensor,
        discount: float,
        *,
        num_slow_states: int = 1,
        slow_transition: np.ndarray | None = None,
        device: str | torch.device = "cpu",
        name: str = "mdp",
        fast_transitions: Sequence | None = None,
    ) -> FiniteMDP:
        """Build from pymdptoolbox-style input: ``P`` as ``A`` matrices ``(S, S)`` (numpy, scipy
        sparse or an ``(A, S, S)`` array) and ``R`` as ``(S, A)``; or, with ``transitions=None``,
        from ``fast_transitions`` (``A`` matrices ``(n_fast, n_fast)``) and ``slow_transition``.
        Validated: ``ValueError`` naming the action and state of a bad row."""
        device = torch.device(device)
        if not 0 <= discount < 1:
            raise ValueError(f"{name}: discount must be in [0, 1), got {discount}")
        if transitions is None and fast_transitions is None:
            raise ValueError(f"{name}: give transitions, or fast_transitions with slow_transition")
        rewards = np.asarray(rewards.cpu() if isinstance(rewards, torch.Tensor) else rewards, dtype=np.float64)
        if rewards.ndim != 2:
            raise ValueError(f"{name}: rewards must have shape (S, A), got {rewards.shape}")
        num_states, num_actions = rewards.shape
        if not np.isfinite(rewards).all():
            s, a = np.argwhere(~np.isfinite(rewards))[0]
            raise ValueError(f"{name}: reward of state {s}, action {a} is not finite ({rewards[s, a]})")
        if num_states % num_slow_states:
            raise ValueError(f"{name}: {num_states} states do not factor into {num_slow_states} slow states")
        slow, slow_np = None, None
        if slow_transition is not None:
            slow_np = np.asarray(slow_transition, dtype=np.float64)
            if (
                slow_np.shape != (num_slow_states, num_slow_states)
                or np.abs(slow_np.sum(1) - 1).max() > ROW_SUM_TOLERANCE
            ):
                raise ValueError(
                    f"{name}: slow_transition must be a ({num_slow_states}, {num_slow_states}) stochastic matrix"
                )
            slow = torch.as_tensor(slow_np, device=device)
        tensors = None
        if transitions is not None:
            matrices = [sp.csr_matrix(p, dtype=np.float64) for p in transitions]
            if len(matrices) != num_actions:
                raise ValueError(
                    f"{name}: rewards must have shape (S, A) = ({matrices[0].shape[0] if matrices else 0}, {len(matrices)}), got {rewards.shape}"
                )
            _validate_stochastic(matrices, num_states, name, "P")
            if num_states <= 512:
                tensors = [torch.as_tensor(m.toarray(), device=device) for m in matrices]
            else:  # one stacked (A · S, S) matrix for the Bellman backup; each P^a a view of its rows
                stacked = to_torch_csr(stack_rows(matrices), device)
                tensors = [csr_rows(stacked, a * num_states, (a + 1) * num_states) for a in range(num_actions)]
        factors = None
        if fast_transitions is not None:
            if slow_np is None:
                raise ValueError(f"{name}: fast_transitions need slow_transition")
            fast = [sp.csr_matrix(f, dtype=np.float64) for f in fast_transitions]
            if len(fast) != num_actions:
                raise ValueError(f"{name}: {len(fast)} fast_transitions for {num_actions} actions")
            _validate_stochastic(fast, num_states // num_slow_states, name, "F")
            if transitions is not None:
                for a, (f, full) in enumerate(zip(fast, matrices, strict=False)):
                    if abs(sp.kron(f, slow_np, format="csr") - full).max() > ROW_SUM_TOLERANCE:
                        raise ValueError(f"{name}: fast_transitions[{a}] ⊗ slow_transition does not equal P[{a}]")
            factors = [to_torch_csr(f, device) for f in fast]
        mdp = cls(
            tensors, torch.as_tensor(rewards, device=device), float(discount), num_slow_states, slow, name, factors
        )
        if transitions is not None and fast_transitions is None and num_states > 512:
            mdp._stacked = stacked
        return mdp

    def scipy_transitions(self) -> list[sp.csr_matrix]:
        """The per-action transition matrices as scipy CSR (host memory; built from factors if needed)."""
        if self.transitions is not None:
            return [to_scipy(p) for p in self.transitions]
        assert self.slow_transition is not None and self.fast_transitions is not None  # a factored model
        slow = self.slow_transition.cpu().numpy()
        return [sp.kron(to_scipy(f), slow, format="csr") for f in self.fast_transitions]

    def transition_matrix(self, action: int) -> torch.Tensor:
        """P^action as a torch matrix on the model's device (sparse CSR, or dense for small models)."""
        if self.transitions is not None:
            return self.transitions[action]
        return to_torch_csr(self.scipy_transitions()[action], self.device)

    def stacked_transitions(self) -> torch.Tensor:
        """Every action's transition rows stacked, ``(A · n, n)`` sparse CSR (built once): the fast
        factors F^a for a factored model (n = n_fast), else the full P^a (n = S)."""
        if self._stacked is None:
            matrices = self.fast_transitions if self.fast_transitions is not None else self.transitions
            assert matrices is not None  # a model holds factors or matrices
            self._stacked = to_torch_csr(stack_rows([to_scipy(m) for m in matrices]), self.device)
        return self._stacked

    def chosen_rows(self, policy: torch.Tensor) -> torch.Tensor:
        """The chosen action's transition rows, ``(S, S)`` sparse CSR: P_π itself, or for a factored
        model the rows F^{π(x,y)}[x, ·] laid out over columns (x', y), to be applied to V Zᵀ (or,
        with y frozen, to U itself)."""
        slow = self.num_slow_states if self.fast_transitions is not None else 1
        states = torch.arange(self.num_states, device=self.device)
        rows = policy.reshape(-1).to(self.device) * (self.num_states // slow) + states // slow  # row in the stack
        return _select_rows(self.stacked_transitions(), rows, states % slow if slow > 1 else None, slow)

    def policy_operator(self, policy: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """``v ↦ P_π v`` for a deterministic policy ``(S,)``, touching only the chosen action's rows.

        For a factored model, row (x, y) of P_π applied to V is Σ_x' F^{π(x,y)}[x, x'] W[x', y] with
        W = V Zᵀ, so one sparse matrix over (x, y) × (x', y) of nnz(F rows) · n_slow entries serves
        (``chosen_rows``), a factor A cheaper than the full backup ``expected_next``.
        """
        if self.fast_transitions is None:
            matrix = self.chosen_rows(policy)
            return lambda values: matrix @ values
        if self.num_actions <= GATHER_MAX_ACTIONS:
            chosen = policy.to(self.device) * self.num_states + torch.arange(
                self.num_states, device=self.device
            )  # into (A · S) rows

            def gather(values: torch.Tensor) -> torch.Tensor:
                expected = self._expected_by_action(values).reshape(self.num_actions * self.num_states, -1)
                return torch.index_select(expected, 0, chosen).reshape(values.shape)

            return gather
        matrix = self.chosen_rows(policy)
        return lambda values: (matrix @ self._slow_mixed(values).reshape(self.num_states, -1)).reshape(values.shape)

    def expected_next(self, values: torch.Tensor) -> torch.Tensor:
        """``E[V(s') | s, a]`` for every (s, a): ``(S, A)``, or ``(S, A, B)`` for values ``(S, B)``."""
        if self.fast_transitions is None and self.num_states <= 512:  # small models hold dense matrices
            assert self.transitions is not None  # a model holds factors or matrices
            return torch.stack([p @ values for p in self.transitions], dim=1)
        return self._expected_by_action(values).movedim(0, 1)

    def _expected_by_action(self, values: torch.Tensor) -> torch.Tensor:
        """``expected_next`` laid out ``(A, S[, B])``: every action's rows in one sparse product."""
        if self.fast_transitions is None:
            return (self.stacked_transitions() @ values).reshape(self.num_actions, self.num_states, *values.shape[1:])
        slow_mixed = self._slow_mixed(values).reshape(self.num_fast_states, -1)
        # every action's F^a in one sparse product: (A · n_fast, n_fast) @ (n_fast, n_slow · B)
        return (self.stacked_transitions() @ slow_mixed).reshape(self.num_actions, self.num_states, *values.shape[1:])

    def _slow_mixed(self, values: torch.Tensor) -> torch.Tensor:
        """W[x', y, b] = Σ_y' Z[y, y'] V(x', y', b): ``(n_fast, n_slow, B)`` for values ``(S[, B])``."""
        grid = values.reshape(self.num_fast_states, self.num_slow_states, -1)  # (x', y', B)
        return torch.einsum("zy,xyb->xzb", self.slow_transition, grid)

    def q_values(self, values: torch.Tensor) -> torch.Tensor:
        """Bellman backup ``Q(s, a) = r(s, a) + γ E[V(s') | s, a]``, ``(S, A)``."""
        return self.rewards + self.discount * self.expected_next(values)

    def policy_matrix(self, policy: torch.Tensor) -> tuple[sp.csr_matrix, np.ndarray]:
        """``P_π`` (scipy CSR) and ``r_π`` for a deterministic policy ``(S,)`` of action indices."""
        policy_np = policy.cpu().numpy()
        rows = [
            sp.diags((policy_np == a).astype(np.float64)) @ matrix for a, matrix in enumerate(self.scipy_transitions())
        ]
        reward = self.rewards.cpu().numpy()[np.arange(self.num_states), policy_np]
        return sp.csr_matrix(sum(rows)), reward


class PolicyOperators:
    """``mdp.policy_operator(π)`` for the successive policies of policy iteration, which late in a
    solve differ from the last in a few states or none (on the queue's 119k-state matrix: 93k, 15k,
    6k … 6, 4, 1, 0, 0). A flat model's chosen rows are selected once — the selection costs
    tens of products — and a later policy differing from that one in at most ``patch_share`` of the
    states reuses them, its changed rows applied as a patch: the same values, bit for bit."""

    def __init__(self, mdp: FiniteMDP, patch_share: float = 0.05) -> None:
        self.mdp, self.patch_share = mdp, patch_share
        self.base_policy: torch.Tensor | None = None
        self.base: torch.Tensor | None = None

    def __call__(self, policy: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        mdp = self.mdp
        if mdp.fast_transitions is not None:  # a factored model applies P_π without selecting rows per policy
            return mdp.policy_operator(policy)
        policy = policy.to(mdp.device)
        if self.base is not None and self.base_policy is not None:
            changed = (policy != self.base_policy).nonzero()[:, 0]
            if len(changed) <= self.patch_share * mdp.num_states:
                base = self.base
                if len(changed) == 0:
                    return lambda values: base @ values
                patch = _select_rows(mdp.stacked_transitions(), policy[changed] * mdp.num_states + changed, None, 1)
                return lambda values: (base @ values).index_copy_(0, changed, patch @ values)
        self.base_policy, self.base = policy.clone(), mdp.chosen_rows(policy)
        base = self.base
        return lambda values: base @ values


def _segment_positions(
    starts: torch.Tensor, counts: torch.Tensor, offsets: torch.Tensor, total: int, dtype: torch.dtype
) -> torch.Tensor:
    """The concatenated ranges ``starts[i] … starts[i] + counts[i] − 1`` (``offsets``: their exclusive
    cumulative counts) as one running sum: step 1 inside a range, and at each non-empty range's
    first entry the jump from the previous range's last one (one scatter and one cumsum, a third
    of the time of ``arange + repeat_interleave`` on 5M entries)."""
    steps = torch.ones(total, dtype=dtype, device=starts.device)
    nonempty = counts > 0
    first, begin = offsets[:-1][nonempty], starts[nonempty]
    previous_last = torch.cat([begin.new_zeros(1), (begin + counts[nonempty] - 1)[:-1]])
    steps.index_put_((first,), (begin - previous_last).to(dtype))
    return steps.cumsum(0, dtype=dtype)


def _select_rows(matrix: torch.Tensor, rows: torch.Tensor, slow: torch.Tensor | None, num_slow: int) -> torch.Tensor:
    """Rows ``rows`` of a sparse CSR ``matrix`` as a new CSR; with ``slow`` given, column x' of row
    i becomes x' · num_slow + slow[i] (the factored layout of ``policy_operator``)."""
    crow, columns, data = matrix.crow_indices(), matrix.col_indices(), matrix.values()
    starts = torch.index_select(crow, 0, rows).long()  # index_select: several times faster than [] indexing on CPU
    counts = torch.index_select(crow, 0, rows + 1).long() - starts
    new_crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    total = int(new_crow[-1])
    positions = _segment_positions(starts, counts, new_crow, total, index_dtype(len(data)))
    new_columns = torch.index_select(columns, 0, positions)
    if slow is not None:
        new_columns = new_columns * num_slow + torch.repeat_interleave(slow, counts, output_size=total)
    indices = index_dtype(total, len(rows), matrix.shape[1] * num_slow)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            new_crow.to(indices),
            new_columns.to(indices),
            torch.index_select(data, 0, positions),
            size=(len(rows), matrix.shape[1] * num_slow),
            check_invariants=False,
        )


def to_scipy(tensor: torch.Tensor) -> sp.csr_matrix:
    """A dense or sparse-CSR torch matrix as scipy CSR."""
    if tensor.layout != torch.sparse_csr:
        return sp.csr_matrix(tensor.cpu().numpy())
    return sp.csr_matrix(
        (tensor.values().cpu().numpy(), tensor.col_indices().cpu().numpy(), tensor.crow_indices().cpu().numpy()),
        shape=tuple(tensor.shape),
    )
