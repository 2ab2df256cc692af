"""``ctrlgym tune``: a hyperparameter search with Optuna (Akiba et al. 2019), as RL Zoo runs one.

The config's ``tune`` section names the search space (config key paths and their ranges), the
number of trials and the metric. Each trial is a run directory of its own under ``RUN/tune/``
(``trial_<n>/``): the config with the trial's values set (as ``--set`` would), trained and evaluated
on the tune seeds; its score is the mean over those seeds of the agent's evaluation metric.
Between seeds the trial reports its running mean, and the median pruner stops trials that fall
below the median of the others at the same seed (local runs). The study lives in
``RUN/tune/study.log`` (Optuna's journal file), so a rerun continues it up to ``trials``;
``--executor ray`` runs trials as Ray tasks (without pruning: a task runs to the end).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from tqdm.auto import tqdm

from ctrlgym.errors import UsageError
from ctrlgym.experiment.config import ExperimentConfig, TuneConfig, apply_overrides, parse_config, save_config
from ctrlgym.experiment.runs import RunDir
from ctrlgym.registry import get_entry

__all__ = ["tune", "run_trial"]


def _optuna():
    try:
        import optuna
    except ImportError:
        raise UsageError("ctrlgym tune needs Optuna: pip install 'ctrlgym[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _objective(config: ExperimentConfig, tune_config: TuneConfig) -> tuple[str, str]:
    """The metric trials are scored by and its direction."""
    headline = get_entry(config.env.id).vector_cls.headline_metric
    metric = tune_config.metric or (headline[0] if headline else "mean_return")
    if tune_config.direction is not None:
        return metric, tune_config.direction
    higher = headline[1] if headline and headline[0] == metric else True
    return metric, "maximize" if higher else "minimize"


def _distributions(optuna, tune_config: TuneConfig) -> dict[str, Any]:
    found = {}
    for key, dimension in tune_config.space.items():
        if dimension.type == "categorical":
            found[key] = optuna.distributions.CategoricalDistribution(dimension.choices)
            continue
        low, high = dimension.low, dimension.high
        assert low is not None and high is not None  # SearchDimension checks it
        if dimension.type == "int":
            found[key] = optuna.distributions.IntDistribution(
                int(low), int(high), log=dimension.log, step=int(dimension.step or 1)
            )
        else:
            found[key] = optuna.distributions.FloatDistribution(low, high, log=dimension.log, step=dimension.step)
    return found


def trial_config(config: ExperimentConfig, params: dict[str, Any], folder: Path, seeds: list[int]) -> ExperimentConfig:
    """The config of one trial: ``params`` set at their key paths, its own output_dir and seeds, no tune section."""
    data = config.model_dump(mode="json")
    data.pop("tune")
    overrides = [
        f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"
        for key, value in params.items()
    ]
    data = apply_overrides(data, [*overrides, f"output_dir={folder}", f"seeds={list(seeds)}"], config.source)
    return parse_config(data, f"{config.source} (tune trial with {', '.join(overrides)})")


def run_trial(config: ExperimentConfig, metric: str, report=None) -> list[float]:
    """Train and evaluate a trial's config seed by seed; the agent's ``metric`` per seed. ``report(step, values)``
    is called after each seed and may raise to stop the trial (pruning)."""
    from ctrlgym.experiment.evaluation import evaluate_run
    from ctrlgym.experiment.training import train

    algo = config.trained_agent.algo
    values = []
    for step, seed in enumerate(config.seeds):
        train(config, resume=RunDir(Path(config.output_dir), config).has_progress([seed]), progress=False, seeds=[seed])
        result = evaluate_run(config, progress=False, seeds=[seed], policies=[algo])["policies"][algo][str(seed)]
        if "failed" in result:
            raise UsageError(f"trial {config.output_dir}: the agent's evaluation failed: {result['failed']}")
        values.append(float(result["mean_return"] if metric == "mean_return" else result["metrics"][metric]))
        if report is not None:
            report(step, values)
    return values


def tune(
    config: ExperimentConfig,
    trials: int | None = None,
    executor: str = "local",
    address: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or continue) the config's study until it has ``trials`` finished trials; the best trial's
    params and value, with ``RUN/tune/best.yaml`` (the config with them set) and ``RUN/tune/trials.json``."""
    optuna = _optuna()
    if config.tune is None:
        raise UsageError(
            f"{config.source}: no tune section (tune: {{space: {{KEY.PATH: {{type: float, low: ..., high: ...}}}}}})"
        )
    tune_config = config.tune
    if config.agent is None:
        raise UsageError(f"{config.source}: agent: null has nothing to tune")
    for key in tune_config.space:  # every key path must be a key of the config: checked with the range's low end
        sample = next(iter(_sample_values(tune_config, key)))
        trial_config(config, {key: sample}, Path(config.output_dir) / "tune" / "check", config.seeds[:1])
    metric, direction = _objective(config, tune_config)
    folder = Path(config.output_dir) / "tune"
    folder.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(folder / "study.log")))
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
        if tune_config.pruner == "median"
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        study_name=config.name,
        storage=storage,
        load_if_exists=True,
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=pruner,
    )
    target = trials or tune_config.trials
    distributions = _distributions(optuna, tune_config)
    seeds = tune_config.seeds or config.seeds
    finished = lambda: sum(t.state.is_finished() for t in study.trials)  # noqa: E731
    with tqdm(
        total=target, initial=min(finished(), target), desc=f"tune {config.name}", unit="trial", disable=not progress
    ) as bar:
        if executor == "ray":
            _tune_on_ray(optuna, study, config, distributions, seeds, metric, target, folder, address, bar)
        else:
            while finished() < target:
                trial = study.ask(distributions)
                trial_run = trial_config(config, trial.params, folder / f"trial_{trial.number}", seeds)

                def report(step: int, values: list[float], trial=trial) -> None:
                    trial.report(sum(values) / len(values), step)
                    if trial.should_prune():
                        raise optuna.TrialPruned()

                try:
                    values = run_trial(trial_run, metric, report)
                except optuna.TrialPruned:
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                else:
                    study.tell(trial, sum(values) / len(values))
                bar.update(1)
    return _summarise(optuna, study, config, folder, metric, direction)


def _sample_values(tune_config: TuneConfig, key: str) -> list[Any]:
    dimension = tune_config.space[key]
    if dimension.type == "categorical":
        return list(dimension.choices or [])
    return [int(dimension.low) if dimension.type == "int" else dimension.low]  # type: ignore[arg-type]


def _tune_on_ray(optuna, study, config, distributions, seeds, metric, target, folder, address, bar) -> None:
    from ctrlgym.experiment.executors import job_resources, start_ray

    ray = start_ray(address)
    task = ray.remote(run_trial).options(**job_resources(config), max_retries=0)
    pending: dict[Any, Any] = {}
    while sum(t.state.is_finished() for t in study.trials) + len(pending) < target or pending:
        free = int(ray.available_resources().get("CPU", 1))
        while free > 0 and sum(t.state.is_finished() for t in study.trials) + len(pending) < target:
            trial = study.ask(distributions)
            trial_run = trial_config(config, trial.params, (folder / f"trial_{trial.number}").resolve(), seeds)
            pending[task.remote(trial_run, metric)] = trial
            free -= 1
        done, _ = ray.wait(list(pending), num_returns=1)
        trial = pending.pop(done[0])
        try:
            values = ray.get(done[0])
            study.tell(trial, sum(values) / len(values))
        except Exception as error:  # the task's failure: the trial fails, the study goes on
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            tqdm.write(f"tune: trial {trial.number} failed: {type(error).__name__}: {error}")
        bar.update(1)


def _summarise(optuna, study, config: ExperimentConfig, folder: Path, metric: str, direction: str) -> dict[str, Any]:
    rows = [
        {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "params": t.params,
            "intermediate": dict(t.intermediate_values),
        }
        for t in study.trials
    ]
    (folder / "trials.json").write_text(json.dumps(rows, indent=1))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise UsageError(f"tune {config.name}: no trial completed (see {folder / 'trials.json'})")
    best = study.best_trial
    best_config = trial_config(config, best.params, Path(config.output_dir), config.seeds)
    save_config(best_config, folder / "best.yaml")
    return {
        "metric": metric,
        "direction": direction,
        "best_value": best.value,
        "best_params": best.params,
        "best_trial": best.number,
        "trials": len(study.trials),
        "complete": len(complete),
        "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
        "best_config": str(folder / "best.yaml"),
    }
