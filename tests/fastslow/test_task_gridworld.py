"""TaskGridworld: moves and walls, dynamics against the exact model, the cost of ignoring the task site."""

import pytest
import torch

from ctrlgym.envs.fastslow import GoToTask, TaskGridworld
from ctrlgym.solvers import modified_policy_iteration, policy_evaluation
from ctrlgym.solvers.frozen_state import frozen_state_value_iteration, omit_slow_state


def test_moves_stop_at_walls_and_reward_is_paid_on_the_active_site():
    env = TaskGridworld(num_envs=4, slip=0.0, max_episode_steps=None)
    env.reset(seed=0)
    env.cell = torch.tensor([0, 0, 12, 4])  # (0,0), (0,0), (2,2), (0,4)
    env.slow_state = torch.tensor([0, 1, 2, 1])  # sites (0,0), (0,4), (4,2), (0,4)
    obs, rewards, *_ = env.step(torch.tensor([1, 4, 2, 0]))  # up into the wall, right, down, stay
    assert obs[:, :2].tolist() == [[0, 0], [0, 1], [3, 2], [0, 4]]
    assert torch.allclose(rewards, torch.tensor([1 - 0.05, -0.05, -0.05, 1.0]))


def test_simulator_transition_frequencies_match_the_exact_model():
    n = 20_000
    env = TaskGridworld(num_envs=n, max_episode_steps=None, slip=0.3, switch_prob=0.2)
    mdp = env.exact_model()
    env.reset(seed=0)
    env.cell, env.slow_state = torch.full((n,), 5), torch.full((n,), 1)  # (1, 0): a wall on the left
    start = env._observe()[:1]
    obs, *_ = env.step(torch.full((n,), 3))
    counts = torch.bincount(env.state_index(obs), minlength=mdp.num_states).double() / n
    row = mdp.transition_matrix(3).to_dense()[int(env.state_index(start)[0])]
    assert ((counts - row).abs() <= 5 * torch.sqrt(row * (1 - row) / n) + 1e-9).all()
    assert counts[row == 0].sum() == 0


def test_ignoring_the_task_site_is_far_from_optimal_and_frozen_state_is_near_it():
    env = TaskGridworld(num_envs=1)
    mdp = env.exact_model()
    optimal = modified_policy_iteration(mdp, 1e-8)

    def regret(policy):
        return float((optimal.values - policy_evaluation(mdp, policy)).mean() / optimal.values.abs().mean())

    assert regret(omit_slow_state(mdp, 1e-4)[0]) > 0.3
    assert regret(frozen_state_value_iteration(mdp, 10).first_step_policy) < 0.01
    observations = torch.stack(
        torch.meshgrid(torch.arange(5), torch.arange(5), torch.arange(3), indexing="ij"), -1
    ).reshape(-1, 3)
    assert regret(GoToTask(env)(observations)) < 0.05  # walking straight there is nearly optimal


@pytest.mark.parametrize(
    "kwargs, message",
    [({"size": 1}, "size"), ({"sites": [(0, 9)]}, "sites"), ({"sites": []}, "sites"), ({"slip": 2.0}, "slip")],
)
def test_invalid_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TaskGridworld(num_envs=1, **kwargs)
