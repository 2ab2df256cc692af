"""Classifier-training steps per second: the vectorised population vs the same classifiers one by one.

64 MLP classifiers (64-64-10) on scikit-learn's digits, minibatches of 64 mixed by Mixup. Ours:
``MixupPolicyEnv``'s stacked weights, one batched forward/backward for all 64. Peer: 64 separate
``nn.Sequential`` models with ``torch.optim.SGD``, trained one after another on the same kind of
batches. One step = one SGD step of one classifier; ratio printed from one run.

    python benchmarks/bench_mixup.py                    # CPU
    python benchmarks/bench_mixup.py --device cuda
"""

from __future__ import annotations

import argparse
import time

import torch
from ctrlgym.envs.mixup import MixupPolicyEnv
from ctrlgym.envs.mixup.mixing import mixup
from torch import nn


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def population_steps_per_second(population: int, steps: int, device: str) -> float:
    env = MixupPolicyEnv(num_envs=population, operations=("mixup",), device=device)
    env.reset(seed=0)
    operations = torch.zeros(population, dtype=torch.long, device=env.device)
    env.sgd_step(*env.mixed_batch(operations))  # warm-up
    _sync(env.device)
    start = time.perf_counter()
    for _ in range(steps):
        env.sgd_step(*env.mixed_batch(operations))
    _sync(env.device)
    return population * steps / (time.perf_counter() - start)


def one_by_one_steps_per_second(population: int, steps: int, device: str) -> float:
    env = MixupPolicyEnv(num_envs=1, operations=("mixup",), device=device)  # only its data tensors are used
    generator = torch.Generator(device=env.device).manual_seed(0)
    x_all, y_all = env.train_x, env.train_y
    _sync(env.device)
    start = time.perf_counter()
    for _ in range(population):
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).to(env.device)
        optimiser = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for _ in range(steps):
            index = torch.randint(0, len(x_all), (1, 64), generator=generator, device=env.device)
            y = nn.functional.one_hot(y_all[index], 10).float()
            perm = torch.rand((1, 64), generator=generator, device=env.device).argsort(-1)
            x, y = mixup(x_all[index], y, perm, alpha=1.0, generator=generator)
            optimiser.zero_grad()
            loss = -(y[0] * torch.log_softmax(model(x[0]), -1)).sum(-1).mean()
            loss.backward()
            optimiser.step()
    _sync(env.device)
    return population * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--population", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100, help="SGD steps per classifier")
    args = parser.parse_args()
    ours = population_steps_per_second(args.population, args.steps, args.device)
    peer = one_by_one_steps_per_second(args.population, args.steps, args.device)
    print(f"digits, MLP 64-64-10, batch 64, Mixup; {args.population} classifiers x {args.steps} SGD steps on {args.device}")
    print(f"vectorised population   {ours:12,.0f} classifier-steps/s")
    print(f"one after another       {peer:12,.0f} classifier-steps/s")
    print(f"ratio                   {ours / peer:12.1f}x")


if __name__ == "__main__":
    main()
