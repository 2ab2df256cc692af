"""The README's Stable-Baselines3 example, timed as a user runs it, under four thread settings,
quiet and beside one busy process, in one run.

    python benchmarks/bench_snippets.py [--timesteps 20000] [--rounds 3]

Settings (each a fresh ``python -c`` process running the README snippet):

- ``ctrlgym``: as shipped (the first CPU env sets torch's threads to ctrlgym's one, once);
- ``one thread``: ``torch.set_num_threads(1)`` first, the reference the target is set against;
- ``torch default``: ``CTRLGYM_NUM_THREADS=0``, torch's threads everywhere (one per core);
- ``per-call switching``: the env steps with one thread and SB3's update with torch's default,
  torch's count switched at every env call (what ctrlgym did before the process-wide policy).

The competitor is a one-thread torch matmul loop (a second training job). ``ctrlgym`` and ``one
thread`` run ``--rounds`` rounds, back to back in each round, and their ratio is taken per round
(median and range printed); the two context settings, minutes each beside a busy process, run
``--context-rounds`` rounds (default 1: a single run, printed as such). Results and provenance go
to ``benchmarks/results/bench_snippets.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from provenance import header, provenance, write_results  # benchmarks/provenance.py (run as a script)

SNIPPET = """
{before}from stable_baselines3 import PPO
from ctrlgym.adapters import SB3VecEnv
from ctrlgym.envs.fastslow import MultiClassQueue

env = SB3VecEnv(MultiClassQueue(num_envs=16, autoreset_mode="same_step"))
{after_env}model = PPO("MlpPolicy", env).learn({timesteps})
"""

# setting -> (code before the snippet, code right after the env is made, environment variables)
SETTINGS = {
    "ctrlgym": ("", "", {}),
    "one thread": ("import torch\ntorch.set_num_threads(1)\n", "", {}),
    "torch default": ("", "", {"CTRLGYM_NUM_THREADS": "0"}),
    # torch's count put back to one per core once the env exists: every env call switches it to 1 and back
    "per-call switching": ("", "import os, torch\ntorch.set_num_threads(os.cpu_count())\n", {}),
}

COMPETITOR = "import torch\ntorch.set_num_threads(1)\nx = torch.randn(1024, 1024)\nwhile True:\n    x = torch.tanh(x @ x * 1e-3)\n"


def run(setting: str, timesteps: int, busy: bool) -> float:
    """Wall seconds of one fresh process running the snippet."""
    competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR]) if busy else None
    try:
        if competitor:
            time.sleep(0.5)
        before, after_env, variables = SETTINGS[setting]
        environment = {key: value for key, value in os.environ.items() if key != "CTRLGYM_NUM_THREADS"}
        script = SNIPPET.format(before=before, after_env=after_env, timesteps=timesteps)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", script], check=True, env={**environment, **variables})
        return time.perf_counter() - started
    finally:
        if competitor:
            competitor.kill()
            competitor.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=20_000, help="PPO steps (the README's: 20,000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of ctrlgym and one thread")
    parser.add_argument("--context-rounds", type=int, default=1, help="rounds of torch default and per-call switching")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "bench_snippets.json"))
    args = parser.parse_args()
    info = provenance()
    print(header(info))
    print(
        f"README SB3 example, PPO {args.timesteps:,} steps on MultiClassQueue x 16; {args.rounds} rounds "
        f"({args.context_rounds} of the context settings)\n"
    )
    results: dict[str, dict[str, dict[str, float | list[float]]]] = {}
    for condition in ("quiet", "busy"):
        times: dict[str, list[float]] = {setting: [] for setting in SETTINGS}
        for round_ in range(args.rounds):
            for setting in SETTINGS:
                if setting in ("ctrlgym", "one thread") or round_ < args.context_rounds:
                    times[setting].append(run(setting, args.timesteps, condition == "busy"))
        reference = times["one thread"]
        results[condition] = {}
        print(
            f"{condition}: {'setting':<20} {'median s':>9} {'min':>7} {'max':>7} {'x one thread (median, range)':>32}"
        )
        for setting, seconds in times.items():
            ratios = [s / r for s, r in zip(seconds, reference, strict=False)]  # context settings: their rounds only
            results[condition][setting] = {
                "seconds": seconds,
                "median_s": statistics.median(seconds),
                "ratio_to_one_thread": ratios,
            }
            span = f"{statistics.median(ratios):.2f} [{min(ratios):.2f}, {max(ratios):.2f}]"
            print(
                f"       {setting:<20} {statistics.median(seconds):>9.1f} {min(seconds):>7.1f} {max(seconds):>7.1f} {span:>32}",
                flush=True,
            )
    print(f"\nresults: {write_results(args.json, info, results)}")


if __name__ == "__main__":
    main()
