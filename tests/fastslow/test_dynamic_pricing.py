"""DynamicPricing: reference-price demand, dynamics and expected revenue against the exact model."""

import pytest
import torch

from ctrlgym.envs.fastslow import DynamicPricing, MyopicPrice
from ctrlgym.solvers import modified_policy_iteration, policy_evaluation
from ctrlgym.solvers.frozen_state import frozen_state_value_iteration, omit_slow_state


def test_buyers_are_loss_averse_around_the_reference_price():
    env = DynamicPricing(num_envs=1)
    market, reference = torch.tensor(35.0), torch.tensor(10.0)
    at_reference = env.demand_rate(torch.tensor(10.0), reference, market)
    assert float(at_reference) == pytest.approx(35 - 2 * 10)
    gain = env.demand_rate(torch.tensor(9.0), reference, market) - at_reference  # 1 below: +b +η⁺
    loss = at_reference - env.demand_rate(torch.tensor(11.0), reference, market)  # 1 above: −b −η⁻
    assert float(gain) == pytest.approx(3.0) and float(loss) == pytest.approx(4.0)


def test_reference_price_moves_toward_the_posted_price_without_drift():
    n = 40_000
    env = DynamicPricing(num_envs=n, max_episode_steps=None, switch_prob=0.0)
    env.reset(seed=0)
    env.reference = torch.full((n,), 8)  # price 13
    env.step(torch.full((n,), 0))  # post 5: target 0.7 * 13 + 0.3 * 5 = 10.6
    assert set(env.reference.unique().tolist()) == {5, 6}  # grid prices 10 and 11
    assert float(env.prices[env.reference].mean()) == pytest.approx(10.6, abs=0.02)


def test_simulator_transition_frequencies_and_revenue_match_the_exact_model():
    n = 40_000
    env = DynamicPricing(num_envs=n, max_episode_steps=None, switch_prob=0.2)
    mdp = env.exact_model()
    env.reset(seed=1)
    env.reference, env.slow_state = torch.full((n,), 3), torch.full((n,), 2)
    start = env._observe()[:1]
    obs, rewards, *_ = env.step(torch.full((n,), 6))
    counts = torch.bincount(env.state_index(obs), minlength=mdp.num_states).double() / n
    state = int(env.state_index(start)[0])
    row = mdp.transition_matrix(6).to_dense()[state]
    assert ((counts - row).abs() <= 5 * torch.sqrt(row * (1 - row) / n) + 1e-9).all()
    assert counts[row == 0].sum() == 0
    standard_error = float(rewards.std()) / n**0.5
    assert float(rewards.mean()) == pytest.approx(float(mdp.rewards[state, 6]), abs=5 * standard_error)


def test_frozen_state_is_near_optimal_and_omitting_the_market_or_pricing_myopically_is_not():
    env = DynamicPricing(num_envs=1)
    mdp = env.exact_model()
    optimal = modified_policy_iteration(mdp, 1e-8)

    def regret(policy):
        return float((optimal.values - policy_evaluation(mdp, policy)).mean() / optimal.values.abs().mean())

    assert regret(frozen_state_value_iteration(mdp, 10).first_step_policy) < 1e-3
    assert regret(omit_slow_state(mdp, 1e-4)[0]) > 0.05
    states = torch.stack(torch.meshgrid(torch.arange(10), torch.arange(3), indexing="ij"), -1).reshape(-1, 2)
    assert regret(MyopicPrice(env)(states)) > 0.02  # cheap today lowers the reference for tomorrow


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"prices": [5.0]}, "prices"),
        ({"prices": [6.0, 5.0]}, "increasing"),
        ({"market_sizes": []}, "market_sizes"),
        ({"memory": 1.5}, "memory"),
    ],
)
def test_invalid_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DynamicPricing(num_envs=1, **kwargs)
