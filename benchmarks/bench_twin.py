"""Intersection-decisions per second: the torch twin vs the SUMO env on the same network.

Same 4x4 grid scenario (routes, signal timing: delta_time 5 s, yellow 2 s), random greens for
every light, measured in one run; one decision = one light choosing its green for 5 s.

    python benchmarks/bench_twin.py                                   # CPU: N = 1, 256, 4096
    python benchmarks/bench_twin.py --device cuda --sizes 1 4096 65536
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from provenance import (
    header,
    provenance,
    write_results,
)  # benchmarks/provenance.py: run as scripts, their folder is on sys.path

from ctrlgym.envs.traffic import TrafficSignalEnv, TrafficTwinEnv

SCENARIO = {"scenario": "grid", "rows": 4, "cols": 4, "demand": 2400.0}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def decisions_per_second(env, seconds: float) -> float:
    """Random greens for ``seconds`` of wall time after a warm-up; decisions (lights x envs) per s."""
    env.reset(seed=0)
    generator = torch.Generator(device=env.device).manual_seed(0)
    greens = torch.as_tensor(env.single_action_space.nvec, device=env.device)

    def actions():
        return (torch.rand((env.num_envs, *greens.shape), generator=generator, device=env.device) * greens).long()

    for _ in range(3):
        env.step(actions())
    _sync(env.device)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(actions())
        steps += 1
    _sync(env.device)
    elapsed = time.perf_counter() - start
    return steps * env.num_envs * env.num_agents / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 256, 4096])
    parser.add_argument(
        "--sumo-envs", type=int, nargs="+", default=[1, os.cpu_count() or 1], help="SUMO worker processes"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="wall time per measurement")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "bench_twin.json"))
    args = parser.parse_args()
    info = provenance(args.device)
    print(header(info))
    rows = []
    print(
        f"4x4 grid, {SCENARIO['demand']:.0f} veh/h, random greens; twin on {args.device}, {torch.get_num_threads()} threads"
    )
    print(f"{'contender':<28} {'decisions/s':>14}")
    sumo_rates = {}
    for n in dict.fromkeys(args.sumo_envs):
        env = TrafficSignalEnv(num_envs=n, **SCENARIO, validate_actions=False)
        try:
            sumo_rates[n] = decisions_per_second(env, args.seconds)
        finally:
            env.close()
        print(f"{f'SUMO env (libsumo) N={n}':<28} {sumo_rates[n]:>14,.0f}")
        rows.append({"contender": f"SUMO env N={n}", "decisions_per_second": sumo_rates[n]})
    best_sumo = max(sumo_rates.values())
    for n in args.sizes:
        env = TrafficTwinEnv(num_envs=n, **SCENARIO, device=args.device, validate_actions=False)
        rate = decisions_per_second(env, args.seconds)
        print(f"{f'twin N={n}':<28} {rate:>14,.0f}   {rate / best_sumo:>8,.1f}x SUMO (best N)")
        rows.append({"contender": f"twin N={n}", "decisions_per_second": rate, "vs_best_sumo": rate / best_sumo})
    print(f"results: {write_results(args.json, info, rows)}")


if __name__ == "__main__":
    main()
