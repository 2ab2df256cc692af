"""`--executor ray`: every job as a Ray task on a local Ray, writing the same run directory as a local run."""

import json
import subprocess
import sys

import pytest
import torch
import yaml
from stable_baselines3 import PPO

from ctrlgym.experiment.evaluation import evaluate_run
from ctrlgym.experiment.training import train

pytest.importorskip("ray", reason="the Ray executor needs ctrlgym[ray]")


pytestmark = pytest.mark.integration  # subprocesses, clusters or a wheel build: `make test`, not `make test-fast`


def config(tmp_path, name):
    data = {
        "name": name,
        "env": {"id": "ctrlgym/MultiClassQueue-v0", "num_envs": 8, "kwargs": {"max_episode_steps": 32}},
        "agent": {
            "total_timesteps": 1024,
            "checkpoint_every": 256,
            "hyperparameters": {"n_steps": 32, "batch_size": 64, "n_epochs": 2},
        },
        "evaluation": {"episodes": 4, "baselines": ["c_mu", "random"]},
        "seeds": [0, 1],
        "output_dir": name,  # relative: the executor makes it absolute for the workers
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def ctrlgym(tmp_path, *args):
    result = subprocess.run(
        [sys.executable, "-m", "ctrlgym", *args, "--no-progress"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_ray_runs_train_and_evaluate_as_a_local_run_does(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # output_dir is relative
    on_ray, local = config(tmp_path, "on_ray"), config(tmp_path, "local")
    ctrlgym(tmp_path, "train", str(on_ray), "--executor", "ray")
    ctrlgym(tmp_path, "evaluate", str(on_ray), "--executor", "ray")
    train(local, progress=False)  # the local run in this process: only the Ray run needs the command line
    evaluate_run(tmp_path / "local", progress=False)
    ray_metrics, local_metrics = (
        json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("on_ray", "local")
    )
    for seed in ("0", "1"):
        for key in ("timesteps", "learning_curve"):
            assert ray_metrics["training"][seed][key] == local_metrics["training"][seed][key]

    def untimed(policies):
        return {
            p: {s: {k: v for k, v in r.items() if k != "wall_time_s"} for s, r in seeds.items()}
            for p, seeds in policies.items()
        }

    assert untimed(ray_metrics["evaluation"]["policies"]) == untimed(
        local_metrics["evaluation"]["policies"]
    )  # same seeds, same results
    assert all(r["wall_time_s"] > 0 for seeds in ray_metrics["evaluation"]["policies"].values() for r in seeds.values())
    models = [
        PPO.load(tmp_path / run / "seed_1" / "final_model.zip").policy.state_dict() for run in ("on_ray", "local")
    ]
    assert all(torch.equal(models[0][key], models[1][key]) for key in models[1])
