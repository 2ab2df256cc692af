"""ctrlgym tune: an Optuna study over a config's tune section, resumable, with pruning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ctrlgym.experiment.cli import main
from ctrlgym.experiment.config import load_config

optuna = pytest.importorskip("optuna")


def tiny(tmp_path: Path, **tune) -> Path:
    data = {
        "name": "tiny",
        "env": {"id": "ctrlgym/MultiClassQueue-v0", "num_envs": 8, "kwargs": {"max_episode_steps": 16}},
        "agent": {
            "total_timesteps": 128,
            "checkpoint_every": 128,
            "hyperparameters": {"n_steps": 16, "batch_size": 64},
        },
        "evaluation": {"episodes": 2, "baselines": []},
        "seeds": [0, 1],
        "output_dir": str(tmp_path / "run"),
        "tune": {
            "trials": 2,
            "space": {
                "agent.hyperparameters.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
                "agent.hyperparameters.n_epochs": {"type": "categorical", "choices": [1, 2]},
            },
            **tune,
        },
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_four_trial_study_resumes_and_writes_the_best_config(tmp_path, capsys):
    path = tiny(tmp_path)
    assert main(["tune", str(path), "--no-progress"]) == 0  # tune.trials: 2
    first = json.loads((tmp_path / "run" / "tune" / "trials.json").read_text())
    assert [t["number"] for t in first] == [0, 1]
    assert main(["tune", str(path), "--no-progress", "--trials", "4"]) == 0  # the same study, two more trials
    trials = json.loads((tmp_path / "run" / "tune" / "trials.json").read_text())
    assert [t["number"] for t in trials] == [0, 1, 2, 3] and trials[:2] == first  # the first two kept as they were
    for trial in trials:
        assert 1e-4 <= trial["params"]["agent.hyperparameters.learning_rate"] <= 1e-2
        assert trial["params"]["agent.hyperparameters.n_epochs"] in (1, 2)
        assert trial["state"] in ("COMPLETE", "PRUNED")
        if trial["state"] == "COMPLETE":  # the mean over the tune seeds of the agent's evaluation return
            run = tmp_path / "run" / "tune" / f"trial_{trial['number']}"
            per_seed = json.loads((run / "metrics.json").read_text())["evaluation"]["policies"]["ppo"]
            assert trial["value"] == pytest.approx(sum(r["mean_return"] for r in per_seed.values()) / 2)
            stored = load_config(tmp_path / "run" / "tune" / f"trial_{trial['number']}" / "config.yaml")
            assert stored.trained_agent.hyperparameters["n_epochs"] == trial["params"]["agent.hyperparameters.n_epochs"]
    out = capsys.readouterr().out
    best = load_config(tmp_path / "run" / "tune" / "best.yaml")
    completed = [t for t in trials if t["state"] == "COMPLETE"]
    winner = max(completed, key=lambda t: t["value"])  # MultiClassQueue's headline: the return, higher is better
    assert (
        best.trained_agent.hyperparameters["learning_rate"] == winner["params"]["agent.hyperparameters.learning_rate"]
    )
    assert f"best: trial {winner['number']}" in out and best.tune is None and best.output_dir == str(tmp_path / "run")


def test_a_search_key_that_is_not_in_the_config_is_one_clear_error(tmp_path, capsys):
    path = tiny(tmp_path, space={"agent.hyperparameters.learning_rte": {"type": "float", "low": 0.1, "high": 0.2}})
    assert main(["tune", str(path), "--no-progress"]) == 2
    assert "did you mean 'learning_rate'?" in capsys.readouterr().err
    path = tiny(tmp_path, space={"agent.hyperparameters.learning_rate": {"type": "float", "low": 0.2, "high": 0.1}})
    assert main(["tune", str(path), "--no-progress"]) == 2
    assert "needs low < high" in capsys.readouterr().err


@pytest.mark.integration
def test_trials_run_as_ray_tasks(tmp_path, capsys):
    pytest.importorskip("ray")
    import ray

    path = tiny(tmp_path)
    try:
        assert main(["tune", str(path), "--no-progress", "--executor", "ray"]) == 0
    finally:
        ray.shutdown()
    trials = json.loads((tmp_path / "run" / "tune" / "trials.json").read_text())
    assert [t["state"] for t in trials] == ["COMPLETE", "COMPLETE"]  # no pruning on Ray: every task runs to its end
    for trial in trials:
        per_seed = json.loads((tmp_path / "run" / "tune" / f"trial_{trial['number']}" / "metrics.json").read_text())
        returns = [r["mean_return"] for r in per_seed["evaluation"]["policies"]["ppo"].values()]
        assert trial["value"] == pytest.approx(sum(returns) / len(returns))
