"""Run a config's jobs on Ray (``pip install 'ctrlgym[ray]'``): each seed's training, each
(policy, seed) evaluation and the solve as one Ray task, on a local Ray or a cluster.

Tasks write the same run directory as a local run (each job its own files, see
:mod:`ctrlgym.experiment.runs`), so on a cluster every node must reach ``output_dir`` (a shared
filesystem); it is made absolute before the tasks start. Rerunning skips finished jobs: seeds
with a final model, evaluation jobs with a result; an interrupted seed resumes from its newest
checkpoint. Progress streams from the run directory: the bar counts the steps of the newest
checkpoints and the finished jobs.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ctrlgym.errors import UsageError
from ctrlgym.experiment.config import ExperimentConfig, load_config

__all__ = ["ray_train", "ray_evaluate", "ray_solve", "job_resources"]


def _ray():
    try:
        import ray
    except ImportError:
        raise UsageError("--executor ray needs Ray: pip install 'ctrlgym[ray]'") from None
    return ray


def _reachable(address: str, seconds: float = 5.0) -> None:
    """``UsageError`` unless something listens at ``host:port`` (``ray://`` addresses too) within ``seconds``:
    Ray itself retries an unreachable address for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address {address!r}: expected HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host, int(port)), timeout=seconds).close()
    except OSError as error:
        raise UsageError(f"--address {address}: no Ray cluster answers there ({error})") from None


def start_ray(address: str | None):
    """Join the cluster at ``address``, or start a local Ray (this machine's CPUs and GPUs); a missing Ray
    or an unreachable cluster is a one-line ``UsageError`` within seconds."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    if address not in (None, "auto", "local"):
        _reachable(address)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except ConnectionError as error:
        raise UsageError(f"--address {address}: {' '.join(str(error).split())}") from None
    return ray


def _absolute(config: ExperimentConfig) -> ExperimentConfig:
    """The config with ``output_dir`` and ``agent.init_from`` as absolute paths (workers start elsewhere)."""
    absolute = ExperimentConfig.model_validate(config.settings())  # settings(): the config with its paths resolved
    absolute._source = config.source
    return absolute


def job_resources(config: ExperimentConfig) -> dict[str, float]:
    """What one job asks Ray for: a GPU if the env or agent is on CUDA; one CPU, or one per
    simulation for envs whose simulations are local processes of their own (SUMO; with
    ``workers="ray"`` each simulation is an actor that asks Ray for its CPU itself)."""
    from ctrlgym.registry import get_entry

    on_cuda = config.env.device.startswith("cuda") or (
        config.agent is not None and config.agent.device.startswith("cuda")
    )
    processes = not getattr(get_entry(config.env.id).vector_cls, "resumable", True)  # SUMO: one process per env copy
    processes = (
        processes and config.env.kwargs.get("workers", "process") == "process"
    )  # workers="ray": the actors ask for their own
    return {"num_cpus": float(config.env.num_envs if processes else 1), "num_gpus": 1.0 if on_cuda else 0.0}


def _wait(ray, futures: list, bar: tqdm, poll) -> None:
    """Wait for every task, updating the bar from ``poll()`` (done so far); a failed task raises its error here."""
    pending = list(futures)
    while pending:
        done, pending = ray.wait(pending, timeout=1.0)
        for future in done:
            ray.get(future)  # re-raises the task's exception
        bar.n = poll(len(futures) - len(pending))
        bar.refresh()


def ray_train(
    config: ExperimentConfig | str | Path,
    address: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Train every seed of ``config`` as a Ray task; the run directory is the same as :func:`ctrlgym.experiment.training.train` writes."""
    from ctrlgym.experiment.runs import RunDir
    from ctrlgym.experiment.training import train

    if not isinstance(config, ExperimentConfig):
        config = load_config(config)
    if config.agent is None:
        raise UsageError(
            f"config {config.name} has no agent to train (agent: null); run ctrlgym evaluate CONFIG for its baselines"
        )
    config = _absolute(config)
    config.check_agent_device()
    ray = start_ray(address)  # before anything is written or moved: a bad executor leaves the old run as it was
    run = RunDir.prepare_training(config, list(config.seeds), resume, overwrite)
    task = ray.remote(train).options(**job_resources(config), max_retries=0)
    todo = [seed for seed in config.seeds if not run.final_model(seed).is_file()]
    futures = [task.remote(config, resume=True, progress=False, seeds=[seed]) for seed in todo]
    total = config.trained_agent.total_timesteps

    def steps(_: int) -> int:
        done = 0
        for seed in config.seeds:
            found = run.latest_checkpoint(seed)
            done += total if run.final_model(seed).is_file() else (found[0] if found else 0)
        return done

    with tqdm(
        total=total * len(config.seeds), desc=f"train {config.name} on ray", unit="step", disable=not progress
    ) as bar:
        _wait(ray, futures, bar, steps)
    run.write_snapshot()
    return run.path


def ray_evaluate(
    run_dir: str | Path | ExperimentConfig, address: str | None = None, env_id: str | None = None, progress: bool = True
) -> dict[str, Any]:
    """Evaluate every (policy, seed) of a run as a Ray task; returns the merged evaluation."""
    from ctrlgym.experiment.evaluation import evaluate_run
    from ctrlgym.experiment.runs import RunDir
    from ctrlgym.registry import get_entry

    run = RunDir.resolve(run_dir)
    run = RunDir(run.path.resolve(), run.config)
    config = run.config
    env_id = get_entry(env_id).env_id if env_id is not None else config.env.id
    config.make_env(1, env_id).close()  # a bad kwarg fails here, once, not in every task
    ray = start_ray(address)
    task = ray.remote(evaluate_run).options(**job_resources(config), max_retries=0)
    policies = config.policy_names
    futures = [
        task.remote(run.path, progress=False, env_id=env_id, seeds=[seed], policies=[policy])
        for policy in policies
        for seed in config.seeds
    ]
    with tqdm(total=len(futures), desc=f"evaluate {config.name} on ray", unit="job", disable=not progress) as bar:
        _wait(ray, futures, bar, lambda finished: finished)
    run.write_snapshot()
    return run.collect_evaluation(env_id)["evaluation"]


def ray_solve(path: str | Path | ExperimentConfig, address: str | None = None, progress: bool = True) -> dict[str, Any]:
    """The config's solve section as one Ray task (on a node with the CPUs or GPU it asks for)."""
    from ctrlgym.experiment.runs import RunDir
    from ctrlgym.experiment.solving import solve_run

    run = RunDir.resolve(path)
    config = run.config
    ray = start_ray(address)
    gpus = 1.0 if config.solve is not None and config.solve.device.startswith("cuda") else 0.0
    future = (
        ray.remote(solve_run)
        .options(num_cpus=1, num_gpus=gpus, max_retries=0)
        .remote(run.path.resolve(), progress=False)
    )
    with tqdm(total=1, desc=f"solve {config.name} on ray", unit="job", disable=not progress) as bar:
        started = time.perf_counter()
        _wait(ray, [future], bar, lambda finished: finished)
        bar.set_postfix(seconds=round(time.perf_counter() - started, 1))
    return ray.get(future)
