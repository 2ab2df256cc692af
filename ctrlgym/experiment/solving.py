"""``ctrlgym solve``: exact and frozen-state DP on an env's exact model, timed, with regret.

For each method the wall-clock time and the regret of its policy against the optimum are
recorded: regret % = mean over states of (V* − V^π) / mean |V*| · 100, with V^π evaluated
exactly (linear solve) for stationary policies; frozen-state ADP (``frozen_state``: VI on the
upper level as in the paper; ``frozen_state_mpi``: MPI there, ``solve.evaluation_sweeps`` per
backup) is run for every freezing period T and its stationary first-step policy is evaluated.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ctrlgym.errors import UsageError
from ctrlgym.experiment.config import ExperimentConfig
from ctrlgym.experiment.runs import RunDir
from ctrlgym.files import write_json_atomic
from ctrlgym.registry import make_vector_env

__all__ = ["solve_run"]


def _timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def solve_run(path: str | Path | ExperimentConfig, progress: bool = True) -> dict[str, Any]:
    """Run the config's ``solve`` section; results go to ``metrics.json`` under ``"solve"``."""
    from ctrlgym.solvers import (
        inexact_policy_iteration,
        modified_policy_iteration,
        policy_evaluation,
        policy_iteration,
        value_iteration,
    )
    from ctrlgym.solvers.frozen_state import frozen_state_value_iteration, omit_slow_state

    run = RunDir.resolve(path)
    config = run.config
    if config.solve is None:
        raise UsageError(f"config {config.name} has no solve section")
    solve = config.solve
    env = make_vector_env(config.env.id, 1, **config.env.kwargs)
    if not hasattr(env, "exact_model"):
        raise UsageError(f"{config.env.id} has no exact model to solve")
    mdp, build_seconds = _timed(lambda: env.exact_model(device=solve.device))
    reference, reference_seconds = _timed(lambda: inexact_policy_iteration(mdp, epsilon=solve.epsilon * 1e-4).values)
    scale = float(reference.abs().mean())

    def regret(policy: torch.Tensor) -> float:
        return float((reference - policy_evaluation(mdp, policy)).mean()) / scale * 100

    jobs: list[tuple[str, int | None]] = []
    for method in solve.methods:
        jobs += (
            [(method, period) for period in solve.periods] if method.startswith("frozen_state") else [(method, None)]
        )
    exact_solvers = {
        "value_iteration": lambda: value_iteration(mdp, solve.epsilon),
        "modified_policy_iteration": lambda: modified_policy_iteration(mdp, solve.epsilon),
        "inexact_policy_iteration": lambda: inexact_policy_iteration(mdp, solve.epsilon),
        "policy_iteration": lambda: policy_iteration(mdp),
    }
    rows = []
    for method, period in tqdm(jobs, desc=f"solve {config.name}", disable=not progress):
        if method in exact_solvers:
            result, seconds = _timed(exact_solvers[method])
            policy, iterations = result.policy, result.iterations
        elif method.startswith("frozen_state"):
            sweeps = solve.evaluation_sweeps if method == "frozen_state_mpi" else 0
            result, seconds = _timed(
                lambda period=period, sweeps=sweeps: frozen_state_value_iteration(
                    mdp, period, solve.epsilon, evaluation_sweeps=sweeps
                )
            )
            policy, iterations = result.first_step_policy, result.upper_iterations
        else:
            (policy, result), seconds = _timed(lambda: omit_slow_state(mdp, solve.epsilon))
            iterations = result.iterations
        rows.append(
            {
                "method": method,
                "period": period,
                "seconds": seconds,
                "iterations": iterations,
                "regret_percent": regret(policy),
            }
        )
    vi_seconds = next((row["seconds"] for row in rows if row["method"] == "value_iteration"), None)
    for row in rows:
        row["fraction_of_vi_time"] = row["seconds"] / vi_seconds if vi_seconds else None
    results = {
        "model": mdp.name,
        "states": mdp.num_states,
        "actions": mdp.num_actions,
        "discount": mdp.discount,
        "epsilon": solve.epsilon,
        "device": solve.device,
        "optimal_mean_value": float(reference.mean()),
        "build_seconds": build_seconds,
        "reference_seconds": reference_seconds,
        "rows": rows,
    }
    write_json_atomic(run.solve_file, results)
    run.write_snapshot()
    env.close()
    return results
