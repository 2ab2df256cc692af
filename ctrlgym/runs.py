"""Run directories: where a run keeps its config, checkpoints, logs and metrics.

```
RUN_DIR/
  config.yaml            resolved experiment config (written atomically)
  metrics.json           a merged snapshot of everything below, rewritten after each command
  tensorboard/           TensorBoard logs (one sub-folder per seed)
  seed_<s>/checkpoints/  the newest checkpoint_keep checkpoints (one once the seed is finished):
                         step_<n>.zip|.pt (model, written last), trainer_<n>.pt (env, RNG, wall
                         time), learning_curve_<n>.json, ...
  seed_<s>/training.json that seed's training result (steps, learning curve, wall time)
  seed_<s>/final_model.zip (SB3) or final_model.pt
  evaluation_jobs/<key>.json  one evaluation job's result (policy x seed x env setting)
  solve.json             the solvers' results
```

Every file is written atomically by the one job it belongs to (a seed's training, an
evaluation job, a solve), so many processes or machines can share a run directory: train
different seeds, evaluate different policies or seeds at once. ``read_metrics`` merges them;
``metrics.json`` is a snapshot of that merge for other tools, never read back as the source.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ctrlgym.config import ExperimentConfig, load_config, save_config

__all__ = ["RunDirError", "open_run_dir", "resolve_run_dir", "read_metrics", "write_json_atomic", "torch_save_atomic", "succeeded", "write_metrics_snapshot"]


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
        before, after = load_config(stored).settings(), config.settings()
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
    """Everything a run has produced, merged from its per-seed, per-job and solve files:
    ``training`` (seed -> result), ``evaluation`` and ``sweep`` on its env, ``transfer``
    (env -> evaluation) on others, ``solve``. Runs of older ctrlgym versions fall back to their
    ``metrics.json``."""
    run_dir = Path(run_dir)
    legacy_path = run_dir / "metrics.json"
    legacy = json.loads(legacy_path.read_text()) if legacy_path.is_file() else {}
    metrics: dict[str, Any] = {}
    seed_files = sorted(run_dir.glob("seed_*/training.json"), key=lambda path: int(path.parent.name.removeprefix("seed_")))
    if seed_files:
        metrics["training"] = {path.parent.name.removeprefix("seed_"): json.loads(path.read_text()) for path in seed_files}
    elif "training" in legacy:
        metrics["training"] = legacy["training"]
    config_file = run_dir / "config.yaml"
    if config_file.is_file():
        from ctrlgym.evaluation import collect_evaluation, evaluated_envs
        from ctrlgym.registry import get_entry

        config = load_config(config_file)
        own = get_entry(config.env.id).env_id
        for env_id in sorted(evaluated_envs(run_dir), key=lambda env: env != own):
            sections = collect_evaluation(run_dir, config, env_id)
            if env_id == own:
                metrics.update(sections)
            else:
                metrics.setdefault("transfer", {})[env_id] = sections["evaluation"]
    for section in ("evaluation", "transfer", "sweep"):
        if section not in metrics and section in legacy:
            metrics[section] = legacy[section]
    solve = run_dir / "solve.json"
    if solve.is_file():
        metrics["solve"] = json.loads(solve.read_text())
    elif "solve" in legacy:
        metrics["solve"] = legacy["solve"]
    return metrics


def write_metrics_snapshot(run_dir: Path) -> None:
    """Rewrite ``metrics.json`` as the merge :func:`read_metrics` sees now (a convenience for other tools)."""
    write_json_atomic(Path(run_dir) / "metrics.json", read_metrics(run_dir))
