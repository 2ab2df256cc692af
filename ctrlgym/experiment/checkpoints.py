"""What a training checkpoint holds besides the model: the RNG states of torch, numpy and
Python, the wall and CPU time so far; and how a seed's newest checkpoint is found and opened."""

from __future__ import annotations

import json
import random
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ctrlgym.experiment.runs import RunDir, latest_checkpoint, prune_checkpoints

__all__ = [
    "Checkpoint",
    "random_states",
    "set_aside",
    "set_random_states",
    "TrainingClock",
    "open_checkpoints",
    "announce_resume",
    "save_sb3_atomic",
]


def random_states() -> dict[str, Any]:
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_random_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class TrainingClock:
    """Wall and CPU time (of this process) of a seed's training, accumulated over the processes that ran it."""

    def __init__(self, before: float = 0.0, cpu_before: float = 0.0) -> None:
        self.before, self.started = before, time.perf_counter()
        self.cpu_before, self.cpu_started = cpu_before, time.process_time()

    @classmethod
    def resumed(cls, trainer: dict[str, Any]) -> TrainingClock:
        return cls(trainer["wall_time_s"], trainer.get("cpu_time_s", 0.0))

    def seconds(self) -> float:
        return round(self.before + time.perf_counter() - self.started, 2)

    def cpu_seconds(self) -> float:
        return round(self.cpu_before + time.process_time() - self.cpu_started, 2)

    def times(self) -> dict[str, float]:
        return {"wall_time_s": self.seconds(), "cpu_time_s": self.cpu_seconds()}


@dataclass(frozen=True)
class Checkpoint:
    """A complete checkpoint whose files all read back: where training continues."""

    steps: int
    model: Path  # step_<n>.zip (SB3) or step_<n>.pt
    trainer: dict[str, Any]  # env, RNG states, times (trainer_<n>.pt)
    curve: list[list[float]]  # the learning curve so far (learning_curve_<n>.json)


class CorruptCheckpoint(Exception):
    """One file of a checkpoint does not read back; the message names it."""


def _read_checkpoint(folder: Path, steps: int, model: Path) -> Checkpoint:
    def load(path: Path, reader):
        try:
            return reader(path)
        except Exception as error:  # truncated, garbage, foreign: any failure to read back
            detail = " ".join(str(error).split())[:200] or "no detail"
            raise CorruptCheckpoint(f"{path}: unreadable ({type(error).__name__}: {detail})") from None

    if model.suffix == ".zip":
        load(model, _check_zip)
    else:
        load(model, lambda path: torch.load(path, map_location="cpu", weights_only=False)["algo"])
    trainer = load(folder / f"trainer_{steps}.pt", lambda path: torch.load(path, weights_only=False))
    curve = load(folder / f"learning_curve_{steps}.json", lambda path: json.loads(path.read_text()))
    return Checkpoint(steps, model, trainer, curve)


def _check_zip(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        bad = archive.testzip()
        if bad is not None or "data" not in archive.namelist():
            raise ValueError(f"a damaged member {bad}" if bad else "no SB3 model data in the archive")


def open_checkpoints(run: RunDir, seed: int) -> tuple[Path, Checkpoint | None]:
    """A seed's checkpoint folder (made, and pruned of unfinished files) and its newest checkpoint
    whose files all read back, or None. A checkpoint that does not is moved to ``checkpoints/corrupt/``
    and the next older one is used, saying which file and why."""
    folder = run.checkpoints(seed)
    folder.mkdir(parents=True, exist_ok=True)
    prune_checkpoints(folder, run.config.trained_agent.checkpoint_keep)
    while (found := latest_checkpoint(run.seed_dir(seed))) is not None:
        steps, model = found
        try:
            return folder, _read_checkpoint(folder, steps, model)
        except CorruptCheckpoint as error:
            moved = set_aside(folder, steps)
            older = latest_checkpoint(run.seed_dir(seed))
            then = (
                f"resuming from the one at step {older[0]:,}"
                if older
                else "no older checkpoint: starting the seed again"
            )
            tqdm.write(f"seed {seed}: checkpoint at step {steps:,} skipped, {error}; moved to {moved}; {then}")
    return folder, None


def set_aside(folder: Path, steps: int) -> Path:
    """Move every file of the checkpoint at ``steps`` into ``folder/corrupt/`` (kept for inspection, never read)."""
    aside = folder / "corrupt"
    aside.mkdir(exist_ok=True)
    for path in folder.glob(f"*_{steps}.*"):
        path.replace(aside / path.name)
    return aside


def announce_resume(seed: int, steps: int, path: Path, exact: bool) -> None:
    how = "exactly" if exact else "with fresh episodes (the env's state lives outside Python, e.g. SUMO)"
    tqdm.write(f"seed {seed}: resumed at step {steps:,} from {path}, {how}")


def save_sb3_atomic(model, path: Path) -> None:
    """``model.save`` through a ``.partial.zip`` renamed into place (SB3 adds ``.zip`` to other names)."""
    partial = path.with_name(path.stem + ".partial.zip")
    model.save(partial)
    partial.replace(path)
