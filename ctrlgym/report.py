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

import base64
import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from ctrlgym.runs import RunDirError, open_run_dir, read_metrics, succeeded  # noqa: E402
from ctrlgym.statistics import intervals_overlap, iqm as iqm_of, probability_of_improvement_ci, summarize  # noqa: E402

__all__ = ["mean_ci", "write_report"]


def mean_ci(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of its confidence interval (t distribution; 0 for one value)."""
    data = np.asarray(values, dtype=float)
    if data.size < 2:
        return float(data.mean()), 0.0
    sem = data.std(ddof=1) / np.sqrt(data.size)
    return float(data.mean()), float(sem * stats.t.ppf(0.5 + confidence / 2, data.size - 1))


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _learning_curve_plot(name: str, training: dict[str, Any]) -> str | None:
    curves = [np.asarray(seed["learning_curve"], dtype=float) for seed in training.values() if seed["learning_curve"]]
    if not curves:
        return None
    grid = np.linspace(max(c[0, 0] for c in curves), min(c[-1, 0] for c in curves), 50)
    resampled = np.stack([np.interp(grid, c[:, 0], c[:, 1]) for c in curves])  # (seeds, 50)
    figure, axis = plt.subplots(figsize=(6, 3.5))
    for curve in curves:
        axis.plot(curve[:, 0], curve[:, 1], color="tab:blue", alpha=0.25, linewidth=0.8)
    centre = resampled.mean(axis=0)
    if len(curves) > 1:
        half = resampled.std(axis=0, ddof=1) / np.sqrt(len(curves)) * stats.t.ppf(0.975, len(curves) - 1)
        axis.fill_between(grid, centre - half, centre + half, color="tab:blue", alpha=0.2, label="95% CI")
    axis.plot(grid, centre, color="tab:blue", label=f"mean of {len(curves)} seeds")
    axis.set(xlabel="env steps", ylabel="training episode return", title=f"{name}: training return (exploring policy, training seeds)")
    axis.legend(loc="lower right")
    axis.grid(alpha=0.3)
    return _png(figure)


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

        preferred = list(getattr(get_entry(env_id).vector_cls, "report_metrics", ()))
    except Exception:  # an env whose family is not installed here: plain order
        preferred = []
    names = set(names)
    return [n for n in preferred if n in names] + sorted(names - set(preferred))


def _scores(per_seed: dict[str, Any]) -> np.ndarray:
    """Evaluation returns over seeds x episodes (one run each, one task) of the seeds that ran."""
    return np.asarray([value for result in per_seed.values() for value in result.get("episode_returns", [result["mean_return"]])], dtype=float)


def _comparison(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
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
        metrics = {key: float(np.mean([r["metrics"][key] for r in per_seed.values() if key in r["metrics"]])) for key in metric_names}
        rows.append({
            "policy": policy, "mean": mean, "ci": half, "seeds": len(returns), "episodes": int(scores.size // len(returns)),
            "iqm": summary["iqm"], "low": summary["low"], "high": summary["high"], "scores": scores, "metrics": metrics,
        })  # fmt: skip
    return sorted(rows, key=lambda row: -row["iqm"])


def _verdict(rows: list[dict[str, Any]]) -> str:
    """Which differences the evidence supports: the best policy by IQM, the policies whose CIs
    overlap its own (not told apart), and P(best > each other) with its CI."""
    if len(rows) < 2:
        return ""
    best = rows[0]
    tied = [row["policy"] for row in rows[1:] if intervals_overlap((best["low"], best["high"]), (row["low"], row["high"]))]
    parts = [f"Best by IQM: {best['policy']}."]
    if tied:
        parts.append(f"Its 95% CI overlaps those of {', '.join(tied)}: these cannot be told apart on this evidence.")
    else:
        parts.append("Its 95% CI overlaps no other policy's: it is better than every other here.")
    chances = []
    for row in rows[1:4]:
        point, low, high = probability_of_improvement_ci(best["scores"], row["scores"], reps=500)
        chances.append(f"P({best['policy']} > {row['policy']}) = {point:.2f} [{low:.2f}, {high:.2f}]")
    return " ".join(parts) + " " + "; ".join(chances) + "."


def iqm_text(summary: dict[str, float]) -> str:
    """``IQM [low, high]`` of a :func:`~ctrlgym.statistics.summarize` result (4 significant digits)."""
    return f"{summary['iqm']:.4g} [{summary['low']:.4g}, {summary['high']:.4g}]"


def chance_text(point_low_high: tuple[float, float, float]) -> str:
    """``P [low, high]`` of a probability of improvement with its CI."""
    return "{:.2f} [{:.2f}, {:.2f}]".format(*point_low_high)


def _headline(env_id: str, evaluation: dict[str, Any] | None) -> dict[str, Any] | None:
    """The env's headline metric (``headline_metric = (name, higher_is_better)`` on its class, e.g.
    mixup's final test accuracy, traffic's delay) per policy: IQM over seeds [bootstrap CI], and
    P(agent better than each policy) over seeds with its CI."""
    from ctrlgym.registry import get_entry

    try:
        name, higher = getattr(get_entry(env_id).vector_cls, "headline_metric", (None, True))
    except ValueError:
        return None
    if name is None or not evaluation:
        return None
    values = {
        policy: np.asarray([r["metrics"][name] for r in succeeded(per_seed).values() if name in r["metrics"]], dtype=float)
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
        rows.append({"policy": policy, "iqm": summary["iqm"], "low": summary["low"], "high": summary["high"], "seeds": v.size, "p_agent": chance})
    return {"metric": name, "higher_is_better": higher, "agent": agent, "rows": rows}


def _headline_blocks(section: dict[str, Any]) -> list[tuple]:
    headline = section.get("headline")
    if not headline:
        return []
    metric, agent = headline["metric"], headline["agent"]
    better = "higher" if headline["higher_is_better"] else "lower"
    header = ["policy", f"{metric}: IQM over seeds [95% CI]", "seeds", *( [f"P({agent} better)"] if agent else [])]
    cells = []
    for row in headline["rows"]:
        cell = [row["policy"], iqm_text(row), str(row["seeds"])]
        if agent:
            cell.append("-" if row["p_agent"] is None else chance_text(row["p_agent"]))
        cells.append(cell)
    text = (
        f"The headline metric, {metric} ({better} is better): each seed's value (the mean over its episodes), "
        f"IQM over seeds with a stratified-bootstrap 95% CI; P({agent} better) is the probability that the agent's "
        f"seed beats a random seed of that policy (Agarwal et al. 2021), with its CI." if agent else
        f"The headline metric, {metric} ({better} is better): IQM over seeds with a stratified-bootstrap 95% CI."
    )
    return [("h3", f"{section['name']}: {metric}"), ("p", text), ("table", header, cells)]


def _comparison_plot(name: str, rows: list[dict[str, Any]], agent: str) -> str:
    """Horizontal bars (labels never overlap) of each policy's IQM with its bootstrap 95% CI."""
    figure, axis = plt.subplots(figsize=(7, 0.8 + 0.38 * len(rows)))
    colours = ["tab:orange" if row["policy"] == agent else "tab:gray" for row in rows]
    iqms = np.array([row["iqm"] for row in rows])
    errors = np.array([[row["iqm"] - row["low"] for row in rows], [row["high"] - row["iqm"] for row in rows]])
    axis.barh([row["policy"] for row in rows], iqms, xerr=errors, color=colours, capsize=4)
    axis.invert_yaxis()
    axis.set(xlabel="evaluation return: IQM over seeds x episodes (95% bootstrap CI)", title=f"{name}: policies on the same evaluation seeds")
    axis.grid(axis="x", alpha=0.3)
    return _png(figure)


def _solve_plot(name: str, solve: dict[str, Any]) -> str:
    """Regret vs compute: frozen-state ADP (VI or MPI upper level) over its periods T, the other methods as points."""
    figure, axis = plt.subplots(figsize=(6, 3.5))
    for method, style in (("frozen_state", "o-k"), ("frozen_state_mpi", "^--b")):
        frozen = [row for row in solve["rows"] if row["method"] == method]
        if frozen:
            axis.plot([r["seconds"] for r in frozen], [r["regret_percent"] for r in frozen], style, label=method)
            for r in frozen:
                axis.annotate(f"T={r['period']}", (r["seconds"], r["regret_percent"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    for r in solve["rows"]:
        if r["period"] is None:
            axis.plot(r["seconds"], r["regret_percent"], "s", label=r["method"])
    axis.set_yscale("symlog", linthresh=1e-3)
    axis.set(xlabel="wall-clock seconds", ylabel="regret (% of mean |V*|)", title=f"{name}: regret vs compute ({solve['states']:,} states)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return _png(figure)


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
            rows.append({
                "label": label, "policy": policy, "agent": policy == sweep["agent"], "cells": [_cell(x) for x in samples],
                "iqm": [_iqm_cell(x) for x in samples], "per_value": per_value,
            })  # fmt: skip
    return param, metric, values, rows


def _cell(values: list[float]) -> tuple[float, float]:
    return mean_ci(values) if values else (float("nan"), 0.0)


def _iqm_cell(values: list[float]) -> tuple[float, float, float]:
    """IQM over seeds with its stratified-bootstrap 95% CI, ``(iqm, low, high)``."""
    if not values:
        return float("nan"), float("nan"), float("nan")
    summary = summarize(np.asarray(values, dtype=float))
    return summary["iqm"], summary["low"], summary["high"]


def _normalised_table(env_id: str, values: list[Any], rows: list[dict[str, Any]]) -> tuple[str, list[str], list[list[str]]] | None:
    """Each policy's IQM as a percentage of the gap from the env's floor to its ceiling policy at each
    value (``normalised_score = (floor, ceiling)`` on the env class, e.g. stale → perfect CSI):
    ``100 · (x − floor) / (ceiling − floor)``, as Atari's human-normalised scores."""
    from ctrlgym.registry import get_entry

    try:
        floor_name, ceiling_name = getattr(get_entry(env_id).vector_cls, "normalised_score", (None, None))
    except ValueError:
        return None
    by_policy = {row["policy"]: row for row in rows if not row["agent"]}
    if floor_name not in by_policy or ceiling_name not in by_policy:
        return None
    floor, ceiling = by_policy[floor_name]["iqm"], by_policy[ceiling_name]["iqm"]
    cells = []
    for row in rows:
        entries = []
        for (x, _, _), (f, _, _), (c, _, _) in zip(row["iqm"], floor, ceiling):
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


def _per_value_tables(env_id: str, values: list[Any], rows: list[dict[str, Any]]) -> list[tuple[str, list[str], list[list[str]]]]:
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


def _grouped_bars(param: str, metric: str, values: list[Any], rows: list[dict[str, Any]]) -> str:
    """Horizontal bars of ``metric`` per value (one group per value, one bar per policy) ± 95% CI; a log
    axis where the values span more than a decade."""
    figure, axis = plt.subplots(figsize=(8, 0.5 + 0.32 * len(values) * len(rows)))
    height = 0.8 / max(1, len(rows))
    positives = [c[0] for row in rows for c in row["cells"] if c[0] > 0]
    for k, row in enumerate(rows):
        y = np.arange(len(values)) + k * height
        means, halves = np.array([c[0] for c in row["cells"]]), np.array([c[1] for c in row["cells"]])
        axis.barh(y, means, height=height, xerr=halves, label=row["label"], capsize=2)
    axis.set_yticks(np.arange(len(values)) + 0.4 - height / 2, [str(v) for v in values])
    axis.invert_yaxis()
    if positives and max(positives) / min(positives) > 10:
        axis.set_xscale("log")
    axis.set(xlabel=f"{metric} (mean over seeds ± 95% CI)", title=f"{metric} per {param}")
    axis.grid(axis="x", alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")
    return _png(figure)


def _sweep_plot(param: str, metric: str, values: list[Any], rows: list[dict[str, Any]]) -> str:
    figure, axis = plt.subplots(figsize=(7, 4.2))
    x = np.asarray(values, dtype=float)
    for row in rows:
        means, halves = np.array([c[0] for c in row["cells"]]), np.array([c[1] for c in row["cells"]])
        style = {"linewidth": 2.2, "marker": "o"} if row["agent"] else {"linewidth": 1.0, "marker": ".", "alpha": 0.8}
        line = axis.plot(x, means, label=row["label"], **style)[0]
        axis.fill_between(x, means - halves, means + halves, color=line.get_color(), alpha=0.12)
    if x.min() > 0 and x.max() / x.min() > 10:  # values spanning decades (e.g. speeds 3-120 km/h)
        axis.set_xscale("log")
    axis.set(xlabel=param, ylabel=metric, title=f"{metric} vs {param} (mean over seeds ± 95% CI)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=2)
    return _png(figure)


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
        from ctrlgym.algorithms import get_algorithm

        try:
            policies[agent] = get_algorithm(agent).description
        except ValueError:
            pass
    return policies, metrics


def _run_section(run_dir: Path) -> dict[str, Any]:
    run_dir, config = open_run_dir(run_dir)
    metrics = read_metrics(run_dir)
    if not {"evaluation", "transfer", "solve"} & set(metrics):
        raise RunDirError(f"{run_dir} has no evaluation yet: run ctrlgym evaluate {run_dir} (or ctrlgym solve)")
    evaluation = metrics.get("evaluation") or next(iter(metrics.get("transfer", {}).values()), None)
    rows = _comparison(metrics["evaluation"]) if "evaluation" in metrics else []
    solve = metrics.get("solve")
    transfer = [(env_id, _comparison(result)) for env_id, result in metrics.get("transfer", {}).items()]
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
        "curve_png": _learning_curve_plot(config.name, training),
        "comparison_png": (
            _comparison_plot(config.name if rows else f"{config.name} on {transfer[0][0]}", rows or transfer[0][1], agent) if evaluation else None
        ),
        "solve": solve,
        "solve_png": _solve_plot(config.name, solve) if solve else None,
        "timesteps": config.agent.total_timesteps if config.agent is not None else 0,
        "transfer": transfer,
        "sweep": metrics.get("sweep"),
        "sweep_metric": config.evaluation.sweep_metric,
        "failures": _failures(metrics["evaluation"]["policies"]) if "evaluation" in metrics else [],
        "headline": _headline(config.env.id, metrics.get("evaluation")),
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
    return f"{row['iqm']:.2f} [{row['low']:.2f}, {row['high']:.2f}]"


def _table(section: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of a run's policy table (shared by HTML and Markdown)."""
    metric_names = _metric_order(section.get("env", ""), {key for row in section["rows"] for key in row["metrics"]})
    header = ["policy", "what it is", "IQM return [95% CI]", "mean return ± 95% CI", "seeds × episodes", *metric_names]
    descriptions = section.get("descriptions", {})
    cells = [
        [
            row["policy"], descriptions.get(row["policy"], ""), _interval(row),
            f"{row['mean']:.2f} ± {row['ci']:.2f}" if row["seeds"] > 1 else f"{row['mean']:.2f} (1 seed: no CI)",
            f"{row['seeds']} × {row['episodes']}", *(f"{row['metrics'].get(name, float('nan')):.3f}" for name in metric_names),
        ]  # fmt: skip
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
        parts.append(f"Agent {section['agent']}" + (f" ({hyper})" if hyper else "") + f": {section['timesteps']:,} training steps per seed, {spent} of training in all.")
    else:
        parts.append("Baselines only (no agent trained).")
    seeds = section.get("seeds", [])
    parts.append(f"Every policy ran on the same {len(seeds)} evaluation seeds × {section.get('episodes', '?')} episodes; run directory {section['run_dir']}.")
    return " ".join(parts)


def _metric_legend(section: dict[str, Any]) -> list[str]:
    """'name: meaning (unit)' for the return and every metric in the run's tables."""
    names = _metric_order(section.get("env", ""), {key for row in section["rows"] for key in row["metrics"]})
    known = section.get("metric_descriptions", {})
    lines = ["return: sum of rewards over an episode (over agents too), on the evaluation seeds, greedy/deterministic actions; higher is better"]
    lines += [f"{name}: {known.get(name, 'per-step mean of the env info value')}" for name in names]
    return lines


def _tables(section: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(summary, header, cells) of each table a run section shows: evaluation, then solvers."""
    tables = []
    if section["rows"]:
        tables.append((_setup(section), *_table(section)))
    for env, rows in section["transfer"]:
        tables.append((_setup(section, env), *_table({**section, "rows": rows, "env": env})))
    if section["solve"]:
        tables.append((_solve_summary(section["solve"]), *_solve_table(section["solve"])))
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
        cells.append([
            section["name"], section["env"], section["agent"] or "-", f"{section['timesteps']:,}" if section["agent"] else "-",
            f"{rows[0]['policy']} {rows[0]['iqm']:.2f}" if rows else "-", _interval(agent_row) if agent_row else "-",
            f"{ranked.index(section['agent']) + 1} of {len(ranked)}" if agent_row else "-",
        ])  # fmt: skip
    return header, cells


def _provenance() -> str:
    import datetime
    import subprocess

    from ctrlgym.cli import _version

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"Written {date} by ctrlgym {_version()}" + (f" (commit {commit})" if commit else " (not a git checkout)") + "."


HOW_TO_READ = (
    "How to read this report: policies are ranked by the interquartile mean (IQM: the mean of the middle 50%) of their "
    "evaluation returns over seeds × episodes, with a 95% stratified-bootstrap confidence interval (Agarwal et al. 2021); "
    "the mean ± t-interval over seeds is shown beside it. Where two CIs overlap, the data do not tell those policies apart. "
    "P(A > B) is the probability that a random evaluation episode of A scores above one of B. Learning curves show the "
    "training return of the exploring policy on the training seeds; tables show the evaluation return of the greedy "
    "(deterministic) policy on separate evaluation seeds, so the two need not agree."
)


def _md_rows(header: list[str], cells: list[list[str]]) -> list[str]:
    """A Markdown table: header, separator and one line per row."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(row) + " |" for row in cells)]


def _html_rows(header: list[str], cells: list[list[str]]) -> list[str]:
    """The rows of an HTML table (the caller writes ``<table>`` around them)."""
    return ["<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>",
            *("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells)]  # fmt: skip


def _blocks(sections: list[dict[str, Any]]) -> list[tuple]:
    """The report as a list of blocks, rendered alike to Markdown and HTML: ("h1"|"h2"|"h3"|"p"|"failed", text),
    ("table", header, cells), ("list", items), ("img", name, base64 png; HTML only)."""
    blocks: list[tuple] = [("h1", "ctrlgym evaluation report"), ("p", _provenance()), ("p", HOW_TO_READ)]
    runs = _runs_table(sections)
    if runs:
        blocks += [("h2", "Runs compared"), ("table", *runs)]
    for section in sections:
        blocks.append(("h2", section["name"]))
        for summary, header, cells in _tables(section):
            blocks += [("p", summary), ("table", header, cells)]
        verdicts = [_verdict(rows) for rows in [section["rows"], *(rows for _, rows in section["transfer"])]]
        blocks += [("p", verdict) for verdict in verdicts if verdict]
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
            ("p", "At each value: the interquartile mean over seeds [stratified-bootstrap 95% CI] (the plot: mean ± 95% t-interval)."),
            ("table", *_sweep_table(values, rows)),
        ]  # fmt: skip
        normalised = _normalised_table(sections[0]["env"], values, rows)
        if normalised:
            blocks += [("p", normalised[0]), ("table", normalised[1], normalised[2])]
        plot = _grouped_bars(param, metric, values, rows) if _categorical(values) else _sweep_plot(param, metric, values, rows)
        blocks.append(("img", "sweep", plot))
        if _categorical(values):
            for title, header, cells in _per_value_tables(sections[0]["env"], values, rows):
                blocks += [("h3", f"{param} = {title}"), ("table", header, cells)]
    return blocks


def _markdown(blocks: list[tuple]) -> str:
    lines: list[str] = []
    for kind, *content in blocks:
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + content[0], ""]
        elif kind in ("p", "failed"):
            lines += [content[0], ""]
        elif kind == "table":
            lines += [*_md_rows(*content), ""]
        elif kind == "list":
            lines += [*(f"- {item}" for item in content[0]), ""]
    return "\n".join(lines)


_STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em;line-height:1.4}"
    "table{border-collapse:collapse;display:block;overflow-x:auto;max-width:100%;margin:0.5em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child,td:nth-child(2){text-align:left}"
    "td:not(:nth-child(2)){white-space:nowrap}img{max-width:100%}.failed{color:#a00}.note{color:#444;font-size:0.92em}"
)


def _html(blocks: list[tuple]) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>ctrlgym report</title><style>{_STYLE}</style></head><body>"]
    for kind, *content in blocks:
        if kind in ("h1", "h2", "h3"):
            parts.append(f"<{kind}>{html.escape(content[0])}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{html.escape(content[0])}</p>")
        elif kind == "failed":
            parts.append(f"<p class='failed'>{html.escape(content[0])}</p>")
        elif kind == "table":
            parts += ["<table>", *_html_rows(*content), "</table>"]
        elif kind == "list":
            parts.append("<ul class='note'>" + "".join(f"<li>{html.escape(item)}</li>" for item in content[0]) + "</ul>")
        elif kind == "img":
            parts.append(f"<p><img alt='{content[0]}' src='data:image/png;base64,{content[1]}'></p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run_dirs: list[str | Path], output: str | Path) -> tuple[Path, Path]:
    """Write ``OUTPUT.html`` (self-contained) and ``OUTPUT.md`` for the given run directories."""
    if not run_dirs:
        raise ValueError("report needs at least one run directory")
    sections = [_run_section(Path(run_dir)) for run_dir in run_dirs]
    return write_blocks(_blocks(sections), output)


def write_blocks(blocks: list[tuple], output: str | Path) -> tuple[Path, Path]:
    """Render report blocks to ``OUTPUT.html`` (self-contained) and ``OUTPUT.md``; return both paths."""
    output = Path(output)
    base = output.with_suffix("") if output.suffix in (".html", ".md") else output
    base.parent.mkdir(parents=True, exist_ok=True)
    html_path, markdown_path = base.with_suffix(".html"), base.with_suffix(".md")
    markdown_path.write_text(_markdown(blocks))
    html_path.write_text(_html(blocks))
    return html_path, markdown_path
