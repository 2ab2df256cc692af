"""Where a benchmark figure comes from: ctrlgym version and commit, date, machine, threads, load.

Every benchmark prints :func:`header` above its table and stores :func:`provenance` in its JSON,
so a README table can name the run it came from.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["provenance", "header", "write_results"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _commit() -> str:
    """The checkout's commit (``+dirty`` with uncommitted changes); ``$CTRLGYM_COMMIT`` where the copy
    has no git history (the GPU machine gets a copy of the working tree)."""
    root = Path(__file__).resolve().parent.parent
    if os.environ.get("CTRLGYM_COMMIT"):
        return os.environ["CTRLGYM_COMMIT"]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(device: str = "cpu") -> dict[str, Any]:
    import torch

    try:
        from importlib.metadata import version

        ctrlgym_version = version("ctrlgym")
    except Exception:
        ctrlgym_version = "unknown"
    return {
        "ctrlgym": ctrlgym_version,
        "commit": _commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device if device != "cuda" else torch.cuda.get_device_name(0),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def header(info: dict[str, Any]) -> str:
    return (
        f"ctrlgym {info['ctrlgym']} @ {info['commit']}, {info['date']}, {info['device']} / {info['cpu']} ({info['cores']} cores), "
        f"torch {info['torch']} ({info['torch_threads']} threads), load average {info['load_average']}"
    )


def write_results(path: str | Path, info: dict[str, Any], results: Any) -> Path:
    """The benchmark's JSON: its provenance and its results, written beside its printed table."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"provenance": info, "results": results}, indent=1))
    return path
