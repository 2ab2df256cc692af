"""The rliable-style statistics: IQM, stratified bootstrap, probability of improvement, profiles."""

import numpy as np
import pytest
from scipy import stats

from ctrlgym.statistics import (
    intervals_overlap,
    iqm,
    performance_profile,
    probability_of_improvement,
    probability_of_improvement_ci,
    stratified_bootstrap_ci,
    summarize,
)


def test_iqm_is_the_quarter_trimmed_mean():
    rng = np.random.default_rng(0)
    for n in (4, 8, 20, 100):
        values = rng.normal(size=n)
        assert iqm(values) == pytest.approx(stats.trim_mean(values, 0.25))
    assert iqm([1.0, 2.0, 3.0, 1000.0]) == pytest.approx(2.5)  # the outlier is trimmed
    assert iqm([[1.0, 5.0], [2.0, 6.0], [3.0, 7.0], [4.0, 8.0]]) == pytest.approx(4.5)  # all runs x tasks together


def test_iqm_with_fractional_quartiles_is_between_neighbouring_trims():
    values = np.arange(10.0)  # 2.5 values trimmed from each end
    assert iqm(values) == pytest.approx(4.5)
    assert iqm(np.r_[values, 100.0]) > iqm(values)


def test_bootstrap_interval_covers_the_population_iqm():
    rng = np.random.default_rng(1)
    covered = 0
    for trial in range(100):
        sample = rng.normal(loc=3.0, size=(30, 1))
        low, high = stratified_bootstrap_ci(sample, reps=400, seed=trial)
        covered += low <= 3.0 <= high
    assert covered >= 85


def test_bootstrap_resamples_within_each_task():
    scores = np.column_stack([np.zeros(6), np.ones(6)])  # task 0 all 0, task 1 all 1
    low, high = stratified_bootstrap_ci(scores, statistic=np.mean, reps=200)
    assert low == high == 0.5  # unstratified resampling of the 12 values would vary


def test_bootstrap_is_seeded():
    scores = np.random.default_rng(2).normal(size=(10, 3))
    assert stratified_bootstrap_ci(scores, seed=4) == stratified_bootstrap_ci(scores, seed=4)


def test_probability_of_improvement_is_the_mann_whitney_u():
    rng = np.random.default_rng(3)
    x, y = rng.normal(0.5, size=7), rng.normal(size=9).round(1)
    u = stats.mannwhitneyu(x, y).statistic
    assert probability_of_improvement(x, y) == pytest.approx(u / (7 * 9))
    assert probability_of_improvement([3, 4], [1, 2]) == 1.0
    assert probability_of_improvement([3, 4], [1, 2], lower_is_better=True) == 0.0
    assert probability_of_improvement([1, 2], [1, 2]) == 0.5


def test_probability_of_improvement_averages_tasks():
    x = np.array([[1.0, 0.0], [1.0, 0.0]])
    y = np.array([[0.0, 1.0], [0.0, 1.0]])
    assert probability_of_improvement(x, y) == 0.5  # wins task 0, loses task 1
    with pytest.raises(ValueError, match="same tasks"):
        probability_of_improvement(x, y[:, :1])


def test_probability_of_improvement_interval_brackets_the_point():
    rng = np.random.default_rng(5)
    x, y = rng.normal(1.0, size=(8, 2)), rng.normal(size=(8, 2))
    point, low, high = probability_of_improvement_ci(x, y, reps=300)
    assert low <= point <= high and 0.5 < point
    assert high - low > 0.05


def test_performance_profile_is_a_survival_function():
    profile = performance_profile([[0.1, 0.5], [0.9, 0.3]], taus=[0.0, 0.2, 0.4, 1.0])
    np.testing.assert_allclose(profile, [1.0, 0.75, 0.5, 0.0])


def test_summary_and_overlap():
    summary = summarize(np.arange(8.0))
    assert summary["mean"] == 3.5 and summary["low"] <= summary["iqm"] <= summary["high"]
    assert intervals_overlap((0, 2), (1, 3)) and not intervals_overlap((0, 1), (2, 3))


def test_bad_scores_are_named():
    with pytest.raises(ValueError, match="NaN"):
        iqm([1.0, float("nan")])
    with pytest.raises(ValueError, match="shape"):
        iqm([])
