"""EnergyStorage: trading rules, dynamics against the exact model, baselines."""

import pytest
import torch

from ctrlgym.envs.fastslow import EnergyStorage, PriceThreshold


def test_trades_move_the_battery_and_pay_the_effective_price():
    env = EnergyStorage(num_envs=4, max_episode_steps=None)
    env.reset(seed=0)
    env.battery = torch.tensor([5, 0, 10, 5])
    env.realtime_level = torch.tensor([4, 0, 0, 2])  # prices 50, 10, 10, 30
    env.slow_state = torch.tensor([2, 0, 0, 1])  # day-ahead 40, 20, 20, 30
    _, rewards, *_ = env.step(torch.tensor([2, 2, 0, 1]))  # sell, sell at empty, buy at full, idle
    assert torch.allclose(rewards, torch.tensor([0.5 * 50 + 0.5 * 40 - 2.0, 0.0, 0.0, 0.0]))
    assert env.battery.tolist() == [4, 0, 10, 5]


def test_simulator_transition_frequencies_match_the_exact_model():
    n = 20_000
    env = EnergyStorage(num_envs=n, max_episode_steps=None, switch_prob=0.2)
    mdp = env.exact_model()
    env.reset(seed=0)
    start = torch.tensor([[3, 0, 2]])
    env.battery, env.realtime_level, env.slow_state = (
        start[:, 0].repeat(n),
        start[:, 1].repeat(n),
        start[:, 2].repeat(n),
    )
    obs, *_ = env.step(torch.zeros(n, dtype=torch.long))
    counts = torch.bincount(env.state_index(obs), minlength=mdp.num_states).double() / n
    row = mdp.transition_matrix(0).to_dense()[int(env.state_index(start)[0])]
    assert ((counts - row).abs() <= 5 * torch.sqrt(row * (1 - row) / n) + 1e-9).all()
    assert counts[row == 0].sum() == 0


def test_exact_rewards_match_the_simulator():
    env = EnergyStorage(num_envs=1, max_episode_steps=None)
    mdp = env.exact_model()
    env.reset(seed=1)
    for action in (0, 2, 2, 1, 0):
        obs = env._observe()
        _, reward, *_ = env.step(torch.tensor([action]))
        assert mdp.rewards[int(env.state_index(obs)[0]), action] == pytest.approx(float(reward[0]))


def test_threshold_buys_cheap_and_sells_dear():
    env = EnergyStorage(num_envs=1)
    observations = torch.tensor([[5, 0, 0], [5, 4, 2], [5, 2, 1]])  # cheap, dear, average
    assert PriceThreshold(env)(observations).tolist() == [0, 2, 1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"capacity": 0}, "capacity"),
        ({"price_move_prob": 0.7}, "price_move_prob"),
        ({"dayahead_prices": []}, "dayahead_prices"),
    ],
)
def test_invalid_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EnergyStorage(num_envs=1, **kwargs)
