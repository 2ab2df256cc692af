"""Env steps per second of the fast-slow families: the native batch, eager and compiled
(``compile=True``: the step fused by TorchInductor), against what a user would write instead,
measured in the same process and run: a hand-vectorised numpy batch of the same dynamics (time
limit, autoreset, episode statistics, info; `numpy_peers.py`, the strongest peer) and, for
MultiClassQueue, Gymnasium's SyncVectorEnv of the single env. MultiClassQueue is measured at
``--sizes``, every other family at ``--family-sizes``. Each point is measured in ``--rounds``
interleaved rounds, quiet and then beside one busy process (``competitor.py``); the table gives
the median ratio and its range over rounds. Ratios are ctrlgym / peer: below 1, the peer is faster.

    python benchmarks/bench_vector.py                 # CPU
    python benchmarks/bench_vector.py --device cuda   # GPU (peer stays on CPU: it is numpy)
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from competitor import busy_machine
from numpy_peers import FAMILY_PEERS
from provenance import (
    header,
    provenance,
    write_results,
)  # benchmarks/provenance.py: run as scripts, their folder is on sys.path

import ctrlgym
from ctrlgym.envs import fastslow
from ctrlgym.vector_env import PureSteps, TorchVectorEnv


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def native_env(family: str, num_envs: int, device: str, compile: bool) -> tuple[TorchVectorEnv, float]:
    """A reset batch and the seconds its first step took (for ``compile=True``: the compilation)."""
    options = {"compile": True} if compile else {}  # DynamicPricing has no compile option
    env = getattr(fastslow, family)(num_envs=num_envs, device=device, validate_actions=False, **options)
    env.reset(seed=0)
    start = time.perf_counter()
    env.step(torch.zeros(num_envs, dtype=torch.long, device=env.device))
    _sync(env.device)
    return env, time.perf_counter() - start


def native_steps_per_second(env: TorchVectorEnv, seconds: float) -> float:
    num_envs = env.num_envs
    actions = torch.randint(0, int(env.single_action_space.n), (64, num_envs), device=env.device)
    for i in range(5):  # warm-up
        env.step(actions[i])
    _sync(env.device)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for i in range(16):
            env.step(actions[(steps + i) % 64])
        steps += 16
        _sync(env.device)
    return num_envs * steps / (time.perf_counter() - start)


def sync_vector_steps_per_second(num_envs: int, seconds: float) -> float:
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("ctrlgym/MultiClassQueue-v0") for _ in range(num_envs)])
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 3, size=(64, num_envs))
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        envs.step(actions[steps % 64])
        steps += 1
    envs.close()
    return num_envs * steps / (time.perf_counter() - start)


def numpy_batch_steps_per_second(family: str, num_actions: int, num_envs: int, seconds: float) -> float:
    env = FAMILY_PEERS[family](num_envs)
    actions = np.random.default_rng(0).integers(0, num_actions, size=(64, num_envs))
    for i in range(5):  # warm-up
        env.step(actions[i])
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for i in range(16):
            env.step(actions[(steps + i) % 64])
        steps += 16
    return num_envs * steps / (time.perf_counter() - start)


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure(
    points: list[tuple[str, int]], device: str, seconds: float, rounds: int, busy: bool, sync: dict
) -> list[dict]:
    """Median steps/s and ratio (with their range over rounds) of each (family, size), eager,
    compiled (pure-step families) and numpy interleaved within each round so that drifts of the
    machine hit all of them."""
    rows = []
    for family, n in points:
        eager, _ = native_env(family, n, device, compile=False)
        contenders = {"ctrlgym": eager}
        compile_seconds = None
        if issubclass(getattr(fastslow, family), PureSteps):
            contenders["ctrlgym compiled"], compile_seconds = native_env(family, n, device, compile=True)
        num_actions = int(eager.single_action_space.n)
        rates: dict[str, list[float]] = {name: [] for name in [*contenders, "numpy_batch"]}
        with busy_machine(busy):
            for _ in range(rounds):
                for name, env in contenders.items():
                    rates[name].append(native_steps_per_second(env, seconds))
                rates["numpy_batch"].append(numpy_batch_steps_per_second(family, num_actions, n, seconds))
        row: dict = {"family": family, "num_envs": n, "machine": "busy" if busy else "quiet"}
        row["compile_seconds"] = compile_seconds
        row.update({name: statistics.median(values) for name, values in rates.items()})
        ranges = []
        for name in contenders:
            ratios = spread([a / b for a, b in zip(rates[name], rates["numpy_batch"], strict=True)])
            row[f"{name} / numpy_batch"] = ratios["median"]
            row[f"{name} / numpy_batch, range over rounds"] = f"[{ratios['min']:.2f}, {ratios['max']:.2f}]"
            ranges.append(f"{ratios['median']:>6.2f}x [{ratios['min']:.2f}, {ratios['max']:.2f}]")
        if family == "MultiClassQueue":
            row["sync_vector_env"] = sync.get(n)
        rows.append(row)
        compiled_rate = f"{row['ctrlgym compiled']:>14,.0f}" if "ctrlgym compiled" in row else f"{'-':>14}"
        compiled_ratio = ranges[1] if len(ranges) > 1 else "-"
        compiled_seconds = f"{compile_seconds:>9.1f}" if compile_seconds is not None else f"{'-':>9}"
        print(
            f"{family:>16} {n:>9} {row['machine']:>6} {row['ctrlgym']:>14,.0f} {compiled_rate} "
            f"{row['numpy_batch']:>12,.0f} {ranges[0]} {compiled_ratio:>23} {compiled_seconds}"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 1024, 16384])
    parser.add_argument("--peer-sizes", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--family-sizes", type=int, nargs="+", default=[1024, 16384])
    parser.add_argument("--families", nargs="*", default=sorted(set(FAMILY_PEERS) - {"MultiClassQueue"}))
    parser.add_argument("--seconds", type=float, default=1.0, help="measuring time per point and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-busy", action="store_true", help="skip the rounds beside a busy process")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="ctrlgym.set_num_threads for env steps (default: ctrlgym's 1; 0: torch's own)",
    )
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "bench_vector.json"))
    args = parser.parse_args()
    if args.threads is not None:
        ctrlgym.set_num_threads(args.threads)
    info = provenance(args.device)
    info["ctrlgym_threads"] = ctrlgym.get_num_threads()
    info["rounds"] = args.rounds
    print(header(info) + f"; env steps with {ctrlgym.get_num_threads() or 'torch'} thread(s)")
    sync = {n: sync_vector_steps_per_second(n, args.seconds) for n in args.peer_sizes}
    for n, rate in sync.items():
        print(f"SyncVectorEnv of the single env at {n}: {rate:,.0f} steps/s")
    print(
        f"{'family':>16} {'num_envs':>9} {'load':>6} {'eager steps/s':>14} {'compiled':>14} {'numpy batch':>12} "
        f"{'eager/numpy [range]':>20} {'compiled/numpy [range]':>23} {'compile s':>9}"
    )
    points = [("MultiClassQueue", n) for n in sorted(set(args.sizes) | set(args.peer_sizes))]
    points += [(family, n) for family in args.families for n in args.family_sizes]
    rows = measure(points, args.device, args.seconds, args.rounds, busy=False, sync=sync)
    if not args.no_busy:
        rows += measure(points, args.device, args.seconds, args.rounds, busy=True, sync={})
    print(f"results: {write_results(args.json, info, rows)}")


if __name__ == "__main__":
    main()
