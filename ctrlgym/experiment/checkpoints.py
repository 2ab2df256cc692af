"""What a training checkpoint holds besides the model: the RNG states of torch, numpy and
Python, the wall and CPU time so far; and how a seed's newest checkpoint is found and opened."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ctrlgym.experiment.runs import RunDir, latest_checkpoint, prune_checkpoints

__all__ = [
    "random_states",
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


def open_checkpoints(run: RunDir, seed: int) -> tuple[Path, tuple[int, Path, dict[str, Any]] | None]:
    """A seed's checkpoint folder (made, and pruned of unfinished files) and its newest complete
    checkpoint as (steps, model path, trainer state), or None."""
    folder = run.checkpoints(seed)
    folder.mkdir(parents=True, exist_ok=True)
    prune_checkpoints(folder, run.config.trained_agent.checkpoint_keep)
    found = latest_checkpoint(run.seed_dir(seed))
    if found is None:
        return folder, None
    steps, path = found
    return folder, (steps, path, torch.load(folder / f"trainer_{steps}.pt", weights_only=False))


def announce_resume(seed: int, steps: int, path: Path, exact: bool) -> None:
    how = "exactly" if exact else "with fresh episodes (the env's state lives outside Python, e.g. SUMO)"
    tqdm.write(f"seed {seed}: resumed at step {steps:,} from {path}, {how}")


def save_sb3_atomic(model, path: Path) -> None:
    """``model.save`` through a ``.partial.zip`` renamed into place (SB3 adds ``.zip`` to other names)."""
    partial = path.with_name(path.stem + ".partial.zip")
    model.save(partial)
    partial.replace(path)
