"""Add your own environment: a batched torch env, checked, registered, and trained with SB3.

The env: a point on a line must reach 0. Each step it moves left, stays or moves right, with a
little noise; the reward is minus its distance. Run: python docs/tutorials/custom_env.py
"""

from __future__ import annotations

import gymnasium as gym
import torch
from gymnasium import spaces
from stable_baselines3 import PPO

import ctrlgym
from ctrlgym import TorchVectorEnv
from ctrlgym.adapters import SB3VecEnv
from ctrlgym.registry import register_env


class ReachZero(TorchVectorEnv):
    """A point on [-10, 10] that must reach 0: move left, stay or move right (plus noise).

    Args:
        num_envs: copies in the batch.
        noise: standard deviation of the noise added to every move.
        **kwargs: ``device``, ``autoreset_mode``, ``max_episode_steps``, ``validate_actions``.
    """

    def __init__(self, num_envs: int = 1, noise: float = 0.1, **kwargs) -> None:
        kwargs.setdefault("max_episode_steps", 50)
        super().__init__(num_envs, spaces.Box(-10.0, 10.0, (1,)), spaces.Discrete(3), **kwargs)
        self.noise = noise
        self.position = torch.zeros(num_envs, device=self.device)

    def _reset_envs(self, mask: torch.Tensor) -> None:
        # only the envs in ``mask`` restart; draws come from the batch's generator (seeding)
        start = torch.rand(self.num_envs, generator=self.generator, device=self.device) * 20 - 10
        self.position = torch.where(mask, start, self.position)

    def _step_envs(self, actions: torch.Tensor):
        noise = torch.randn(self.num_envs, generator=self.generator, device=self.device) * self.noise
        self.position = (self.position + (actions.float() - 1) + noise).clamp(-10, 10)
        rewards = -self.position.abs()
        terminated = self.position.abs() < 0.5
        return rewards, terminated, {"distance": self.position.abs()}

    def _observe(self) -> torch.Tensor:
        return self.position[:, None]


if __name__ == "__main__":
    # 1. the conformance checker: spaces, dtypes, seeding and every autoreset mode
    for mode in ("next_step", "same_step", "disabled"):
        ctrlgym.check_vector_env(ReachZero(num_envs=8, autoreset_mode=mode))

    # 2. register it: gymnasium.make, ctrlgym's CLI and configs now know it by name
    register_env(ReachZero, env_id="tutorial/ReachZero-v0", family="tutorial", summary="reach 0 on a line")
    single = gym.make("tutorial/ReachZero-v0")
    obs, info = single.reset(seed=0)
    print("one copy through Gymnasium:", obs)

    # 3. train PPO on 16 copies at once
    env = SB3VecEnv(ReachZero(num_envs=16, autoreset_mode="same_step"))
    model = PPO("MlpPolicy", env, n_steps=64, seed=0, verbose=0).learn(8_192)

    # 4. the trained policy against always staying put, on fresh seeds
    test = ReachZero(num_envs=256, autoreset_mode="disabled")
    for name, act in (
        ("ppo", lambda o: torch.as_tensor(model.predict(o.numpy(), deterministic=True)[0])),
        ("stay", lambda o: torch.ones(256, dtype=torch.long)),
    ):
        obs, _ = test.reset(seed=123)
        total = torch.zeros(256)
        for _ in range(50):
            obs, rewards, terminated, truncated, _ = test.step(act(obs))
            total += rewards
        print(f"{name}: mean return {total.mean():.1f}")
