"""A run directory shared by several processes: different seeds trained and different policies
evaluated at the same time, nothing lost."""

import json
import subprocess
import sys

import pytest
import yaml

from ctrlgym.experiment.runs import read_metrics

pytestmark = pytest.mark.integration  # subprocesses, clusters or a wheel build: `make test`, not `make test-fast`


def config(tmp_path):
    data = {
        "name": "shared",
        "env": {"id": "ctrlgym/MultiClassQueue-v0", "num_envs": 8, "kwargs": {"max_episode_steps": 32}},
        "agent": {
            "total_timesteps": 1024,
            "checkpoint_every": 256,
            "hyperparameters": {"n_steps": 32, "batch_size": 64, "n_epochs": 2},
        },
        "evaluation": {"episodes": 4, "baselines": ["c_mu", "longest_queue", "random"]},
        "seeds": [0, 1, 2],
        "output_dir": str(tmp_path / "run"),
    }
    path = tmp_path / "shared.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run_at_once(*commands):
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "ctrlgym", *command, "--no-progress"], stderr=subprocess.PIPE, text=True
        )
        for command in commands
    ]
    for process in processes:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-2000:]


def test_seeds_and_policies_from_concurrent_processes_all_land(tmp_path):
    path = config(tmp_path)
    run_at_once(["train", str(path), "--seeds", "0"], ["train", str(path), "--seeds", "1,2"])
    metrics = read_metrics(tmp_path / "run")
    assert sorted(metrics["training"]) == ["0", "1", "2"]
    assert all(seed["timesteps"] == 1024 for seed in metrics["training"].values())
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["training"].keys() == metrics["training"].keys()

    run_at_once(
        ["evaluate", str(path), "--policies", "ppo,c_mu"], ["evaluate", str(path), "--policies", "longest_queue,random"]
    )
    evaluation = read_metrics(tmp_path / "run")["evaluation"]
    assert {policy: sorted(per_seed) for policy, per_seed in evaluation["policies"].items()} == {
        policy: ["0", "1", "2"] for policy in ("ppo", "c_mu", "longest_queue", "random")
    }
    snapshot = json.loads((tmp_path / "run" / "metrics.json").read_text())["evaluation"]
    assert snapshot == evaluation  # the last writer's snapshot holds the other's jobs too


def test_a_second_writer_on_the_same_seeds_is_refused(tmp_path, capsys):
    from ctrlgym.experiment.cli import main

    path = config(tmp_path)
    assert main(["train", str(path), "--seeds", "0", "--no-progress"]) == 0
    assert main(["train", str(path), "--seeds", "0", "--no-progress"]) == 2
    assert "already holds a run of seeds [0]" in capsys.readouterr().err
    assert main(["train", str(path), "--seeds", "1", "--no-progress"]) == 0  # untouched seeds: another writer is fine
    assert main(["train", str(path), "--seeds", "7", "--no-progress"]) == 2
    assert "seeds [7] are not in the config's seeds [0, 1, 2]" in capsys.readouterr().err
