"""Fictitious play on graphical stage games, batched over states and agents.

Agent ``i`` plays against its neighbours ``N(i) = (j_1, ..., j_D)``; its payoff is a table
``Q_i(a_i, a_{j_1}, ..., a_{j_D})``. Fictitious play (Brown 1951; Robinson 1951) keeps an
empirical mixed strategy ``π_j`` per agent. In round ``k`` every agent best-responds to its
neighbours' current strategies,

    u_i(a_i) = Σ_{a_N} Q_i(a_i, a_N) Π_d π_{j_d}(a_{j_d}),      b_i = argmax_{a_i} u_i(a_i),

and all strategies move to the running average ``π_i ← π_i + (e_{b_i} − π_i) / (k + 1)``. The
averages converge to a Nash equilibrium in 2x2 games, zero-sum games and potential games
(Monderer & Shapley 1996); a fixed number of rounds gives an approximate equilibrium, as in the
Nash DQN of Zhang, Wang & Jiang (arXiv 2301.00637). Every round is a few tensor contractions
over ``(batch, agents, actions^(1+D))``: no Python loop over agents.

Neighbour slots are padded to the largest degree ``D`` with a dummy agent (index ``n_agents``)
that always plays action 0, so ``Q_i`` of a low-degree agent only uses index 0 of its padded
slots. Agents with fewer than ``A`` actions mask the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Equilibrium", "NeighbourGraph", "fictitious_play", "expected_payoffs"]


@dataclass(frozen=True)
class NeighbourGraph:
    """Padded neighbour lists ``(n_agents, D)`` (pad = ``n_agents``) and action masks ``(n_agents, A)``."""

    neighbours: torch.Tensor
    action_mask: torch.Tensor

    @classmethod
    def from_adjacency(cls, adjacency: torch.Tensor, num_actions: torch.Tensor, max_degree: int | None = None) -> NeighbourGraph:
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


def expected_payoffs(payoffs: torch.Tensor, strategies: torch.Tensor, graph: NeighbourGraph) -> torch.Tensor:
    """``u_i(a_i)``: payoffs ``(batch, n, A^(1+D))`` averaged over the neighbours' strategies -> ``(batch, n, A)``."""
    batch, n, _ = payoffs.shape
    A, D = graph.num_actions, graph.max_degree
    table = payoffs.reshape(batch, n, *([A] * (1 + D)))
    others = neighbour_strategies(strategies, graph)
    for d in reversed(range(D)):  # contract the last neighbour slot each time
        table = (table * others[:, :, d].reshape(batch, n, *([1] * (d + 1)), A)).sum(-1)
    return table


def fictitious_play(payoffs: torch.Tensor, graph: NeighbourGraph, rounds: int = 10) -> Equilibrium:
    """Approximate Nash equilibrium of the stage games ``payoffs`` ``(batch, n, A^(1+D))``.

    Starts from uniform strategies over each agent's valid actions and plays ``rounds`` rounds
    of simultaneous fictitious play (module docstring).
    """
    if rounds < 1:
        raise ValueError(f"fictitious_play needs rounds >= 1, got {rounds}")
    mask = graph.action_mask
    strategies = mask.to(payoffs.dtype).expand(payoffs.shape[0], -1, -1)
    strategies = strategies / strategies.sum(-1, keepdim=True)
    for k in range(1, rounds + 1):
        utilities = expected_payoffs(payoffs, strategies, graph).masked_fill(~mask, -torch.inf)
        best = torch.nn.functional.one_hot(utilities.argmax(-1), graph.num_actions).to(payoffs.dtype)
        strategies = strategies + (best - strategies) / (k + 1)
    utilities = expected_payoffs(payoffs, strategies, graph)
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
