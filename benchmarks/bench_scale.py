"""The largest twin batch and the largest flat MDP this machine's memory holds, and how fast they run.

Each probe runs in a process of its own, so its peak resident memory is its own: a small probe
gives the bytes per env (per state), the budget (``--memory-fraction`` of the memory available
when the benchmark starts) gives the largest size, rounded down to a power of two (to a round
number of states), and that size is then run and timed. The twin: RESCO's grid4x4 (16 lights),
eager, ``--steps`` decision steps; the solver: MDPSolver's random recipe (5 actions, 20 next
states, γ = 0.9), modified policy iteration to ε = 1e-4 at one thread.

    python benchmarks/bench_scale.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from provenance import header, provenance, write_results  # benchmarks/provenance.py

TWIN = """
import json, resource, sys, time, torch
from ctrlgym.envs.traffic import TrafficTwinEnv
torch.set_num_threads(1)
n, steps = int(sys.argv[1]), int(sys.argv[2])
env = TrafficTwinEnv(num_envs=n, scenario="resco:grid4x4", validate_actions=False)
env.reset(seed=0)
env.step(env.random_actions())
start = time.perf_counter()
for _ in range(steps):
    env.step(env.random_actions())
seconds = time.perf_counter() - start
print(json.dumps({"num_envs": n, "env_steps_per_second": n * steps / seconds,
                  "simulated_seconds_per_second": n * steps * env.timing.delta_time / seconds,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

SOLVER = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
from bench_solvers_flat import random_mdp
from ctrlgym.solvers import modified_policy_iteration
from ctrlgym.solvers.mdp import FiniteMDP
states = int(sys.argv[1])
start = time.perf_counter()
matrices, rewards = random_mdp(states)
mdp = FiniteMDP.from_matrices(matrices, rewards, 0.9)
del matrices
built = time.perf_counter() - start
start = time.perf_counter()
result = modified_policy_iteration(mdp, epsilon=1e-4)
print(json.dumps({"states": states, "build_seconds": built, "solve_seconds": time.perf_counter() - start,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def probe(script: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"probe {args} failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no MemAvailable in /proc/meminfo")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memory-fraction", type=float, default=0.8, help="of the memory available at the start")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "bench_scale.json"))
    args = parser.parse_args()
    info = provenance("cpu")
    budget = args.memory_fraction * available_mib()
    info["memory_budget_mib"] = budget
    print(header(info) + f"; memory budget {budget:,.0f} MiB")
    rows = []

    small = probe(TWIN, "4096", "2")
    baseline = probe(TWIN, "1", "2")["peak_mib"]  # the interpreter, torch and the scenario
    per_env = (small["peak_mib"] - baseline) / 4096
    largest = 1 << int((budget - baseline) / per_env).bit_length() - 1
    print(f"twin: {per_env * 1024:.1f} KiB per env at peak -> {largest:,} envs")
    row = probe(TWIN, str(largest), str(args.steps))
    rows.append({"what": "twin resco:grid4x4", "bytes_per_unit": per_env * 2**20, **row})
    print(
        f"  {row['num_envs']:,} envs: {row['env_steps_per_second']:,.0f} env steps/s, peak {row['peak_mib']:,.0f} MiB"
    )

    folder = str(Path(__file__).parent)
    small = probe(SOLVER, "200000", folder)
    per_state = (small["peak_mib"] - baseline) / 200_000
    largest = int((budget - baseline) / per_state) // 100_000 * 100_000
    print(f"solver: {per_state * 1024:.2f} KiB per state at peak -> {largest:,} states")
    row = probe(SOLVER, str(largest), folder)
    rows.append({"what": "modified policy iteration, random MDP", "bytes_per_unit": per_state * 2**20, **row})
    print(f"  {row['states']:,} states: solved in {row['solve_seconds']:.1f} s (built in {row['build_seconds']:.1f} s)")
    print(f"results: {write_results(args.json, info, rows)}")


if __name__ == "__main__":
    main()
