"""The mix-up regime: which mixing helps a population of classifiers, and when.

Trains 16 classifiers at once on scikit-learn's digits under each fixed operation, and again with
40% of the training labels flipped, and prints the mean test accuracy of each: the setting an agent
learns to act in (MixupPolicyEnv picks the operation every stage). Needs ctrlgym[mixup].
Run: python docs/tutorials/mixup.py
"""

from __future__ import annotations

from ctrlgym.envs.mixup import FixedOperation, MixupPolicyEnv


def test_accuracy(operation: str, label_noise: float, seed: int = 0) -> float:
    env = MixupPolicyEnv(num_envs=16, dataset="digits", budget=8, label_noise=label_noise)
    policy = FixedOperation(env, operation)
    obs, _ = env.reset(seed=seed)
    while True:
        obs, _, terminated, truncated, info = env.step(policy(obs))
        if bool((terminated | truncated).all()):  # an episode is one training run of `budget` stages
            return float(info["test_accuracy"].mean())


if __name__ == "__main__":
    for noise in (0.0, 0.4):
        scores = {operation: test_accuracy(operation, noise) for operation in ("none", "mixup", "cutmix")}
        print(f"label noise {noise:.0%}: " + ", ".join(f"{op} {acc:.1%}" for op, acc in scores.items()))
    # an agent instead of a fixed operation: `ctrlgym train configs/mixup/ppo_digits.yaml`
