"""Evaluate policies on the native batch: one episode per env, the same seeds for every policy.

Each (env setting, policy, seed) job writes its result to ``RUN/evaluation_jobs/<key>.json``
(atomically, keyed by everything the result depends on), so a rerun skips finished jobs and an
interrupted evaluation resumes. A policy that fails on a setting is recorded with its message
(``{"failed": "..."}``) and the other jobs still run; a rerun tries the failed ones again.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ctrlgym.errors import CtrlgymError, SavedAgentError, UsageError
from ctrlgym.experiment.algorithms import get_algorithm
from ctrlgym.experiment.config import ExperimentConfig, takes_keyword
from ctrlgym.experiment.runs import RunDir, RunDirError
from ctrlgym.files import write_json_atomic
from ctrlgym.policies import Policy, SB3Policy
from ctrlgym.registry import Baseline, get_entry, make_vector_env
from ctrlgym.threads import hot_path
from ctrlgym.vector_env import TorchVectorEnv

__all__ = ["evaluate_policy", "evaluate_run", "collect_evaluation", "agent_policy"]


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:500]


@hot_path
def evaluate_policy(
    make_policy: Callable[[TorchVectorEnv], Policy],
    env_id: str,
    *,
    episodes: int,
    seed: int,
    device: str = "cpu",
    max_steps: int = 1_000_000,
    **env_kwargs: Any,
) -> dict[str, Any]:
    """Run ``episodes`` episodes in one batch with the policy ``make_policy(env)`` and summarise.

    Returns the mean episode return (summed over agents), the per-episode returns, and the
    episode mean of every per-step scalar metric in ``info`` (queue length, waiting time, ...),
    or its value at the episode's last step for metrics in the env's ``final_metrics``;
    for metrics named in the env's ``ratio_metrics`` the ratio of their episode sums
    (e.g. travel time = Σ trip_time / Σ throughput).
    """
    env = make_vector_env(env_id, episodes, device=device, autoreset_mode="disabled", **env_kwargs)
    try:
        return _run_episodes(env, make_policy(env), episodes, seed, max_steps, env_id)
    finally:
        env.close()


def _run_episodes(
    env: TorchVectorEnv, policy: Policy, episodes: int, seed: int, max_steps: int, env_id: str
) -> dict[str, Any]:
    obs, _ = env.reset(seed=seed)
    returns = torch.zeros(episodes, dtype=torch.float64, device=env.device)
    steps = torch.zeros(episodes, dtype=torch.float64, device=env.device)
    metric_sums: dict[str, torch.Tensor] = {}
    done = torch.zeros(episodes, dtype=torch.bool, device=env.device)
    final_names = tuple(env.final_metrics)  # reported at each episode's last step
    final_values = {key: torch.zeros(episodes, dtype=torch.float64, device=env.device) for key in final_names}
    for _ in range(max_steps):
        with torch.no_grad():
            actions = policy(obs)
        obs, rewards, terminated, truncated, info = env.step(actions)
        active = (~done).double()
        returns += rewards.double().reshape(episodes, -1).sum(dim=1) * active  # multi-agent: summed over agents
        steps += active
        for key, value in info.items():
            if isinstance(value, torch.Tensor) and not key.startswith("_") and value.shape == (episodes,):
                metric_sums[key] = metric_sums.get(key, 0) + value.double() * active
        ending = (terminated | truncated) & ~done
        for key in final_names:
            if key in info:  # present at the steps where some episode ends
                final_values[key] = torch.where(ending, info[key].double(), final_values[key])
        done |= terminated | truncated
        if bool(done.all()):
            break
    else:
        raise RuntimeError(f"{env_id}: episodes did not end within {max_steps} steps; set max_episode_steps")
    metrics = {key: float((total / steps).mean()) for key, total in metric_sums.items() if key not in final_names}
    metrics.update({key: float(value.mean()) for key, value in final_values.items()})
    for name, (numerator, denominator) in env.ratio_metrics.items():
        if numerator in metric_sums and denominator in metric_sums:
            metrics[name] = float(metric_sums[numerator].sum() / metric_sums[denominator].sum().clamp_min(1e-9))
            metrics.pop(numerator)  # a per-step sum, meaningful only through the ratio
    return {"mean_return": float(returns.mean()), "episode_returns": returns.tolist(), "metrics": metrics}


def _check_evaluation(
    config: ExperimentConfig, env_id: str | None, seeds: list[int] | None, policies: list[str] | None
) -> str:
    """The env to evaluate on, once the config's baselines, the chosen seeds and policies and the env's
    kwargs are known to work there (one error naming the config's key otherwise)."""
    env_id = get_entry(env_id).env_id if env_id is not None else config.env.id
    entry = get_entry(env_id)
    missing = [name for name in config.baseline_names if name not in entry.baselines]
    if missing:
        raise UsageError(
            f"{env_id} has no baselines {missing} (it has {sorted(entry.baselines)}); set evaluation.baselines"
        )
    for label, chosen, known in (("seeds", seeds, config.seeds), ("policies", policies, config.policy_names)):
        unknown = [value for value in chosen or [] if value not in known]
        if unknown:
            raise UsageError(f"{label} {unknown} are not in the config's {label} {known}")
    config.make_env(1, env_id).close()  # a kwarg or device the env rejects
    return env_id


def _finished(job_file: Path) -> bool:
    """Whether a job's file holds a result (a failed job, or a file that does not read back, runs again)."""
    try:
        return "failed" not in json.loads(job_file.read_text())
    except (ValueError, UnicodeDecodeError):
        tqdm.write(f"evaluate: {job_file} does not read back; running that job again")
        return False


def _baseline_policy(baseline: Baseline, seed: int, env: TorchVectorEnv) -> Policy:
    return baseline.make(env, seed)


def agent_policy(run_dir: Path, config: ExperimentConfig, seed: int) -> Callable[[TorchVectorEnv], Policy]:
    """``make_policy(env)`` for the trained agent of ``seed`` in the run at ``run_dir`` (greedy /
    deterministic actions), for scripts that drive an env themselves::

        make = agent_policy(Path("runs/nash_dqn"), load_config("runs/nash_dqn/config.yaml"), seed=0)
        policy = make(env)  # then actions = policy(observations)
    """
    path = RunDir(Path(run_dir), config).final_model(seed)
    if not path.is_file():
        raise RunDirError(
            f"{path} is missing: training of seed {seed} has not finished (ctrlgym train CONFIG --resume)"
        )
    agent = config.trained_agent
    algorithm = get_algorithm(agent.algo)
    if algorithm.sb3:
        try:
            model = algorithm.load().load(path, device=agent.device)
        except Exception as error:  # a truncated or foreign .zip fails deep inside SB3
            detail = " ".join(str(error).split())[:200] or "no detail"
            raise SavedAgentError(
                f"{path}: not a loadable {agent.algo} model ({type(error).__name__}: {detail})"
            ) from None
        return lambda env: SB3Policy(model)
    agent_class = algorithm.load()
    overrides = {"buffer_size": 1} if takes_keyword(agent_class, "buffer_size") else {}  # no replay needed to act
    return lambda env: agent_class.load(path, env, device=agent.device, **overrides)


def collect_evaluation(run_dir: Path, config: ExperimentConfig, env_id: str) -> dict[str, Any]:
    """The results of ``config``'s evaluation on ``env_id`` that are on disk (:meth:`RunDir.collect_evaluation`)."""
    return RunDir(Path(run_dir), config).collect_evaluation(env_id)


def evaluate_run(
    run_dir: str | Path | ExperimentConfig,
    progress: bool = True,
    env_id: str | None = None,
    seeds: list[int] | None = None,
    policies: list[str] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Evaluate the trained agent of every seed and the env's baselines on the same seeds.

    ``run_dir`` is a run directory, or a config file (then its ``output_dir`` is used; with
    ``agent: null`` only the baselines run). Seed s is evaluated on env seed
    ``s + evaluation.seed_offset`` for every policy, so the comparison is paired. Each job writes
    its own file, so evaluations of other ``seeds`` or ``policies`` (subsets of the config's) can
    run at the same time, in other processes or on other machines; the result returned (and in
    ``read_metrics``) merges every job on disk.

    ``env_id`` evaluates on another registered env with the run's env kwargs and the same
    spaces, e.g. an agent trained on the traffic twin, on SUMO; results go under
    ``"transfer"`` → ``env_id``, beside the evaluation on the training env.

    ``evaluation.sweep`` (``{param: [values]}``) evaluates every policy again with the env kwarg
    ``param`` set to each value (e.g. the user speed); results go under ``"sweep"``.

    Everything is checked before anything is written: a config the env rejects leaves no run
    directory behind. ``overwrite`` replaces a run of another config in ``output_dir``.
    """
    checked: dict[str, str] = {}  # the env id, once the config was checked (before a new run directory is made)

    def check(config: ExperimentConfig) -> None:
        checked["env_id"] = _check_evaluation(config, env_id, seeds, policies)

    run = RunDir.resolve(run_dir, check=check, overwrite=overwrite)
    config = run.config
    if "env_id" not in checked:  # an existing run directory: its config is checked here, once
        check(config)
    env_id = checked["env_id"]
    entry = get_entry(env_id)
    plan = run.evaluation_plan(env_id, seeds, policies)
    jobs, settings, agent_name = plan.jobs, plan.settings, plan.agent
    agent_policies: dict[int, Callable[[TorchVectorEnv], Policy]] = {}  # loaded once per seed, for every sweep value
    run.jobs_dir.mkdir(exist_ok=True)
    bar = tqdm(jobs, desc="evaluate", disable=not progress)
    for job in bar:
        where = "" if not job.setting else " " + ", ".join(f"{k}={v}" for k, v in settings[job.setting].items())
        bar.set_postfix_str(f"{job.policy} seed {job.seed}{where}")
        if job.path.is_file() and _finished(job.path):
            continue
        eval_seed = job.seed + config.evaluation.seed_offset
        try:
            if job.policy == agent_name:
                if job.seed not in agent_policies:
                    agent_policies[job.seed] = agent_policy(run.path, config, job.seed)
                make_policy = agent_policies[job.seed]
            else:
                make_policy = functools.partial(_baseline_policy, entry.baselines[job.policy], eval_seed)
            started = time.perf_counter()
            result = evaluate_policy(
                make_policy,
                env_id,
                episodes=config.evaluation.episodes,
                seed=eval_seed,
                device=config.env.device,
                **job.env_kwargs,
            )
            result["wall_time_s"] = time.perf_counter() - started  # the cost tables of reports read it
        except RunDirError:
            raise
        except CtrlgymError as error:  # a policy that cannot run here must not lose the others' results; a bug raises
            result = {"failed": _one_line(error)}
            tqdm.write(f"evaluate: {job.policy} failed on seed {job.seed}{where}: {result['failed']}")
        result["job"] = {"env": env_id, "policy": job.policy, "seed": job.seed, "setting": settings[job.setting]}
        write_json_atomic(job.path, result)
    run.write_snapshot()
    return run.collect_evaluation(env_id)["evaluation"]
