"""InventoryControl: ordering rules, dynamics and expected rewards against the exact model, baselines."""

import pytest
import torch

from ctrlgym.envs.fastslow import InventoryControl, ReorderPoint
from ctrlgym.solvers import modified_policy_iteration, policy_evaluation
from ctrlgym.solvers.frozen_state import omit_slow_state


def test_orders_are_capped_by_capacity_and_pay_fixed_and_unit_costs():
    env = InventoryControl(num_envs=3, max_episode_steps=None, mean_demand=1e-9)  # no demand: the step is deterministic
    env.reset(seed=0)
    env.stock = torch.tensor([0, 15, 20])
    env.slow_state = torch.tensor([0, 1, 2])  # unit costs 2, 6, 10
    _, rewards, _, _, info = env.step(torch.tensor([4, 10, 3]))
    assert env.stock.tolist() == [4, 20, 20]  # the second order is cut to 5, the third to 0
    expected = torch.tensor([-20 - 2 * 4 - 0.5 * 4, -20 - 6 * 5 - 0.5 * 20, -0.5 * 20])
    assert torch.allclose(rewards, expected)
    assert info["ordered"].tolist() == [4.0, 5.0, 0.0]


def test_simulator_transition_frequencies_match_the_exact_model():
    n = 20_000
    env = InventoryControl(num_envs=n, max_episode_steps=None, switch_prob=0.2)
    mdp = env.exact_model()
    env.reset(seed=0)
    env.stock, env.slow_state = torch.full((n,), 3), torch.full((n,), 1)
    start = env._observe()[:1]
    obs, *_ = env.step(torch.full((n,), 2))
    counts = torch.bincount(env.state_index(obs), minlength=mdp.num_states).double() / n
    row = mdp.transition_matrix(2).to_dense()[int(env.state_index(start)[0])]
    assert ((counts - row).abs() <= 5 * torch.sqrt(row * (1 - row) / n) + 1e-9).all()
    assert counts[row == 0].sum() == 0


def test_exact_rewards_are_the_simulators_expected_rewards():
    n = 50_000
    env = InventoryControl(num_envs=n, max_episode_steps=None)
    mdp = env.exact_model()
    env.reset(seed=2)
    env.stock, env.slow_state = torch.full((n,), 6), torch.full((n,), 2)
    state = int(env.state_index(env._observe()[:1])[0])
    _, rewards, *_ = env.step(torch.full((n,), 1))
    standard_error = float(rewards.std()) / n**0.5
    assert float(rewards.mean()) == pytest.approx(float(mdp.rewards[state, 1]), abs=5 * standard_error)


def test_the_slow_cost_matters_and_the_optimal_policy_beats_the_heuristics():
    env = InventoryControl(num_envs=1)
    mdp = env.exact_model()
    optimal = modified_policy_iteration(mdp, 1e-6)
    omit_regret = (
        optimal.values - policy_evaluation(mdp, omit_slow_state(mdp, 1e-4)[0])
    ).mean() / optimal.values.abs().mean()
    assert omit_regret > 0.1  # ignoring the wholesale cost orders at a loss when it is high
    reorder = ReorderPoint(env)
    states = torch.stack(torch.meshgrid(torch.arange(21), torch.arange(3), indexing="ij"), -1).reshape(-1, 2)
    reorder_values = policy_evaluation(mdp, reorder(states)[torch.argsort(env.state_index(states))])
    assert (
        bool((optimal.values >= reorder_values - 1e-6).all()) and float((optimal.values - reorder_values).mean()) > 1.0
    )


def test_reorder_point_orders_up_to_s_when_low():
    env = InventoryControl(num_envs=1)
    rule = ReorderPoint(env, reorder_point=5, order_up_to=12)
    actions = rule(torch.tensor([[3, 0], [5, 1], [6, 2], [0, 0]]))
    assert actions.tolist() == [9, 7, 0, 10]  # the last one is capped by max_order


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"capacity": 0}, "capacity"),
        ({"unit_costs": []}, "unit_costs"),
        ({"mean_demand": 0}, "mean_demand"),
        ({"discount": 1.0}, "discount"),
    ],
)
def test_invalid_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InventoryControl(num_envs=1, **kwargs)
