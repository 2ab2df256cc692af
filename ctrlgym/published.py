"""Results a field's benchmark published, put beside ctrlgym's in benchmark reports.

An env class names them in ``published_results`` (traffic: RESCO's result files). A benchmark
report then shows, per task, the best published learned agent and controller next to ctrlgym's
best, and how far the two agree on the ranking of the policies both ran (Kendall's τ).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["PublishedResults", "kendall_tau", "concordance"]


@dataclass(frozen=True)
class PublishedResults:
    """Published values of one metric, ``{task: {published policy: value}}``.

    ``metric`` is the env's metric computed as the publication computes it (traffic:
    ``delay_resco``); ``learned`` names the published policies that are learned agents (the
    rest are controllers); ``names`` maps a ctrlgym policy label to the published policy it
    implements (``{"resco_max_wave": "MAXWAVE"}``), for the ranking agreement.
    """

    source: str
    metric: str
    higher_is_better: bool
    values: Mapping[str, Mapping[str, float]]
    learned: frozenset[str]
    names: Mapping[str, str]

    def best(self, task: str, learned: bool) -> tuple[str, float] | None:
        """The best published learned agent (or controller) on ``task``: ``(name, value)``."""
        found = [(name, v) for name, v in self.values.get(task, {}).items() if (name in self.learned) == learned]
        if not found:
            return None
        return (max if self.higher_is_better else min)(found, key=lambda item: item[1])


def concordance(ours: Mapping[str, float], theirs: Mapping[str, float]) -> tuple[int, int]:
    """Concordant and discordant pairs between two scorings of the same policies (ties count as neither)."""
    concordant = discordant = 0
    for a, b in itertools.combinations(sorted(set(ours) & set(theirs)), 2):
        sign = (ours[a] - ours[b]) * (theirs[a] - theirs[b])
        concordant += sign > 0
        discordant += sign < 0
    return concordant, discordant


def kendall_tau(ours: Mapping[str, float], theirs: Mapping[str, float]) -> float | None:
    """Kendall's τ-a between two scorings of the policies both have: (concordant − discordant) /
    pairs; None with fewer than two policies in common.

    >>> kendall_tau({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 10.0, "b": 30.0, "c": 20.0})
    0.3333333333333333
    """
    common = len(set(ours) & set(theirs))
    if common < 2:
        return None
    concordant, discordant = concordance(ours, theirs)
    return (concordant - discordant) / (common * (common - 1) / 2)
