"""Exact DP solvers against quantecon and pymdptoolbox, and the queue's exact model against its simulator."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg  # noqa: F401  (sp.linalg)
import torch

from ctrlgym.envs.fastslow import MultiClassQueue
from ctrlgym.solvers import (
    FiniteMDP,
    backward_induction,
    inexact_policy_iteration,
    modified_policy_iteration,
    policy_evaluation,
    policy_iteration,
    value_iteration,
)


def random_mdp(num_states=30, num_actions=4, seed=0, discount=0.95):
    rng = np.random.default_rng(seed)
    transitions = rng.random((num_actions, num_states, num_states)) ** 4  # skewed rows
    transitions /= transitions.sum(axis=2, keepdims=True)
    rewards = rng.normal(size=(num_states, num_actions))
    return transitions, rewards, discount


@pytest.fixture(scope="module")
def queue_mdp():
    return MultiClassQueue(num_envs=1, buffer_size=4).exact_model()  # 5^3 * 2 = 250 states


def test_policy_iteration_matches_quantecon_to_1e6():
    qe = pytest.importorskip("quantecon")
    transitions, rewards, discount = random_mdp()
    ours = policy_iteration(FiniteMDP.from_matrices(transitions, rewards, discount))
    theirs = qe.markov.DiscreteDP(rewards, np.transpose(transitions, (1, 0, 2)), discount).solve(
        method="policy_iteration"
    )
    assert np.abs(ours.values.numpy() - theirs.v).max() < 1e-6
    assert (ours.policy.numpy() == theirs.sigma).all()


def test_value_iteration_matches_pymdptoolbox_policy_and_values():
    mdptoolbox = pytest.importorskip("mdptoolbox.mdp")
    transitions, rewards, discount = random_mdp(seed=1)
    exact = policy_iteration(FiniteMDP.from_matrices(transitions, rewards, discount))
    theirs = mdptoolbox.PolicyIteration(list(transitions), rewards, discount)
    theirs.run()
    assert np.abs(exact.values.numpy() - np.array(theirs.V)).max() < 1e-6
    ours = value_iteration(
        FiniteMDP.from_matrices([sp.csr_matrix(p) for p in transitions], rewards, discount), epsilon=1e-8
    )
    assert (ours.policy.numpy() == np.array(theirs.policy)).all()
    assert np.abs(ours.values.numpy() - exact.values.numpy()).max() < 1e-6


def test_span_stopping_gives_an_epsilon_optimal_policy(queue_mdp):
    exact = policy_iteration(queue_mdp)
    for epsilon in (1.0, 1e-2):
        result = value_iteration(queue_mdp, epsilon=epsilon)
        assert result.converged
        regret = exact.values - policy_evaluation(queue_mdp, result.policy)
        assert regret.max() <= epsilon + 1e-9 and regret.min() >= -1e-9


def test_modified_policy_iteration_agrees_with_policy_iteration(queue_mdp):
    exact = policy_iteration(queue_mdp)
    mpi = modified_policy_iteration(queue_mdp, epsilon=1e-6, sweeps=10)
    assert (mpi.values - exact.values).abs().max() < 1e-5
    assert mpi.iterations < value_iteration(queue_mdp, epsilon=1e-6).iterations


def test_inexact_policy_iteration_matches_quantecon_and_certifies_epsilon(queue_mdp):
    qe = pytest.importorskip("quantecon")
    transitions, rewards, discount = random_mdp(seed=2, discount=0.99)
    ours = inexact_policy_iteration(FiniteMDP.from_matrices(transitions, rewards, discount), epsilon=1e-8)
    theirs = qe.markov.DiscreteDP(rewards, np.transpose(transitions, (1, 0, 2)), discount).solve(
        method="policy_iteration"
    )
    assert ours.converged and np.abs(ours.values.numpy() - theirs.v).max() < 1e-6
    assert (ours.policy.numpy() == theirs.sigma).all()
    exact = policy_iteration(queue_mdp)
    for epsilon in (1.0, 1e-3):
        result = inexact_policy_iteration(queue_mdp, epsilon=epsilon)
        regret = exact.values - policy_evaluation(queue_mdp, result.policy)
        assert result.converged and regret.max() <= epsilon + 1e-9
    # far fewer outer steps than value iteration needs sweeps at the same ε
    assert result.iterations * 5 < value_iteration(queue_mdp, epsilon=1e-3).iterations


@pytest.mark.parametrize("factored, gather", [(True, True), (True, False), (False, False)])
def test_policy_operator_is_the_chosen_actions_rows(queue_mdp, factored, gather, monkeypatch):
    monkeypatch.setattr("ctrlgym.solvers.mdp.GATHER_MAX_ACTIONS", queue_mdp.num_actions if gather else 0)
    mdp = (
        queue_mdp
        if factored
        else FiniteMDP.from_matrices(queue_mdp.scipy_transitions(), queue_mdp.rewards, queue_mdp.discount)
    )
    policy = torch.randint(0, mdp.num_actions, (mdp.num_states,), generator=torch.Generator().manual_seed(0))
    values = torch.randn(mdp.num_states, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    expected = mdp.expected_next(values)[torch.arange(mdp.num_states), policy]  # (S, 3)
    assert torch.allclose(mdp.policy_operator(policy)(values), expected, atol=1e-12)
    assert torch.allclose(mdp.policy_operator(policy)(values[:, 0]), expected[:, 0], atol=1e-12)


def test_policy_operators_patch_the_rows_of_the_states_whose_action_changed(queue_mdp):
    from ctrlgym.solvers.mdp import PolicyOperators

    mdp = FiniteMDP.from_matrices(queue_mdp.scipy_transitions(), queue_mdp.rewards, queue_mdp.discount)
    operators = PolicyOperators(mdp, patch_share=0.05)
    generator = torch.Generator().manual_seed(0)
    policy = torch.randint(0, mdp.num_actions, (mdp.num_states,), generator=generator)
    values = torch.randn(mdp.num_states, 2, dtype=torch.float64, generator=generator)
    operators(policy)
    base = operators.base
    for changed in (0, 7, mdp.num_states // 25, mdp.num_states // 2):  # none, a few, under 5 %, half
        moved = policy.clone()
        states = torch.randperm(mdp.num_states, generator=generator)[:changed]
        moved[states] = (moved[states] + 1) % mdp.num_actions
        applied = operators(moved)(values)
        assert torch.equal(applied, mdp.policy_operator(moved)(values))  # the same values, bit for bit
        assert (operators.base is base) == (changed <= 0.05 * mdp.num_states)  # patched, or selected afresh
    empty_rows = torch.sparse_csr_tensor(  # rows with no entries between the selected ones
        torch.tensor([0, 2, 2, 3, 3, 5]),
        torch.tensor([0, 1, 2, 0, 2]),
        torch.arange(5.0),
        size=(5, 3),
        check_invariants=True,
    )
    from ctrlgym.solvers.mdp import _select_rows

    rows = torch.tensor([4, 1, 0, 3, 2, 0])
    assert torch.equal(_select_rows(empty_rows, rows, None, 1).to_dense(), empty_rows.to_dense()[rows])


def test_large_policy_evaluation_matches_a_sparse_direct_solve():
    mdp = MultiClassQueue(num_envs=1, buffer_size=10, discount=0.99).exact_model()  # 5,324 states: the iterative path
    policy = mdp.rewards.argmax(dim=1)
    transition, reward = mdp.policy_matrix(policy)
    direct = sp.linalg.spsolve((sp.identity(mdp.num_states) - 0.99 * transition).tocsc(), reward)
    assert np.abs(policy_evaluation(mdp, policy).numpy() - direct).max() < 1e-6


def test_backward_induction_converges_to_the_discounted_values_and_batches_rewards(queue_mdp):
    exact = policy_iteration(queue_mdp)
    values, policies = backward_induction(queue_mdp, horizon=2000)
    assert (values - exact.values).abs().max() < 1e-4 and policies.shape == (2000, queue_mdp.num_states)
    scaled = torch.stack([queue_mdp.rewards, 2 * queue_mdp.rewards], dim=2)  # (S, A, 2): two problems, one pass
    batched, _ = backward_induction(queue_mdp, horizon=5, rewards=scaled)
    single, _ = backward_induction(queue_mdp, horizon=5)
    assert torch.allclose(batched[:, 0], single) and torch.allclose(batched[:, 1], 2 * single)


def test_exact_model_rows_are_distributions_and_reward_is_holding_cost(queue_mdp):
    assert queue_mdp.transitions is None, "the queue model is held by its factors"
    for action in range(queue_mdp.num_actions):
        matrix = queue_mdp.transition_matrix(action)
        dense = matrix.to_dense() if matrix.layout != torch.strided else matrix
        assert torch.allclose(dense.sum(1), torch.ones(queue_mdp.num_states, dtype=torch.float64))
    env = MultiClassQueue(num_envs=1, buffer_size=4)
    obs = torch.tensor([[2, 0, 4, 1]])
    state = int(env.state_index(obs)[0])
    assert queue_mdp.rewards[state, 0] == -(3.0 * 2 + 1.0 * 0 + 0.5 * 4)


def test_simulator_transition_frequencies_match_the_exact_model(queue_mdp):
    n = 20_000
    env = MultiClassQueue(num_envs=n, buffer_size=4, max_episode_steps=None)
    env.reset(seed=0)
    for start, action in (([2, 0, 4, 1], 0), ([1, 3, 0, 0], 2)):
        env.queue_lengths = torch.tensor([start[:3]] * n)
        env.slow_state = torch.full((n,), start[3])
        state = int(env.state_index(torch.tensor([start]))[0])
        obs, *_ = env.step(torch.full((n,), action))
        counts = torch.bincount(env.state_index(obs), minlength=queue_mdp.num_states).double() / n
        matrix = queue_mdp.transition_matrix(action)
        row = (matrix.to_dense() if matrix.layout != torch.strided else matrix)[state]
        standard_error = torch.sqrt(row * (1 - row) / n) + 1e-12
        assert ((counts - row).abs() <= 5 * standard_error + 1e-9).all()
        assert counts[row == 0].sum() == 0


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda P, R: P.__setitem__((1, 3, 3), P[1, 3, 3] + 0.1), "P\\[1\\] row of state 3 sums to"),
        (
            lambda P, R: P.__setitem__((0, 2, slice(None)), np.r_[-0.5, 1.5, np.zeros(P.shape[2] - 2)]),
            "P\\[0\\] row of state 2 has a negative",
        ),
        (lambda P, R: P.__setitem__((2, 5, 0), np.nan), "P\\[2\\] row of state 5 holds NaN"),
        (lambda P, R: R.__setitem__((7, 1), np.nan), "reward of state 7, action 1 is not finite"),
    ],
)
def test_bad_models_raise_value_errors_naming_state_and_action(mutate, message):
    transitions, rewards, discount = random_mdp(num_states=10, num_actions=3)
    mutate(transitions, rewards)
    with pytest.raises(ValueError, match=message):
        FiniteMDP.from_matrices(transitions, rewards, discount)


def test_shape_and_discount_errors():
    transitions, rewards, discount = random_mdp(num_states=10, num_actions=3)
    with pytest.raises(ValueError, match="rewards must have shape"):
        FiniteMDP.from_matrices(transitions, rewards.T, discount)
    with pytest.raises(ValueError, match="discount"):
        FiniteMDP.from_matrices(transitions, rewards, 1.0)


def test_solvers_run_on_the_env_device(device):
    mdp = MultiClassQueue(num_envs=1, buffer_size=3).exact_model(device=device)
    for solve in (value_iteration, inexact_policy_iteration):
        result = solve(mdp, epsilon=1e-3)
        assert result.values.device.type == torch.device(device).type and result.converged
    assert policy_evaluation(mdp, result.policy).device.type == torch.device(device).type


def test_bicgstab_solves_a_nonsymmetric_system_to_its_tolerance():
    from ctrlgym.solvers.krylov import bicgstab

    generator = torch.Generator().manual_seed(0)
    matrix = (
        torch.eye(50, dtype=torch.float64)
        + 0.3 * torch.rand(50, 50, dtype=torch.float64, generator=generator) / 50**0.5
    )
    rhs = torch.randn(50, dtype=torch.float64, generator=generator)
    solution, residual, products = bicgstab(lambda v: matrix @ v, rhs, torch.zeros(50, dtype=torch.float64), 1e-10)
    assert residual <= 1e-10 and products < 100
    assert torch.allclose(solution, torch.linalg.solve(matrix, rhs), atol=1e-8)


def test_bicgstab_returns_its_best_iterate_when_the_recursion_breaks_down():
    from ctrlgym.solvers.krylov import bicgstab

    swap = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)  # b ⟂ A b: the first step breaks down
    rhs, start = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    solution, residual, _ = bicgstab(lambda v: swap @ v, rhs, start, 1e-10)
    assert residual == 1.0 and torch.equal(solution, start)  # no exception: the caller sees it failed


def cycle_mdp(num_states=300, discount=0.99):
    """Deterministic moves round a cycle (one or two steps ahead): P_π is a shift, the worst case for Krylov."""
    shift = np.roll(np.identity(num_states), 1, axis=1)
    rewards = np.stack([np.sin(np.arange(num_states) / 7.0), 0.5 * np.cos(np.arange(num_states) / 5.0)], axis=1)
    return FiniteMDP.from_matrices([sp.csr_matrix(shift), sp.csr_matrix(shift @ shift)], rewards, discount)


def test_bicgstab_gives_up_when_it_falls_behind_plain_sweeps():
    from ctrlgym.solvers.krylov import bicgstab

    mdp = cycle_mdp()
    transition = mdp.policy_operator(torch.zeros(mdp.num_states, dtype=torch.int64))
    system = lambda v: v - mdp.discount * transition(v)  # noqa: E731
    rhs, start = mdp.rewards[:, 0], torch.zeros(mdp.num_states, dtype=torch.float64)
    _, residual, products = bicgstab(system, rhs, start, 1e-10, 1000, stall_rate=mdp.discount)
    assert residual > 1e-10 and products <= 32
    _, _, patient = bicgstab(system, rhs, start, 1e-10, 1000)
    assert patient > products


def test_inexact_policy_iteration_falls_back_to_sweeps_on_a_deterministic_cycle():
    mdp = cycle_mdp()
    exact = policy_iteration(mdp)
    result = inexact_policy_iteration(mdp, epsilon=1e-4)
    assert result.converged and (exact.values - policy_evaluation(mdp, result.policy)).max() <= 1e-4
