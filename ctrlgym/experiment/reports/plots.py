"""The plots of reports, each returned as a base64 PNG for embedding in HTML."""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

__all__ = ["png", "learning_curve_plot", "comparison_plot", "solve_plot", "grouped_bars", "sweep_plot"]


def png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def learning_curve_plot(name: str, training: dict[str, Any]) -> str | None:
    curves = [np.asarray(seed["learning_curve"], dtype=float) for seed in training.values() if seed["learning_curve"]]
    if not curves:
        return None
    start, end = max(c[0, 0] for c in curves), min(c[-1, 0] for c in curves)
    grid = np.linspace(start, end, 50) if end > start else np.array([start])  # one point: shown as a marker
    resampled = np.stack([np.interp(grid, c[:, 0], c[:, 1]) for c in curves])  # (seeds, 50)
    figure, axis = plt.subplots(figsize=(6, 3.5))
    for curve in curves:
        marker = "o" if len(curve) < 5 else None  # a curve of a point or two is still visible
        axis.plot(curve[:, 0], curve[:, 1], color="tab:blue", alpha=0.25, linewidth=0.8, marker=marker)
    centre = resampled.mean(axis=0)
    if len(curves) > 1:
        half = resampled.std(axis=0, ddof=1) / np.sqrt(len(curves)) * stats.t.ppf(0.975, len(curves) - 1)
        axis.fill_between(grid, centre - half, centre + half, color="tab:blue", alpha=0.2, label="95% CI")
    axis.plot(
        grid, centre, color="tab:blue", label=f"mean of {len(curves)} seeds", marker="o" if len(grid) < 5 else None
    )
    axis.set(
        xlabel="env steps",
        ylabel="training episode return",
        title=f"{name}: training return (exploring policy, training seeds)",
    )
    axis.legend(loc="lower right")
    axis.grid(alpha=0.3)
    return png(figure)


def comparison_plot(name: str, rows: list[dict[str, Any]], agent: str | None) -> str:
    """Horizontal bars (labels never overlap) of each policy's IQM with its bootstrap 95% CI."""
    figure, axis = plt.subplots(figsize=(7, 0.8 + 0.38 * len(rows)))
    colours = ["tab:orange" if row["policy"] == agent else "tab:gray" for row in rows]
    iqms = np.array([row["iqm"] for row in rows])
    errors = np.array([[row["iqm"] - row["low"] for row in rows], [row["high"] - row["iqm"] for row in rows]])
    axis.barh([row["policy"] for row in rows], iqms, xerr=errors, color=colours, capsize=4)
    axis.invert_yaxis()
    axis.set(
        xlabel="evaluation return: IQM over seeds x episodes (95% bootstrap CI)",
        title=f"{name}: policies on the same evaluation seeds",
    )
    axis.grid(axis="x", alpha=0.3)
    return png(figure)


def solve_plot(name: str, solve: dict[str, Any]) -> str:
    """Regret vs compute: frozen-state ADP (VI or MPI upper level) over its periods T, the other methods as points."""
    figure, axis = plt.subplots(figsize=(6, 3.5))
    for method, style in (("frozen_state", "o-k"), ("frozen_state_mpi", "^--b")):
        frozen = [row for row in solve["rows"] if row["method"] == method]
        if frozen:
            axis.plot([r["seconds"] for r in frozen], [r["regret_percent"] for r in frozen], style, label=method)
            for r in frozen:
                axis.annotate(
                    f"T={r['period']}",
                    (r["seconds"], r["regret_percent"]),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=8,
                )
    for r in solve["rows"]:
        if r["period"] is None:
            axis.plot(r["seconds"], r["regret_percent"], "s", label=r["method"])
    axis.set_yscale("symlog", linthresh=1e-3)
    axis.set(
        xlabel="wall-clock seconds",
        ylabel="regret (% of mean |V*|)",
        title=f"{name}: regret vs compute ({solve['states']:,} states)",
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return png(figure)


def grouped_bars(param: str, metric: str, values: list[Any], rows: list[dict[str, Any]]) -> str:
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
    return png(figure)


def sweep_plot(param: str, metric: str, values: list[Any], rows: list[dict[str, Any]]) -> str:
    figure, axis = plt.subplots(figsize=(7, 4.2))
    x = np.asarray(values, dtype=float)
    for row in rows:
        means, halves = np.array([c[0] for c in row["cells"]]), np.array([c[1] for c in row["cells"]])
        style: dict[str, Any] = (
            {"linewidth": 2.2, "marker": "o"} if row["agent"] else {"linewidth": 1.0, "marker": ".", "alpha": 0.8}
        )
        line = axis.plot(x, means, label=row["label"], **style)[0]
        axis.fill_between(x, means - halves, means + halves, color=line.get_color(), alpha=0.12)
    if x.min() > 0 and x.max() / x.min() > 10:  # values spanning decades (e.g. speeds 3-120 km/h)
        axis.set_xscale("log")
    axis.set(xlabel=param, ylabel=metric, title=f"{metric} vs {param} (mean over seeds ± 95% CI)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=2)
    return png(figure)
