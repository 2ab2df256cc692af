"""Classifier-training steps per second: the vectorised population vs the same classifiers one by one.

64 MLP classifiers (64-64-10) on scikit-learn's digits, minibatches of 64 mixed by Mixup. Ours:
``MixupPolicyEnv``'s stacked weights, one batched forward/backward for all 64. Peer: 64 separate
``nn.Sequential`` models with ``torch.optim.SGD``, trained one after another on the same kind of
batches (extra row), and the standard way to batch models in torch: the same 64 models' parameters
stacked (``torch.func.stack_module_state``) and trained with ``vmap(grad(functional_call))``
and the same SGD with momentum. One step = one SGD step of one classifier; ratios printed from
one run; provenance and results in ``benchmarks/results/bench_mixup.json``.

    python benchmarks/bench_mixup.py                    # CPU
    python benchmarks/bench_mixup.py --device cuda
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from provenance import (
    header,
    provenance,
    write_results,
)  # benchmarks/provenance.py: run as scripts, their folder is on sys.path
from torch import nn

from ctrlgym.envs.mixup import MixupPolicyEnv
from ctrlgym.envs.mixup.mixing import mixup


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


def vmap_steps_per_second(population: int, steps: int, device: str) -> float:
    import copy

    from torch.func import functional_call, grad, stack_module_state, vmap

    env = MixupPolicyEnv(num_envs=1, operations=("mixup",), device=device)  # only its data tensors are used
    generator = torch.Generator(device=env.device).manual_seed(0)
    x_all, y_all = env.train_x, env.train_y
    models = [
        nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).to(env.device)
        for _ in range(population)
    ]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def loss(p, b, x, y):
        return -(y * torch.log_softmax(functional_call(base, (p, b), (x,)), -1)).sum(-1).mean()

    gradients = vmap(grad(loss))
    velocity = {name: torch.zeros_like(value) for name, value in params.items()}

    def one_step() -> None:
        index = torch.randint(0, len(x_all), (population, 64), generator=generator, device=env.device)
        y = nn.functional.one_hot(y_all[index], 10).float()
        perm = torch.rand((population, 64), generator=generator, device=env.device).argsort(-1)
        x, y = mixup(x_all[index], y, perm, alpha=1.0, generator=generator)
        with torch.no_grad():
            for name, g in gradients(params, buffers, x, y).items():
                velocity[name].mul_(0.9).add_(g)
                params[name].sub_(0.05 * velocity[name])

    one_step()  # warm-up
    _sync(env.device)
    start = time.perf_counter()
    for _ in range(steps):
        one_step()
    _sync(env.device)
    return population * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--population", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100, help="SGD steps per classifier")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "bench_mixup.json"))
    args = parser.parse_args()
    info = provenance(args.device)
    print(header(info))
    ours = population_steps_per_second(args.population, args.steps, args.device)
    vmapped = vmap_steps_per_second(args.population, args.steps, args.device)
    loop = one_by_one_steps_per_second(args.population, args.steps, args.device)
    print(
        f"digits, MLP 64-64-10, batch 64, Mixup; {args.population} classifiers x {args.steps} SGD steps on {args.device}"
    )
    print(f"ctrlgym population (stacked weights)   {ours:12,.0f} classifier-steps/s")
    print(
        f"torch.func vmap(grad(functional_call)) {vmapped:12,.0f} classifier-steps/s   ours / vmap: {ours / vmapped:.2f}x"
    )
    print(f"one after another (nn.Sequential+SGD)  {loop:12,.0f} classifier-steps/s   ours / loop: {ours / loop:.1f}x")
    results = {"population": args.population, "steps": args.steps, "ctrlgym": ours, "vmap": vmapped, "one_by_one": loop}
    print(f"results: {write_results(args.json, info, results)}")


if __name__ == "__main__":
    main()
