"""Atomic file writes: a reader, or a run killed mid-write, never sees half a file."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["write_json_atomic", "torch_save_atomic"]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file of this writer's own (processes and threads may write the same
    file at once, e.g. Ray tasks rewriting a run's metrics.json) renamed into place."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def torch_save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` through a ``.partial`` file renamed into place: a killed run never leaves half a checkpoint."""
    import torch

    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    torch.save(obj, partial)
    os.replace(partial, path)
