"""Evaluate policies on the native batch: one episode per env, the same seeds for every policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ctrlgym.config import ExperimentConfig
from ctrlgym.policies import Policy, SB3Policy
from ctrlgym.registry import get_entry, make_vector_env
from ctrlgym.runs import RunDirError, open_run_dir, update_metrics

__all__ = ["evaluate_policy", "evaluate_run"]


def evaluate_policy(
    policy: Policy, env_id: str, *, episodes: int, seed: int, device: str = "cpu", max_steps: int = 1_000_000, **env_kwargs: Any
) -> dict[str, Any]:
    """Run ``episodes`` episodes of ``policy`` in one batch and summarise them.

    Returns the mean episode return, the per-episode returns, and the episode mean of every
    per-step scalar metric the env reports in ``info`` (e.g. queue lengths, waiting time).
    """
    env = make_vector_env(env_id, episodes, device=device, autoreset_mode="disabled", **env_kwargs)
    obs, _ = env.reset(seed=seed)
    returns = torch.zeros(episodes, dtype=torch.float64, device=env.device)
    steps = torch.zeros(episodes, dtype=torch.float64, device=env.device)
    metric_sums: dict[str, torch.Tensor] = {}
    done = torch.zeros(episodes, dtype=torch.bool, device=env.device)
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
        done |= terminated | truncated
        if bool(done.all()):
            break
    else:
        raise RuntimeError(f"{env_id}: episodes did not end within {max_steps} steps; set max_episode_steps")
    env.close()
    return {
        "mean_return": float(returns.mean()),
        "episode_returns": returns.tolist(),
        "metrics": {key: float((total / steps).mean()) for key, total in metric_sums.items()},
    }


def _load_agent(run_dir: Path, config: ExperimentConfig, seed: int):
    from stable_baselines3 import PPO

    path = run_dir / f"seed_{seed}" / "final_model.zip"
    if not path.is_file():
        raise RunDirError(f"{path} is missing: training of seed {seed} has not finished (ctrlgym train CONFIG --resume)")
    return PPO.load(path, device=config.agent.device)


def evaluate_run(run_dir: str | Path, progress: bool = True) -> dict[str, Any]:
    """Evaluate the trained agent of every seed and the env's baselines on the same seeds.

    Seed s of the run is evaluated on env seed ``s + evaluation.seed_offset`` for every policy,
    so the comparison is paired. Results go to ``metrics.json`` under ``"evaluation"``.
    """
    run_dir, config = open_run_dir(run_dir)
    entry = get_entry(config.env.id)
    agent_name = config.agent.algo
    results: dict[str, dict[str, Any]] = {agent_name: {}, **{name: {} for name in config.evaluation.baselines}}
    jobs = [(seed, name) for seed in config.seeds for name in results]
    for seed, name in tqdm(jobs, desc="evaluate", disable=not progress):
        eval_seed = seed + config.evaluation.seed_offset
        if name == agent_name:
            policy = SB3Policy(_load_agent(run_dir, config, seed))
        else:
            probe = entry.vector_cls(num_envs=1, device=config.env.device, **config.env.kwargs)
            policy = entry.baselines[name](probe, eval_seed)
        results[name][str(seed)] = evaluate_policy(
            policy,
            config.env.id,
            episodes=config.evaluation.episodes,
            seed=eval_seed,
            device=config.env.device,
            **config.env.kwargs,
        )
    evaluation = {"agent": agent_name, "seeds": config.seeds, "policies": results}
    update_metrics(run_dir, "evaluation", evaluation)
    return evaluation
