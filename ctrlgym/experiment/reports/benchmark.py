"""Benchmark reports: several policies across several tasks (traffic: RESCO maps), compared with
the statistics of Agarwal et al. 2021 (:mod:`ctrlgym.statistics`).

The runs given are of two kinds. A baselines run sweeps the task parameter (``evaluation.sweep:
{scenario: [...]}``, ``agent: null``); an agent run trains on one task (its ``env.kwargs``) and is
evaluated on the benchmark env, its own or another one (``ctrlgym evaluate RUN --env ...``: trained
on the traffic twin, evaluated on SUMO). A policy is named by its baseline name or by the agent
run's ``name``, so runs of one agent on different maps share a name (``nash_dqn``) and ablations
get their own (``nash_dqn_fp1``).

The report has, for the env's headline metric (traffic: delay, lower is better):

- per task, each policy's IQM over seeds [stratified-bootstrap 95% CI], the best marked, and for
  the reference policy (Nash DQN) P(reference better than each policy), per task and averaged
  over tasks (the probability of improvement), with CIs, and a plain sentence where CIs overlap;
- per task, every report metric as IQM [CI];
- where the env names a field's published results (traffic: RESCO's), per task the best published
  learned agent and controller beside ctrlgym's best on the same metric, and Kendall's τ between
  the two rankings of the policies both ran;
- a performance profile across tasks: the fraction of (task, seed) runs whose score, divided by
  the task's normaliser policy IQM (fixed-time), is at most τ;
- the cost: training wall and CPU time per seed, evaluation wall time per episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ctrlgym.errors import UsageError
from ctrlgym.experiment.provenance import provenance_line
from ctrlgym.experiment.reports.plots import png
from ctrlgym.experiment.reports.render import write_blocks
from ctrlgym.experiment.reports.run_report import chance_text, iqm_text
from ctrlgym.experiment.runs import RunDir, RunDirError, succeeded
from ctrlgym.published import PublishedResults, concordance, kendall_tau
from ctrlgym.statistics import intervals_overlap, iqm, performance_profile, probability_of_improvement_ci, summarize

__all__ = ["PolicyResults", "collect_benchmark", "write_benchmark_report"]


@dataclass
class PolicyResults:
    """One policy on one task: per-seed metric values, and what it cost."""

    label: str
    kind: str  # "agent" or "baseline"
    values: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> {seed: value}
    train_wall_s: list[float] = field(default_factory=list)  # per seed
    train_cpu_s: list[float] = field(default_factory=list)
    eval_wall_s: list[float] = field(default_factory=list)  # per seed (all its episodes)
    episodes: int = 1
    timesteps: int = 0

    def metric(self, name: str) -> np.ndarray:
        return np.asarray([self.values.get(name, {})[seed] for seed in sorted(self.values.get(name, {}))], dtype=float)


def _add(
    table: dict[str, dict[str, PolicyResults]],
    task: str,
    label: str,
    kind: str,
    per_seed: dict[str, Any],
    episodes: int,
) -> PolicyResults | None:
    """A new entry for ``label`` on ``task``; None if its seeds all failed or an earlier run already gave it."""
    per_seed = succeeded(per_seed)
    if not per_seed or label in table.setdefault(task, {}):
        return None
    entry = table[task][label] = PolicyResults(label, kind, episodes=episodes)
    for seed, result in per_seed.items():
        for name, value in result["metrics"].items():
            entry.values.setdefault(name, {})[seed] = float(value)
        if "wall_time_s" in result:
            entry.eval_wall_s.append(float(result["wall_time_s"]))
    return entry


def collect_benchmark(
    run_dirs: Sequence[RunDir | str | Path],
    across: str = "scenario",
    others: dict[str, dict[str, dict[str, PolicyResults]]] | None = None,
) -> tuple[str, dict[str, dict[str, PolicyResults]]]:
    """The benchmark env and ``{task: {policy: PolicyResults}}`` from the runs (module docstring).

    The benchmark env is the first sweep's. A later sweep on another env (the traffic twin) is an
    error, unless ``others`` is given: then it is collected there, ``{env id: table}``, for the
    ranking agreement between the two envs."""
    opened = [run if isinstance(run, RunDir) else RunDir.open(run) for run in run_dirs]
    sweeps = [run.config for run in opened if run.config.evaluation.sweep and across in run.config.evaluation.sweep]
    env_id = sweeps[0].env.id if sweeps else opened[0].config.env.id
    table: dict[str, dict[str, PolicyResults]] = {}
    for run in opened:
        run_dir, config = run.path, run.config
        metrics = run.metrics()
        if config.evaluation.sweep and across in config.evaluation.sweep:
            sweep = metrics.get("sweep")
            if not sweep or sweep.get("param") != across:
                raise RunDirError(f"{run_dir} has no evaluation over {across} yet: run ctrlgym evaluate {run_dir}")
            target = table
            if config.env.id != env_id:
                if others is None:
                    raise UsageError(f"{run_dir} evaluates on {config.env.id}, the benchmark on {env_id}")
                target = others.setdefault(config.env.id, {})
            for policy, per_value in sweep["policies"].items():
                for task, per_seed in per_value.items():
                    _add(
                        target,
                        task,
                        config.name if policy == sweep["agent"] else policy,
                        "agent" if policy == sweep["agent"] else "baseline",
                        per_seed,
                        config.evaluation.episodes,
                    )
            continue
        if across not in config.env.kwargs:
            raise UsageError(f"{run_dir}: env.kwargs has no {across!r}, so the run belongs to no task of the benchmark")
        task = str(config.env.kwargs[across])
        evaluation = metrics.get("evaluation") if config.env.id == env_id else metrics.get("transfer", {}).get(env_id)
        if evaluation is None:
            hint = f"ctrlgym evaluate {run_dir}" + ("" if config.env.id == env_id else f" --env {env_id}")
            raise RunDirError(f"{run_dir} has no evaluation on {env_id} yet: run {hint}")
        for policy, per_seed in evaluation["policies"].items():
            is_agent = policy == evaluation.get("agent")
            entry = _add(
                table,
                task,
                config.name if is_agent else policy,
                "agent" if is_agent else "baseline",
                per_seed,
                config.evaluation.episodes,
            )
            if is_agent and entry is not None:
                training = metrics.get("training", {})
                entry.train_wall_s = [float(seed.get("wall_time_s", 0.0)) for seed in training.values()]
                entry.train_cpu_s = [float(seed["cpu_time_s"]) for seed in training.values() if "cpu_time_s" in seed]
                entry.timesteps = config.trained_agent.total_timesteps
    if not table:
        raise UsageError("the runs hold no evaluated policy")
    order = [
        str(v) for config in sweeps for v in (config.evaluation.sweep or {})[across]
    ]  # the sweep's order, then the rest
    return env_id, dict(
        sorted(table.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order))
    )


def _short(task: str) -> str:
    return task.split(":", 1)[-1]


def _profile_plot(
    profiles: dict[str, tuple[np.ndarray, np.ndarray]], metric: str, normaliser: str, higher: bool
) -> str:
    figure, axis = plt.subplots(figsize=(6.5, 3.8))
    for label, (taus, fraction) in profiles.items():
        axis.plot(taus, fraction, label=label, lw=2 if label.startswith("nash") else 1.2)
    relation = ">" if higher else "≤"
    axis.set(
        xlabel=f"τ: {metric} / {normaliser}'s IQM on the same task",
        ylabel=f"fraction of runs with score {relation} τ",
        title="performance profile across tasks",
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return png(figure)


def _blocks(
    env_id: str,
    table: dict[str, dict[str, PolicyResults]],
    reference: str | None,
    across: str,
    others: dict[str, dict[str, dict[str, PolicyResults]]] | None = None,
) -> list[tuple]:
    from ctrlgym.registry import get_entry

    env_class = get_entry(env_id).vector_cls
    metric, higher = env_class.headline_metric or ("mean_return", True)
    report_metrics = [
        m for m in env_class.report_metrics or (metric,) if m not in ("insertion_backlog", "mean_trip_time")
    ]  # travel_time says it
    tasks = list(table)
    labels = list(dict.fromkeys(label for task in tasks for label in table[task]))
    agents = [label for label in labels if any(table[t].get(label) and table[t][label].kind == "agent" for t in tasks)]
    reference = reference or (agents[0] if agents else None)
    if reference is not None and reference not in labels:
        raise UsageError(f"reference policy {reference!r} is in no run; the runs have {', '.join(labels)}")
    better = "higher" if higher else "lower"
    chance_sentence = (
        f"P({reference} better) is the probability that a random seed of {reference} beats a random seed of the other policy "
        "(Mann-Whitney U), with its bootstrap CI; over all tasks it is the average of the per-task probabilities. "
        if reference
        else ""
    )
    blocks: list[tuple] = [
        ("h1", f"Benchmark: {len(labels)} policies on {len(tasks)} {across} values ({env_id})"),
        ("p", provenance_line()),
        (
            "p",
            (
                f"Headline metric: {metric} ({better} is better). Each seed's value is the mean over its evaluation episodes; "
                "cells give the interquartile mean (IQM) over seeds with a stratified-bootstrap 95% CI (Agarwal et al. 2021). "
                + chance_sentence
                + "Where two CIs overlap, these seeds do not tell the policies apart. Agents were trained on the env named in their run "
                f"and are all evaluated here on {env_id}, on the same evaluation seeds as the baselines."
            ),
        ),
    ]

    summaries = {
        (t, label): summarize(table[t][label].metric(metric))
        for t in tasks
        for label in table[t]
        if table[t][label].metric(metric).size
    }
    pick = max if higher else min
    best = {
        t: pick(summaries[(t, label)]["iqm"] for label in table[t] if (t, label) in summaries)
        for t in tasks
        if any((t, label) in summaries for label in table[t])
    }
    chances = {  # P(reference better than label) on each task, computed once for the tables and the verdicts
        (t, label): probability_of_improvement_ci(
            table[t][reference].metric(metric), table[t][label].metric(metric), lower_is_better=not higher, reps=500
        )
        for t in tasks
        for label in table[t]
        if reference and label != reference and (t, reference) in summaries and (t, label) in summaries
    }
    header = ["policy", *(_short(t) for t in tasks)] + (
        [f"P({reference} better), over the tasks both ran"] if reference else []
    )
    cells = []
    for label in labels:
        row = [label]
        for task in tasks:
            summary = summaries.get((task, label))
            if summary is None:
                row.append("-")
                continue
            row.append(iqm_text(summary) + (" ★" if summary["iqm"] == best[task] else ""))
        if reference:
            shared = [t for t in tasks if (t, reference) in summaries and (t, label) in summaries]
            if label == reference or not shared:
                row.append("-")
            else:
                a = _seed_matrix(table, shared, reference, metric)
                b = _seed_matrix(table, shared, label, metric)
                row.append(chance_text(probability_of_improvement_ci(a, b, lower_is_better=not higher, reps=500)))
        cells.append(row)
    blocks += [("h2", f"{metric} per {across} (IQM over seeds [95% CI]; ★ best IQM)"), ("table", header, cells)]
    if reference:
        blocks += [
            ("h2", f"What the evidence says about {reference}"),
            (
                "list",
                [
                    _verdict(table, task, reference, higher, summaries, chances)
                    for task in tasks
                    if (task, reference) in summaries
                ],
            ),
        ]

    if env_class.published_results is not None:
        blocks += _published_blocks(env_class.published_results, table, tasks)
    for other_id, other in (others or {}).items():
        blocks += _agreement_blocks(env_id, table, other_id, other, metric, higher)

    for task in tasks:
        header = ["policy", "seeds", *report_metrics] + ([f"P({reference} better on {metric})"] if reference else [])
        cells = []
        order = sorted(
            table[task],
            key=lambda label: (
                (summaries[(task, label)]["iqm"] * (-1 if higher else 1)) if (task, label) in summaries else np.inf
            ),
        )
        for label in order:
            entry = table[task][label]
            row = [label, str(entry.metric(metric).size or len(next(iter(entry.values.values()), {})))]
            for name in report_metrics:
                values = entry.metric(name)
                row.append(iqm_text(summarize(values)) if values.size else "-")
            if reference:
                row.append(chance_text(chances[(task, label)]) if (task, label) in chances else "-")
            cells.append(row)
        blocks += [("h3", f"{across} = {task}"), ("table", header, cells)]

    normaliser = next((b for b in ("fixed_time",) if all((t, b) in summaries for t in tasks)), None)
    if normaliser is not None:
        taus = np.linspace(0.0, 2.0, 201)
        profiles = {}
        for label in labels:
            ratios = [
                table[t][label].metric(metric) / summaries[(t, normaliser)]["iqm"]
                for t in tasks
                if (t, label) in summaries
            ]
            if len(ratios) == len(tasks):
                above = performance_profile(np.concatenate(ratios), taus)  # the fraction of runs scoring above each τ
                profiles[label] = (taus, above if higher else 1.0 - above)
        blocks += [
            ("h2", "Performance profile"),
            (
                "p",
                f"Each (task, seed) run's {metric} divided by {normaliser}'s IQM on the same task, for the policies evaluated on every task; "
                f"a curve further {'right' if higher else 'left and up'} is better. At τ = 1 a curve reads the fraction of runs that "
                f"{'beat' if higher else 'delay vehicles less than'} {normaliser}'s typical run.",
            ),
            ("img", "profile", _profile_plot(profiles, metric, normaliser, higher)),
        ]

    cost = []
    for task in tasks:
        for label in labels:
            found = table[task].get(label)
            if found is None or (found.kind != "agent" and not found.eval_wall_s):
                continue
            train = f"{np.mean(found.train_wall_s):.0f}" if found.train_wall_s else "-"
            cpu = f"{np.mean(found.train_cpu_s):.0f}" if found.train_cpu_s else "-"
            evaluation = f"{np.mean(found.eval_wall_s) / found.episodes:.1f}" if found.eval_wall_s else "-"
            cost.append(
                [_short(task), label, f"{found.timesteps:,}" if found.kind == "agent" else "-", train, cpu, evaluation]
            )
    if cost:
        blocks += [
            ("h2", "Cost"),
            (
                "p",
                "Training: mean wall and CPU seconds per seed (this process; SUMO worker processes are not in the CPU time) for its steps; "
                "evaluation: mean wall seconds per episode on the benchmark env. The machine is in the header above.",
            ),
            (
                "table",
                [
                    across,
                    "policy",
                    "training steps per seed",
                    "train wall s / seed",
                    "train CPU s / seed",
                    "eval wall s / episode",
                ],
                cost,
            ),
        ]
    return blocks


def _published_blocks(
    published: PublishedResults, table: dict[str, dict[str, PolicyResults]], tasks: list[str]
) -> list:
    """Per task: the best published learned agent and controller, ctrlgym's best on the same
    metric, and Kendall's τ between ctrlgym's IQMs and the published values of the policies both ran."""
    metric, higher = published.metric, published.higher_is_better
    rows, concordant, discordant = [], 0, 0
    for task in tasks:
        if task not in published.values:
            continue
        ours = {label: iqm(entry.metric(metric)) for label, entry in table[task].items() if entry.metric(metric).size}
        cell = []
        for learned in (True, False):
            best = published.best(task, learned)
            cell.append(f"{best[0]} {best[1]:.1f}" if best else "-")
        mine = (max if higher else min)(ours.items(), key=lambda item: item[1]) if ours else None
        mapped = {published.names[label]: value for label, value in ours.items() if label in published.names}
        tau = kendall_tau(mapped, published.values[task])
        c, d = concordance(mapped, published.values[task])
        concordant, discordant = concordant + c, discordant + d
        order = ", ".join(sorted(mapped, key=mapped.__getitem__, reverse=higher))
        theirs = ", ".join(
            sorted(
                (n for n in mapped if n in published.values[task]),
                key=published.values[task].__getitem__,
                reverse=higher,
            )
        )
        rows.append(
            [
                _short(task),
                *cell,
                f"{mine[0]} {mine[1]:.1f}" if mine else "-",
                f"{tau:+.2f} (best first: ours {order}; published {theirs})" if tau is not None else "-",
            ]
        )
    if not rows:
        return []
    pairs = concordant + discordant
    pooled = (
        f"Over all tasks, {concordant} of {pairs} pairs of policies are ordered the same way "
        f"(τ = {(concordant - discordant) / pairs:+.2f})."
        if pairs
        else "No task has two policies in common with the published results."
    )
    return [
        ("h2", f"Beside the published results ({metric})"),
        (
            "p",
            f"Published: {published.source}. ctrlgym's column is the best IQM over seeds of {metric}, the metric computed as "
            f"the publication computes it (the headline metric above may count more, e.g. vehicles never inserted). "
            f"τ is Kendall's τ between ctrlgym's and the published ordering of the policies both ran "
            f"({', '.join(f'{ours} = {theirs}' for ours, theirs in published.names.items())}); +1: the same order. "
            + pooled,
        ),
        (
            "table",
            ["task", "published best learned", "published best controller", "ctrlgym best", "ranking agreement τ"],
            rows,
        ),
    ]


def _order(values: dict[str, np.ndarray], higher: bool) -> str:
    """The policies best first by IQM."""
    return ", ".join(sorted(values, key=lambda policy: iqm(values[policy]), reverse=higher))


def _agreement_blocks(
    env_id: str,
    table: dict[str, dict[str, PolicyResults]],
    other_id: str,
    other: dict[str, dict[str, PolicyResults]],
    metric: str,
    higher: bool,
    reps: int = 1000,
) -> list:
    """Per task, Kendall's τ between the two envs' rankings (IQM of ``metric``) of the policies both
    ran, with a bootstrap 95% CI: each policy's seeds resampled on each env."""
    rng = np.random.default_rng(0)
    rows, point = [], []
    for task in table:
        common = [
            p
            for p in table[task]
            if p in other.get(task, {}) and table[task][p].metric(metric).size and other[task][p].metric(metric).size
        ]
        if len(common) < 2:
            continue
        mine = {p: table[task][p].metric(metric) for p in common}
        theirs = {p: other[task][p].metric(metric) for p in common}
        tau = kendall_tau({p: iqm(v) for p, v in mine.items()}, {p: iqm(v) for p, v in theirs.items()})
        assert tau is not None  # two policies or more
        draws = [
            kendall_tau(
                {p: iqm(rng.choice(v, v.size)) for p, v in mine.items()},
                {p: iqm(rng.choice(v, v.size)) for p, v in theirs.items()},
            )
            for _ in range(reps)
        ]
        low, high = np.percentile([d for d in draws if d is not None], [2.5, 97.5])
        rows.append(
            [_short(task), f"{tau:+.2f} [{low:+.2f}, {high:+.2f}]", _order(mine, higher), _order(theirs, higher)]
        )
        point.append(tau)
    if not rows:
        return []
    return [
        ("h2", f"Ranking agreement: {other_id} against {env_id}"),
        (
            "p",
            f"Kendall's τ between the two envs' orderings of the policies both evaluated (IQM of {metric} over seeds), "
            f"with a bootstrap 95% CI ({reps} resamples of each policy's seeds on each env); +1: the same order. "
            f"Mean τ over the {len(point)} tasks: {np.mean(point):+.2f}.",
        ),
        ("table", ["task", "τ [95% CI]", f"best first on {env_id}", f"best first on {other_id}"], rows),
    ]


def _seed_matrix(table: dict[str, dict[str, PolicyResults]], tasks: list[str], label: str, metric: str) -> np.ndarray:
    """``(seeds, tasks)`` for the probability of improvement over tasks (seeds trimmed to the fewest any task has)."""
    columns = [table[t][label].metric(metric) for t in tasks]
    runs = min(c.size for c in columns)
    return np.stack([c[:runs] for c in columns], axis=1)


def _verdict(table, task: str, reference: str, higher: bool, summaries, chances) -> str:
    """One sentence per task: the reference against the best other baseline and every other agent."""
    mine = summaries[(task, reference)]
    others = [
        (label, summaries[(task, label)]) for label in table[task] if label != reference and (task, label) in summaries
    ]
    baselines = [(label, s) for label, s in others if table[task][label].kind == "baseline"]
    agents = [(label, s) for label, s in others if table[task][label].kind == "agent"]
    parts = []
    pick = max if higher else min
    for kind, group in (
        ("the best baseline", [pick(baselines, key=lambda ls: ls[1]["iqm"])] if baselines else []),
        ("", agents),
    ):
        for label, summary in group:
            wins = (mine["iqm"] > summary["iqm"]) == higher and mine["iqm"] != summary["iqm"]
            overlap = intervals_overlap((mine["low"], mine["high"]), (summary["low"], summary["high"]))
            who = f"{kind}, {label}" if kind else label
            verdict = "CIs overlap: not told apart" if overlap else ("better" if wins else "worse")
            parts.append(
                f"vs {who}: {iqm_text(mine)} vs {iqm_text(summary)}, {verdict}; P(better) = {chance_text(chances[(task, label)])}"
            )
    return f"{_short(task)}: {reference} " + "; ".join(parts) + "."


def write_benchmark_report(
    run_dirs: Sequence[RunDir | str | Path], output: str | Path, across: str = "scenario", reference: str | None = None
) -> tuple[Path, Path]:
    """Write ``OUTPUT.html`` (self-contained) and ``OUTPUT.md``: the benchmark of the runs across ``across``."""
    if not run_dirs:
        raise UsageError("a benchmark report needs run directories")
    others: dict[str, dict[str, dict[str, PolicyResults]]] = {}
    env_id, table = collect_benchmark(run_dirs, across, others=others)
    return write_blocks(_blocks(env_id, table, reference, across, others), output, data=_best_per_task(env_id, table))


def _best_per_task(env_id: str, table: dict[str, dict[str, PolicyResults]]) -> dict[str, Any]:
    """The report's JSON data: per task, the policy with the best IQM of the headline metric."""
    from ctrlgym.registry import get_entry

    metric, higher = get_entry(env_id).vector_cls.headline_metric or ("mean_return", True)
    best: dict[str, dict[str, Any]] = {}
    for task, policies in table.items():
        scored = {label: iqm(entry.metric(metric)) for label, entry in policies.items() if entry.metric(metric).size}
        if scored:
            label = (max if higher else min)(scored, key=lambda name: scored[name])
            best[task] = {
                "policy": label,
                "iqm": float(scored[label]),
                "seeds": int(policies[label].metric(metric).size),
            }
    return {"env_id": env_id, "metric": metric, "higher_is_better": higher, "best": best}
