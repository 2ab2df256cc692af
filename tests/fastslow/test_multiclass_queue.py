"""MultiClassQueue dynamics and baselines, checked against the model in its docstring."""

import pytest
import torch

from ctrlgym.envs.fastslow import CMuRule, LongestQueue, MultiClassQueue, RandomAction
from ctrlgym.experiment.evaluation import evaluate_policy


def _run(env, policy, steps):
    obs, _ = env.reset(seed=0)
    history = [obs]
    for _ in range(steps):
        obs, rewards, *_ = env.step(policy(obs))
        history.append(obs)
    return torch.stack(history)  # (steps + 1, num_envs, K + 1)


def test_queues_stay_within_capacity_and_slow_state_within_range():
    env = MultiClassQueue(num_envs=64, buffer_size=4, arrival_probs=(0.9, 0.9, 0.9), switch_prob=0.3)
    history = _run(env, LongestQueue(env), 200)
    assert history[..., :3].min() >= 0 and history[..., :3].max() == 4
    assert set(history[..., 3].unique().tolist()) == {0, 1}


def test_reward_is_minus_holding_cost_of_the_pre_step_queues():
    env = MultiClassQueue(num_envs=32, switch_prob=0.2)
    obs, _ = env.reset(seed=1)
    for _ in range(30):
        actions = torch.randint(0, 3, (32,))
        expected = -(env.holding_costs[obs[:, 3]] * obs[:, :3]).sum(dim=1)
        obs, rewards, *_ = env.step(actions)
        assert torch.allclose(rewards, expected)


def test_served_class_loses_one_job_when_service_is_certain():
    env = MultiClassQueue(
        num_envs=8, arrival_probs=(1.0, 1.0, 1.0), service_probs=(1.0, 1.0, 1.0), max_episode_steps=None
    )
    env.reset(seed=0)
    for _ in range(3):  # fill: class 0 is served each step, 1 and 2 grow
        obs, *_ = env.step(torch.zeros(8, dtype=torch.long))
    assert obs[:, :3].tolist() == [[1, 3, 3]] * 8
    arrival_free = MultiClassQueue(num_envs=8, arrival_probs=(0.0, 0.0, 0.0), service_probs=(1.0, 1.0, 1.0))
    arrival_free.reset(seed=0)
    arrival_free.queue_lengths = obs[:, :3].clone()
    obs, *_ = arrival_free.step(torch.ones(8, dtype=torch.long))
    assert obs[:, :3].tolist() == [[1, 2, 3]] * 8


def test_empirical_rates_match_arrival_and_switch_probabilities():
    n, steps = 4096, 50
    env = MultiClassQueue(
        num_envs=n, arrival_probs=(0.1, 0.3, 0.5), service_probs=(0.0, 0.0, 0.0), switch_prob=0.05, buffer_size=100
    )
    obs, _ = env.reset(seed=0)
    switches = 0
    for _ in range(steps):
        new_obs, *_ = env.step(torch.zeros(n, dtype=torch.long))
        switches += (new_obs[:, 3] != obs[:, 3]).sum().item()
        obs = new_obs
    arrival_rate = obs[:, :3].float().mean(dim=0) / steps
    assert torch.allclose(arrival_rate, torch.tensor([0.1, 0.3, 0.5]), atol=0.01)  # ~8 standard errors
    assert abs(switches / (n * steps) - 0.05) < 0.003


def test_slow_state_never_moves_without_switching_and_always_moves_with_certain_switching():
    frozen = MultiClassQueue(num_envs=16, switch_prob=0.0, holding_costs=((1, 1, 1), (2, 2, 2), (3, 3, 3)))
    history = _run(frozen, LongestQueue(frozen), 40)[..., 3]
    assert (history == history[0]).all()
    flipping = MultiClassQueue(num_envs=16, switch_prob=1.0)
    history = _run(flipping, LongestQueue(flipping), 10)[..., 3]
    assert (history[1:] != history[:-1]).all()


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"arrival_probs": (0.2, 1.5, 0.1)}, "arrival_probs"),
        ({"service_probs": (0.5, 0.5)}, "service_probs"),
        ({"holding_costs": ((1.0, 2.0),)}, "holding_costs"),
        ({"holding_costs": ((1.0, float("nan"), 2.0),)}, "holding_costs"),
        ({"switch_prob": -0.1}, "switch_prob"),
        ({"discount": 1.0}, "discount"),
        ({"buffer_size": 0}, "buffer_size"),
        ({"num_envs": 0}, "num_envs"),
    ],
)
def test_invalid_parameters_raise_value_error_naming_the_parameter(kwargs, key):
    with pytest.raises(ValueError, match=key):
        MultiClassQueue(**{"num_envs": 2, **kwargs})


def test_c_mu_rule_follows_the_slow_state():
    env = MultiClassQueue(num_envs=2)
    observations = torch.tensor([[2, 2, 2, 0], [2, 2, 2, 1]])
    # z=0: c*mu = (0.6, 1.0, 1.2) -> class 2;  z=1: c*mu = (1.8, 0.5, 0.2) -> class 0
    assert CMuRule(env)(observations).tolist() == [2, 0]
    # an empty queue is never chosen while another has jobs
    assert CMuRule(env)(torch.tensor([[1, 1, 0, 0]])).tolist() == [1]


def test_longest_queue_and_random_baselines():
    env = MultiClassQueue(num_envs=1)
    assert LongestQueue(env)(torch.tensor([[1, 5, 3, 0], [4, 0, 4, 1]])).tolist() == [1, 0]
    actions = RandomAction(env, seed=0)(torch.zeros(3000, 4, dtype=torch.long))
    assert torch.bincount(actions, minlength=3).min() > 900


def test_c_mu_beats_longest_queue_and_random_on_the_default_instance(device):
    score = {
        name: evaluate_policy(make, "ctrlgym/MultiClassQueue-v0", episodes=128, seed=7, device=device)["mean_return"]
        for name, make in [("c_mu", CMuRule), ("longest", LongestQueue), ("random", lambda env: RandomAction(env, 0))]
    }
    assert score["c_mu"] > score["longest"] > score["random"]
