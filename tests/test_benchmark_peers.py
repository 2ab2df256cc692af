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
