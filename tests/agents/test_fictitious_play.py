"""Fictitious play finds the Nash equilibria of matrix and graphical games."""

import itertools

import pytest
import torch

from ctrlgym.agents.fictitious_play import (
    NeighbourGraph,
    depends_on_neighbours,
    expected_payoffs,
    fictitious_play,
    joint_action_index,
)

PAIR = torch.tensor([[False, True], [True, False]])


def two_player(row: list[list[float]], column: list[list[float]]) -> torch.Tensor:
    """Stage-game payoffs ``(1, 2, 4)`` of a bimatrix game: Q_i indexed by (own action, other's)."""
    row, column = torch.tensor(row), torch.tensor(column)
    return torch.stack([row.flatten(), column.T.flatten()])[None]


def test_prisoners_dilemma_ends_in_mutual_defection():
    payoffs = two_player([[3, 0], [5, 1]], [[3, 5], [0, 1]])  # action 0 cooperate, 1 defect
    eq = fictitious_play(payoffs, NeighbourGraph.from_adjacency(PAIR, torch.tensor([2, 2])), rounds=10)
    assert eq.actions.tolist() == [[1, 1]]
    assert torch.allclose(eq.values, torch.tensor([[1.0, 1.0]]), atol=0.5)


@pytest.mark.parametrize("good, bad, expected", [(2.0, 1.0, 0), (1.0, 3.0, 1)])
def test_coordination_game_converges_to_the_better_pure_equilibrium(good, bad, expected):
    table = [[good, 0.0], [0.0, bad]]
    eq = fictitious_play(two_player(table, table), NeighbourGraph.from_adjacency(PAIR, torch.tensor([2, 2])), rounds=30)
    assert eq.actions.tolist() == [[expected, expected]]
    assert eq.strategies[0, :, expected].min() > 0.9
    assert torch.allclose(eq.values, torch.full((1, 2), max(good, bad)), rtol=0.15)


def test_matching_pennies_beliefs_approach_the_mixed_equilibrium():
    row = [[1.0, -1.0], [-1.0, 1.0]]
    payoffs = two_player(row, [[-v for v in r] for r in row])
    eq = fictitious_play(payoffs, NeighbourGraph.from_adjacency(PAIR, torch.tensor([2, 2])), rounds=2000)
    assert torch.allclose(eq.strategies, torch.full((1, 2, 2), 0.5), atol=0.05)
    assert eq.values.abs().max() < 0.1  # the game's value is 0


def random_potential_games(batch: int, adjacency: torch.Tensor, actions: int, generator: torch.Generator):
    """Graphical potential games: Q_i(a_i, a_N) = θ_i(a_i) + Σ_{j ∈ N(i)} φ_ij(a_i, a_j), φ_ij = φ_jiᵀ."""
    n = adjacency.shape[0]
    graph = NeighbourGraph.from_adjacency(adjacency, torch.full((n,), actions))
    theta = torch.randn(batch, n, actions, generator=generator)
    phi = torch.randn(batch, n, n, actions, actions, generator=generator)
    phi = phi + phi.permute(0, 2, 1, 4, 3)  # symmetric interaction: a potential game
    D = graph.max_degree
    payoffs = torch.zeros(batch, n, *([actions] * (1 + D)))
    for i in range(n):
        for profile in itertools.product(range(actions), repeat=1 + D):
            value = theta[:, i, profile[0]].clone()
            for d in range(D):
                j = int(graph.neighbours[i, d])
                if j < n:
                    value += phi[:, i, j, profile[0], profile[1 + d]]
                elif profile[1 + d] != 0:
                    value = torch.full_like(value, -1e3)  # the dummy never plays this
            payoffs[(slice(None), i, *profile)] = value
    return payoffs.reshape(batch, n, -1), graph


def test_graphical_potential_games_reach_pure_nash_equilibria():
    generator = torch.Generator().manual_seed(0)
    grid = torch.tensor([[0, 1, 1, 0], [1, 0, 0, 1], [1, 0, 0, 1], [0, 1, 1, 0]], dtype=torch.bool)  # a 2x2 grid
    payoffs, graph = random_potential_games(64, grid, 3, generator)
    eq = fictitious_play(payoffs, graph, rounds=300)
    pure = torch.nn.functional.one_hot(eq.actions, 3).float()
    utilities = expected_payoffs(payoffs, pure, graph)  # each agent's payoff of every own action, others fixed
    chosen = utilities.gather(-1, eq.actions[..., None])[..., 0]
    is_nash = (utilities.max(-1).values <= chosen + 1e-5).all(-1)
    assert is_nash.float().mean() >= 0.95


def test_low_degree_agents_and_masked_actions():
    chain = torch.tensor([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=torch.bool)
    graph = NeighbourGraph.from_adjacency(chain, torch.tensor([2, 3, 2]))
    assert graph.neighbours.tolist() == [[1, 3], [0, 2], [1, 3]]  # 3 is the dummy
    assert graph.action_mask.tolist() == [[True, True, False], [True, True, True], [True, True, False]]
    payoffs = torch.zeros(1, 3, 27)
    payoffs[0, :, :] = -1.0
    payoffs[0, 1, 2 * 9 :] = 5.0  # agent 1 prefers action 2 whatever its neighbours do
    payoffs[0, 0, 9 * 2 :] = 10.0  # agent 0's action 2 would pay, but it has only two actions
    eq = fictitious_play(payoffs, graph, rounds=5)
    assert eq.actions[0, 1] == 2 and eq.actions[0, 0] < 2 and eq.strategies[0, 0, 2] == 0


def test_joint_index_matches_the_payoff_table():
    chain = torch.tensor([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=torch.bool)
    graph = NeighbourGraph.from_adjacency(chain, torch.tensor([2, 2, 2]))
    payoffs = torch.randn(5, 3, 8, generator=torch.Generator().manual_seed(1))
    actions = torch.randint(0, 2, (5, 3), generator=torch.Generator().manual_seed(2))
    pure = torch.nn.functional.one_hot(actions, 2).float()
    by_index = payoffs.gather(-1, joint_action_index(actions, graph)[..., None])[..., 0]
    by_contraction = expected_payoffs(payoffs, pure, graph).gather(-1, actions[..., None])[..., 0]
    assert torch.allclose(by_index, by_contraction)


def test_pairwise_payoffs_play_as_their_expanded_joint_table():
    """A pairwise table q_i(a_i) + Σ_d q_id(a_i, a_jd), expanded to every joint action, gives the same
    best responses, equilibrium and taken values as the pairwise form (a 3x2 grid, degrees 2-3, masks)."""
    from ctrlgym.agents.fictitious_play import payoff_size, taken_payoffs

    rows, cols = 2, 3
    n = rows * cols
    adjacency = torch.zeros(n, n, dtype=torch.bool)
    for i in range(n):
        r, c = divmod(i, cols)
        for j in (i + 1 if c + 1 < cols else None, i + cols if r + 1 < rows else None):
            if j is not None:
                adjacency[i, j] = adjacency[j, i] = True
    graph = NeighbourGraph.from_adjacency(adjacency, torch.tensor([3, 2, 3, 3, 3, 2]))
    A, D, batch = graph.num_actions, graph.max_degree, 4
    assert payoff_size(A, D, "pairwise") == A + D * A * A < payoff_size(A, D, "joint") == A ** (1 + D)
    generator = torch.Generator().manual_seed(0)
    pairwise = torch.randn(batch, n, A + D * A * A, generator=generator)
    own, pairs = pairwise[..., :A], pairwise[..., A:].reshape(batch, n, D, A, A)
    joint = own.reshape(batch, n, A, *([1] * D)).expand(batch, n, *([A] * (1 + D))).clone()
    for d in range(D):
        shape = [batch, n, A] + [A if k == d else 1 for k in range(D)]
        joint = joint + pairs[:, :, d].reshape(shape)
    joint = joint.reshape(batch, n, -1)
    strategies = torch.softmax(torch.randn(batch, n, A, generator=generator), -1)
    assert torch.allclose(
        expected_payoffs(pairwise, strategies, graph, "pairwise"), expected_payoffs(joint, strategies, graph), atol=1e-5
    )
    a, b = fictitious_play(pairwise, graph, 20, "pairwise"), fictitious_play(joint, graph, 20)
    assert torch.equal(a.actions, b.actions) and torch.allclose(a.values, b.values, atol=1e-5)
    actions = torch.stack(
        [torch.randint(0, int(k), (batch,), generator=generator) for k in graph.action_mask.sum(1)], dim=1
    )
    assert torch.allclose(
        taken_payoffs(pairwise, actions, graph, "pairwise"), taken_payoffs(joint, actions, graph), atol=1e-5
    )
    coupled = depends_on_neighbours(pairwise, graph, "pairwise")
    assert torch.equal(coupled, depends_on_neighbours(joint, graph)) and 0 < coupled.float().mean() < 1
    with pytest.raises(ValueError, match="unknown payoffs 'full'"):
        payoff_size(A, D, "full")


def test_an_action_that_is_best_whatever_the_neighbours_play_does_not_depend_on_them():
    graph = NeighbourGraph.from_adjacency(PAIR, torch.tensor([2, 2]))
    dilemma = two_player([[3.0, 0.0], [5.0, 1.0]], [[3.0, 5.0], [0.0, 1.0]])  # defecting is dominant for both
    coordination = two_player([[2.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [0.0, 1.0]])  # the best action is the other's
    assert depends_on_neighbours(torch.cat([dilemma, coordination]), graph).tolist() == [[False, False], [True, True]]
    # in a chain, agent 0's best action flips only if agent 1 plays an action agent 1 does not have
    chain = torch.tensor([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=torch.bool)
    graph = NeighbourGraph.from_adjacency(chain, torch.tensor([2, 2, 3]))
    payoffs = torch.zeros(1, 3, 27)
    table = payoffs[0, 0].reshape(3, 3, 3)  # (own, neighbour 1, dummy)
    table[1] = 1.0
    table[0, 2] = 5.0  # agent 1 never plays 2
    for action in range(2):
        payoffs[0, 1].reshape(3, 3, 3)[action, action] = 1.0  # agent 1 plays what agent 0 plays
    payoffs[0, 2].reshape(3, 3, 3)[2] = 1.0  # agent 2 always prefers its third action
    assert depends_on_neighbours(payoffs, graph).tolist() == [[False, True, False]]


def test_an_agent_without_neighbours_plays_its_best_action_purely_with_no_prior_and_keeps_the_uniform_share_with_one():
    """prior=0: the uniform start is round 1's belief, not a play; prior=1 (the default) counts it once."""
    lonely = NeighbourGraph.from_adjacency(torch.zeros(2, 2, dtype=torch.bool), torch.tensor([4, 3]))
    payoffs = torch.tensor([[[1.0, 2.0, 3.0, 10.0], [5.0, -1.0, 0.0, 99.0]]])  # agent 1 has 3 actions
    for rounds in (1, 10):
        eq = fictitious_play(payoffs, lonely, rounds, prior=0)
        assert eq.strategies.tolist() == [[[0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]]]
        assert eq.values.tolist() == [[10.0, 5.0]]
        soft = fictitious_play(payoffs, lonely, rounds)
        assert torch.equal(soft.actions, eq.actions)
        expected = (rounds * torch.tensor([10.0, 5.0]) + torch.tensor([4.0, 4.0 / 3])) / (
            rounds + 1
        )  # (K·max + mean) / (K + 1)
        assert torch.allclose(soft.values[0], expected)
    with pytest.raises(ValueError, match="prior >= 0"):
        fictitious_play(payoffs, lonely, 10, prior=-1)
