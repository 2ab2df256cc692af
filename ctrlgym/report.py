"""Deprecated alias of :mod:`ctrlgym.experiment.reports.run_report` (removed in ctrlgym 0.3)."""

from ctrlgym._deprecated import forward

__getattr__ = forward(__name__, "ctrlgym.experiment.reports.run_report", {"mean_ci": "ctrlgym.statistics"})
