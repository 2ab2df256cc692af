"""The benchmarks' peers simulate the same thing as ctrlgym's envs, so their speed ratios compare like with like."""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from numpy_peers import NumpyMultiClassQueue

from ctrlgym.envs.fastslow import MultiClassQueue


def test_the_numpy_queue_batch_has_the_envs_dynamics_time_limit_and_episode_statistics():
    n, steps = 2048, 600
    peer, env = NumpyMultiClassQueue(n, seed=1), MultiClassQueue(num_envs=n)
    env.reset(seed=1)
    rewards = {"peer": [], "ctrlgym": []}
    ended = {"peer": 0, "ctrlgym": 0}
    for _ in range(steps):
        _, reward, _, truncated, info = peer.step(np.full(n, 2))
        rewards["peer"].append(reward.mean())
        ended["peer"] += int(truncated.sum())
        _, reward, _, truncated, info_env = env.step(torch.full((n,), 2))
        rewards["ctrlgym"].append(float(reward.mean()))
        ended["ctrlgym"] += int(truncated.sum())
    # the same mean holding cost under one fixed action (different random streams: a tolerance of a few %)
    assert abs(np.mean(rewards["peer"]) / np.mean(rewards["ctrlgym"]) - 1) < 0.03
    assert ended["peer"] == ended["ctrlgym"] == 2 * n  # 256-step episodes, next-step autoreset
    assert set(info) >= {"queue_lengths", "holding_cost"}


def test_the_solver_peers_reach_the_same_optimal_values_on_the_same_flat_matrix():
    from bench_solvers_flat import contenders, random_mdp

    from ctrlgym.solvers import inexact_policy_iteration, policy_evaluation
    from ctrlgym.solvers.mdp import FiniteMDP

    matrices, rewards = random_mdp(2_000, seed=3)
    mdp = FiniteMDP.from_matrices(matrices, rewards, 0.9)
    optimum = inexact_policy_iteration(mdp, epsilon=1e-10).values
    entries = contenders(matrices, rewards, 0.9, 1e-4, mdp, include_mdpsolver=True)
    assert {name.split()[0] for name in entries} == {"ctrlgym", "quantecon", "mdpsolver"}
    for name, prepare in entries.items():
        values = policy_evaluation(mdp, torch.as_tensor(np.asarray(prepare()()), dtype=torch.long))
        assert float((optimum - values).max()) < 1e-4, name  # every contender's policy is ε-optimal
