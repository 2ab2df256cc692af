"""What a mixup policy does on each noise level of an unknown-noise run (``label_noise`` a list).

For every training seed of the run, the trained agent and the chosen baselines drive the same
evaluation classifiers as ``ctrlgym evaluate`` (seed + ``evaluation.seed_offset``); classifier i
trains on noise level i mod len(label_noise). Prints, per policy and level, the test accuracy
(mean over seeds) and the share of stages given to each operation::

    python benchmarks/mixup_by_noise_level.py runs/ppo_mixup_unknown_noise_digits
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ctrlgym.envs.mixup import MixupPolicyEnv
from ctrlgym.envs.mixup.baselines import BASELINES
from ctrlgym.experiment.config import load_config
from ctrlgym.experiment.evaluation import agent_policy


def run_policy(make_policy, config, seed: int) -> tuple[np.ndarray, np.ndarray, MixupPolicyEnv]:
    """Final test accuracy ``(P,)``, each operation's share of the stages ``(P, operations)`` and the
    env, for one evaluation batch."""
    # as ctrlgym evaluate builds it (no autoreset): the same random stream, so the same classifiers
    env = MixupPolicyEnv(num_envs=config.evaluation.episodes, autoreset_mode="disabled", **config.env.kwargs)
    policy = make_policy(env)
    observations, _ = env.reset(seed=seed + config.evaluation.seed_offset)
    counts = torch.zeros(env.num_envs, len(env.operations))
    for _ in range(env.budget):
        with torch.no_grad():
            actions = policy(observations)
        chosen = torch.as_tensor(actions).long().reshape(env.num_envs, -1)[:, 0]
        counts[torch.arange(env.num_envs), chosen] += 1
        observations, _, _, _, info = env.step(actions)
    return info["test_accuracy"].numpy(), counts.numpy() / env.budget, env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--baselines", default="none,mixup_then_none,cutmix,random_saliency_mix")
    parser.add_argument("--output", type=Path, default=None, help="write the table as JSON here too")
    args = parser.parse_args()
    config = load_config(args.run_dir / "config.yaml")
    policies = {config.agent.algo: None, **{name: BASELINES[name] for name in args.baselines.split(",")}}
    result: dict = {}
    for name, baseline in policies.items():
        per_seed = []
        for seed in config.seeds:
            make = (
                agent_policy(args.run_dir, config, seed)
                if baseline is None
                else (lambda env, b=baseline, s=seed: b.make(env, s + config.evaluation.seed_offset))
            )
            accuracy, shares, env = run_policy(make, config, seed)
            per_seed.append((accuracy, shares))
        levels, level_of = env.label_noise, env.classifier_level.cpu().numpy()
        result[name] = {}
        for k, level in enumerate(levels):
            accuracy = [float(a[level_of == k].mean()) for a, _ in per_seed]
            shares = np.mean([s[level_of == k].mean(0) for _, s in per_seed], 0)
            result[name][f"{level:g}"] = {
                "test_accuracy": accuracy,
                "operation_share": dict(zip(env.operations, map(float, shares), strict=False)),
            }
            ops = ", ".join(
                f"{op} {share:.0%}" for op, share in zip(env.operations, shares, strict=False) if share > 0.005
            )
            print(
                f"{name:20s} noise {level:<4g} test accuracy {100 * np.mean(accuracy):5.2f} (seeds {' '.join(f'{100 * a:.1f}' for a in accuracy)})  stages: {ops}"
            )
    if args.output:
        args.output.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
