"""Open-loop mix-up schedules against fixed operations, on noisy digits: the ceiling of a
stage-wise schedule that ignores the classifier's state.

Each member of one classifier population runs its own schedule (``reps`` classifiers per
schedule, every schedule in the same batch), with ``strengths=(0.2, 0.5, 0.8)`` so that a schedule
can also change strength (α of the Beta mixes, random saliency mix's quantile; index 1 = 0.5).
Prints, per schedule, the test accuracy (mean over ``reps`` classifiers) for each evaluation seed
and the mean over seeds::

    python benchmarks/mixup_schedules.py fixed  --seeds 100,101,102,103,104 --reps 8
    python benchmarks/mixup_schedules.py switch --seeds 100,101,102,103,104 --reps 8
    python benchmarks/mixup_schedules.py two-phase --seeds 100,101,102,103,104 --reps 8 --label-noise 0.1

``fixed``: every operation at every strength; ``switch``: one operation for the first half, another
after it, strength ramps and an alternation; ``two-phase``: every operation at strength 0.5 and
none-then-X / X-then-none switches. The population is shared, so a schedule's numbers depend on
the batch it ran in (its random draws): compare schedules of one batch, not across batches.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import torch

from ctrlgym.envs.mixup import MixupPolicyEnv

STRENGTHS = (0.2, 0.5, 0.8)
MIXES = ("mixup", "cutmix", "saliency_mix", "random_saliency_mix")


def schedules(kind: str) -> list[tuple[str, callable]]:
    """(name, stage -> (operation, strength index)) for a 40-stage budget."""
    found = []
    if kind == "fixed":
        found.append(("none", lambda t: ("none", 0)))
        for op in MIXES:
            for i, strength in enumerate(STRENGTHS):
                found.append((f"{op}@{strength}", lambda t, op=op, i=i: (op, i)))
    elif kind == "switch":
        for a, b in itertools.permutations(("cutmix", "saliency_mix", "random_saliency_mix"), 2):
            found.append((f"{a}->{b}", lambda t, a=a, b=b: (a if t < 20 else b, 1)))
        found.append(("rsm weak->strong", lambda t: ("random_saliency_mix", 2 if t < 20 else 0)))
        found.append(("rsm strong->weak", lambda t: ("random_saliency_mix", 0 if t < 20 else 2)))
        found.append(("rsm ramp", lambda t: ("random_saliency_mix", 2 if t < 13 else (1 if t < 26 else 0))))
        found.append(("alt cutmix/rsm", lambda t: ("cutmix" if t % 2 else "random_saliency_mix", 1)))
        found.append(("none->rsm@0.2 (10)", lambda t: ("none" if t < 10 else "random_saliency_mix", 0)))
        found.append(("rsm@0.5", lambda t: ("random_saliency_mix", 1)))
    elif kind == "two-phase":
        for op in ("none", *MIXES):
            found.append((op, lambda t, op=op: (op, 1)))
        for a, b in (
            ("none", "random_saliency_mix"),
            ("random_saliency_mix", "none"),
            ("none", "cutmix"),
            ("cutmix", "none"),
            ("mixup", "none"),
            ("none", "mixup"),
        ):
            found.append((f"{a}->{b}", lambda t, a=a, b=b: (a if t < 20 else b, 1)))
    else:
        raise ValueError(f"unknown kind {kind!r}; choose fixed, switch or two-phase")
    return found


def run(found, seed: int, reps: int, label_noise: float) -> dict[str, float]:
    """Every schedule on ``reps`` classifiers of one population: mean test accuracy per schedule."""
    regime = dict(
        dataset="digits",
        train_size=500,
        label_noise=label_noise,
        budget=40,
        steps_per_action=20,
        batch_size=64,
        hidden=64,
    )
    env = MixupPolicyEnv(num_envs=len(found) * reps, strengths=STRENGTHS, **regime)
    env.reset(seed=seed)
    for t in range(env.budget):
        actions = [[env.operations.index(op), s] for _, fn in found for op, s in [fn(t)] for _ in range(reps)]
        *_, info = env.step(torch.tensor(actions))
    accuracy = info["test_accuracy"].reshape(len(found), reps).mean(1)
    return {name: float(accuracy[i]) for i, (name, _) in enumerate(found)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("fixed", "switch", "two-phase"))
    parser.add_argument("--seeds", default="100,101,102,103,104")
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--label-noise", type=float, default=0.3)
    parser.add_argument("--output", type=Path, default=None, help="write {schedule: [accuracy per seed]} as JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    found, results = schedules(args.kind), {}
    for seed in (int(s) for s in args.seeds.split(",")):
        for name, accuracy in run(found, seed, args.reps, args.label_noise).items():
            results.setdefault(name, []).append(accuracy)
    for name, values in sorted(results.items(), key=lambda item: -sum(item[1])):
        print(f"{name:36s} {100 * sum(values) / len(values):6.2f}  " + " ".join(f"{100 * v:.1f}" for v in values))
    if args.output:
        args.output.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
