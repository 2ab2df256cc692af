"""Run directories: where a run keeps its config, checkpoints, logs and metrics.

```
RUN_DIR/
  config.yaml            resolved experiment config (written atomically)
  metrics.json           a merged snapshot of everything below, rewritten after each command
  tensorboard/seed_<s>/  TensorBoard logs
  seed_<s>/checkpoints/  the newest checkpoint_keep checkpoints (one once the seed is finished):
                         step_<n>.zip|.pt (model, written last), trainer_<n>.pt (env, RNG, wall
                         time), learning_curve_<n>.json, ...
  seed_<s>/training.json that seed's training result (steps, learning curve, wall time)
  seed_<s>/final_model.zip (SB3) or final_model.pt
  evaluation_jobs/<key>.json  one evaluation job's result (policy x seed x env setting)
  solve.json             the solvers' results
```

:class:`RunDir` is the one owner of this layout: every path, the evaluation job keys, the
checkpoints and the parsed config. Every file is written atomically by the one job it belongs to
(a seed's training, an evaluation job, a solve), so many processes or machines can share a run
directory. :meth:`RunDir.metrics` merges them; ``metrics.json`` is a snapshot of that merge for
other tools, never read back as the source.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctrlgym.errors import CtrlgymError, RunExistsError, UsageError
from ctrlgym.experiment.algorithms import get_algorithm
from ctrlgym.experiment.config import ConfigError, ExperimentConfig, config_path, load_config, save_config
from ctrlgym.files import torch_save_atomic, write_json_atomic
from ctrlgym.registry import get_entry

__all__ = [
    "RunDir",
    "RunDirError",
    "EvaluationJob",
    "open_run_dir",
    "resolve_run_dir",
    "read_metrics",
    "write_json_atomic",
    "torch_save_atomic",
    "succeeded",
    "write_metrics_snapshot",
    "latest_checkpoint",
    "final_model_path",
]

_CHECKPOINT = re.compile(r"step_(\d+)\.(zip|pt)$")
_STEP_FILE = re.compile(r"_(\d+)\.[a-z]+$")


class RunDirError(CtrlgymError, FileNotFoundError):
    """A path that is not (or not yet) a usable run directory; the message says what is missing."""


@dataclass(frozen=True)
class EvaluationJob:
    """One evaluation job: a policy on one training seed's evaluation seed, at one env setting."""

    setting: int  # 0: the run's env; i > 0: the i-th value of the sweep
    seed: int
    policy: str
    env_kwargs: dict
    path: Path


@dataclass(frozen=True)
class EvaluationPlan:
    """Every job of an evaluation on one env, the env settings (the run's, then each sweep value), the
    policy names and the agent's name (None for a baselines-only run)."""

    jobs: list[EvaluationJob]
    settings: list[dict[str, Any]]
    names: list[str]
    agent: str | None


def _job_key(
    env_id: str, env_kwargs: dict[str, Any], policy: str, seed: int, episodes: int, model_stamp: float | None
) -> str:
    payload = json.dumps([env_id, env_kwargs, policy, seed, episodes, model_stamp], sort_keys=True, default=str)
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


def latest_checkpoint(seed_dir: Path) -> tuple[int, Path] | None:
    """The (timesteps, path) of the newest complete checkpoint of a seed, or None (the model file is written last)."""
    found = [
        (int(m.group(1)), p) for p in (seed_dir / "checkpoints").glob("step_*") if (m := _CHECKPOINT.search(p.name))
    ]
    return max(found) if found else None


def final_model_path(seed_dir: Path, algo: str) -> Path:
    """Where a seed's final model lives (``final_model.zip`` for SB3, ``.pt`` for ctrlgym's agents)."""
    return seed_dir / f"final_model{get_algorithm(algo).model_suffix}"


def prune_checkpoints(folder: Path, keep: int) -> None:
    """Delete unfinished files (``.partial``, ``.tmp``) and every file of checkpoints other than the newest ``keep`` complete ones."""
    for leftover in [*folder.glob("*.partial"), *folder.glob("*.partial.*"), *folder.glob("*.tmp")]:
        leftover.unlink()
    complete = sorted({int(m.group(1)) for p in folder.glob("step_*") if (m := _CHECKPOINT.search(p.name))})
    if not complete:
        return
    kept = set(complete[-keep:])
    for path in folder.iterdir():
        m = _STEP_FILE.search(path.name)
        if m and int(m.group(1)) not in kept:
            path.unlink()


@dataclass(frozen=True)
class RunDir:
    """A run directory and its parsed config: the one place that knows the layout above."""

    path: Path
    config: ExperimentConfig

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory; ``RunDirError`` if it is missing or incomplete."""
        path = Path(path)
        if not path.is_dir():
            raise RunDirError(f"run directory {path} does not exist (train first: ctrlgym train CONFIG)")
        stored = path / "config.yaml"
        if not stored.is_file():
            raise RunDirError(f"{path} is not a ctrlgym run directory: {stored.name} is missing")
        return cls(path, load_config(stored))

    @classmethod
    def resolve(
        cls,
        path: str | Path | ExperimentConfig,
        check: Callable[[ExperimentConfig], object] | None = None,
        overwrite: bool = False,
    ) -> RunDir:
        """A run directory, or the one a config (a file, a shipped config name, or a parsed config) names (made,
        with the config, if new, after ``check(config)`` passed: a config the env rejects leaves nothing
        behind). ``overwrite`` replaces a run of another config there (:meth:`for_config`)."""
        if isinstance(path, ExperimentConfig):
            if check is not None:
                check(path)
            return cls.for_config(path, overwrite=overwrite)
        path = Path(path)
        if path.is_dir():
            return cls.open(path)
        if not path.is_file():
            try:
                path = config_path(path)
            except ConfigError:
                if path.suffix in (".yaml", ".yml"):
                    raise
                raise RunDirError(
                    f"{path}: no such run directory, config file or shipped config (`ctrlgym configs`); "
                    "a run directory exists once `ctrlgym train CONFIG` ran"
                ) from None
        config = load_config(path)
        if check is not None:
            check(config)
        return cls.for_config(config, path, overwrite=overwrite)

    @classmethod
    def for_config(cls, config: ExperimentConfig, source: str | Path | None = None, overwrite: bool = False) -> RunDir:
        """The run directory of ``config`` (its ``output_dir``), made with the config if new. A directory
        holding a run of another config is an error, unless only the evaluation section differs
        (baselines, episodes, sweeps: evaluate re-runs what it needs), or ``overwrite`` (the old run is
        moved aside, and deleted once the new config is in place)."""
        run_dir = Path(config.output_dir)
        stored = run_dir / "config.yaml"
        aside = None
        if stored.is_file():
            before, after = load_config(stored).settings(), config.settings()
            before.pop("evaluation"), after.pop("evaluation")
            if before != after and overwrite:
                aside = _move_aside(run_dir)
            elif before != after:
                changed = sorted(key for key in after if before.get(key) != after.get(key))
                raise UsageError(
                    f"{run_dir} holds a run of a different config ({', '.join(changed)} differ from {source or config.source}); "
                    f"pass --overwrite to replace it, or change output_dir in {source or config.source}"
                )
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, stored)
        _discard(aside)
        return cls(run_dir, config)

    @classmethod
    def prepare_training(cls, config: ExperimentConfig, seeds: list[int], resume: bool, overwrite: bool) -> RunDir:
        """Check the run directory against the config and write it there. The same config may be
        trained by several processes at once, each on seeds the others do not touch."""
        from tqdm.auto import tqdm

        run_dir = Path(config.output_dir)
        stored = run_dir / "config.yaml"
        aside = _move_aside(run_dir) if overwrite and stored.is_file() else None
        if resume and not stored.is_file():
            raise RunDirError(f"cannot resume: {run_dir} holds no run (no config.yaml); start without --resume")
        run = cls(run_dir, config)
        if stored.is_file():
            previous = load_config(stored)
            if previous != config:
                changed = sorted(
                    key for key, value in config.settings().items() if previous.settings().get(key) != value
                )
                if resume or cls(run_dir, previous).has_progress(previous.seeds):
                    raise ConfigError(
                        f"{run_dir} holds a run of another config ({', '.join(changed)} differ from {stored}); "
                        "start again with --overwrite, or change output_dir"
                    )
                tqdm.write(f"{run_dir}: the previous start left no checkpoint; starting again")
            elif not resume and run.has_progress(seeds):
                raise RunExistsError(
                    f"{run_dir} already holds a run of seeds {seeds}; pass --resume to continue it, "
                    "--overwrite to start again, or change output_dir"
                )
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, stored)  # atomic: concurrent writers and readers never see half a file
        if aside is not None:
            _discard(aside)
            tqdm.write(f"overwrite: replaced the previous run in {run_dir}")
        return run

    # ------------------------------------------------------------------ paths
    def seed_dir(self, seed: int) -> Path:
        return self.path / f"seed_{seed}"

    def checkpoints(self, seed: int) -> Path:
        return self.seed_dir(seed) / "checkpoints"

    def final_model(self, seed: int) -> Path:
        """The seed's final model (``.zip`` for SB3 algorithms, ``.pt`` for ctrlgym's agents)."""
        if self.config.agent is None:
            raise UsageError(f"{self.path}: config {self.config.name} trains no agent")
        return final_model_path(self.seed_dir(seed), self.config.agent.algo)

    def latest_checkpoint(self, seed: int) -> tuple[int, Path] | None:
        """(steps, model path) of the seed's newest complete checkpoint, or None."""
        return latest_checkpoint(self.seed_dir(seed))

    def training_result(self, seed: int) -> Path:
        return self.seed_dir(seed) / "training.json"

    def tensorboard(self, seed: int) -> Path:
        return self.path / "tensorboard" / f"seed_{seed}"

    @property
    def jobs_dir(self) -> Path:
        return self.path / "evaluation_jobs"

    @property
    def solve_file(self) -> Path:
        return self.path / "solve.json"

    def has_progress(self, seeds: list[int]) -> bool:
        """Whether these seeds hold anything a restart would lose (a checkpoint, a model, a result)."""
        patterns = ("checkpoints/step_*", "final_model.*", "training.json")
        return any(any(self.seed_dir(seed).glob(pattern)) for seed in seeds for pattern in patterns)

    # ------------------------------------------------------------------ evaluation jobs
    def evaluation_plan(
        self, env_id: str, seeds: list[int] | None = None, policies: list[str] | None = None
    ) -> EvaluationPlan:
        """The jobs of the config's evaluation on ``env_id`` (a subset of seeds or policies if given)."""
        config = self.config
        entry = get_entry(env_id)
        agent_name = config.agent.algo if config.agent is not None else None
        sweep = config.evaluation.sweep if env_id == get_entry(config.env.id).env_id else None
        param, values = next(iter(sweep.items())) if sweep else (None, [])
        settings: list[dict[str, Any]] = [{}, *({str(param): value} for value in values)]
        names = config.policy_names
        jobs = []
        for setting in range(len(settings)):
            for seed in config.seeds if seeds is None else seeds:
                for name in names if policies is None else [n for n in names if n in policies]:
                    env_kwargs, model_stamp = dict(config.env.kwargs), None
                    if name == agent_name:
                        model = self.final_model(seed)
                        model_stamp = model.stat().st_mtime if model.is_file() else None
                    else:
                        env_kwargs.update(entry.baselines[name].env_kwargs)
                    env_kwargs.update(settings[setting])
                    eval_seed = seed + config.evaluation.seed_offset
                    key = _job_key(env_id, env_kwargs, name, eval_seed, config.evaluation.episodes, model_stamp)
                    jobs.append(EvaluationJob(setting, seed, name, env_kwargs, self.jobs_dir / f"{key}.json"))
        return EvaluationPlan(jobs, settings, names, agent_name)

    def collect_evaluation(self, env_id: str) -> dict[str, Any]:
        """The results of the evaluation on ``env_id`` that are on disk (one file per job, whoever
        wrote it): ``{"evaluation": ...}`` and, with a sweep, ``"sweep"``."""
        plan = self.evaluation_plan(env_id)
        results: list[dict[str, dict[str, Any]]] = [{name: {} for name in plan.names} for _ in plan.settings]
        for job in plan.jobs:
            if job.path.is_file():
                result = read_json(job.path)
                result.pop("job", None)
                results[job.setting][job.policy][str(job.seed)] = result
        seeds = self.config.seeds
        evaluation = {"agent": plan.agent, "env": env_id, "seeds": seeds, "policies": results[0]}
        sections: dict[str, Any] = {"evaluation": evaluation}
        if len(plan.settings) > 1:
            param = next(iter(plan.settings[1]))
            values = [setting[param] for setting in plan.settings[1:]]
            policies = {
                name: {str(value): results[i + 1][name] for i, value in enumerate(values)} for name in plan.names
            }
            sections["sweep"] = {
                "param": param,
                "values": values,
                "agent": plan.agent,
                "seeds": seeds,
                "policies": policies,
            }
        return sections

    def evaluated_envs(self) -> set[str]:
        """The envs this run has evaluation job files for (its own env, and envs it was transferred to)."""
        envs = set()
        for path in self.jobs_dir.glob("*.json"):
            try:
                envs.add(json.loads(path.read_text())["job"]["env"])
            except (KeyError, ValueError, TypeError):  # a job file of an older ctrlgym: no identity
                continue
        return envs

    # ------------------------------------------------------------------ metrics
    def metrics(self) -> dict[str, Any]:
        """Everything the run has produced, merged from its per-seed, per-job and solve files:
        ``training`` (seed -> result), ``evaluation`` and ``sweep`` on its env, ``transfer``
        (env -> evaluation) on others, ``solve``. Runs of older ctrlgym versions fall back to their
        ``metrics.json``."""
        legacy_path = self.path / "metrics.json"
        try:  # a snapshot of an older ctrlgym's run, never the source of anything newer: unreadable is as absent
            legacy = json.loads(legacy_path.read_text()) if legacy_path.is_file() else {}
        except ValueError:
            legacy = {}
        metrics: dict[str, Any] = {}
        seed_files = sorted(
            self.path.glob("seed_*/training.json"), key=lambda path: int(path.parent.name.removeprefix("seed_"))
        )
        if seed_files:
            metrics["training"] = {path.parent.name.removeprefix("seed_"): read_json(path) for path in seed_files}
        elif "training" in legacy:
            metrics["training"] = legacy["training"]
        own = get_entry(self.config.env.id).env_id
        for env_id in sorted(self.evaluated_envs(), key=lambda env: env != own):
            sections = self.collect_evaluation(env_id)
            if env_id == own:
                metrics.update(sections)
            else:
                metrics.setdefault("transfer", {})[env_id] = sections["evaluation"]
        for section in ("evaluation", "transfer", "sweep"):
            if section not in metrics and section in legacy:
                metrics[section] = legacy[section]
        if self.solve_file.is_file():
            metrics["solve"] = read_json(self.solve_file)
        elif "solve" in legacy:
            metrics["solve"] = legacy["solve"]
        return metrics

    def write_snapshot(self) -> None:
        """Rewrite ``metrics.json`` as the merge :meth:`metrics` sees now (a convenience for other tools)."""
        write_json_atomic(self.path / "metrics.json", self.metrics())


def _move_aside(run_dir: Path) -> Path:
    """Rename a run directory out of the way (``.<name>.replaced-<pid>``) so nothing is lost until its
    replacement is set up; a failure before then leaves it there, to be renamed back by hand."""
    aside = run_dir.with_name(f".{run_dir.name}.replaced-{os.getpid()}")
    run_dir.rename(aside)
    return aside


def _discard(aside: Path | None) -> None:
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def read_json(path: Path) -> Any:
    """A JSON file of a run; ``RunDirError`` naming the file if it does not parse."""
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise RunDirError(
            f"{path}: not readable JSON ({type(error).__name__}: {error}); move it away to let the command that writes it run again"
        ) from None


def succeeded(per_seed: dict[str, Any]) -> dict[str, Any]:
    """The seeds of a policy whose evaluation ran (failed jobs hold only ``{"failed": message}``)."""
    return {seed: result for seed, result in per_seed.items() if "failed" not in result}


# ---------------------------------------------------------------------- functions of earlier releases
def open_run_dir(run_dir: str | Path) -> tuple[Path, ExperimentConfig]:
    """The run directory and its resolved config; ``RunDirError`` if it is missing or incomplete."""
    run = RunDir.open(run_dir)
    return run.path, run.config


def resolve_run_dir(path: str | Path) -> Path:
    """A run directory, or the one a config file (or shipped config name) names (made, with the config, if new)."""
    return RunDir.resolve(path).path


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """Everything a run has produced (:meth:`RunDir.metrics`)."""
    return RunDir.open(run_dir).metrics()


def write_metrics_snapshot(run_dir: str | Path) -> None:
    """Rewrite ``metrics.json`` (:meth:`RunDir.write_snapshot`)."""
    RunDir.open(run_dir).write_snapshot()
