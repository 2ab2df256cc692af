"""The README's Stable-Baselines3, TorchRL and RLlib examples, timed as a user runs them (a fresh
process each), under four thread settings, quiet and beside one busy process, in one run.

    python benchmarks/bench_snippets.py [--snippets sb3,torchrl,rllib] [--timesteps 20000] [--rounds 3]

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

from competitor import busy_machine  # benchmarks/competitor.py (run as a script)
from provenance import header, provenance, write_results  # benchmarks/provenance.py (run as a script)

SNIPPETS = {  # the README's examples; {after_env}: right after the env exists
    "sb3": """
{before}from stable_baselines3 import PPO
from ctrlgym.adapters import SB3VecEnv
from ctrlgym.envs.fastslow import MultiClassQueue

env = SB3VecEnv(MultiClassQueue(num_envs=16, autoreset_mode="same_step"))
{after_env}model = PPO("MlpPolicy", env).learn({timesteps})
""",
    "torchrl": """
{before}from torchrl.envs.utils import check_env_specs
from ctrlgym.adapters.torchrl import TorchRLEnv
from ctrlgym.envs.fastslow import MultiClassQueue

env = TorchRLEnv(MultiClassQueue(num_envs=64, autoreset_mode="disabled"))
{after_env}check_env_specs(env)
rollout = env.rollout(100)
""",
    "rllib": """
{before}import ray
from ray.rllib.algorithms.ppo import PPOConfig
from ctrlgym.adapters.rllib import RLlibMultiAgentEnv

ray.init(num_cpus=2, include_dashboard=False)
twin = {{"env_id": "ctrlgym/TrafficTwinEnv-v0", "kwargs": {{"scenario": "arterial", "cols": 2, "num_seconds": 120}}}}
config = (
    PPOConfig()
    .environment(RLlibMultiAgentEnv, env_config=twin)
    .multi_agent(policies={{"shared"}}, policy_mapping_fn=lambda agent_id, episode, **kwargs: "shared")
    .env_runners(num_env_runners=0)
    .training(train_batch_size_per_learner=192, minibatch_size=64, num_epochs=1)
)
algo = config.build_algo()
{after_env}print(algo.train()["env_runners"]["num_env_steps_sampled_lifetime"])
algo.stop()
ray.shutdown()
""",
}

# setting -> (code before the snippet, code right after the env is made, environment variables)
SETTINGS = {
    "ctrlgym": ("", "", {}),
    "one thread": ("import torch\ntorch.set_num_threads(1)\n", "", {}),
    "torch default": ("", "", {"CTRLGYM_NUM_THREADS": "0"}),
    # torch's count put back to one per core once the env exists: every env call switches it to 1 and back
    "per-call switching": ("", "import os, torch\ntorch.set_num_threads(os.cpu_count())\n", {}),
}


def run(snippet: str, setting: str, timesteps: int, busy: bool) -> float:
    """Wall seconds of one fresh process running the snippet."""
    with busy_machine(busy):
        before, after_env, variables = SETTINGS[setting]
        environment = {key: value for key, value in os.environ.items() if key != "CTRLGYM_NUM_THREADS"}
        script = SNIPPETS[snippet].format(before=before, after_env=after_env, timesteps=timesteps)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", script], check=True, env={**environment, **variables}, capture_output=True
        )  # the examples' own output (Ray's, TorchRL's logs) stays out of the table
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snippets", default="sb3", help="comma-separated: sb3, torchrl, rllib")
    parser.add_argument("--timesteps", type=int, default=20_000, help="SB3's PPO steps (the README's: 20,000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of ctrlgym and one thread")
    parser.add_argument("--context-rounds", type=int, default=1, help="rounds of torch default and per-call switching")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "bench_snippets.json"))
    args = parser.parse_args()
    info = provenance()
    print(header(info))
    results: dict[str, dict[str, dict[str, dict[str, float | list[float]]]]] = {}
    for snippet in args.snippets.split(","):
        what = f"PPO {args.timesteps:,} steps on MultiClassQueue x 16" if snippet == "sb3" else "as in the README"
        print(
            f"\nREADME {snippet} example ({what}); {args.rounds} rounds ({args.context_rounds} of the context settings)"
        )
        results[snippet] = {}
        for condition in ("quiet", "busy"):
            times: dict[str, list[float]] = {setting: [] for setting in SETTINGS}
            for round_ in range(args.rounds):
                for setting in SETTINGS:
                    if setting in ("ctrlgym", "one thread") or round_ < args.context_rounds:
                        times[setting].append(run(snippet, setting, args.timesteps, condition == "busy"))
            reference = times["one thread"]
            results[snippet][condition] = {}
            print(
                f"{condition}: {'setting':<20} {'median s':>9} {'min':>7} {'max':>7} {'x one thread (median, range)':>32}"
            )
            for setting, seconds in times.items():
                ratios = [
                    s / r for s, r in zip(seconds, reference, strict=False)
                ]  # context settings: their rounds only
                results[snippet][condition][setting] = {
                    "seconds": seconds,
                    "median_s": statistics.median(seconds),
                    "ratio_to_one_thread": ratios,
                }
                span = f"{statistics.median(ratios):.2f} [{min(ratios):.2f}, {max(ratios):.2f}]"
                row = f"{setting:<20} {statistics.median(seconds):>9.1f} {min(seconds):>7.1f} {max(seconds):>7.1f} {span:>32}"
                print(f"       {row}", flush=True)
    print(f"\nresults: {write_results(args.json, info, results)}")


if __name__ == "__main__":
    main()
