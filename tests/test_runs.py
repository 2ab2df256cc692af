"""Train, evaluate and report from a config, as a user runs them; kill and resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ctrlgym.cli import main
from ctrlgym.config import load_config
from ctrlgym.evaluation import evaluate_run
from ctrlgym.registry import get_entry
from ctrlgym.report import mean_ci, write_report
from ctrlgym.runs import RunDirError
from ctrlgym.training import latest_checkpoint, train


def tiny_config(tmp_path: Path, name: str = "tiny", total: int = 1024, seeds=(0, 1)) -> Path:
    data = {
        "name": name,
        "env": {"num_envs": 8, "kwargs": {"max_episode_steps": 32}},
        "agent": {
            "total_timesteps": total,
            "checkpoint_every": 256,
            "hyperparameters": {"n_steps": 32, "batch_size": 64, "n_epochs": 2},
        },
        "evaluation": {"episodes": 4},
        "seeds": list(seeds),
        "output_dir": str(tmp_path / name),
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_train_evaluate_report_end_to_end(tmp_path, capsys):
    config_path = tiny_config(tmp_path)
    assert main(["train", str(config_path), "--no-progress"]) == 0
    run_dir = tmp_path / "tiny"
    for seed in (0, 1):
        assert (run_dir / f"seed_{seed}" / "final_model.zip").is_file()
        assert latest_checkpoint(run_dir / f"seed_{seed}")[0] >= 1024
    assert any((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert load_config(run_dir / "config.yaml") == load_config(config_path)

    assert main(["evaluate", str(run_dir), "--no-progress"]) == 0
    evaluation = json.loads((run_dir / "metrics.json").read_text())["evaluation"]
    baselines = set(get_entry("ctrlgym/MultiClassQueue-v0").baselines)
    assert {"c_mu", "longest_queue", "random", "optimal", "frozen_state", "omit_slow_state"} <= baselines
    assert set(evaluation["policies"]) == {"ppo"} | baselines
    assert all(set(per_seed) == {"0", "1"} for per_seed in evaluation["policies"].values())

    assert main(["report", str(run_dir), "-o", str(tmp_path / "out" / "report")]) == 0
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "src='http" not in page
    markdown = (tmp_path / "out" / "report.md").read_text()
    for policy in ("ppo", *baselines):
        assert f"| {policy} |" in markdown
    assert "report.html" in capsys.readouterr().out


def test_training_twice_with_the_same_seed_gives_the_same_result(tmp_path):
    first = train(tiny_config(tmp_path, "a", seeds=(3,)), progress=False)
    second = train(tiny_config(tmp_path, "b", seeds=(3,)), progress=False)
    curve = lambda run: json.loads((run / "metrics.json").read_text())["training"]["3"]["learning_curve"]  # noqa: E731
    assert curve(first) == curve(second) and len(curve(first)) > 0


def test_starting_over_an_existing_run_needs_resume(tmp_path):
    config_path = tiny_config(tmp_path, total=256, seeds=(0,))
    train(config_path, progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train(config_path, progress=False)
    train(config_path, resume=True, progress=False)  # a finished run resumes to a no-op


def test_missing_run_dir_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(RunDirError, match="does not exist"):
        evaluate_run(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="config.yaml is missing"):
        write_report([tmp_path / "empty"], tmp_path / "r")
    assert main(["evaluate", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unknown_config_key_fails_the_cli_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("agent:\n  total_timestep: 10\n")
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "agent.total_timestep: unknown key" in err


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    config_path = tiny_config(tmp_path, "killed", total=40_000, seeds=(0,))
    seed_dir = tmp_path / "killed" / "seed_0"
    process = subprocess.Popen([sys.executable, "-m", "ctrlgym", "train", str(config_path), "--no-progress"], start_new_session=True)
    deadline = time.time() + 120
    while latest_checkpoint(seed_dir) is None or latest_checkpoint(seed_dir)[0] < 1024:
        assert process.poll() is None, "training ended before it could be killed"
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (seed_dir / "final_model.zip").exists()
    steps, _ = latest_checkpoint(seed_dir)
    saved_curve = json.loads((seed_dir / "checkpoints" / f"learning_curve_{steps}.json").read_text())

    train(config_path, resume=True, progress=False)
    training = json.loads((tmp_path / "killed" / "metrics.json").read_text())["training"]["0"]
    assert training["timesteps"] >= 40_000
    assert training["learning_curve"][: len(saved_curve)] == saved_curve
    assert len(training["learning_curve"]) > len(saved_curve)


def test_mean_ci_uses_the_t_distribution():
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302653 * 1.0 / 3**0.5, rel=1e-5)
    assert mean_ci([5.0]) == (5.0, 0.0)


def test_cli_lists_registered_envs(capsys):
    assert main(["list"]) == 0
    assert "ctrlgym/MultiClassQueue-v0" in capsys.readouterr().out
