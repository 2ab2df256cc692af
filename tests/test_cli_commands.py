"""What an RL Zoo user expects of the command line: overrides, shipped configs to copy, a trained
agent to load in Python and to watch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

import ctrlgym
from ctrlgym.experiment.cli import main
from ctrlgym.experiment.config import load_config


def tiny(tmp_path: Path) -> Path:
    data = {
        "name": "tiny",
        "env": {"id": "ctrlgym/MultiClassQueue-v0", "num_envs": 8, "kwargs": {"max_episode_steps": 16}},
        "agent": {
            "total_timesteps": 256,
            "checkpoint_every": 128,
            "hyperparameters": {"n_steps": 16, "batch_size": 64},
        },
        "evaluation": {"episodes": 2, "baselines": ["c_mu"]},
        "seeds": [0],
        "output_dir": str(tmp_path / "run"),
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_set_overrides_are_validated_and_kept_in_the_runs_config(tmp_path, capsys):
    path = tiny(tmp_path)
    argv = [
        "train",
        str(path),
        "--no-progress",
        "--set",
        "agent.total_timesteps=128",
        "--set",
        "env.kwargs.max_episode_steps=8",
    ]
    assert main(argv) == 0
    stored = load_config(tmp_path / "run" / "config.yaml")
    assert stored.trained_agent.total_timesteps == 128 and stored.env.kwargs["max_episode_steps"] == 8
    assert json.loads((tmp_path / "run" / "seed_0" / "training.json").read_text())["timesteps"] == 128
    assert (
        main(
            [
                "evaluate",
                str(path),
                "--no-progress",
                "--set",
                "agent.total_timesteps=128",
                "--set",
                "env.kwargs.max_episode_steps=8",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["train", str(path), "--no-progress", "--set", "agent.total_timestep=1"]) == 2
    error = capsys.readouterr().err
    assert "with --set agent.total_timestep=1" in error and "did you mean 'total_timesteps'?" in error
    assert main(["train", str(path), "--set", "no_equals_sign"]) == 2
    assert "expected KEY.PATH=VALUE" in capsys.readouterr().err


def test_configs_show_and_copy_a_shipped_config(tmp_path, capsys):
    assert main(["configs", "show", "quickstart/ppo_multiclass_queue_tiny"]) == 0
    shown = capsys.readouterr().out
    assert yaml.safe_load(shown)["env"]["id"] == "ctrlgym/MultiClassQueue-v0"
    assert main(["configs", "copy", "quickstart/ppo_multiclass_queue_tiny", str(tmp_path)]) == 0
    copied = tmp_path / "ppo_multiclass_queue_tiny.yaml"
    assert copied.read_text() == shown and load_config(copied).name == "ppo_multiclass_queue_tiny"
    assert (
        main(["configs", "copy", "quickstart/ppo_multiclass_queue_tiny", str(tmp_path)]) == 2
    )  # kept, not overwritten
    assert "exists already" in capsys.readouterr().err
    assert main(["configs", "show", "no/such_config"]) == 2


def test_ctrlgym_load_gives_the_trained_agent_acting_as_evaluate_saw_it(tmp_path, capsys):
    path = tiny(tmp_path)
    assert main(["train", str(path), "--no-progress"]) == 0
    policy = ctrlgym.load(tmp_path / "run")
    env = policy.make_env(num_envs=4)
    observations, _ = env.reset(seed=3)
    actions = policy(observations)
    assert actions.shape == (4,) and actions.dtype in (torch.int64, torch.int32)
    assert torch.equal(actions, policy(observations))  # greedy: deterministic
    assert "seed 0" in repr(policy) and "final_model.zip" in repr(policy)
    with pytest.raises(ValueError, match="seed 7 is not among the run's seeds"):
        ctrlgym.load(tmp_path / "run", seed=7)
    assert main(["enjoy", str(tmp_path / "run"), "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "episode 0: return" in out and "episode 1: return" in out and "holding_cost" in out
    assert main(["enjoy", str(tmp_path / "run"), "--gui"]) == 2
    assert "has no GUI" in capsys.readouterr().err


def test_configs_lists_the_shipped_configs_by_family_and_survives_a_closed_pipe():
    import subprocess
    import sys

    command = [sys.executable, "-m", "ctrlgym", "configs"]
    listing = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    lines = listing.splitlines()
    families = [line for line in lines if line.endswith(":") and not line.startswith(" ")]
    assert families == sorted(families) and {"fastslow:", "traffic:", "mixup:", "beamforming:"} <= set(families)
    assert any(line.startswith("  fastslow/ppo_multiclass_queue ") for line in lines)
    piped = subprocess.run(f"{sys.executable} -m ctrlgym configs | head -1", shell=True, capture_output=True, text=True)
    assert piped.stdout.strip() == lines[0] and "Traceback" not in piped.stderr
