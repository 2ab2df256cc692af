"""The torch twin against SUMO on the same network, in one run: SUMO alone (libsumo stepping the
simulation, no control), the SUMO env, and the twin eager and compiled (``compile=True``).

Same 4x4 grid scenario (routes; signal timing delta_time 5 s, yellow 2 s), random greens for every
light; each figure the median of ``--rounds`` measurements with their range, quiet and then
beside one busy process (``competitor.py``). Two figures: intersection-decisions per second (one light choosing its green for 5 s),
and simulated seconds per wall second summed over the batch, against SUMO alone. Then LightSim's
published setting — one env, 1-second steps — in env steps per second, beside LightSim's published
figures (it is not installable here, so it is cited, not run: 2,894 steps/s on a 4x4 grid and
21,365 on one intersection, LightSim README, 2025).

    python benchmarks/bench_twin.py                                   # CPU: N = 1, 256, 4096
    python benchmarks/bench_twin.py --device cuda --sizes 1 4096 65536
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from competitor import busy_machine
from provenance import (
    header,
    provenance,
    write_results,
)  # benchmarks/provenance.py: run as scripts, their folder is on sys.path

from ctrlgym.envs.traffic import TrafficSignalEnv, TrafficTwinEnv

SCENARIO = {"scenario": "grid", "rows": 4, "cols": 4, "demand": 2400.0}
DELTA_TIME = 5  # the twin's and the SUMO env's default decision interval on a generated grid
LIGHTSIM_PUBLISHED = {"4x4 grid": 2894, "single intersection": 21365}  # env steps/s at 1-s steps

SUMO_ALONE = """
import sys, time, libsumo
from ctrlgym.envs.traffic.scenarios import sumo_binary
net, routes, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
libsumo.start([sumo_binary(), "-n", net, "-r", routes, "--seed", "0", "--no-step-log", "true", "--no-warnings", "true"])
start = time.perf_counter()
for _ in range(seconds):
    libsumo.simulationStep()
print(seconds / (time.perf_counter() - start))
libsumo.close()
"""


def sumo_alone_simulated_seconds_per_second(seconds: int) -> float:
    """libsumo stepping the scenario's net and routes, uncontrolled (the lights' own programs), in a
    process of its own: simulated seconds per wall second."""
    scenario = TrafficTwinEnv(num_envs=1, **SCENARIO).scenario
    command = [sys.executable, "-c", SUMO_ALONE, str(scenario.net_file), str(scenario.route_files[0]), str(seconds)]
    return float(subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()[-1])


def env_steps_per_second(env, seconds: float) -> float:
    """LightSim's measure: env steps per wall second (one env, random greens)."""
    return decisions_per_second(env, seconds) / (env.num_envs * env.num_agents)


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


def over_rounds(measure, rounds: int) -> tuple[float, str]:
    """The median of ``rounds`` measurements and their range, as text."""
    values = [measure() for _ in range(rounds)]
    return statistics.median(values), f"[{min(values):,.0f}, {max(values):,.0f}]"


def measure(args, busy: bool) -> list[dict]:
    machine = "busy" if busy else "quiet"
    rows = []
    with busy_machine(busy):
        alone, alone_range = over_rounds(lambda: sumo_alone_simulated_seconds_per_second(3600), args.rounds)
        print(f"{machine}: SUMO alone (libsumo, uncontrolled) {alone:>14,.0f} {alone_range} simulated s/s")
        rows.append(
            {"contender": "SUMO alone", "machine": machine, "simulated_seconds_per_second": alone, "range": alone_range}
        )
        print(
            f"{'contender':<34} {'decisions/s':>14} {'range over rounds':>22} {'vs SUMO alone':>14} {'vs SUMO env':>12}"
        )
        sumo_rates = {}
        for n in dict.fromkeys(args.sumo_envs):
            env = TrafficSignalEnv(num_envs=n, **SCENARIO, validate_actions=False)
            try:
                sumo_rates[n], spread = over_rounds(
                    lambda env=env: decisions_per_second(env, args.seconds), args.rounds
                )
                simulated = sumo_rates[n] / env.num_agents * DELTA_TIME
            finally:
                env.close()
            print(f"{f'SUMO env (libsumo) N={n}':<34} {sumo_rates[n]:>14,.0f} {spread:>22} {simulated / alone:>13.2f}x")
            rows.append(
                {
                    "contender": f"SUMO env N={n}",
                    "machine": machine,
                    "decisions_per_second": sumo_rates[n],
                    "range": spread,
                    "simulated_seconds_per_second": simulated,
                    "vs_sumo_alone": simulated / alone,
                }
            )
        best_sumo = max(sumo_rates.values())
        for compile in (False, True):
            for n in args.sizes:
                env = TrafficTwinEnv(
                    num_envs=n, **SCENARIO, device=args.device, validate_actions=False, compile=compile
                )
                rate, spread = over_rounds(lambda env=env: decisions_per_second(env, args.seconds), args.rounds)
                simulated = rate / env.num_agents * DELTA_TIME
                label = f"twin{' compiled' if compile else ''} N={n}"
                print(f"{label:<34} {rate:>14,.0f} {spread:>22} {simulated / alone:>13.1f}x {rate / best_sumo:>11.1f}x")
                rows.append(
                    {
                        "contender": label,
                        "machine": machine,
                        "decisions_per_second": rate,
                        "range": spread,
                        "simulated_seconds_per_second": simulated,
                        "vs_sumo_alone": simulated / alone,
                        "vs_best_sumo": rate / best_sumo,
                    }
                )
        print("LightSim's setting: one env, 1-second steps (delta_time 1, no yellow)")
        for compile in (False, True):
            env = TrafficTwinEnv(
                num_envs=1, **SCENARIO, delta_time=1, yellow_time=0, validate_actions=False, compile=compile
            )
            rate, spread = over_rounds(lambda env=env: env_steps_per_second(env, args.seconds), args.rounds)
            published = LIGHTSIM_PUBLISHED["4x4 grid"]
            label = f"twin{' compiled' if compile else ''} N=1, 1-s steps"
            print(
                f"{label:<34} {rate:>14,.0f} {spread:>22} env steps/s = {rate / published:.2f}x LightSim's {published:,}"
            )
            rows.append(
                {
                    "contender": label,
                    "machine": machine,
                    "env_steps_per_second": rate,
                    "range": spread,
                    "vs_lightsim_published": rate / published,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 256, 4096])
    parser.add_argument(
        "--sumo-envs", type=int, nargs="+", default=[1, os.cpu_count() or 1], help="SUMO worker processes"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="wall time per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per contender (median and range)")
    parser.add_argument("--no-busy", action="store_true", help="skip the rounds beside a busy process")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "bench_twin.json"))
    args = parser.parse_args()
    info = provenance(args.device)
    info["rounds"] = args.rounds
    print(header(info))
    print(
        f"4x4 grid, {SCENARIO['demand']:.0f} veh/h, random greens; twin on {args.device}, {torch.get_num_threads()} threads"
    )
    rows = measure(args, busy=False)
    if not args.no_busy:
        rows += measure(args, busy=True)
    print(f"results: {write_results(args.json, info, rows)}")


if __name__ == "__main__":
    main()
