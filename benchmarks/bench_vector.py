"""Env steps per second of MultiClassQueue: the native batch against what a user would write
instead, measured in the same process and run: a hand-vectorised numpy batch of the same dynamics
(time limit, autoreset, episode statistics, info; `numpy_peers.py`, the strongest peer) and
Gymnasium's SyncVectorEnv of the single env. Ratios are ctrlgym / peer: below 1, the peer is faster.

    python benchmarks/bench_vector.py                 # CPU
    python benchmarks/bench_vector.py --device cuda   # GPU (peer stays on CPU: it is numpy)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from numpy_peers import NumpyMultiClassQueue
from provenance import (
    header,
    provenance,
    write_results,
)  # benchmarks/provenance.py: run as scripts, their folder is on sys.path

import ctrlgym
from ctrlgym.envs.fastslow import MultiClassQueue


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def native_steps_per_second(num_envs: int, device: str, seconds: float) -> float:
    env = MultiClassQueue(num_envs=num_envs, device=device, validate_actions=False)
    env.reset(seed=0)
    actions = torch.randint(0, env.num_classes, (64, num_envs), device=env.device)
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


def numpy_batch_steps_per_second(num_envs: int, seconds: float) -> float:
    env = NumpyMultiClassQueue(num_envs)
    actions = np.random.default_rng(0).integers(0, 3, size=(64, num_envs))
    for i in range(5):  # warm-up
        env.step(actions[i])
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for i in range(16):
            env.step(actions[(steps + i) % 64])
        steps += 16
    return num_envs * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 1024, 16384])
    parser.add_argument("--peer-sizes", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per point")
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
    print(header(info) + f"; env steps with {ctrlgym.get_num_threads() or 'torch'} thread(s)")
    rows = []
    peer = {n: sync_vector_steps_per_second(n, args.seconds) for n in args.peer_sizes}
    print(
        f"{'num_envs':>9} {'ctrlgym steps/s':>16} {'numpy batch':>12} {'ratio':>6} {'SyncVectorEnv':>14} {'ratio':>7}"
    )
    for n in sorted(set(args.sizes) | set(args.peer_sizes)):
        native = native_steps_per_second(n, args.device, args.seconds)
        numpy_batch = numpy_batch_steps_per_second(n, args.seconds)
        rows.append(
            {
                "num_envs": n,
                "ctrlgym": native,
                "numpy_batch": numpy_batch,
                "ctrlgym / numpy_batch": native / numpy_batch,
                "sync_vector_env": peer.get(n),
            }
        )
        sync = f"{peer[n]:>14,.0f} {native / peer[n]:>6,.0f}x" if n in peer else f"{'-':>14} {'-':>7}"
        print(f"{n:>9} {native:>16,.0f} {numpy_batch:>12,.0f} {native / numpy_batch:>5.2f}x {sync}")
    print(f"results: {write_results(args.json, info, rows)}")


if __name__ == "__main__":
    main()
