"""Throughput beside a busy competitor: does each family keep its fair share of the machine?

Each workload runs for ``--seconds`` quiet, then beside one busy competitor process (a
one-thread torch matmul loop: a second training job), once with ctrlgym's thread policy (one
intra-op thread in its hot paths, ``ctrlgym/threads.py``) and once with torch's default threads
(``CTRLGYM_NUM_THREADS=0``), all in one run. "kept" is busy / quiet throughput; with one of the
machine's cores taken, a fair share is >= 50% on a 2-core machine.

    python benchmarks/bench_contention.py [--seconds 3]

Results and provenance go to ``benchmarks/results/bench_contention.json``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from competitor import busy_machine  # benchmarks/competitor.py (run as a script)
from provenance import (
    header,
    provenance,
    write_results,
)  # benchmarks/provenance.py: run as scripts, their folder is on sys.path


def _env_loop(env_id: str, num_envs: int, seconds: float, **kwargs) -> float:
    import torch

    from ctrlgym.registry import make_vector_env

    env = make_vector_env(env_id, num_envs, **kwargs)
    env.reset(seed=0)
    actions = env.random_actions(torch.Generator().manual_seed(0))
    for _ in range(3):
        env.step(actions)
    start, steps = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        env.step(actions)
        steps += 1
    rate = steps * num_envs / (time.perf_counter() - start)
    env.close()
    return rate


def _solver_loop(seconds: float) -> float:
    from ctrlgym.envs.fastslow import MultiClassQueue
    from ctrlgym.solvers import value_iteration

    mdp = MultiClassQueue(num_envs=1, buffer_size=10, discount=0.95).exact_model()
    value_iteration(mdp, epsilon=1e-3)
    start, solves = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        value_iteration(mdp, epsilon=1e-3)
        solves += 1
    return solves / (time.perf_counter() - start)


WORKLOADS = {
    "MultiClassQueue, 1,024 envs (env steps/s)": lambda s: _env_loop("ctrlgym/MultiClassQueue-v0", 1024, s),
    "MultiClassQueue, 16,384 envs (env steps/s)": lambda s: _env_loop("ctrlgym/MultiClassQueue-v0", 16384, s),
    "TrafficTwinEnv 4x4 grid, 256 envs (env steps/s)": lambda s: _env_loop("ctrlgym/TrafficTwinEnv-v0", 256, s),
    "BeamformingEnv, 1,024 cells (env steps/s)": lambda s: _env_loop(
        "ctrlgym/BeamformingEnv-v0", 1024, s, fading="ar1"
    ),  # the fading the README figure was measured with (the default before 2026-12-01)
    "MixupPolicyEnv, 64 classifiers (env steps/s)": lambda s: _env_loop("ctrlgym/MixupPolicyEnv-v0", 64, s, budget=64),
    "value iteration, queue MDP (solves/s)": _solver_loop,
}


def run(workload: str, seconds: float, threads: str, busy: bool) -> float:
    with busy_machine(busy):
        environment = {**os.environ, "CTRLGYM_NUM_THREADS": threads}
        command = [sys.executable, __file__, "--worker", workload, "--seconds", str(seconds)]
        result = subprocess.run(command, capture_output=True, text=True, env=environment)
        if result.returncode != 0:
            raise RuntimeError(f"{workload}: {result.stderr.strip().splitlines()[-1]}")
        return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per workload and condition")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "bench_contention.json"))
    parser.add_argument("--only", help="run only the workloads whose name contains this text")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(WORKLOADS[args.worker](args.seconds))
        return

    info = provenance()
    print(header(info))
    print(f"competitor: one process running a one-thread torch matmul loop; {args.seconds:g} s per measurement\n")
    print(
        f"{'workload':<48} {'quiet':>11} {'busy':>11} {'kept':>6} | {'torch default threads: quiet':>28} {'busy':>11} {'kept':>6}"
    )
    results = {}
    for name in WORKLOADS:
        if args.only and args.only not in name:
            continue
        row = {}
        for policy, threads in (("ctrlgym", "1"), ("torch_default", "0")):
            quiet, busy = run(name, args.seconds, threads, False), run(name, args.seconds, threads, True)
            row[policy] = {"quiet": quiet, "busy": busy, "kept": busy / quiet}
        ours, default = row["ctrlgym"], row["torch_default"]
        print(
            f"{name:<48} {ours['quiet']:>11.4g} {ours['busy']:>11.4g} {ours['kept']:>6.0%} | {default['quiet']:>28.4g} {default['busy']:>11.4g} {default['kept']:>6.0%}",
            flush=True,
        )
        results[name] = row
    print(f"\nresults: {write_results(args.json, info, results)}")


if __name__ == "__main__":
    main()
