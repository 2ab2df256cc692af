"""Statistics that tell policies apart with few seeds (Agarwal et al. 2021, "Deep RL at the edge
of the statistical precipice", the rliable method, implemented here in numpy).

Scores are arrays of shape ``(runs, tasks)``: one row per run (seed, or seed x episode), one column
per task (map, env setting); a 1-D array is one task.

- **IQM**: the interquartile mean, the mean of the middle 50% of all run x task scores (25% trimmed
  from each end), robust to outlier runs yet more efficient than the median.
- **Stratified bootstrap**: resample runs with replacement within each task (the stratum) and
  take the percentile interval of the statistic over the resamples.
- **Probability of improvement** ``P(X > Y)``: per task the Mann-Whitney U statistic over run
  pairs, ``mean_ij [x_i > y_j] + 0.5 [x_i = y_j]``, averaged over tasks.
- **Performance profile**: the fraction of run x task scores above each threshold tau.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "iqm",
    "stratified_bootstrap_ci",
    "probability_of_improvement",
    "probability_of_improvement_ci",
    "performance_profile",
    "summarize",
    "intervals_overlap",
    "mean_ci",
    "MIN_SEEDS_FOR_CI",
]

#: fewer seeds than this and reports give no confidence interval and no verdict (episodes of one seed
#: share its training run, so they are not independent samples of the policy)
MIN_SEEDS_FOR_CI = 3


def _as_scores(scores) -> np.ndarray:
    data = np.asarray(scores, dtype=float)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[0] == 0:
        raise ValueError(f"scores must be (runs, tasks) with at least one run, got shape {data.shape}")
    if np.isnan(data).any():
        raise ValueError("scores contain NaN")
    return data


def iqm(scores) -> float:
    """Interquartile mean over all runs x tasks: the mean of the middle 50% (25% trimmed each end).

    With n values, the trimmed positions are fractional; the two boundary values get the
    fractional weight so that the IQM is continuous in the data (as ``scipy.stats.trim_mean``
    for n divisible by 4).
    """
    values = np.sort(_as_scores(scores).ravel())
    n = values.size
    low, high = 0.25 * n, 0.75 * n
    positions = np.arange(n)
    weights = np.clip(np.minimum(positions + 1, high) - np.maximum(positions, low), 0.0, 1.0)
    return float((weights * values).sum() / weights.sum())


def _bootstrap_indices(rng: np.random.Generator, runs: int, tasks: int, reps: int) -> np.ndarray:
    """(reps, runs, tasks) run indices drawn with replacement independently for each task."""
    return rng.integers(0, runs, size=(reps, runs, tasks))


def stratified_bootstrap_ci(
    scores, statistic: Callable[[np.ndarray], float] = iqm, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of ``statistic`` over stratified bootstrap resamples (runs resampled within each task)."""
    data = _as_scores(scores)
    runs, tasks = data.shape
    if runs == 1:
        value = statistic(data)
        return value, value
    picks = _bootstrap_indices(np.random.default_rng(seed), runs, tasks, reps)
    resampled = data[picks, np.arange(tasks)]  # (reps, runs, tasks): each task's runs drawn from that task
    values = np.array([statistic(sample) for sample in resampled])
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def probability_of_improvement(x, y, lower_is_better: bool = False) -> float:
    """P(X > Y): the chance that a random run of X scores better than a random run of Y on a
    random task (Mann-Whitney U over run pairs, ties count one half, averaged over tasks)."""
    a, b = _as_scores(x), _as_scores(y)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"x and y must cover the same tasks, got {a.shape[1]} and {b.shape[1]}")
    if lower_is_better:
        a, b = -a, -b
    wins = (a[:, None, :] > b[None, :, :]).mean(axis=(0, 1)) + 0.5 * (a[:, None, :] == b[None, :, :]).mean(axis=(0, 1))
    return float(wins.mean())


def probability_of_improvement_ci(
    x, y, lower_is_better: bool = False, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """``P(X > Y)`` and its stratified-bootstrap percentile interval (X's and Y's runs resampled independently per task)."""
    a, b = _as_scores(x), _as_scores(y)
    point = probability_of_improvement(a, b, lower_is_better)
    if a.shape[0] == 1 and b.shape[0] == 1:
        return point, point, point
    rng = np.random.default_rng(seed)
    pick_a = _bootstrap_indices(rng, a.shape[0], a.shape[1], reps)
    pick_b = _bootstrap_indices(rng, b.shape[0], b.shape[1], reps)
    values = [
        probability_of_improvement(
            np.take_along_axis(a, ia, axis=0), np.take_along_axis(b, ib, axis=0), lower_is_better
        )
        for ia, ib in zip(pick_a, pick_b, strict=False)
    ]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return point, float(low), float(high)


def performance_profile(scores, taus) -> np.ndarray:
    """The fraction of run x task scores strictly above each tau (a score distribution's survival function)."""
    values = _as_scores(scores).ravel()
    return (values[None, :] > np.asarray(taus, dtype=float)[:, None]).mean(axis=1)


def summarize(scores, reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> dict[str, float]:
    """Mean, IQM and the IQM's stratified-bootstrap interval of a policy's scores."""
    data = _as_scores(scores)
    low, high = stratified_bootstrap_ci(data, iqm, reps, confidence, seed)
    return {"mean": float(data.mean()), "iqm": iqm(data), "low": low, "high": high, "runs": int(data.shape[0])}


def intervals_overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two closed intervals (low, high) share a point."""
    return max(a[0], b[0]) <= min(a[1], b[1])


def mean_ci(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of its confidence interval (t distribution; 0 for one value)."""
    import scipy.stats

    data = np.asarray(values, dtype=float)
    if data.size < 2:
        return float(data.mean()), 0.0
    sem = data.std(ddof=1) / np.sqrt(data.size)
    return float(data.mean()), float(sem * scipy.stats.t.ppf(0.5 + confidence / 2, data.size - 1))
