"""Beamforming with a CNN channel predictor trained on the rate its precoder gets.

Users move at 30 km/h, so the newest channel estimate is stale when the base station transmits. The
ChannelPredictor (a CNN that corrects the blind Wiener prediction) is trained for a tutorial's
budget on the sum rate of the RZF precoder it feeds (the rate loss of arXiv 2202.07998), then
compared with RZF on the stale estimate, on the blind Wiener prediction and on the true channel.
Run: python docs/tutorials/beamforming_cnn.py
"""

from __future__ import annotations

import torch

from ctrlgym.envs.beamforming import BeamformingEnv, ChannelPredictor, ClassicPrecoder


def mean_sum_rate(policy_for, seed: int = 1) -> float:
    env = BeamformingEnv(num_envs=128, antennas=8, users=4, speed_kmh=30, max_episode_steps=50)
    policy = policy_for(env)
    obs, _ = env.reset(seed=seed)
    total = 0.0
    for _ in range(50):
        obs, reward, *_ = env.step(policy(obs))
        total += float(reward.mean())
    return total / 50


if __name__ == "__main__":
    torch.manual_seed(0)
    train_env = BeamformingEnv(num_envs=128, antennas=8, users=4, speed_kmh=30, max_episode_steps=50)
    predictor = ChannelPredictor(train_env, loss="rate", seed=0).learn(train_env, total_timesteps=128 * 300)
    for name, policy_for in (
        ("RZF, stale estimate", lambda env: ClassicPrecoder(env, "rzf", "stale")),
        ("RZF, blind Wiener prediction", lambda env: ClassicPrecoder(env, "rzf", "estimated")),
        ("RZF, CNN predictor (rate loss)", lambda env: predictor),
        ("RZF, true channel (ceiling)", lambda env: ClassicPrecoder(env, "rzf", "perfect")),
    ):
        print(f"{name:32s} {mean_sum_rate(policy_for):.2f} bit/s/Hz")
