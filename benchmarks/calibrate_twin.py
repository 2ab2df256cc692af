"""Calibrate and validate the torch twin against SUMO on the same scenario and policies.

Runs fixed-time, max-pressure (and SUMO-actuated) control on the 4x4 grid in SUMO
(``TrafficSignalEnv``) and in the twin (``TrafficTwinEnv``), same routes, same seeds, and prints
average queue length, average waiting time, throughput and travel time side by side, with the
twin's relative gap. ``--grid`` searches the twin's model parameters (saturation flow, start-up
wave) for the smallest worst gap over the policies and demands given.

    python benchmarks/calibrate_twin.py                       # 2400 and 3600 veh/h, ~4 min
    python benchmarks/calibrate_twin.py --demand 1800 --episodes 2
    python benchmarks/calibrate_twin.py --grid saturation_flow=0.5,0.6 stop_seconds=1,3
    python benchmarks/calibrate_twin.py --scenario resco:cologne8 resco:ingolstadt7 --seconds 1800 --episodes 1
    python benchmarks/calibrate_twin.py --scenario resco:cologne8 --seconds 1800 --episodes 1 --twin saturation_flow=0.85
    python benchmarks/calibrate_twin.py --scenario resco:cologne8 --agents runs/benchmark/cologne8/nash_dqn runs/benchmark/cologne8/idqn

``--scenario`` runs a map as it ships (its own demand) under fixed-time, max-pressure, max-wave and
random greens, reports the twin/SUMO gap in delay, queue, waiting time and throughput, and whether
the twin ranks the controllers by delay as SUMO does (Kendall's τ; 1 = the same order); ``--agents``
adds trained agents (a run's seed 0) of the same maps to the ranking.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from provenance import (
    header,
    provenance,
    write_results,
)  # benchmarks/provenance.py: run as scripts, their folder is on sys.path
from scipy.stats import kendalltau

from ctrlgym.envs.traffic import MaxPressure, MaxWave, ProgramControl, RandomGreens, TrafficTwinEnv
from ctrlgym.experiment.evaluation import evaluate_policy

METRICS = ("queue_length", "waiting_time", "throughput", "travel_time")
POLICIES = {
    "fixed_time": (lambda env: ProgramControl(env), {"signal_control": "fixed_time"}),
    "max_pressure": (lambda env: MaxPressure(env), {}),
    "actuated": (lambda env: ProgramControl(env), {"signal_control": "actuated"}),
}


RANKED = {
    "fixed_time": (lambda env: ProgramControl(env), {"signal_control": "fixed_time"}),
    "max_pressure": (lambda env: MaxPressure(env), {}),
    "max_wave": (lambda env: MaxWave(env), {}),
    "random": (lambda env: RandomGreens(env, 0), {}),
}
MAP_METRICS = ("delay", "queue_length", "waiting_time", "throughput")


def trained_agents(run_dirs: list[str]) -> dict[str, list[tuple[str, object, dict]]]:
    """Per scenario, the trained agents of ``run_dirs`` (seed 0's final model) as (name, make_policy, env kwargs)."""
    from ctrlgym.experiment.evaluation import agent_policy
    from ctrlgym.experiment.runs import open_run_dir

    agents: dict[str, list] = {}
    for path in run_dirs:
        run_dir, config = open_run_dir(path)
        kwargs = {
            k: v for k, v in config.env.kwargs.items() if k not in ("scenario", "time_to_teleport")
        }  # as the controllers run here
        agents.setdefault(config.env.kwargs["scenario"], []).append(
            (config.name, agent_policy(run_dir, config, config.seeds[0]), kwargs)
        )
    return agents


def calibrate_maps(
    scenarios: list[str], episodes: int, seconds: int, agents: dict | None = None, **model: float
) -> list[dict]:
    """Per map: every RANKED controller (and the trained ``agents`` of that map) in SUMO and in the
    twin (with the twin parameters ``model``); the gaps and Kendall's τ of the delay ranking."""
    results = []
    for scenario in scenarios:
        rows = {}
        controllers = [(policy, make, kwargs) for policy, (make, kwargs) in RANKED.items()]
        controllers += [(name, make, kwargs) for name, make, kwargs in (agents or {}).get(scenario, [])]
        for policy, make, kwargs in controllers:
            rows[policy] = {
                side: evaluate_policy(
                    make,
                    env_id,
                    episodes=episodes,
                    seed=0,
                    **{**kwargs, "scenario": scenario, "num_seconds": seconds},
                    **extra,
                )["metrics"]
                for side, env_id, extra in (
                    ("sumo", "ctrlgym/TrafficSignalEnv-v0", {}),
                    ("twin", "ctrlgym/TrafficTwinEnv-v0", model),
                )
            }
        tau = kendalltau([rows[p]["sumo"]["delay"] for p in rows], [rows[p]["twin"]["delay"] for p in rows]).statistic
        twin = TrafficTwinEnv(1, scenario=scenario, **model)
        used = (
            twin.model_options.as_kwargs()
        )  # the map's calibrated parameters (scenarios.RESCO_TWIN_PARAMETERS) unless given
        twin.close()
        print(
            f"\n{scenario}, {seconds} s, {episodes} episode(s), twin parameters {used or 'default'}: Kendall's tau of the delay ranking {tau:+.2f}"
        )
        print(f"| policy | {' | '.join(f'{m} SUMO / twin (gap)' for m in MAP_METRICS)} |")
        print("|---|" + "---|" * len(MAP_METRICS))
        for policy, sides in rows.items():
            cells = [
                f"{sides['sumo'][m]:.2f} / {sides['twin'][m]:.2f} ({(sides['twin'][m] - sides['sumo'][m]) / max(abs(sides['sumo'][m]), 1e-9):+.0%})"
                for m in MAP_METRICS
            ]
            print(f"| {policy} | {' | '.join(cells)} |", flush=True)
        results.append(
            {
                "scenario": scenario,
                "twin_parameters": used,
                "kendall_tau": float(tau),
                "rows": {
                    p: {side: {m: v[m] for m in MAP_METRICS} for side, v in sides.items()} for p, sides in rows.items()
                },
            }
        )
    return results


def run(env_id: str, policy: str, demand: float, episodes: int, seconds: int, **model) -> dict[str, float]:
    make, kwargs = POLICIES[policy]
    result = evaluate_policy(
        make, env_id, episodes=episodes, seed=0, scenario="grid", demand=demand, num_seconds=seconds, **kwargs, **model
    )
    return {m: result["metrics"][m] for m in METRICS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demand", type=float, nargs="+", default=[2400.0, 3600.0], help="network inflow, veh/h")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument(
        "--grid",
        nargs="+",
        default=[],
        metavar="NAME=V1,V2",
        help="search twin parameters, e.g. saturation_flow=0.5,0.6 stop_seconds=1,3",
    )
    parser.add_argument(
        "--scenario",
        nargs="+",
        default=[],
        metavar="resco:MAP",
        help="calibrate on these maps as they ship (see above)",
    )
    parser.add_argument(
        "--twin",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="with --scenario: twin parameters, e.g. saturation_flow=0.85",
    )
    parser.add_argument(
        "--agents",
        nargs="+",
        default=[],
        metavar="RUN_DIR",
        help="with --scenario: trained agents ranked too (seed 0), on the map of their run",
    )
    parser.add_argument("--output", type=Path, default=Path("reports/calibrate_twin.json"))
    args = parser.parse_args()
    info = provenance()
    print(header(info))
    if args.scenario:
        model = {name: float(value) for name, value in (item.split("=", 1) for item in args.twin)}
        results = calibrate_maps(args.scenario, args.episodes, args.seconds, trained_agents(args.agents), **model)
        print(f"results: {write_results(args.output, info, {'maps': results})}")
        return

    cases = list(itertools.product(args.demand, args.policies))
    sumo = {case: run("ctrlgym/TrafficSignalEnv-v0", case[1], case[0], args.episodes, args.seconds) for case in cases}
    axes = {name: [float(v) for v in values.split(",")] for name, values in (item.split("=", 1) for item in args.grid)}
    candidates = [dict(zip(axes, values, strict=False)) for values in itertools.product(*axes.values())]
    best = None
    for model in candidates:
        twin = {
            case: run("ctrlgym/TrafficTwinEnv-v0", case[1], case[0], args.episodes, args.seconds, **model)
            for case in cases
        }
        gaps = {
            case: {m: (twin[case][m] - sumo[case][m]) / max(abs(sumo[case][m]), 1e-9) for m in METRICS}
            for case in cases
        }
        worst = max(abs(g) for case in cases for m, g in gaps[case].items() if m != "travel_time")
        if args.grid:
            detail = "  ".join(
                f"{p[:3]}{d:.0f}:" + ",".join(f"{gaps[(d, p)][m]:+.0%}" for m in METRICS[:3]) for d, p in cases
            )
            print(f"{model}: worst {worst:.0%}  {detail}", flush=True)
        if best is None or worst < best[0]:
            best = (worst, model, twin, gaps)
    worst, model, twin, gaps = best
    print(f"\n4x4 grid, {args.seconds} s, {args.episodes} episodes per case; twin parameters {model or 'default'}")
    print(f"| demand veh/h | policy | {' | '.join(f'{m} SUMO / twin (gap)' for m in METRICS)} |")
    print("|---|---|" + "---|" * len(METRICS))
    for case in cases:
        cells = [f"{sumo[case][m]:.2f} / {twin[case][m]:.2f} ({gaps[case][m]:+.0%})" for m in METRICS]
        print(f"| {case[0]:.0f} | {case[1]} | {' | '.join(cells)} |")
    print(f"worst gap over queue length, waiting time and throughput: {worst:.1%}")
    rows = [
        {"demand": d, "policy": p, "sumo": sumo[(d, p)], "twin": twin[(d, p)], "gap": gaps[(d, p)]} for d, p in cases
    ]
    print(f"results: {write_results(args.output, info, {'model': model, 'rows': rows})}")


if __name__ == "__main__":
    main()
