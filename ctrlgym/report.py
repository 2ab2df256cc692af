"""Evaluation reports: one self-contained HTML file (plots embedded) and a Markdown twin.

Per run: learning curves (mean over seeds ± 95% CI band) and a policy comparison (mean
evaluation return over seeds ± 95% CI, Student t with n−1 degrees of freedom). Runs evaluated
over a sweep of an env parameter (``evaluation.sweep``) share one plot and table of the metric
against that parameter.
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
    axis.set(xlabel="env steps", ylabel="episode return", title=f"{name}: learning curve")
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


def _comparison(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for policy, per_seed in evaluation["policies"].items():
        per_seed = succeeded(per_seed)
        if not per_seed:
            continue
        returns = [result["mean_return"] for result in per_seed.values()]
        mean, half = mean_ci(returns)
        metric_names = sorted({key for result in per_seed.values() for key in result["metrics"]})
        metrics = {key: float(np.mean([r["metrics"][key] for r in per_seed.values() if key in r["metrics"]])) for key in metric_names}
        rows.append({"policy": policy, "mean": mean, "ci": half, "seeds": len(returns), "metrics": metrics})
    return sorted(rows, key=lambda row: -row["mean"])


def _comparison_plot(name: str, rows: list[dict[str, Any]], agent: str) -> str:
    figure, axis = plt.subplots(figsize=(6, 3.5))
    colours = ["tab:orange" if row["policy"] == agent else "tab:gray" for row in rows]
    axis.bar([row["policy"] for row in rows], [row["mean"] for row in rows], yerr=[row["ci"] for row in rows], color=colours, capsize=6)
    axis.set(ylabel="mean episode return", title=f"{name}: policies on the same evaluation seeds (±95% CI)")
    axis.grid(axis="y", alpha=0.3)
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
            cells = [_cell([_sweep_value(r, metric) for r in succeeded(per_value.get(str(v), {})).values()]) for v in values]
            rows.append({"label": label, "agent": policy == sweep["agent"], "cells": cells, "per_value": per_value})
    return param, metric, values, rows


def _cell(values: list[float]) -> tuple[float, float]:
    return mean_ci(values) if values else (float("nan"), 0.0)


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
    axis.set(xlabel=param, ylabel=metric, title=f"{metric} vs {param} (mean over seeds ± 95% CI)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=2)
    return _png(figure)


def _sweep_table(values: list[Any], rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = ["policy", *(str(v) for v in values)]
    return header, [[row["label"], *(f"{m:.3f} ± {h:.3f}" for m, h in row["cells"])] for row in rows]


def _run_section(run_dir: Path) -> dict[str, Any]:
    run_dir, config = open_run_dir(run_dir)
    metrics = read_metrics(run_dir)
    if not {"evaluation", "transfer", "solve"} & set(metrics):
        raise RunDirError(f"{run_dir} has no evaluation yet: run ctrlgym evaluate {run_dir} (or ctrlgym solve)")
    evaluation = metrics.get("evaluation") or next(iter(metrics.get("transfer", {}).values()), None)
    rows = _comparison(metrics["evaluation"]) if "evaluation" in metrics else []
    solve = metrics.get("solve")
    transfer = [(env_id, _comparison(result)) for env_id, result in metrics.get("transfer", {}).items()]
    return {
        "name": config.name,
        "run_dir": str(run_dir),
        "env": config.env.id,
        "env_kwargs": dict(config.env.kwargs),
        "agent": evaluation["agent"] if evaluation else None,
        "rows": rows,
        "curve_png": _learning_curve_plot(config.name, metrics.get("training", {})),
        "comparison_png": (
            _comparison_plot(config.name if rows else f"{config.name} on {transfer[0][0]}", rows or transfer[0][1], evaluation["agent"])
            if evaluation
            else None
        ),
        "solve": solve,
        "solve_png": _solve_plot(config.name, solve) if solve else None,
        "timesteps": config.agent.total_timesteps if config.agent is not None else 0,
        "transfer": transfer,
        "sweep": metrics.get("sweep"),
        "sweep_metric": config.evaluation.sweep_metric,
        "failures": _failures(metrics["evaluation"]["policies"]) if "evaluation" in metrics else [],
    }


def _solve_table(solve: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["method", "T", "seconds", "fraction of VI time", "regret %"]
    cells = [
        [
            row["method"],
            str(row["period"]) if row["period"] is not None else "-",
            f"{row['seconds']:.3f}",
            f"{row['fraction_of_vi_time']:.2f}" if row["fraction_of_vi_time"] is not None else "-",
            f"{row['regret_percent']:.4f}",
        ]
        for row in solve["rows"]
    ]
    return header, cells


def _solve_summary(solve: dict[str, Any]) -> str:
    return (
        f"Solvers on the exact model {solve['model']}: {solve['states']:,} states, {solve['actions']} actions, "
        f"γ = {solve['discount']}, ε = {solve['epsilon']}, {solve['device']}; optimal mean value {solve['optimal_mean_value']:.3f}."
    )


def _table(section: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of a run's policy table (shared by HTML and Markdown)."""
    metric_names = _metric_order(section.get("env", ""), {key for row in section["rows"] for key in row["metrics"]})
    header = ["policy", "mean return", "±95% CI", "seeds", *metric_names]
    cells = [
        [row["policy"], f"{row['mean']:.2f}", f"{row['ci']:.2f}", str(row["seeds"]), *(f"{row['metrics'].get(name, float('nan')):.3f}" for name in metric_names)]
        for row in section["rows"]
    ]
    return header, cells


def _summary(section: dict[str, Any], env: str | None = None) -> str:
    agent = f"agent {section['agent']} ({section['timesteps']} steps per seed)" if section["agent"] else "baselines only"
    if env is not None:
        return f"Evaluated on {env}, trained on {section['env']}: {agent}, run {section['run_dir']}."
    kwargs = ", ".join(f"{k}={v}" for k, v in section.get("env_kwargs", {}).items())
    return f"Env {section['env']}" + (f" ({kwargs})" if kwargs else "") + f", {agent}, run {section['run_dir']}."


def _tables(section: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(summary, header, cells) of each table a run section shows: evaluation, then solvers."""
    tables = []
    if section["rows"]:
        tables.append((_summary(section), *_table(section)))
    for env, rows in section["transfer"]:
        tables.append((_summary(section, env), *_table({"rows": rows, "env": env})))
    if section["solve"]:
        tables.append((_solve_summary(section["solve"]), *_solve_table(section["solve"])))
    return tables


def _md_rows(header: list[str], cells: list[list[str]]) -> list[str]:
    """A Markdown table: header, separator and one line per row."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(row) + " |" for row in cells)]


def _html_rows(header: list[str], cells: list[list[str]]) -> list[str]:
    """The rows of an HTML table (the caller writes ``<table>`` around them)."""
    return ["<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>",
            *("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells)]  # fmt: skip


def _markdown(sections: list[dict[str, Any]]) -> str:
    lines = ["# ctrlgym evaluation report", ""]
    for section in sections:
        lines += [f"## {section['name']}", ""]
        tables = _tables(section)
        for summary, header, cells in tables:
            lines += [summary, "", *_md_rows(header, cells), ""]
        lines += [f"- {failure}" for failure in section["failures"]] + ([""] if section["failures"] else [])
    sweep = _sweep_rows(sections)
    if sweep:
        param, metric, values, rows = sweep
        header, cells = _sweep_table(values, rows)
        lines += [f"## {metric} vs {param}", "", "Mean over seeds ± 95% CI at each value.", ""]
        lines += [*_md_rows(header, cells), ""]
        if _categorical(values):
            for title, header, cells in _per_value_tables(sections[0]["env"], values, rows):
                lines += [f"### {param} = {title}", "", *_md_rows(header, cells), ""]
    return "\n".join(lines)


def _html(sections: list[dict[str, Any]]) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>ctrlgym report</title>",
        "<style>body{font-family:sans-serif;max-width:960px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;display:block;overflow-x:auto;max-width:100%}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}.failed{color:#a00}</style></head><body>",
        "<h1>ctrlgym evaluation report</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section['name'])}</h2>")
        tables = _tables(section)
        for summary, header, cells in tables:
            parts += [f"<p>{html.escape(summary)}</p><table>", *_html_rows(header, cells), "</table>"]
        parts += [f"<p class='failed'>{html.escape(failure)}</p>" for failure in section["failures"]]
        for key in ("curve_png", "comparison_png", "solve_png"):
            if section[key]:
                parts.append(f"<p><img alt='{key}' src='data:image/png;base64,{section[key]}'></p>")
    sweep = _sweep_rows(sections)
    if sweep:
        param, metric, values, rows = sweep
        header, cells = _sweep_table(values, rows)
        parts.append(f"<h2>{html.escape(metric)} vs {html.escape(param)}</h2><p>Mean over seeds ± 95% CI at each value.</p><table>")
        parts += _html_rows(header, cells)
        plot = _grouped_bars(param, metric, values, rows) if _categorical(values) else _sweep_plot(param, metric, values, rows)
        parts.append(f"</table><p><img alt='sweep' src='data:image/png;base64,{plot}'></p>")
        if _categorical(values):
            for title, header, cells in _per_value_tables(sections[0]["env"], values, rows):
                parts += [f"<h3>{html.escape(param)} = {html.escape(title)}</h3><table>", *_html_rows(header, cells), "</table>"]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run_dirs: list[str | Path], output: str | Path) -> tuple[Path, Path]:
    """Write ``OUTPUT.html`` (self-contained) and ``OUTPUT.md`` for the given run directories."""
    if not run_dirs:
        raise ValueError("report needs at least one run directory")
    sections = [_run_section(Path(run_dir)) for run_dir in run_dirs]
    output = Path(output)
    base = output.with_suffix("") if output.suffix in (".html", ".md") else output
    base.parent.mkdir(parents=True, exist_ok=True)
    markdown = _markdown(sections)
    html_path, markdown_path = base.with_suffix(".html"), base.with_suffix(".md")
    markdown_path.write_text(markdown)
    html_path.write_text(_html(sections))
    return html_path, markdown_path
