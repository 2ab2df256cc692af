"""Deprecated alias of :mod:`ctrlgym.experiment.algorithms` (removed in ctrlgym 0.3)."""

from ctrlgym._deprecated import forward

__getattr__ = forward(__name__, "ctrlgym.experiment.algorithms")
