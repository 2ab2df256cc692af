"""Evaluation reports: one self-contained HTML file (plots embedded) and a Markdown twin.

A header says what produced the report (ctrlgym version, commit, date) and how to read it. Per
run: its setup (env and arguments, agent and hyperparameters, seeds x episodes, training steps
and wall time), learning curves (training return, mean over seeds ± 95% CI band), and a policy
comparison: each policy's one-line description, the interquartile mean (IQM) of its evaluation
returns over seeds x episodes with a stratified-bootstrap 95% CI (:mod:`ctrlgym.statistics`,
Agarwal et al. 2021) beside the mean, a sentence on which differences the CIs support with the
probability of improvement, and every metric with its meaning and unit. Several runs get a
table comparing them; runs evaluated over a sweep of an env parameter (``evaluation.sweep``)
share one plot and table of the metric against that parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ctrlgym.errors import UsageError
from ctrlgym.experiment.provenance import provenance_line
from ctrlgym.experiment.reports.plots import comparison_plot, grouped_bars, learning_curve_plot, solve_plot, sweep_plot
from ctrlgym.experiment.reports.render import write_blocks
from ctrlgym.experiment.runs import RunDir, RunDirError, succeeded
from ctrlgym.statistics import MIN_SEEDS_FOR_CI, intervals_overlap, mean_ci, probability_of_improvement_ci, summarize
from ctrlgym.statistics import iqm as iqm_of

__all__ = ["write_report", "compare_policies", "headline_summary", "iqm_text", "chance_text"]


def _failures(policies: dict[str, dict[str, Any]], where: str = "") -> list[str]:
    """One sentence per policy that failed on some seeds (evaluate records the message and goes on)."""
    lines = []
    for policy, per_seed in policies.items():
        failed = {seed: result["failed"] for seed, result in per_seed.items() if "failed" in result}
        for message in dict.fromkeys(failed.values()):
            seeds = ", ".join(seed for seed, m in failed.items() if m == message)
            lines.append(f"{policy} failed on seeds {seeds}{where}: {message}")
    return lines


def _metric_order(env_id: str, names) -> list[str]:
    """Metric names in the env's report order (its ``report_metrics``, e.g. delay first), then the rest sorted."""
    try:
        from ctrlgym.registry import get_entry

        preferred = list(get_entry(env_id).vector_cls.report_metrics)
    except Exception:  # an env whose family is not installed here: plain order
        preferred = []
    names = set(names)
    return [n for n in preferred if n in names] + sorted(names - set(preferred))


def _scores(per_seed: dict[str, Any]) -> np.ndarray:
    """Evaluation returns over seeds x episodes (one run each, one task) of the seeds that ran."""
    return np.asarray(
        [value for result in per_seed.values() for value in result.get("episode_returns", [result["mean_return"]])],
        dtype=float,
    )


def compare_policies(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per policy that ran: mean over seeds ± t CI, IQM over seeds x episodes with its
    bootstrap CI, the per-metric means; sorted by IQM, best first."""
    rows = []
    for policy, per_seed in evaluation["policies"].items():
        per_seed = succeeded(per_seed)
        if not per_seed:
            continue
        returns = [result["mean_return"] for result in per_seed.values()]
        mean, half = mean_ci(returns)
        scores = _scores(per_seed)
        summary = summarize(scores)
        metric_names = sorted({key for result in per_seed.values() for key in result["metrics"]})
        metrics = {
            key: float(np.mean([r["metrics"][key] for r in per_seed.values() if key in r["metrics"]]))
            for key in metric_names
        }
        rows.append(
            {
                "policy": policy,
                "mean": mean,
                "ci": half,
                "seeds": len(returns),
                "episodes": int(scores.size // len(returns)),
                "iqm": summary["iqm"],
                "low": summary["low"],
                "high": summary["high"],
                "scores": scores,
                "metrics": metrics,
            }
        )
    return sorted(rows, key=lambda row: -row["iqm"])


def policy_verdict(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Which differences the evidence supports: the best policy by IQM, the policies whose CIs
    overlap its own (not told apart), and P(best > each of the next three) with its CI; with fewer
    than ``MIN_SEEDS_FOR_CI`` seeds, none (``too_few_seeds``)."""
    if len(rows) < 2:
        return None
    best = rows[0]
    seeds = min(row["seeds"] for row in rows)
    if seeds < MIN_SEEDS_FOR_CI:
        return {"best": best["policy"], "too_few_seeds": seeds}
    tied = [
        row["policy"] for row in rows[1:] if intervals_overlap((best["low"], best["high"]), (row["low"], row["high"]))
    ]
    chances = {
        row["policy"]: list(probability_of_improvement_ci(best["scores"], row["scores"], reps=500)) for row in rows[1:4]
    }
    return {"best": best["policy"], "tied": tied, "p_best_better": chances}


def verdict_text(verdict: dict[str, Any] | None) -> str:
    if verdict is None:
        return ""
    best = verdict["best"]
    if "too_few_seeds" in verdict:
        seeds = verdict["too_few_seeds"]
        return (
            f"Highest IQM: {best}. With {seeds} seed{'s' if seeds > 1 else ''} these data cannot tell the policies apart "
            f"(n too small: confidence intervals and comparisons need at least {MIN_SEEDS_FOR_CI} seeds, 5 or more to compare)."
        )
    tied = verdict["tied"]
    parts = [f"Best by IQM: {best}."]
    if tied:
        parts.append(f"Its 95% CI overlaps those of {', '.join(tied)}: these cannot be told apart on this evidence.")
    else:
        parts.append("Its 95% CI overlaps no other policy's: it is better than every other here.")
    chances = [f"P({best} > {other}) = {chance_text(tuple(p))}" for other, p in verdict["p_best_better"].items()]
    return " ".join(parts) + " " + "; ".join(chances) + "."


def iqm_text(summary: dict[str, float], seeds: int | None = None) -> str:
    """``IQM [low, high]`` of a :func:`~ctrlgym.statistics.summarize` result (4 significant digits); with
    fewer than ``MIN_SEEDS_FOR_CI`` ``seeds``, the IQM alone and "n too small"."""
    if seeds is not None and seeds < MIN_SEEDS_FOR_CI:
        return f"{summary['iqm']:.4g} (n too small for a CI: {seeds} seed{'s' if seeds > 1 else ''})"
    return f"{summary['iqm']:.4g} [{summary['low']:.4g}, {summary['high']:.4g}]"


def chance_text(point_low_high: tuple[float, float, float]) -> str:
    """``P [low, high]`` of a probability of improvement with its CI."""
    return "{:.2f} [{:.2f}, {:.2f}]".format(*point_low_high)


def headline_summary(env_id: str, evaluation: dict[str, Any] | None) -> dict[str, Any] | None:
    """The env's headline metric (``headline_metric = (name, higher_is_better)`` on its class, e.g.
    mixup's final test accuracy, traffic's delay) per policy: IQM over seeds [bootstrap CI], and
    P(agent better than each policy) over seeds with its CI."""
    from ctrlgym.registry import get_entry

    try:
        name, higher = get_entry(env_id).vector_cls.headline_metric or (None, True)
    except ValueError:
        return None
    if name is None or not evaluation:
        return None
    values = {
        policy: np.asarray(
            [r["metrics"][name] for r in succeeded(per_seed).values() if name in r["metrics"]], dtype=float
        )
        for policy, per_seed in evaluation["policies"].items()
    }
    values = {policy: v for policy, v in values.items() if v.size}
    agent = evaluation.get("agent")
    rows = []
    for policy, v in sorted(values.items(), key=lambda kv: -iqm_of(kv[1]) if higher else iqm_of(kv[1])):
        summary = summarize(v)
        chance = None
        if agent in values and policy != agent:
            chance = probability_of_improvement_ci(values[agent], v, lower_is_better=not higher, reps=500)
        rows.append(
            {
                "policy": policy,
                "iqm": summary["iqm"],
                "low": summary["low"],
                "high": summary["high"],
                "seeds": v.size,
                "p_agent": chance,
            }
        )
    return {"metric": name, "higher_is_better": higher, "agent": agent, "rows": rows}


def _headline_blocks(section: dict[str, Any]) -> list[tuple]:
    headline = section.get("headline")
    if not headline:
        return []
    metric, agent = headline["metric"], headline["agent"]
    better = "higher" if headline["higher_is_better"] else "lower"
    header = ["policy", f"{metric}: IQM over seeds [95% CI]", "seeds", *([f"P({agent} better)"] if agent else [])]
    cells = []
    for row in headline["rows"]:
        cell = [row["policy"], iqm_text(row, row["seeds"]), str(row["seeds"])]
        if agent:
            enough = row["p_agent"] is not None and row["seeds"] >= MIN_SEEDS_FOR_CI
            cell.append(chance_text(row["p_agent"]) if enough else "-")
        cells.append(cell)
    text = (
        f"The headline metric, {metric} ({better} is better): each seed's value (the mean over its episodes), "
        f"IQM over seeds with a stratified-bootstrap 95% CI; P({agent} better) is the probability that the agent's "
        f"seed beats a random seed of that policy (Agarwal et al. 2021), with its CI."
        if agent
        else f"The headline metric, {metric} ({better} is better): IQM over seeds with a stratified-bootstrap 95% CI."
    )
    return [("h3", f"{section['name']}: {metric}"), ("p", text), ("table", header, cells)]


def _sweep_value(result: dict[str, Any], metric: str) -> float:
    return result["mean_return"] if metric == "mean_return" else result["metrics"][metric]


def _sweep_rows(sections: list[dict[str, Any]]) -> tuple[str, str, list[Any], list[dict[str, Any]]] | None:
    """The swept parameter, the metric, the values and one row per policy (mean ± 95% CI over
    seeds at each value) across every run with a sweep of the same parameter; a trained agent is
    named after its run, a baseline appears once."""
    swept = [section for section in sections if section["sweep"]]
    if not swept:
        return None
    param, metric, values = swept[0]["sweep"]["param"], swept[0]["sweep_metric"], swept[0]["sweep"]["values"]
    rows, seen = [], set()
    for section in swept:
        sweep = section["sweep"]
        if sweep["param"] != param or section["sweep_metric"] != metric:
            continue
        for policy, per_value in sweep["policies"].items():
            label = section["name"] if policy == sweep["agent"] else policy
            if label in seen:
                continue
            seen.add(label)
            samples = [[_sweep_value(r, metric) for r in succeeded(per_value.get(str(v), {})).values()] for v in values]
            rows.append(
                {
                    "label": label,
                    "policy": policy,
                    "agent": policy == sweep["agent"],
                    "cells": [_cell(x) for x in samples],
                    "iqm": [_iqm_cell(x) for x in samples],
                    "per_value": per_value,
                }
            )
    return param, metric, values, rows


def _cell(values: list[float]) -> tuple[float, float]:
    return mean_ci(values) if values else (float("nan"), 0.0)


def _iqm_cell(values: list[float]) -> tuple[float, float, float]:
    """IQM over seeds with its stratified-bootstrap 95% CI, ``(iqm, low, high)``."""
    if not values:
        return float("nan"), float("nan"), float("nan")
    summary = summarize(np.asarray(values, dtype=float))
    return summary["iqm"], summary["low"], summary["high"]


def _normalised_table(
    env_id: str, values: list[Any], rows: list[dict[str, Any]]
) -> tuple[str, list[str], list[list[str]]] | None:
    """Each policy's IQM as a percentage of the gap from the env's floor to its ceiling policy at each
    value (``normalised_score = (floor, ceiling)`` on the env class, e.g. stale → perfect CSI):
    ``100 · (x − floor) / (ceiling − floor)``, as Atari's human-normalised scores."""
    from ctrlgym.registry import get_entry

    try:
        floor_name, ceiling_name = get_entry(env_id).vector_cls.normalised_score or (None, None)
    except ValueError:
        return None
    by_policy = {row["policy"]: row for row in rows if not row["agent"]}
    if floor_name not in by_policy or ceiling_name not in by_policy:
        return None
    floor, ceiling = by_policy[floor_name]["iqm"], by_policy[ceiling_name]["iqm"]
    cells = []
    for row in rows:
        entries = []
        for (x, _, _), (f, _, _), (c, _, _) in zip(row["iqm"], floor, ceiling, strict=False):
            entries.append(f"{100 * (x - f) / (c - f):.0f}%" if abs(c - f) > 1e-9 else "-")
        cells.append([row["label"], *entries])
    note = (
        f"IQM as % of the gap from {floor_name} (0%) to {ceiling_name} (100%) at each value: how much of what "
        f"better information could give a policy recovers. Where the gap is small (the floor is near the ceiling) the percentages are noisy."
    )
    return note, ["policy", *(str(v) for v in values)], cells


def _categorical(values: list[Any]) -> bool:
    """A sweep over names (e.g. scenarios), not numbers: shown as a table per value and grouped bars."""
    return not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _per_value_tables(
    env_id: str, values: list[Any], rows: list[dict[str, Any]]
) -> list[tuple[str, list[str], list[list[str]]]]:
    """For a categorical sweep: per value, every policy's metrics (mean ± 95% CI over seeds)."""
    tables = []
    for value in values:
        results = {row["label"]: list(succeeded(row["per_value"].get(str(value), {})).values()) for row in rows}
        names = _metric_order(env_id, {key for rs in results.values() for r in rs for key in r["metrics"]})
        header = ["policy", "seeds", *names]
        cells = []
        for label, rs in results.items():
            if not rs:
                continue
            stats_ = [_cell([r["metrics"][n] for r in rs if n in r["metrics"]]) for n in names]
            cells.append([label, str(len(rs)), *(f"{m:.2f} ± {h:.2f}" for m, h in stats_)])
        failed = _failures({row["label"]: row["per_value"].get(str(value), {}) for row in rows})
        tables.append((f"{value}" + (f" — {'; '.join(failed)}" if failed else ""), header, cells))
    return tables


def _sweep_table(values: list[Any], rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Per policy and value: the IQM over seeds [stratified-bootstrap 95% CI]."""
    header = ["policy", *(str(v) for v in values)]
    return header, [[row["label"], *(f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in row["iqm"])] for row in rows]


def _descriptions(env_id: str, agent: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """(policy -> one-line description, metric -> meaning and unit) from the registries."""
    policies, metrics = {}, {}
    try:
        from ctrlgym.registry import get_entry

        entry = get_entry(env_id)
        policies = {name: baseline.description for name, baseline in entry.baselines.items()}
        metrics = dict(getattr(entry.vector_cls, "metric_descriptions", {}))
    except Exception:  # an env whose family is not installed here: names only
        pass
    if agent:
        from ctrlgym.experiment.algorithms import get_algorithm

        try:
            policies[agent] = get_algorithm(agent).description
        except ValueError:
            pass
    return policies, metrics


def _run_section(run: RunDir) -> dict[str, Any]:
    run_dir, config = run.path, run.config
    metrics = run.metrics()
    if not {"evaluation", "transfer", "solve"} & set(metrics):
        raise RunDirError(f"{run_dir} has no evaluation yet: run ctrlgym evaluate {run_dir} (or ctrlgym solve)")
    evaluation = metrics.get("evaluation") or next(iter(metrics.get("transfer", {}).values()), None)
    rows = compare_policies(metrics["evaluation"]) if "evaluation" in metrics else []
    solve = metrics.get("solve")
    transfer = [(env_id, compare_policies(result)) for env_id, result in metrics.get("transfer", {}).items()]
    agent = evaluation["agent"] if evaluation else None
    descriptions, metric_descriptions = _descriptions(config.env.id, agent)
    training = metrics.get("training", {})
    return {
        "name": config.name,
        "run_dir": str(run_dir),
        "env": config.env.id,
        "env_kwargs": dict(config.env.kwargs),
        "agent": agent,
        "hyperparameters": dict(config.agent.hyperparameters or {}) if config.agent is not None else {},
        "seeds": list(config.seeds),
        "episodes": config.evaluation.episodes,
        "wall_time_s": sum(seed.get("wall_time_s", 0.0) for seed in training.values()),
        "descriptions": descriptions,
        "metric_descriptions": metric_descriptions,
        "rows": rows,
        "curve_png": learning_curve_plot(config.name, training),
        "comparison_png": (
            comparison_plot(
                config.name if rows else f"{config.name} on {transfer[0][0]}", rows or transfer[0][1], agent
            )
            if evaluation
            else None
        ),
        "solve": solve,
        "solve_png": solve_plot(config.name, solve) if solve else None,
        "timesteps": config.agent.total_timesteps if config.agent is not None else 0,
        "transfer": transfer,
        "sweep": metrics.get("sweep"),
        "sweep_metric": config.evaluation.sweep_metric,
        "failures": _failures(metrics["evaluation"]["policies"]) if "evaluation" in metrics else [],
        "headline": headline_summary(config.env.id, metrics.get("evaluation")),
        "verdicts": [policy_verdict(rows) for rows in [rows, *(found for _, found in transfer)]],
    }


def _regret(percent: float) -> str:
    """Regret in % to 4 decimals; a value that rounds to zero (solver tolerance, either sign) prints 0.0000."""
    return "0.0000" if abs(percent) < 5e-5 else f"{percent:.4f}"


def _solve_table(solve: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["method", "T", "seconds", "fraction of VI time", "regret %"]
    cells = [
        [
            row["method"],
            str(row["period"]) if row["period"] is not None else "-",
            f"{row['seconds']:.3f}",
            f"{row['fraction_of_vi_time']:.2f}" if row["fraction_of_vi_time"] is not None else "-",
            _regret(row["regret_percent"]),
        ]
        for row in solve["rows"]
    ]
    return header, cells


def _solve_summary(solve: dict[str, Any]) -> str:
    return (
        f"Solvers on the exact model {solve['model']}: {solve['states']:,} states, {solve['actions']} actions, "
        f"γ = {solve['discount']}, ε = {solve['epsilon']}, {solve['device']}; optimal mean value {solve['optimal_mean_value']:.3f}."
    )


def _interval(row: dict[str, Any]) -> str:
    if row["seeds"] < MIN_SEEDS_FOR_CI:
        return f"{row['iqm']:.2f} (n too small for a CI)"
    return f"{row['iqm']:.2f} [{row['low']:.2f}, {row['high']:.2f}]"


def _table(section: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of a run's policy table (shared by HTML and Markdown)."""
    metric_names = _metric_order(section.get("env", ""), {key for row in section["rows"] for key in row["metrics"]})
    header = ["policy", "what it is", "IQM return [95% CI]", "mean return ± 95% CI", "seeds × episodes", *metric_names]
    descriptions = section.get("descriptions", {})
    cells = [
        [
            row["policy"],
            descriptions.get(row["policy"], ""),
            _interval(row),
            f"{row['mean']:.2f} ± {row['ci']:.2f}" if row["seeds"] >= MIN_SEEDS_FOR_CI else f"{row['mean']:.2f}",
            f"{row['seeds']} × {row['episodes']}",
            *(f"{row['metrics'].get(name, float('nan')):.3f}" for name in metric_names),
        ]
        for row in section["rows"]
    ]
    return header, cells


def _setup(section: dict[str, Any], env: str | None = None) -> str:
    """What was compared, how and on what: env and its arguments, agent and hyperparameters, seeds, episodes, compute."""
    kwargs = ", ".join(f"{k}={v}" for k, v in section.get("env_kwargs", {}).items())
    where = f"Evaluated on {env}, trained on {section['env']}" if env is not None else f"Env {section['env']}"
    parts = [where + (f" ({kwargs})" if kwargs else "") + "."]
    if section["agent"]:
        hyper = ", ".join(f"{k}={v}" for k, v in section.get("hyperparameters", {}).items())
        seconds = section.get("wall_time_s", 0.0)
        spent = f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"
        parts.append(
            f"Agent {section['agent']}"
            + (f" ({hyper})" if hyper else "")
            + f": {section['timesteps']:,} training steps per seed, {spent} of training in all."
        )
    else:
        parts.append("Baselines only (no agent trained).")
    seeds = section.get("seeds", [])
    parts.append(
        f"Every policy ran on the same {len(seeds)} evaluation seeds × {section.get('episodes', '?')} episodes; run directory {section['run_dir']}."
    )
    return " ".join(parts)


def _metric_legend(section: dict[str, Any]) -> list[str]:
    """'name: meaning (unit)' for the return and every metric in the run's tables."""
    names = _metric_order(section.get("env", ""), {key for row in section["rows"] for key in row["metrics"]})
    known = section.get("metric_descriptions", {})
    lines = [
        "return: sum of rewards over an episode (over agents too), on the evaluation seeds, greedy/deterministic actions; higher is better"
    ]
    lines += [f"{name}: {known.get(name, 'per-step mean of the env info value')}" for name in names]
    return lines


#: columns a table shows at most (about 1400 px wide); further metrics go to tables of their own
MAX_COLUMNS = 9


def _split_wide(header: list[str], cells: list[list[str]], fixed: int = 1) -> list[tuple[list[str], list[list[str]]]]:
    """The table as several of at most ``MAX_COLUMNS`` columns, each repeating the first ``fixed`` ones."""
    if len(header) <= MAX_COLUMNS:
        return [(header, cells)]
    first = MAX_COLUMNS
    parts = [(header[:first], [row[:first] for row in cells])]
    width = MAX_COLUMNS - fixed
    for start in range(first, len(header), width):
        parts.append(
            (
                header[:fixed] + header[start : start + width],
                [row[:fixed] + row[start : start + width] for row in cells],
            )
        )
    return parts


def _tables(section: dict[str, Any]) -> list[tuple[str, list[tuple[list[str], list[list[str]]]], str]]:
    """(summary, tables, verdict) of each comparison a run section shows: evaluation, transfers, then
    solvers; a wide table split into parts that fit, the verdict meant to stand right below them."""
    verdicts = section.get("verdicts") or []
    tables = []
    if section["rows"]:
        verdict = verdict_text(verdicts[0]) if verdicts else ""
        tables.append((_setup(section), _split_wide(*_table(section)), verdict))
    for index, (env, rows) in enumerate(section["transfer"], start=1):
        verdict = verdict_text(verdicts[index]) if len(verdicts) > index else ""
        tables.append((_setup(section, env), _split_wide(*_table({**section, "rows": rows, "env": env})), verdict))
    if section["solve"]:
        tables.append((_solve_summary(section["solve"]), [_solve_table(section["solve"])], ""))
    return tables


def _runs_table(sections: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]] | None:
    """With several runs: one line per run (env, agent, compute, best policy, the agent's IQM and rank)."""
    if len(sections) < 2:
        return None
    header = ["run", "env", "agent", "steps per seed", "best policy (IQM)", "agent IQM [95% CI]", "agent rank"]
    cells = []
    for section in sections:
        rows = section["rows"] or (section["transfer"][0][1] if section["transfer"] else [])
        ranked = [row["policy"] for row in rows]
        agent_row = next((row for row in rows if row["policy"] == section["agent"]), None)
        cells.append(
            [
                section["name"],
                section["env"],
                section["agent"] or "-",
                f"{section['timesteps']:,}" if section["agent"] else "-",
                f"{rows[0]['policy']} {rows[0]['iqm']:.2f}" if rows else "-",
                _interval(agent_row) if agent_row else "-",
                f"{ranked.index(section['agent']) + 1} of {len(ranked)}" if agent_row else "-",
            ]
        )
    return header, cells


HOW_TO_READ = (
    "How to read this report: policies are ranked by the interquartile mean (IQM: the mean of the middle 50%) of their "
    "evaluation returns over seeds × episodes, with a 95% stratified-bootstrap confidence interval (Agarwal et al. 2021); "
    "the mean ± t-interval over seeds is shown beside it. Where two CIs overlap, the data do not tell those policies apart; "
    f"with fewer than {MIN_SEEDS_FOR_CI} seeds no CI is given. "
    "P(A > B) is the probability that a random evaluation episode of A scores above one of B."
)
CURVES_HELP = (
    " Learning curves show the training return of the exploring policy on the training seeds; tables show the "
    "evaluation return of the greedy (deterministic) policy on separate evaluation seeds, so the two need not agree."
)
SOLVE_HELP = " Solver tables: regret is the loss of the policy's value against the optimal one, in % of the mean |V*|."


def _how_to_read(sections: list[dict[str, Any]]) -> str:
    """The reading guide, with the help of just the plots and tables this report shows."""
    text = HOW_TO_READ if any(s["rows"] or s["transfer"] for s in sections) else ""
    if any(s["curve_png"] for s in sections):
        text += CURVES_HELP
    if any(s["solve"] for s in sections):
        text += SOLVE_HELP
    return (text or SOLVE_HELP).strip()


def _blocks(sections: list[dict[str, Any]]) -> list[tuple]:
    """The report as a list of blocks, rendered alike to Markdown and HTML: ("h1"|"h2"|"h3"|"p"|"failed", text),
    ("table", header, cells), ("list", items), ("img", name, base64 png; HTML only)."""
    blocks: list[tuple] = [("h1", "ctrlgym evaluation report"), ("p", provenance_line()), ("p", _how_to_read(sections))]
    runs = _runs_table(sections)
    if runs:
        blocks += [("h2", "Runs compared"), ("table", *runs)]
    for section in sections:
        blocks.append(("h2", section["name"]))
        for summary, parts, verdict in _tables(section):
            blocks += [("p", summary), *(("table", header, cells) for header, cells in parts)]
            if verdict:
                blocks.append(("p", verdict))
        blocks += _headline_blocks(section)
        if section["rows"] or section["transfer"]:
            blocks.append(("list", _metric_legend(section)))
        blocks += [("failed", failure) for failure in section["failures"]]
        blocks += [("img", key, section[key]) for key in ("curve_png", "comparison_png", "solve_png") if section[key]]
    sweep = _sweep_rows(sections)
    if sweep:
        param, metric, values, rows = sweep
        blocks += [
            ("h2", f"{metric} vs {param}"),
            (
                "p",
                "At each value: the interquartile mean over seeds [stratified-bootstrap 95% CI] (the plot: mean ± 95% t-interval).",
            ),
            ("table", *_sweep_table(values, rows)),
        ]
        normalised = _normalised_table(sections[0]["env"], values, rows)
        if normalised:
            blocks += [("p", normalised[0]), ("table", normalised[1], normalised[2])]
        plot = (
            grouped_bars(param, metric, values, rows)
            if _categorical(values)
            else sweep_plot(param, metric, values, rows)
        )
        blocks.append(("img", "sweep", plot))
        if _categorical(values):
            for title, header, cells in _per_value_tables(sections[0]["env"], values, rows):
                blocks += [("h3", f"{param} = {title}"), ("table", header, cells)]
    return blocks


def write_report(run_dirs: Sequence[RunDir | str | Path], output: str | Path) -> tuple[Path, Path]:
    """Write ``OUTPUT.html`` (self-contained) and ``OUTPUT.md`` for the given run directories."""
    if not run_dirs:
        raise UsageError("report needs at least one run directory")
    sections = [_run_section(run if isinstance(run, RunDir) else RunDir.open(run)) for run in run_dirs]
    return write_blocks(_blocks(sections), output, data={"runs": [_json_section(section) for section in sections]})


def _json_section(section: dict[str, Any]) -> dict[str, Any]:
    """A run section as the report's JSON keeps it: every number and name, no plots or raw scores."""
    kept = {key: value for key, value in section.items() if not key.endswith("_png")}
    strip = lambda rows: [{k: v for k, v in row.items() if k != "scores"} for row in rows]  # noqa: E731
    kept["rows"] = strip(section["rows"])
    kept["transfer"] = [{"env": env, "rows": strip(rows)} for env, rows in section["transfer"]]
    return kept
