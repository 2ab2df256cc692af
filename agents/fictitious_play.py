"""Fictitious play on graphical stage games, batched over states and agents.

Agent ``i`` plays against its neighbours ``N(i) = (j_1, ..., j_D)``; its payoff is a table
``Q_i(a_i, a_{j_1}, ..., a_{j_D})``. Fictitious play (Brown 1951; Robinson 1951) keeps an
empirical mixed strategy ``π_j`` per agent. In round ``k`` every agent best-responds to its
neighbours' current strategies,

    u_i(a_i) = Σ_{a_N} Q_i(a_i, a_N) Π_d π_{j_d}(a_{j_d}),      b_i = argmax_{a_i} u_i(a_i),

and each strategy is the frequency of the best responses played so far, with the uniform start
counted as ``prior`` plays: ``π_i ← π_i + (e_{b_i} − π_i) / (k + prior)``. With ``prior=0`` this is
Brown's empirical frequency: an agent whose best response never changes (one without neighbours,
or with a dominant action) plays it purely and values it at ``max_a Q_i``. With ``prior=1`` (the
default) every equilibrium keeps 1/(K+1) of the uniform strategy after K rounds: the greedy
action is the same, and the value at such an agent is (K·max + mean)/(K+1), a softened target
(like expected SARSA's under 1/(K+1) uniform exploration).
The frequencies converge to a Nash equilibrium in 2x2 games, zero-sum games and potential games
(Monderer & Shapley 1996); a fixed number of rounds gives an approximate equilibrium, as in the
Nash DQN of Zhang, Wang & Jiang (arXiv 2301.00637). Every round is a few tensor contractions
over ``(batch, agents, actions^(1+D))``: no Python loop over agents.

Payoff tables come in two shapes. ``joint``: one entry per joint action, ``A^(1+D)`` per agent
(exact, and exponential in the degree). ``pairwise``: the coordination-graph factorisation
(Guestrin et al. 2002; Böhmer et al., Deep Coordination Graphs, ICML 2020)

    Q_i(a_i, a_N) = q_i(a_i) + Σ_d q_{i,d}(a_i, a_{j_d}),

stored as ``A + D·A²`` entries; the best response then needs only ``u_i(a_i) = q_i(a_i) +
Σ_d Σ_b q_{i,d}(a_i, b) π_{j_d}(b)``. RESCO's grid4x4 (8 greens, degree 4) has 32,768 joint
entries per light and 264 pairwise ones.

Neighbour slots are padded to the largest degree ``D`` with a dummy agent (index ``n_agents``)
that always plays action 0, so ``Q_i`` of a low-degree agent only uses index 0 of its padded
slots. Agents with fewer than ``A`` actions mask the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "Equilibrium",
    "NeighbourGraph",
    "PAYOFFS",
    "fictitious_play",
    "expected_payoffs",
    "joint_action_index",
    "payoff_size",
    "taken_payoffs",
    "best_response_table",
    "depends_on_neighbours",
]

PAYOFFS = ("joint", "pairwise")


@dataclass(frozen=True)
class NeighbourGraph:
    """Padded neighbour lists ``(n_agents, D)`` (pad = ``n_agents``) and action masks ``(n_agents, A)``."""

    neighbours: torch.Tensor
    action_mask: torch.Tensor

    @classmethod
    def from_adjacency(
        cls, adjacency: torch.Tensor, num_actions: torch.Tensor, max_degree: int | None = None
    ) -> NeighbourGraph:
        """From a bool adjacency ``(n, n)`` and each agent's number of actions ``(n,)``."""
        n = adjacency.shape[0]
        degree = int(adjacency.sum(1).max()) if n > 1 else 0
        width = degree if max_degree is None else max_degree
        if width < degree:
            raise ValueError(f"max_degree={max_degree} is below the graph's largest degree {degree}")
        neighbours = torch.full((n, width), n, dtype=torch.long)
        for i in range(n):
            found = torch.nonzero(adjacency[i].cpu()).flatten()
            neighbours[i, : len(found)] = found
        mask = torch.arange(int(num_actions.max()))[None, :] < num_actions.cpu()[:, None]
        return cls(neighbours.to(adjacency.device), mask.to(adjacency.device))

    @property
    def max_degree(self) -> int:
        return self.neighbours.shape[1]

    @property
    def num_actions(self) -> int:
        return self.action_mask.shape[1]

    def to(self, device: torch.device) -> NeighbourGraph:
        return NeighbourGraph(self.neighbours.to(device), self.action_mask.to(device))


@dataclass(frozen=True)
class Equilibrium:
    strategies: torch.Tensor  # (batch, n_agents, A) empirical mixed strategies
    actions: torch.Tensor  # (batch, n_agents) each agent's most played action
    values: torch.Tensor  # (batch, n_agents) expected payoff of the strategy profile


def neighbour_strategies(strategies: torch.Tensor, graph: NeighbourGraph) -> torch.Tensor:
    """``(batch, n, D, A)``: the strategy in each neighbour slot (the dummy plays action 0)."""
    batch, _, actions = strategies.shape
    dummy = torch.zeros(batch, 1, actions, dtype=strategies.dtype, device=strategies.device)
    dummy[..., 0] = 1.0
    return torch.cat([strategies, dummy], dim=1)[:, graph.neighbours]


def payoff_size(num_actions: int, degree: int, kind: str = "joint") -> int:
    """Entries of one agent's payoff table: ``A^(1+D)`` joint, ``A + D·A²`` pairwise."""
    if kind not in PAYOFFS:
        raise ValueError(f"unknown payoffs {kind!r}; choose one of {PAYOFFS}")
    return num_actions ** (1 + degree) if kind == "joint" else num_actions + degree * num_actions**2


def _pairwise_parts(payoffs: torch.Tensor, graph: NeighbourGraph) -> tuple[torch.Tensor, torch.Tensor]:
    """``q_i(a_i)`` ``(batch, n, A)`` and ``q_{i,d}(a_i, b)`` ``(batch, n, D, A, A)`` of pairwise payoffs."""
    A, D = graph.num_actions, graph.max_degree
    return payoffs[..., :A], payoffs[..., A:].reshape(*payoffs.shape[:2], D, A, A)


def expected_payoffs(
    payoffs: torch.Tensor, strategies: torch.Tensor, graph: NeighbourGraph, kind: str = "joint"
) -> torch.Tensor:
    """``u_i(a_i)``: payoffs ``(batch, n, payoff_size)`` averaged over the neighbours' strategies -> ``(batch, n, A)``."""
    batch, n, _ = payoffs.shape
    A, D = graph.num_actions, graph.max_degree
    others = neighbour_strategies(strategies, graph)
    if kind == "pairwise":
        own, pairs = _pairwise_parts(payoffs, graph)
        return own + torch.einsum("bndac,bndc->bna", pairs, others)
    table = payoffs.reshape(batch, n, *([A] * (1 + D)))
    for d in reversed(range(D)):  # contract the last neighbour slot each time
        table = (table * others[:, :, d].reshape(batch, n, *([1] * (d + 1)), A)).sum(-1)
    return table


def taken_payoffs(
    payoffs: torch.Tensor, actions: torch.Tensor, graph: NeighbourGraph, kind: str = "joint"
) -> torch.Tensor:
    """``Q_i(a_i, a_N(i))`` of the joint actions played, ``(batch, n)``."""
    if kind == "joint":
        return payoffs.gather(-1, joint_action_index(actions, graph)[..., None])[..., 0]
    own, pairs = _pairwise_parts(payoffs, graph)
    padded = torch.cat([actions, torch.zeros_like(actions[:, :1])], dim=1)  # the dummy plays 0
    theirs = padded[:, graph.neighbours]  # (batch, n, D)
    mine = actions[:, :, None].expand_as(theirs)
    A = graph.num_actions
    pair_index = (mine * A + theirs)[..., None]  # (batch, n, D, 1) into the flattened A x A table
    pair_values = pairs.flatten(-2).gather(-1, pair_index)[..., 0].sum(-1)
    return own.gather(-1, actions[..., None])[..., 0] + pair_values


def fictitious_play(
    payoffs: torch.Tensor, graph: NeighbourGraph, rounds: int = 10, kind: str = "joint", prior: float = 1.0
) -> Equilibrium:
    """Approximate Nash equilibrium of the stage games ``payoffs`` ``(batch, n, payoff_size)`` (``kind``: joint or pairwise).

    Starts from uniform strategies over each agent's valid actions, counted as ``prior`` plays,
    and plays ``rounds`` rounds of simultaneous fictitious play (module docstring).
    """
    if rounds < 1:
        raise ValueError(f"fictitious_play needs rounds >= 1, got {rounds}")
    if prior < 0:
        raise ValueError(f"fictitious_play needs prior >= 0 (plays of the uniform start), got {prior}")
    mask = graph.action_mask
    strategies = mask.to(payoffs.dtype).expand(payoffs.shape[0], -1, -1)
    strategies = strategies / strategies.sum(-1, keepdim=True)
    for k in range(1, rounds + 1):
        utilities = expected_payoffs(payoffs, strategies, graph, kind).masked_fill(~mask, -torch.inf)
        best = torch.nn.functional.one_hot(utilities.argmax(-1), graph.num_actions).to(payoffs.dtype)
        strategies = strategies + (best - strategies) / (k + prior)
    utilities = expected_payoffs(payoffs, strategies, graph, kind)
    values = (utilities * strategies).sum(-1)
    return Equilibrium(strategies, strategies.masked_fill(~mask, -1.0).argmax(-1), values)


def joint_action_index(actions: torch.Tensor, graph: NeighbourGraph) -> torch.Tensor:
    """Index into ``A^(1+D)`` of each agent's (own action, neighbours' actions): ``(batch, n)``."""
    A, D = graph.num_actions, graph.max_degree
    padded = torch.cat([actions, torch.zeros_like(actions[:, :1])], dim=1)  # the dummy plays 0
    joint = actions
    for d in range(D):
        joint = joint * A + padded[:, graph.neighbours[:, d]]
    return joint


def best_response_table(
    payoffs: torch.Tensor, graph: NeighbourGraph, kind: str = "joint"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each agent's best own action against every joint action of its neighbours, ``(batch, n, A^D)``
    (slot 0 the most significant, as :func:`joint_action_index`), and which of those joint actions
    the neighbours can play, ``(n, A^D)`` (their action masks; the dummy plays only 0)."""
    batch, n, _ = payoffs.shape
    A, D = graph.num_actions, graph.max_degree
    if kind == "pairwise":  # expand q_i(a_i) + Σ_d q_id(a_i, a_jd) to the joint table
        own, pairs = _pairwise_parts(payoffs, graph)
        table = own.reshape(batch, n, A, *([1] * D))
        for d in range(D):
            table = table + pairs[:, :, d].reshape(batch, n, A, *([1] * d), A, *([1] * (D - 1 - d)))
        payoffs = table.reshape(batch, n, -1)
    table = payoffs.reshape(batch, n, A, A**D).masked_fill(~graph.action_mask[None, :, :, None], -torch.inf)
    dummy = torch.zeros(1, A, dtype=torch.bool, device=payoffs.device)
    dummy[0, 0] = True
    slot_masks = torch.cat([graph.action_mask, dummy])[graph.neighbours]  # (n, D, A)
    playable = torch.ones(n, 1, dtype=torch.bool, device=payoffs.device)
    for d in range(D):
        playable = (playable[:, :, None] & slot_masks[:, d, None, :]).reshape(n, -1)
    return table.argmax(2), playable


def depends_on_neighbours(payoffs: torch.Tensor, graph: NeighbourGraph, kind: str = "joint") -> torch.Tensor:
    """``(batch, n)`` bool: whether agent i's best action changes with what its neighbours play.

    Where it does not, i has a dominant action: it is the best response to every belief about the
    neighbours (expected payoffs are linear in the belief), so the neighbourhood equilibrium picks
    what an independent learner's argmax over any belief would, and equilibrium play adds nothing
    at that state."""
    best, playable = best_response_table(payoffs, graph, kind)
    return ((best != best[..., :1]) & playable).any(-1)  # joint action 0 (all play 0) is always playable
