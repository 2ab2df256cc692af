"""Where a report or benchmark came from: ctrlgym's version, the commit and the date."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

__all__ = ["version", "commit", "provenance_line"]


def version() -> str:
    """The installed ctrlgym version (the package's own ``__version__`` when run from a checkout)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("ctrlgym")
    except PackageNotFoundError:
        from ctrlgym import __version__

        return __version__


def commit() -> str:
    """The short commit of the checkout ctrlgym runs from, or "" outside a git checkout."""
    try:
        command = ["git", "rev-parse", "--short", "HEAD"]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance_line() -> str:
    """``Written <date> by ctrlgym <version> (commit <c>).``"""
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    found = commit()
    return f"Written {date} by ctrlgym {version()}" + (f" (commit {found})" if found else " (not a git checkout)") + "."
