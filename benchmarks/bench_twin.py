"""The torch twin against SUMO on the same network, in one run: SUMO alone (libsumo stepping the
simulation, no control), the SUMO env, the twin's queue model as a hand-vectorised numpy batch
(``numpy_twin.py``: what a user would write instead of the twin), and the twin eager and compiled
(``compile=True``; on the CPU a batch larger than ``TrafficTwinEnv.compile_chunk`` runs in chunks).

Same 4x4 grid scenario (routes; signal timing delta_time 5 s, yellow 2 s), random greens for every
light; each figure the median of ``--rounds`` measurements with their range, quiet and then
beside one busy process (``competitor.py``). Two figures: intersection-decisions per second (one light choosing its green for 5 s),
and simulated seconds per wall second summed over the batch, against SUMO alone. Then LightSim's
published setting — one env, 1-second steps — in env steps per second, beside LightSim's published
figures (it is not installable here, so it is cited, not run: 2,894 steps/s on a 4x4 grid and
21,365 on one intersection, LightSim README, 2025).

    python benchmarks/bench_twin.py                                   # CPU: N = 1, 256, 4096
    python benchmarks/bench_twin.py --device cuda --sizes 1 4096 65536
    python benchmarks/bench_twin.py --chunks 128 256 512 1024 4096 --sizes 4096   # the compiled twin's chunk size
    python benchmarks/bench_twin.py --breakdown --sizes 256       # where a compiled step's time goes
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from competitor import busy_machine
from numpy_twin import NumpyTrafficTwin
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


def stored_sumo_alone(path: str) -> tuple[float, str, str]:
    """SUMO alone's quiet median from a stored bench_twin JSON, its range, and where it was measured: for
    a machine without SUMO (the GPU check), whose ratios to it are then across machines."""
    stored = json.loads(Path(path).read_text())
    row = next(r for r in stored["results"] if r["contender"] == "SUMO alone" and r["machine"] == "quiet")
    made = stored["provenance"]
    source = f"stored in {Path(path).name}: {made['cpu']} ({made['cores']} cores), {made['commit']}, {made['date']}"
    return row["simulated_seconds_per_second"], row["range"], source


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


def numpy_decisions_per_second(env, num_envs: int, seconds: float) -> float:
    """The same as :func:`decisions_per_second` for the hand-vectorised numpy batch of the twin's model."""
    peer = NumpyTrafficTwin(env, num_envs, seed=0)
    generator = np.random.default_rng(0)
    greens = np.asarray(env.single_action_space.nvec)

    def actions():
        return (generator.random((num_envs, *greens.shape)) * greens).astype(np.int64)

    for _ in range(3):
        peer.step(actions())
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        peer.step(actions())
        steps += 1
    return steps * num_envs * env.num_agents / (time.perf_counter() - start)


def over_rounds(measure, rounds: int, form: str = ",.0f") -> tuple[float, str]:
    """The median of ``rounds`` measurements and their range, as text (numbers in ``form``)."""
    values = [measure() for _ in range(rounds)]
    return statistics.median(values), f"[{min(values):{form}}, {max(values):{form}}]"


def measure(args, busy: bool, rows: list[dict], save) -> None:
    """Appends each contender's row to ``rows`` and calls ``save()`` after each, so a run stopped by a
    time limit (the GPU check's) keeps the rows it measured."""
    machine = "busy" if busy else "quiet"

    def record(row: dict) -> None:
        rows.append(row)
        save()

    with busy_machine(busy):
        if args.sumo_alone_from:
            alone, alone_range, source = stored_sumo_alone(args.sumo_alone_from)
            print(f"{machine}: SUMO alone {alone:>14,.0f} {alone_range} simulated s/s, {source}")
        else:
            alone, alone_range = over_rounds(lambda: sumo_alone_simulated_seconds_per_second(3600), args.rounds)
            source = "measured in this run"
            print(f"{machine}: SUMO alone (libsumo, uncontrolled) {alone:>14,.0f} {alone_range} simulated s/s")
        record(
            {
                "contender": "SUMO alone",
                "machine": machine,
                "simulated_seconds_per_second": alone,
                "range": alone_range,
                "source": source,
            }
        )
        print(
            f"{'contender':<34} {'decisions/s':>14} {'range over rounds':>22} {'vs SUMO alone':>14} {'vs SUMO env':>12}"
        )
        model = TrafficTwinEnv(num_envs=1, **SCENARIO, validate_actions=False)  # the network's tables, for numpy

        def decision_row(label: str, rate: float, spread: str, **ratios: float) -> dict:
            """A contender's row: decisions/s, and simulated seconds per wall second against SUMO alone."""
            simulated = rate / model.num_agents * DELTA_TIME
            return {
                "contender": label,
                "machine": machine,
                "decisions_per_second": rate,
                "range": spread,
                "simulated_seconds_per_second": simulated,
                "vs_sumo_alone": simulated / alone,
                **ratios,
            }

        sumo_rates = {}
        for n in dict.fromkeys(args.sumo_envs):
            env = TrafficSignalEnv(num_envs=n, **SCENARIO, validate_actions=False)
            try:
                sumo_rates[n], spread = over_rounds(
                    lambda env=env: decisions_per_second(env, args.seconds), args.rounds
                )
            finally:
                env.close()
            record(decision_row(f"SUMO env N={n}", sumo_rates[n], spread))
            print(
                f"{f'SUMO env (libsumo) N={n}':<34} {sumo_rates[n]:>14,.0f} {spread:>22} {rows[-1]['vs_sumo_alone']:>13.2f}x"
            )
        best_sumo = max(sumo_rates.values(), default=None)
        print(f"{'':<34} {'':>14} {'':>22} {'':>14} {'':>12} {'vs numpy':>9}")
        numpy_rates = {}
        # the twin's model as a hand-vectorised numpy batch (CPU), the peer a user would write
        for n in args.numpy_sizes or args.sizes:
            numpy_rates[n], spread = over_rounds(
                lambda n=n: numpy_decisions_per_second(model, n, args.seconds), args.rounds
            )
            label = f"numpy batch of the twin N={n}"
            record(decision_row(label, numpy_rates[n], spread))
            print(f"{label:<34} {numpy_rates[n]:>14,.0f} {spread:>22} {rows[-1]['vs_sumo_alone']:>13.1f}x")
        twins = [(False, 1)] + [(True, threads) for threads in args.compiled_threads]
        if args.device != "cpu":  # threads are a CPU setting
            twins = [(False, 1), (True, 1)]
        for compile, threads in twins:
            for n in args.sizes:
                env = TrafficTwinEnv(
                    num_envs=n, **SCENARIO, device=args.device, validate_actions=False, compile=compile
                )
                # the compiled kernel runs on as many (OpenMP) threads as it was compiled with
                env.num_threads = threads
                rate, spread = over_rounds(lambda env=env: decisions_per_second(env, args.seconds), args.rounds)
                label = f"twin{' compiled' if compile else ''} N={n}{f', {threads} threads' if threads > 1 else ''}"
                vs_env = f"{rate / best_sumo:>11.1f}x" if best_sumo else f"{'-':>12}"
                vs_numpy = f"{rate / numpy_rates[n]:>8.2f}x" if n in numpy_rates else f"{'-':>9}"
                record(
                    decision_row(
                        label,
                        rate,
                        spread,
                        **({"vs_best_sumo": rate / best_sumo} if best_sumo else {}),
                        **({"vs_numpy": rate / numpy_rates[n]} if n in numpy_rates else {}),
                    )
                )
                print(
                    f"{label:<34} {rate:>14,.0f} {spread:>22} {rows[-1]['vs_sumo_alone']:>13.1f}x {vs_env} {vs_numpy}"
                )
        print("LightSim's setting: one env, 1-second steps (delta_time 1, no yellow)")
        published = LIGHTSIM_PUBLISHED["4x4 grid"]
        model = TrafficTwinEnv(num_envs=1, **SCENARIO, delta_time=1, yellow_time=0, validate_actions=False)
        contenders = {
            "numpy batch of the twin N=1, 1-s steps": lambda: (
                numpy_decisions_per_second(model, 1, args.seconds) / model.num_agents
            )
        }
        for compile in (False, True):
            env = TrafficTwinEnv(
                num_envs=1, **SCENARIO, delta_time=1, yellow_time=0, validate_actions=False, compile=compile
            )
            contenders[f"twin{' compiled' if compile else ''} N=1, 1-s steps"] = lambda env=env: env_steps_per_second(
                env, args.seconds
            )
        for label, run in contenders.items():
            rate, spread = over_rounds(run, args.rounds)
            print(
                f"{label:<34} {rate:>14,.0f} {spread:>22} env steps/s = {rate / published:.2f}x LightSim's {published:,}"
            )
            record(
                {
                    "contender": label,
                    "machine": machine,
                    "env_steps_per_second": rate,
                    "range": spread,
                    "vs_lightsim_published": rate / published,
                }
            )


def measure_chunks(args) -> None:
    """The compiled twin at the largest size in ``--sizes``, run ``chunk`` envs at a time (quiet)."""
    n = max(args.sizes)
    threads = args.compiled_threads[-1]
    print(
        f"compiled twin N={n}, {threads} thread(s), by chunk size (decisions/s, median and range over {args.rounds} rounds)"
    )
    for chunk in args.chunks:
        env = TrafficTwinEnv(num_envs=n, **SCENARIO, device=args.device, validate_actions=False, compile=True)
        env.compile_chunk, env.num_threads = chunk, threads
        rate, spread = over_rounds(lambda env=env: decisions_per_second(env, args.seconds), args.rounds)
        print(f"chunk {chunk:>6}: {rate:>12,.0f} {spread}")


def measure_breakdown(args) -> None:
    """Where a compiled step's time goes, at the largest of ``--sizes`` (quiet): the step at the grid's
    5-second decisions and at 10-second ones (their difference over 5 is one simulated second's cost; the
    rest of a step, its signals, readout, rewards, metrics, Poisson draws and Python, does not grow with
    the seconds), the arrival draws alone, and the step time that 100x SUMO alone allows."""
    n, rounds = max(args.sizes), args.rounds
    envs = {
        dt: TrafficTwinEnv(num_envs=n, **SCENARIO, delta_time=dt, device=args.device, compile=True) for dt in (5, 10)
    }
    step = {}
    for dt, env in envs.items():
        env.num_threads = args.compiled_threads[0]
        milliseconds = lambda env=env: env.num_envs * env.num_agents / decisions_per_second(env, args.seconds) * 1e3  # noqa: E731
        step[dt] = over_rounds(milliseconds, rounds, ".3f")
    per_second = (step[10][0] - step[5][0]) / 5
    draws = envs[5]._arrival_draws
    start = time.perf_counter()
    for _ in range(200):
        draws()
    draws_ms = (time.perf_counter() - start) / 200 * 1e3
    if args.sumo_alone_from:
        alone = stored_sumo_alone(args.sumo_alone_from)[0]
    else:
        alone = over_rounds(lambda: sumo_alone_simulated_seconds_per_second(3600), rounds)[0]
    budget = n * DELTA_TIME / (100 * alone) * 1e3
    print(
        f"compiled twin N={n}, {args.compiled_threads[0]} thread(s), ms per step (median and range over {rounds} rounds):"
    )
    print(f"  5-s decisions {step[5][0]:.3f} {step[5][1]}, 10-s decisions {step[10][0]:.3f} {step[10][1]}")
    print(
        f"  one simulated second {per_second:.3f}: the five of a 5-s step {5 * per_second:.3f}, the rest {step[5][0] - 5 * per_second:.3f}"
    )
    print(f"  of the rest, the arrival draws (rates by time bin, torch.poisson) {draws_ms:.3f}")
    print(f"  100x SUMO alone ({alone:,.0f} simulated s/s) needs a 5-s step in {budget:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 256, 4096])
    parser.add_argument("--numpy-sizes", type=int, nargs="+", help="the numpy batch's sizes (default: --sizes)")
    parser.add_argument(
        "--sumo-envs", type=int, nargs="*", default=[1, os.cpu_count() or 1], help="SUMO worker processes (none: skip)"
    )
    parser.add_argument(
        "--sumo-alone-from",
        metavar="JSON",
        help="take SUMO alone from a stored bench_twin JSON instead of measuring it (a machine without SUMO)",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="wall time per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per contender (median and range)")
    parser.add_argument("--no-busy", action="store_true", help="skip the rounds beside a busy process")
    parser.add_argument("--chunks", type=int, nargs="+", help="only measure the compiled twin's chunk sizes")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="only split a compiled step's time (the largest size): seconds and the rest",
    )
    parser.add_argument(
        "--compiled-threads",
        type=int,
        nargs="+",
        default=[1, 2],
        help="CPU threads of the compiled twin (ctrlgym's default is 1, as every peer here runs on one; 2: what a second core adds)",
    )
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "bench_twin.json"))
    args = parser.parse_args()
    if args.chunks or args.breakdown:
        print(header(provenance(args.device)))
        if args.chunks:
            measure_chunks(args)
        else:
            measure_breakdown(args)
        return
    info = provenance(args.device)
    info["rounds"] = args.rounds
    print(header(info))
    print(
        f"4x4 grid, {SCENARIO['demand']:.0f} veh/h, random greens; twin on {args.device}, {torch.get_num_threads()} threads"
    )
    rows: list[dict] = []

    def save() -> None:
        write_results(args.json, info, rows)

    measure(args, False, rows, save)
    if not args.no_busy:
        measure(args, True, rows, save)
    print(f"results: {args.json}")


if __name__ == "__main__":
    main()
