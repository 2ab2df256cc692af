"""Run directories: where a run keeps its config, checkpoints, logs and metrics.

```
RUN_DIR/
  config.yaml            resolved experiment config
  metrics.json           learning curves and evaluation results, per seed
  tensorboard/           TensorBoard logs (one sub-folder per seed)
  seed_<s>/checkpoints/  step_<n>.zip (PPO) or step_<n>.pt (DQN, Nash DQN; with the replay
                         buffer, the newest only), learning_curve_<n>.json, written atomically
  seed_<s>/final_model.zip (PPO) or final_model.pt
  evaluation_jobs/<key>.json  one evaluation job's result (policy x seed x env setting), atomic
```
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ctrlgym.config import ExperimentConfig, load_config, save_config

__all__ = ["RunDirError", "open_run_dir", "resolve_run_dir", "read_metrics", "write_json_atomic", "torch_save_atomic", "update_metrics", "succeeded"]


class RunDirError(FileNotFoundError):
    """A path that is not (or not yet) a usable run directory; the message says what is missing."""


def open_run_dir(run_dir: str | Path) -> tuple[Path, ExperimentConfig]:
    """The run directory and its resolved config; ``RunDirError`` if it is missing or incomplete."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist (train first: ctrlgym train CONFIG)")
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise RunDirError(f"{run_dir} is not a ctrlgym run directory: {config_path.name} is missing")
    return run_dir, load_config(config_path)


def resolve_run_dir(path: Path) -> Path:
    """A run directory, or the one a config file (or shipped config name) names (made, with the config, if new)."""
    if path.is_dir():
        return path
    if not path.is_file():
        from ctrlgym.config import ConfigError, config_path

        try:
            path = config_path(path)
        except ConfigError:
            if path.suffix in (".yaml", ".yml"):
                raise
            raise RunDirError(
                f"{path}: no such run directory, config file or shipped config (`ctrlgym configs`); a run directory exists once `ctrlgym train CONFIG` ran"
            ) from None
    config = load_config(path)
    run_dir = Path(config.output_dir)
    stored = run_dir / "config.yaml"
    if stored.is_file():
        # the evaluation section may change (baselines, episodes, sweeps): evaluate re-runs what it needs
        before, after = load_config(stored).model_dump(), config.model_dump()
        before.pop("evaluation"), after.pop("evaluation")
        if before != after:
            changed = sorted(key for key in after if before.get(key) != after.get(key))
            raise ValueError(f"{run_dir} holds a run of a different config ({stored}: {', '.join(changed)} differ); change output_dir in {path}")
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, stored)
    return run_dir


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that a reader (or a killed run) never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def torch_save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` through a ``.partial`` file renamed into place: a killed run never leaves half a checkpoint."""
    import torch

    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    torch.save(obj, partial)
    os.replace(partial, path)


def succeeded(per_seed: dict[str, Any]) -> dict[str, Any]:
    """The seeds of a policy whose evaluation ran (failed jobs hold only ``{"failed": message}``)."""
    return {seed: result for seed, result in per_seed.items() if "failed" not in result}


def read_metrics(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def update_metrics(run_dir: Path, section: str, value: Any) -> None:
    metrics = read_metrics(run_dir)
    metrics[section] = value
    write_json_atomic(run_dir / "metrics.json", metrics)
