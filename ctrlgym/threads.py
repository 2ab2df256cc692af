"""Intra-op threads in ctrlgym's hot paths (env steps, solvers, training).

torch's default intra-op pool has one thread per core. Its OpenMP threads meet at a barrier
after every parallel op, so when another busy process holds one of the cores (a second
training job, SUMO workers, a data loader) each op waits for a descheduled thread: measured on
a 2-core machine beside one busy process, ``MultiClassQueue`` at 1,024 envs stepped 5x slower
with two threads than with one (``benchmarks/bench_contention.py``). ctrlgym therefore runs its
own hot paths with **one** intra-op thread by default.

The first CPU env a process makes also sets torch's process-wide count to that one thread
(:func:`adopt_thread_policy`), once: the training loop around the env (Stable-Baselines3's update,
a TorchRL or RLlib learner) then runs with it too, and no call switches torch's count back and
forth (the README's SB3 example ran minutes beside a busy process with the update at torch's
default threads; ``benchmarks/bench_snippets.py`` measures it). Hot paths are still scoped to
ctrlgym's count, so a caller who sets another count afterwards gets it back after each call.

``ctrlgym.set_num_threads(n)`` (or ``CTRLGYM_NUM_THREADS=n``) picks another count; ``0`` means
"torch's own setting" everywhere (no scoping, nothing set process-wide: the opt-out). An env's
``num_threads`` attribute overrides it for that env. CUDA work is never affected.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ctrlgym.errors import UsageError

__all__ = [
    "set_num_threads",
    "get_num_threads",
    "limited_threads",
    "call_with_threads",
    "hot_path",
    "adopt_thread_policy",
]


def _from_environment() -> int:
    value = os.environ.get("CTRLGYM_NUM_THREADS", "1")
    try:
        threads = int(value)
    except ValueError:
        raise UsageError(f"CTRLGYM_NUM_THREADS must be a whole number >= 0, got {value!r}") from None
    if threads < 0:
        raise UsageError(f"CTRLGYM_NUM_THREADS must be >= 0, got {threads}")
    return threads


_threads = _from_environment()


def set_num_threads(threads: int) -> None:
    """Intra-op threads for ctrlgym's hot paths: ``n >= 1``, or ``0`` for torch's own setting."""
    global _threads
    if not isinstance(threads, int) or threads < 0:
        raise UsageError(f"set_num_threads takes a whole number >= 0 (0: torch's own setting), got {threads!r}")
    _threads = threads


_adopted = False


def adopt_thread_policy() -> None:
    """Once per process (at the first CPU env): set torch's own intra-op count to ctrlgym's, unless
    that is ``0`` (torch's own setting). Later changes of torch's count by the caller are kept."""
    global _adopted
    if _adopted or _threads == 0:
        return
    _adopted = True
    if torch.get_num_threads() != _threads:
        torch.set_num_threads(_threads)


def get_num_threads() -> int:
    """The count ctrlgym's hot paths run with (``0``: torch's own setting)."""
    return _threads


@contextmanager
def limited_threads(threads: int | None = None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads (default: :func:`get_num_threads`), then restore."""
    threads = _threads if threads is None else threads
    previous = torch.get_num_threads()
    if threads == 0 or threads == previous:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def call_with_threads(threads: int | None, function, *args, **kwargs):
    """``function(*args, **kwargs)`` under :func:`limited_threads`, without a context manager's cost
    (a few µs: a tenth of a small env step) when the count is already right, as on almost every call."""
    wanted = _threads if threads is None else threads
    if wanted == 0 or wanted == torch.get_num_threads():
        return function(*args, **kwargs)
    with limited_threads(wanted):
        return function(*args, **kwargs)


def hot_path(function):
    """Decorate a function to run under :func:`limited_threads`."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return call_with_threads(None, function, *args, **kwargs)

    return wrapper
