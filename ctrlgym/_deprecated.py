"""Old import paths of names that moved, kept for one release with a ``DeprecationWarning``.

``ctrlgym.config`` and the other modules of the experiment application moved to
:mod:`ctrlgym.experiment`; each old module is a stub whose attributes forward to the new place.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

REMOVED_IN = "0.3"


def forward(old: str, new: str, moved: dict[str, str] | None = None) -> Callable[[str], Any]:
    """A module ``__getattr__`` for the stub ``old``: every public name comes from ``new`` (or from the
    module ``moved[name]``), with a ``DeprecationWarning`` that names the new import."""

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        target = (moved or {}).get(name, new)
        value = getattr(importlib.import_module(target), name)
        warnings.warn(
            f"{old}.{name} moved to {target}.{name}; the old path goes in ctrlgym {REMOVED_IN}",
            DeprecationWarning,
            stacklevel=2,
        )
        return value

    return __getattr__
