"""Off-policy Nash DQN (OPNDQN; Zhang, Wang & Jiang, arXiv 2301.00637) for signal networks.

Agent i's Q-network takes its own observation and scores every joint action of itself and its
neighbours N(i) (the env's ``neighbour_graph``): ``Q_i(s_i, a_i, a_N(i))``, one output per joint
action. At a state, the neighbourhood stage game with payoffs ``Q_i`` is solved approximately
by fictitious play (:mod:`ctrlgym.agents.fictitious_play`), giving mixed strategies π and values

    NashQ_i(s) = Σ_{a_i, a_N(i)} π_i(a_i) Π_{j ∈ N(i)} π_j(a_j) Q_i(s_i, a_i, a_N(i)).

``payoffs="pairwise"`` factorises ``Q_i`` over the neighbour pairs (coordination graphs:
``q_i(a_i) + Σ_j q_ij(a_i, a_j)``, :mod:`~ctrlgym.agents.fictitious_play`), so the network has
``A + D·A²`` outputs instead of ``A^(1+D)``: what makes 8-green, degree-4 grids tractable.

Acting: each agent plays the most likely action of its equilibrium strategy, ε-greedy.
Learning, from replayed joint actions (the neighbours' actions are shared):

    y_i = r_i + γ (1 − terminated) NashQ_i(s'; θ⁻)              (double Q: π from θ, payoffs θ⁻)
    L(θ) = E_D Σ_i Huber(Q_i(s_i, a_i, a_N(i); θ) − y_i).

Everything else (replay, target network, exploration, parameter sharing) is
:class:`~ctrlgym.agents.dqn.IndependentDQN`'s, so a comparison isolates the Nash part.
"""

from __future__ import annotations

import torch

from ctrlgym.agents.dqn import IndependentDQN
from ctrlgym.agents.fictitious_play import (
    PAYOFFS,
    NeighbourGraph,
    expected_payoffs,
    fictitious_play,
    payoff_size,
    taken_payoffs,
)
from ctrlgym.vector_env import TorchVectorEnv

__all__ = ["NashDQN"]


class NashDQN(IndependentDQN):
    """Nash DQN: IDQN whose greedy step is a fictitious-play equilibrium among neighbours.

    ``fictitious_play_rounds`` best-response rounds per state (vectorised over the batch and
    the agents); ``payoffs``: ``"joint"`` (a table over every joint action, as in the paper) or
    ``"pairwise"`` (the coordination-graph factorisation); ``fictitious_play_prior``: how many plays
    the uniform start counts as (1: each equilibrium keeps 1/(K+1) of it, a softened target; 0: the
    best responses' frequency). The env must expose ``neighbour_graph`` (``(n_agents, n_agents)`` bool).
    With ``fictitious_play_prior=0`` a light without neighbours learns exactly as DQN (a
    single-agent env: Nash DQN is DQN); with 1 its target is softened.

    Args:
        fictitious_play_rounds: best-response rounds of fictitious play per state.
        payoffs: ``"joint"`` (a payoff table over each neighbourhood's joint actions) or ``"pairwise"``
            (a sum of pairwise payoffs: the coordination-graph factorisation, smaller for many neighbours).
        fictitious_play_prior: how many plays the uniform starting strategy counts as (0: Brown's
            best-response frequencies; 1: a softened equilibrium).
        **kwargs: every argument of :class:`~ctrlgym.agents.dqn.IndependentDQN`.
    """

    algo = "nash_dqn"

    def __init__(
        self,
        env: TorchVectorEnv,
        *,
        fictitious_play_rounds: int = 10,
        payoffs: str = "joint",
        fictitious_play_prior: float = 1.0,
        **kwargs,
    ) -> None:
        if fictitious_play_rounds < 1:
            raise ValueError(f"NashDQN: fictitious_play_rounds must be >= 1, got {fictitious_play_rounds}")
        if fictitious_play_prior < 0:
            raise ValueError(f"NashDQN: fictitious_play_prior must be >= 0, got {fictitious_play_prior}")
        if payoffs not in PAYOFFS:
            raise ValueError(f"NashDQN: unknown payoffs {payoffs!r}; choose one of {PAYOFFS}")
        self.rounds, self.payoffs, self.prior = fictitious_play_rounds, payoffs, fictitious_play_prior
        super().__init__(env, **kwargs)
        self.hyperparameters.update(
            fictitious_play_rounds=fictitious_play_rounds, payoffs=payoffs, fictitious_play_prior=fictitious_play_prior
        )

    def _setup_game(self, env: TorchVectorEnv) -> None:
        adjacency = getattr(env, "neighbour_graph", None)
        if adjacency is None:
            adjacency = torch.zeros(self.n_agents, self.n_agents, dtype=torch.bool)
        self.graph = NeighbourGraph.from_adjacency(torch.as_tensor(adjacency).cpu(), self.num_actions.cpu()).to(
            self.device
        )
        self.num_outputs = payoff_size(int(self.num_actions.max()), self.graph.max_degree, self.payoffs)

    def greedy(self, q_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        equilibrium = fictitious_play(q_values, self.graph, self.rounds, self.payoffs, self.prior)
        return equilibrium.actions, equilibrium.values

    def taken(self, q_values: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return taken_payoffs(q_values, actions, self.graph, self.payoffs)

    def next_values(self, next_observations: torch.Tensor) -> torch.Tensor:
        target_q = self.target_network(next_observations)
        if not self.double_q:
            return self.greedy(target_q)[1]
        strategies = fictitious_play(
            self.q_network(next_observations), self.graph, self.rounds, self.payoffs, self.prior
        ).strategies
        return (expected_payoffs(target_q, strategies, self.graph, self.payoffs) * strategies).sum(-1)
