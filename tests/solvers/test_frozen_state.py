"""Frozen-state ADP and the omit-slow-state heuristic on the multi-class queue."""

import numpy as np
import pytest
import torch

from ctrlgym.envs.fastslow import CMuRule, MultiClassQueue
from ctrlgym.experiment.evaluation import evaluate_policy
from ctrlgym.solvers import FiniteMDP, policy_evaluation, policy_iteration, value_iteration
from ctrlgym.solvers.frozen_state import (
    FrozenStatePolicy,
    TabularPolicy,
    frozen_state_value_iteration,
    linear_frozen_state_value_iteration,
    omit_slow_state,
)

KWARGS = {"buffer_size": 4, "switch_prob": 0.02}


@pytest.fixture(scope="module")
def model():
    mdp = MultiClassQueue(num_envs=1, **KWARGS).exact_model()
    return mdp, policy_iteration(mdp)


def regret_percent(mdp, exact, policy):
    return float((exact.values - policy_evaluation(mdp, policy)).mean() / exact.values.abs().mean() * 100)


def test_period_one_is_exact_value_iteration(model):
    mdp, exact = model
    frozen = frozen_state_value_iteration(mdp, period=1, epsilon=1e-6)
    vi = value_iteration(mdp, epsilon=1e-6)
    assert frozen.upper_iterations == vi.iterations
    assert torch.equal(frozen.first_step_policy, vi.policy)
    assert (frozen.values - exact.values).abs().max() < 1e-4


def test_frozen_state_is_near_optimal_and_omitting_the_slow_state_is_not(model):
    mdp, exact = model
    frozen = frozen_state_value_iteration(mdp, period=10, epsilon=1e-4)
    assert frozen.converged and frozen.upper_iterations * 10 == frozen.lower_sweeps
    frozen_regret = regret_percent(mdp, exact, frozen.first_step_policy)
    omit_policy, _ = omit_slow_state(mdp)
    omit_regret = regret_percent(mdp, exact, omit_policy)
    assert 0 <= frozen_regret < 0.5
    assert omit_regret > 5 and omit_regret > 20 * frozen_regret


def test_upper_level_needs_fewer_iterations_for_a_longer_period(model):
    mdp, _ = model
    iterations = [frozen_state_value_iteration(mdp, period=T).upper_iterations for T in (1, 5, 25)]
    assert iterations[0] > 4 * iterations[1] > 4 * 4 * iterations[2] / 5


def test_a_model_without_factorised_slow_chain_is_rejected():
    rng = np.random.default_rng(0)
    transitions = rng.random((2, 8, 8))
    transitions /= transitions.sum(2, keepdims=True)
    mdp = FiniteMDP.from_matrices(
        transitions, rng.normal(size=(8, 2)), 0.9, num_slow_states=2, slow_transition=[[0.9, 0.1], [0.1, 0.9]]
    )
    with pytest.raises(ValueError, match="does not factor"):
        frozen_state_value_iteration(mdp, period=3)
    with pytest.raises(ValueError, match="fast/slow factorisation"):
        frozen_state_value_iteration(FiniteMDP.from_matrices(transitions, rng.normal(size=(8, 2)), 0.9), period=3)


def test_solver_policies_act_in_the_batched_env(model):
    mdp, exact = model
    env = MultiClassQueue(num_envs=1, **KWARGS)
    frozen = frozen_state_value_iteration(mdp, period=10)
    omit_policy, _ = omit_slow_state(mdp)

    def score(make):
        return evaluate_policy(make, "ctrlgym/MultiClassQueue-v0", episodes=256, seed=3, **KWARGS)["mean_return"]

    optimal = score(lambda e: TabularPolicy(exact.policy, e.state_index))
    periodic = score(lambda e: FrozenStatePolicy(frozen.lower_policies, e.state_index, e.num_slow_states))
    omitted = score(lambda e: TabularPolicy(omit_policy, e.state_index))
    c_mu = score(CMuRule)
    assert omitted < min(optimal, periodic, c_mu)
    # acting on a slow state up to T-1 steps stale costs a few percent here (switches every ~50 steps)
    assert optimal >= periodic > optimal * 1.10
    assert env.state_index(torch.tensor([[4, 4, 4, 1]])).item() == mdp.num_states - 1


def test_linear_variant_with_one_hot_features_is_the_tabular_method(model):
    mdp, _ = model
    one_hot = torch.eye(mdp.num_fast_states, dtype=torch.float64)
    linear = linear_frozen_state_value_iteration(mdp, period=5, features=one_hot, epsilon=1e-6)
    tabular = frozen_state_value_iteration(mdp, period=5, epsilon=1e-6)
    assert linear.converged and torch.equal(linear.first_step_policy, tabular.first_step_policy)


def test_linear_variant_with_quadratic_features_is_near_optimal(model):
    mdp, exact = model
    levels = KWARGS["buffer_size"] + 1
    queues = torch.as_tensor(
        np.stack(np.unravel_index(np.arange(levels**3), (levels,) * 3), axis=1), dtype=torch.float64
    )
    features = torch.cat(
        [
            torch.ones(len(queues), 1),
            queues,
            queues**2,
            queues[:, [0]] * queues[:, 1:],
            queues[:, [1]] * queues[:, [2]],
        ],
        1,
    )
    result = linear_frozen_state_value_iteration(mdp, period=10, features=features)
    assert result.converged and result.weights.shape == (10, 2)
    assert regret_percent(mdp, exact, result.first_step_policy) < 2.0
    with pytest.raises(ValueError, match="one row per fast state"):
        linear_frozen_state_value_iteration(mdp, period=10, features=features[:5])


@pytest.mark.parametrize("factored", [True, False])
def test_upper_level_mpi_reaches_the_same_fixed_point_in_fewer_backups(model, factored):
    from ctrlgym.envs.fastslow import InventoryControl

    mdp = InventoryControl(num_envs=1).exact_model()  # 11 order sizes: the planned-action evaluation is cheap
    if not factored:
        mdp = FiniteMDP.from_matrices(
            mdp.scipy_transitions(),
            mdp.rewards,
            mdp.discount,
            num_slow_states=mdp.num_slow_states,
            slow_transition=mdp.slow_transition.numpy(),
        )
    vi = frozen_state_value_iteration(mdp, period=5, epsilon=1e-8)
    mpi = frozen_state_value_iteration(mdp, period=5, epsilon=1e-8, evaluation_sweeps=10)
    assert mpi.converged and (mpi.values - vi.values).abs().max() < 1e-5
    assert torch.equal(mpi.first_step_policy, vi.first_step_policy)
    assert mpi.upper_iterations * 3 < vi.upper_iterations


def test_planned_fast_reads_the_planned_action(model):
    from ctrlgym.solvers.frozen_state import FastSlowStructure

    structure = FastSlowStructure(model[0])
    generator = torch.Generator().manual_seed(0)
    policy = torch.randint(0, model[0].num_actions, (structure.num_fast, structure.num_slow), generator=generator)
    values = torch.randn(structure.num_fast, structure.num_slow, dtype=torch.float64, generator=generator)
    expected = structure.expected_fast(values).gather(2, policy[..., None])[..., 0]
    assert torch.allclose(structure.planned_fast(policy)(values), expected, atol=1e-12)
