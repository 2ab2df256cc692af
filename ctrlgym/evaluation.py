"""Evaluate policies on the native batch: one episode per env, the same seeds for every policy.

Each (env setting, policy, seed) job writes its result to ``RUN/evaluation_jobs/<key>.json``
(atomically, keyed by everything the result depends on), so a rerun skips finished jobs and an
interrupted evaluation resumes. A policy that fails on a setting is recorded with its message
(``{"failed": "..."}``) and the other jobs still run; a rerun tries the failed ones again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ctrlgym.algorithms import get_algorithm
from ctrlgym.config import ExperimentConfig, takes_keyword
from ctrlgym.policies import Policy, SB3Policy
from ctrlgym.registry import get_entry, make_vector_env
from ctrlgym.runs import RunDirError, open_run_dir, read_metrics, resolve_run_dir, succeeded, update_metrics, write_json_atomic
from ctrlgym.threads import hot_path
from ctrlgym.vector_env import TorchVectorEnv

__all__ = ["evaluate_policy", "evaluate_run"]


def _job_key(env_id: str, env_kwargs: dict[str, Any], policy: str, seed: int, episodes: int, model_stamp: float | None) -> str:
    payload = json.dumps([env_id, env_kwargs, policy, seed, episodes, model_stamp], sort_keys=True, default=str)
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


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


def _run_episodes(env: TorchVectorEnv, policy: Policy, episodes: int, seed: int, max_steps: int, env_id: str) -> dict[str, Any]:
    obs, _ = env.reset(seed=seed)
    returns = torch.zeros(episodes, dtype=torch.float64, device=env.device)
    steps = torch.zeros(episodes, dtype=torch.float64, device=env.device)
    metric_sums: dict[str, torch.Tensor] = {}
    done = torch.zeros(episodes, dtype=torch.bool, device=env.device)
    final_names = tuple(getattr(env, "final_metrics", ()))  # reported at each episode's last step
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
    for name, (numerator, denominator) in getattr(env, "ratio_metrics", {}).items():
        if numerator in metric_sums and denominator in metric_sums:
            metrics[name] = float(metric_sums[numerator].sum() / metric_sums[denominator].sum().clamp_min(1e-9))
            metrics.pop(numerator)  # a per-step sum, meaningful only through the ratio
    return {"mean_return": float(returns.mean()), "episode_returns": returns.tolist(), "metrics": metrics}


def _agent_policy(run_dir: Path, config: ExperimentConfig, seed: int) -> Callable[[TorchVectorEnv], Policy]:
    """``make_policy(env)`` for the trained agent of ``seed`` (greedy / deterministic actions)."""
    from ctrlgym.training import final_model_path

    path = final_model_path(run_dir / f"seed_{seed}", config.agent.algo)
    if not path.is_file():
        raise RunDirError(f"{path} is missing: training of seed {seed} has not finished (ctrlgym train CONFIG --resume)")
    algorithm = get_algorithm(config.agent.algo)
    if algorithm.sb3:
        model = algorithm.load().load(path, device=config.agent.device)
        return lambda env: SB3Policy(model)
    agent_class = algorithm.load()
    overrides = {"buffer_size": 1} if takes_keyword(agent_class, "buffer_size") else {}  # no replay needed to act
    return lambda env: agent_class.load(path, env, device=config.agent.device, **overrides)


def evaluate_run(run_dir: str | Path, progress: bool = True, env_id: str | None = None) -> dict[str, Any]:
    """Evaluate the trained agent of every seed and the env's baselines on the same seeds.

    ``run_dir`` is a run directory, or a config file (then its ``output_dir`` is used; with
    ``agent: null`` only the baselines run). Seed s is evaluated on env seed
    ``s + evaluation.seed_offset`` for every policy, so the comparison is paired. Results go to
    ``metrics.json`` under ``"evaluation"``.

    ``env_id`` evaluates on another registered env with the run's env kwargs and the same
    spaces, e.g. an agent trained on the traffic twin, on SUMO; results go under
    ``"transfer"`` → ``env_id``, beside the evaluation on the training env.

    ``evaluation.sweep`` (``{param: [values]}``) evaluates every policy again with the env kwarg
    ``param`` set to each value (e.g. the user speed); results go under ``"sweep"``.
    """
    run_dir, config = open_run_dir(resolve_run_dir(Path(run_dir)))
    env_id = get_entry(env_id).env_id if env_id is not None else config.env.id
    entry = get_entry(env_id)
    agent_name = config.agent.algo if config.agent is not None else None
    missing = [name for name in config.evaluation.baselines if name not in entry.baselines]
    if missing:
        raise ValueError(f"{env_id} has no baselines {missing} (it has {sorted(entry.baselines)}); set evaluation.baselines")
    config.make_env(1, env_id).close()  # a kwarg or device the env rejects: one error naming the config's key, before any job
    sweep = config.evaluation.sweep if env_id == get_entry(config.env.id).env_id else None
    param, values = next(iter(sweep.items())) if sweep else (None, [])
    settings = [{}] + [{param: value} for value in values]
    names = ([agent_name] if agent_name else []) + list(config.evaluation.baselines)
    jobs = [(setting, seed, name) for setting in range(len(settings)) for seed in config.seeds for name in names]
    results: list[dict[str, dict[str, Any]]] = [{name: {} for name in names} for _ in settings]
    agent_policies: dict[int, Callable[[TorchVectorEnv], Policy]] = {}  # loaded once per seed, used at every sweep value
    jobs_dir = run_dir / "evaluation_jobs"
    jobs_dir.mkdir(exist_ok=True)
    bar = tqdm(jobs, desc="evaluate", disable=not progress)
    for setting, seed, name in bar:
        eval_seed = seed + config.evaluation.seed_offset
        env_kwargs = dict(config.env.kwargs)
        model_stamp = None
        if name != agent_name:
            baseline = entry.baselines[name]
            env_kwargs.update(baseline.env_kwargs)
        else:
            from ctrlgym.training import final_model_path

            model = final_model_path(run_dir / f"seed_{seed}", config.agent.algo)
            model_stamp = model.stat().st_mtime if model.is_file() else None
        env_kwargs.update(settings[setting])
        job = jobs_dir / f"{_job_key(env_id, env_kwargs, name, eval_seed, config.evaluation.episodes, model_stamp)}.json"
        bar.set_postfix_str(f"{name} seed {seed}" + (f" {param}={settings[setting][param]}" if setting else ""))
        if job.is_file():
            cached = json.loads(job.read_text())
            if "failed" not in cached:
                results[setting][name][str(seed)] = cached
                continue
        try:
            if name == agent_name:
                if seed not in agent_policies:
                    agent_policies[seed] = _agent_policy(run_dir, config, seed)
                make_policy = agent_policies[seed]
            else:
                make_policy = lambda env, baseline=baseline, eval_seed=eval_seed: baseline.make(env, eval_seed)  # noqa: E731
            result = evaluate_policy(make_policy, env_id, episodes=config.evaluation.episodes, seed=eval_seed, device=config.env.device, **env_kwargs)
        except (KeyboardInterrupt, RunDirError):
            raise
        except Exception as error:  # one failing policy must not lose the others' results
            result = {"failed": _one_line(error)}
            where = f" at {param}={settings[setting][param]}" if setting else ""
            tqdm.write(f"evaluate: {name} failed on seed {seed}{where}: {result['failed']}")
        write_json_atomic(job, result)
        results[setting][name][str(seed)] = result
    evaluation = {"agent": agent_name, "env": env_id, "seeds": config.seeds, "policies": results[0]}
    if env_id != get_entry(config.env.id).env_id:
        update_metrics(run_dir, "transfer", {**read_metrics(run_dir).get("transfer", {}), env_id: evaluation})
        return evaluation
    update_metrics(run_dir, "evaluation", evaluation)
    if sweep:
        policies = {name: {str(value): results[i + 1][name] for i, value in enumerate(values)} for name in names}
        update_metrics(run_dir, "sweep", {"param": param, "values": values, "agent": agent_name, "seeds": config.seeds, "policies": policies})
    return evaluation
