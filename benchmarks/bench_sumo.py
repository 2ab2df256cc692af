"""Decision steps per second on SUMO: ctrlgym's TrafficSignalEnv vs sumo-rl vs SUMO alone.

Two networks, each with the same net and routes for every contender: the 4x4 grid ctrlgym
generates (static programs) and sumo-rl's own ``4x4-Lucas`` net (``4x4c1c2c1c2.rou.xml``).
Same signal timing (delta_time 5 s, yellow 2 s, min green 5 s, max green 50 s), the same
controller for both RL envs (every light cycles through its greens, one change every 4
decisions: the same traffic for both, unlike independently drawn random actions), libsumo for everyone. Each contender runs in its own process (libsumo allows one simulation
per process); contenders run round-robin, ``--repeats`` times (default 5), and the median is reported, as wall time *and* CPU time per
episode (ctrlgym's CPU time adds its worker processes'). Provenance and results go to
``benchmarks/results/bench_sumo.json``.

    pip install 'ctrlgym[benchmarks]'      # sumo-rl, the peer
    python benchmarks/bench_sumo.py [--seconds 3600] [--repeats 3]

"SUMO alone" is libsumo stepping the same simulation for the same simulated time under the
network's own programs, with no reads and no control. The cycling controller gives other
traffic than the network's own programs, so SUMO's own work differs; the floor for
ctrlgym is its own time inside ``simulationStep`` in the same run (measured with
``workers='inline'``), reported as "its own time inside SUMO's simulationStep". "N envs"
runs N = cores simulations in one batch (worker processes): ideal scaling is N x one env.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from provenance import (
    header,
    provenance,
    write_results,
)  # benchmarks/provenance.py: run as scripts, their folder is on sys.path

TIMING = {"delta_time": 5, "yellow_time": 2, "min_green": 5, "max_green": 50}
CHANGE_EVERY = 4  # decisions between green changes of the cycling controller


def run_ctrlgym(net: str, routes: str, seconds: int, num_envs: int, workers: str) -> dict:
    import psutil
    import torch

    from ctrlgym.envs.traffic import Scenario, TrafficSignalEnv

    scenario = Scenario.from_files(net, routes, duration=seconds)
    env = TrafficSignalEnv(num_envs=num_envs, scenario=scenario, num_seconds=seconds, workers=workers, **TIMING)
    greens = torch.tensor([light.num_greens for light in env.network.lights])
    cpu, start = time.process_time(), time.perf_counter()
    env.reset(seed=0)
    steps = 0
    for k in range(env.max_episode_steps):
        env.step(((k // CHANGE_EVERY) % greens).expand(num_envs, -1))
        steps += 1
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if workers == "process":
        cpu += sum(
            sum(psutil.Process(pid).cpu_times()[:2]) for pid in env.workers.pids()
        )  # user + system of each worker
    sumo = env.workers.simulation.sumo_seconds if workers == "inline" else float("nan")  # inside simulationStep
    env.close()
    return {
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "sumo_seconds": sumo,
        "decisions": steps * num_envs,
        "episodes": num_envs,
    }


def run_sumo_rl(net: str, routes: str, seconds: int) -> dict:
    os.environ["LIBSUMO_AS_TRACI"] = "1"  # sumo-rl's fastest mode
    import sumo

    os.environ.setdefault("SUMO_HOME", sumo.SUMO_HOME)
    from sumo_rl import SumoEnvironment

    env = SumoEnvironment(
        net_file=net,
        route_file=routes,
        num_seconds=seconds,
        sumo_seed=0,
        use_gui=False,
        sumo_warnings=False,
        **TIMING,
    )
    cpu, start = time.process_time(), time.perf_counter()
    env.reset()
    steps, done = 0, False
    while not done:
        actions = {agent: (steps // CHANGE_EVERY) % env.action_spaces(agent).n for agent in env.ts_ids}
        _, _, dones, _ = env.step(actions)
        done = dones["__all__"]
        steps += 1
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    env.close()
    return {"seconds": elapsed, "cpu_seconds": cpu, "decisions": steps, "episodes": 1}


def run_sumo_alone(net: str, routes: str, seconds: int) -> dict:
    import libsumo

    from ctrlgym.envs.traffic.scenarios import sumo_binary

    cpu, start = time.process_time(), time.perf_counter()
    libsumo.start(
        [sumo_binary(), "-n", net, "-r", routes, "--seed", "0", "--no-step-log", "true", "--no-warnings", "true"]
    )
    for _ in range(seconds):
        libsumo.simulationStep()
    libsumo.close()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": elapsed, "cpu_seconds": cpu, "decisions": seconds // TIMING["delta_time"], "episodes": 1}


def run_once(contender: str, net: str, routes: str, args, extra: list[str]) -> dict | None:
    command = [
        sys.executable,
        __file__,
        "--worker",
        contender,
        "--net",
        net,
        "--routes",
        routes,
        "--seconds",
        str(args.seconds),
        *extra,
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        print(
            f"{contender}: failed: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode}"
        )
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure_all(contenders: dict[str, tuple[str, list[str]]], net: str, routes: str, args) -> dict[str, dict | None]:
    """Every contender ``--repeats`` times, round-robin (a drift of the machine hits all alike); the median of each."""
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, (contender, extra) in contenders.items():
            result = run_once(contender, net, routes, args, extra)
            if result is not None:
                runs[name].append(result)
    medians = {}
    for name, results in runs.items():
        if not results:
            medians[name] = None
            continue
        median = lambda key, results=results: statistics.median(r[key] for r in results)  # noqa: E731
        medians[name] = {
            "seconds": median("seconds"),
            "cpu_seconds": median("cpu_seconds"),
            "sumo_seconds": median("sumo_seconds") if "sumo_seconds" in results[0] else None,
            "decisions": results[0]["decisions"],
            "episodes": results[0]["episodes"],
            "runs_seconds": [r["seconds"] for r in results],
        }
    return medians


def networks(args) -> dict[str, tuple[str, str]]:
    from ctrlgym.envs.traffic import make_scenario

    grid = make_scenario(
        "grid", rows=4, cols=4, demand=args.demand, duration=args.seconds, seed=0, tls_type="static"
    )  # sumo-rl hangs on actuated programs
    nets = {f"generated 4x4 grid ({args.demand:.0f} veh/h)": (str(grid.net_file), str(grid.route_files[0]))}
    spec = importlib.util.find_spec("sumo_rl")
    if spec is not None:
        lucas = Path(spec.submodule_search_locations[0]) / "nets" / "4x4-Lucas"
        nets["sumo-rl 4x4-Lucas (4x4c1c2c1c2)"] = (str(lucas / "4x4.net.xml"), str(lucas / "4x4c1c2c1c2.rou.xml"))
    return nets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=3600, help="simulated seconds per episode")
    parser.add_argument("--demand", type=float, default=2400.0, help="vehicles per hour on the generated grid")
    parser.add_argument(
        "--repeats", type=int, default=5, help="runs per contender (round-robin); the median is reported"
    )
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "bench_sumo.json"))
    parser.add_argument(
        "--worker", choices=["ctrlgym", "ctrlgym-inline", "sumo-rl", "sumo-alone"], help=argparse.SUPPRESS
    )
    parser.add_argument("--net", help=argparse.SUPPRESS)
    parser.add_argument("--routes", help=argparse.SUPPRESS)
    parser.add_argument("--num-envs", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.worker.startswith("ctrlgym"):
            workers = "inline" if args.worker == "ctrlgym-inline" else "process"
            result = run_ctrlgym(args.net, args.routes, args.seconds, args.num_envs, workers)
        else:
            result = {"sumo-rl": run_sumo_rl, "sumo-alone": run_sumo_alone}[args.worker](
                args.net, args.routes, args.seconds
            )
        print(json.dumps(result))
        return

    info = provenance()
    cores = os.cpu_count() or 1
    print(header(info))
    print(
        f"{args.seconds} s episodes, libsumo, cycling controller (a change every {CHANGE_EVERY} decisions), median of {args.repeats} round-robin runs per contender"
    )
    all_results = {}
    for net_name, (net, routes) in networks(args).items():
        contenders = measure_all(
            {
                "SUMO alone": ("sumo-alone", []),
                "sumo-rl SumoEnvironment": ("sumo-rl", []),
                "ctrlgym, 1 env (worker process)": ("ctrlgym", []),
                "ctrlgym, 1 env (workers='inline')": ("ctrlgym-inline", []),
                f"ctrlgym, {cores} envs on {cores} cores": ("ctrlgym", ["--num-envs", str(cores)]),
            },
            net,
            routes,
            args,
        )
        print(f"\n{net_name}")
        print(f"{'contender':<36} {'wall s/episode':>14} {'CPU s/episode':>14} {'decisions/s':>12}")
        for name, r in contenders.items():
            if r:
                print(
                    f"{name:<36} {r['seconds'] / r['episodes']:>14.2f} {r['cpu_seconds'] / r['episodes']:>14.2f} {r['decisions'] / r['seconds']:>12.1f}"
                )
        peer, alone = contenders["sumo-rl SumoEnvironment"], contenders["SUMO alone"]
        ratios = {}
        for name in ("ctrlgym, 1 env (worker process)", "ctrlgym, 1 env (workers='inline')"):
            ours = contenders[name]
            if ours and peer:
                ratios[f"{name} / sumo-rl decisions/s"] = (ours["decisions"] / ours["seconds"]) / (
                    peer["decisions"] / peer["seconds"]
                )
                ratios[f"{name} / sumo-rl CPU s per episode"] = ours["cpu_seconds"] / peer["cpu_seconds"]
            if ours and alone:
                ratios[f"{name} / SUMO alone wall time"] = ours["seconds"] / alone["seconds"]
            if ours and ours.get("sumo_seconds") == ours.get("sumo_seconds") and ours.get("sumo_seconds"):  # not NaN
                ratios[f"{name} / its own time inside SUMO's simulationStep"] = ours["seconds"] / ours["sumo_seconds"]
        many, one = contenders[f"ctrlgym, {cores} envs on {cores} cores"], contenders["ctrlgym, 1 env (worker process)"]
        if many and one:
            ratios[f"{cores} envs decisions/s / ({cores} x 1 env)"] = (many["decisions"] / many["seconds"]) / (
                cores * one["decisions"] / one["seconds"]
            )
        for name, value in ratios.items():
            print(f"  {name}: {value:.2f}x")
        all_results[net_name] = {"contenders": contenders, "ratios": ratios}
    print(f"\nresults: {write_results(args.json, info, all_results)}")


if __name__ == "__main__":
    main()
