"""Seeded initialisation without touching the global random state."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["initialisation_seed"]


@contextmanager
def initialisation_seed(seed: int) -> Iterator[None]:
    """Parameters created inside draw from the CPU generator seeded with ``seed`` (as after
    ``torch.manual_seed(seed)``); afterwards the global random state is what it was before, so
    building an agent never changes the random numbers of the user's own code."""
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        yield
