"""RestlessBandit: dynamics against its exact model, baselines and the fast-slow solvers."""

import numpy as np
import pytest
import torch

from ctrlgym.envs.fastslow import MyopicArms, RestlessBandit
from ctrlgym.solvers import policy_evaluation, policy_iteration
from ctrlgym.solvers.frozen_state import frozen_state_value_iteration, omit_slow_state


def test_actions_are_the_m_subsets_of_arms():
    env = RestlessBandit(num_envs=1, num_arms=4, active_arms=2)
    assert env.single_action_space.n == 6 and env.arm_subsets.sum(1).tolist() == [2] * 6
    assert len({tuple(row.tolist()) for row in env.arm_subsets}) == 6


def test_reward_is_the_active_arms_state_times_the_slow_multiplier():
    env = RestlessBandit(num_envs=3, max_episode_steps=None)
    env.reset(seed=0)
    env.arm_state = torch.tensor([[2, 1, 0, 2]] * 3)
    env.slow_state = torch.tensor([0, 1, 1])
    _, rewards, *_ = env.step(torch.tensor([0, 0, 3]))  # arm 0 under y=0, y=1; arm 3 under y=1
    assert torch.allclose(rewards, torch.tensor([2 * 1.0, 2 * 0.2, 2 * 1.0]))


def test_simulator_transition_frequencies_match_the_exact_model():
    n = 20_000
    env = RestlessBandit(num_envs=n, max_episode_steps=None)
    mdp = env.exact_model()
    env.reset(seed=0)
    start = torch.tensor([[2, 0, 1, 2, 1]])
    env.arm_state, env.slow_state = start[:, :4].repeat(n, 1), start[:, 4].repeat(n)
    obs, *_ = env.step(torch.full((n,), 2))
    counts = torch.bincount(env.state_index(obs), minlength=mdp.num_states).double() / n
    row = mdp.transition_matrix(2).to_dense()[int(env.state_index(start)[0])]
    assert ((counts - row).abs() <= 5 * torch.sqrt(row * (1 - row) / n) + 1e-9).all()
    assert counts[row == 0].sum() == 0


def test_myopic_plays_the_best_paying_arm():
    env = RestlessBandit(num_envs=1)
    observations = torch.tensor([[1, 2, 2, 0, 0], [1, 2, 2, 0, 1]])  # y=0 favours arms 0-1, y=1 arms 2-3
    assert MyopicArms(env)(observations).tolist() == [1, 2]


def test_frozen_state_beats_omitting_the_environmental_state():
    mdp = RestlessBandit(num_envs=1).exact_model()
    exact = policy_iteration(mdp)

    def regret(policy):
        return float((exact.values - policy_evaluation(mdp, policy)).mean() / exact.values.abs().mean() * 100)

    frozen = regret(frozen_state_value_iteration(mdp, period=10).first_step_policy)
    omitted = regret(omit_slow_state(mdp)[0])
    assert frozen < 1.0 and omitted > 10 * max(frozen, 0.1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"active_arms": 5}, "active_arms"),
        ({"arm_states": 1}, "arm_states"),
        ({"multipliers": [[1.0, 1.0]]}, "multipliers"),
        ({"active_transitions": np.full((4, 3, 3), 0.5)}, r"active_transitions\[0\] row of state 0"),
    ],
)
def test_invalid_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RestlessBandit(num_envs=1, **kwargs)
