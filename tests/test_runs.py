"""Train, evaluate and report from a config, as a user runs them; kill and resume."""

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from stable_baselines3 import PPO

from ctrlgym.errors import UsageError
from ctrlgym.experiment.cli import main
from ctrlgym.experiment.config import load_config
from ctrlgym.experiment.evaluation import evaluate_run
from ctrlgym.experiment.reports.run_report import write_report
from ctrlgym.experiment.runs import RunDirError
from ctrlgym.experiment.training import latest_checkpoint, train
from ctrlgym.registry import get_entry
from ctrlgym.statistics import mean_ci


def tiny_config(tmp_path: Path, name: str = "tiny", total: int = 1024, seeds=(0, 1)) -> Path:
    data = {
        "name": name,
        "env": {"id": "ctrlgym/MultiClassQueue-v0", "num_envs": 8, "kwargs": {"max_episode_steps": 32}},
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
    # the report's numbers, as its JSON keeps them: setup, descriptions, IQM with CIs ranked, the verdict, units
    run = json.loads((tmp_path / "out" / "report.json").read_text())["data"]["runs"][0]
    assert run["agent"] == "ppo" and run["timesteps"] == 1024 and run["seeds"] == [0, 1] and run["episodes"] == 4
    assert run["env_kwargs"] == {"max_episode_steps": 32} and run["hyperparameters"]["n_steps"] == 32
    assert run["descriptions"]["c_mu"] and "holding_cost" in run["metric_descriptions"]
    rows = run["rows"]
    assert {row["policy"] for row in rows} == {"ppo"} | baselines
    assert all(row["low"] <= row["iqm"] <= row["high"] and row["seeds"] == 2 and row["episodes"] == 4 for row in rows)
    assert [row["iqm"] for row in rows] == sorted((row["iqm"] for row in rows), reverse=True)  # best first
    assert run["verdicts"][0] == {"best": rows[0]["policy"], "too_few_seeds": 2}  # 2 seeds tell nothing apart
    # two runs: a table compares them
    second = train(tiny_config(tmp_path, "second", seeds=(5,)), progress=False)
    evaluate_run(second, progress=False)
    write_report([run_dir, second], tmp_path / "both")
    both = (tmp_path / "both.md").read_text()
    assert "## Runs compared" in both and "| tiny | ctrlgym/MultiClassQueue-v0 | ppo | 1,024 |" in both


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
    with pytest.raises(RunDirError, match="nowhere: no such run directory, config file or shipped config"):
        evaluate_run(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="config.yaml is missing"):
        write_report([tmp_path / "empty"], tmp_path / "r")
    assert main(["evaluate", str(tmp_path / "nowhere")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_unknown_config_key_fails_the_cli_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("agent:\n  total_timestep: 10\n")
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "agent.total_timestep: unknown key" in err


@pytest.mark.integration
def test_killed_run_resumes_exactly(tmp_path, capsys, kill_at_a_random_step):
    """Kill PPO at a random step, resume: the same policy, curve and step count as the uninterrupted run, bit for bit."""
    total = 9_000  # 35 rollouts of 256 steps and a last one of 40: the run stops at exactly 9,000
    killed = tiny_config(tmp_path, "killed", total=total, seeds=(0,))
    whole = tiny_config(tmp_path, "whole", total=total, seeds=(0,))
    seed_dir = tmp_path / "killed" / "seed_0"
    steps = kill_at_a_random_step(
        [sys.executable, "-m", "ctrlgym", "train", str(killed), "--no-progress"], seed_dir, total
    )
    (seed_dir / "checkpoints" / "step_1.partial.zip").write_text("left by a kill")
    killed_seconds = torch.load(seed_dir / "checkpoints" / f"trainer_{steps}.pt", weights_only=False)["wall_time_s"]

    train(killed, resume=True, progress=False)
    assert f"seed 0: resumed at step {steps:,}" in capsys.readouterr().out
    train(whole, progress=False)
    resumed, uninterrupted = ((tmp_path / run / "metrics.json") for run in ("killed", "whole"))
    a, b = (json.loads(path.read_text())["training"]["0"] for path in (resumed, uninterrupted))
    assert a["timesteps"] == b["timesteps"] == total
    assert a["learning_curve"] == b["learning_curve"]
    assert 0 < killed_seconds < a["wall_time_s"]  # the killed process's time counts too
    final = [PPO.load(tmp_path / run / "seed_0" / "final_model.zip").policy.state_dict() for run in ("killed", "whole")]
    assert all(torch.equal(final[0][key], final[1][key]) for key in final[1])
    checkpoints = sorted(p.name for p in (seed_dir / "checkpoints").iterdir())
    assert not [name for name in checkpoints if "partial" in name or name.endswith(".tmp")]
    assert [name for name in checkpoints if name.startswith("step_")] == [
        f"step_{total}.zip"
    ]  # finished: only the newest is kept


def test_tensorboard_continues_after_a_resume_without_going_back(tmp_path, kill_at_a_random_step):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config_path = tiny_config(tmp_path, "tb", total=3_072, seeds=(0,))
    seed_dir = tmp_path / "tb" / "seed_0"
    kill_at_a_random_step(
        [sys.executable, "-m", "ctrlgym", "train", str(config_path), "--no-progress"], seed_dir, 3_072
    )
    train(config_path, resume=True, progress=False)
    events = EventAccumulator(str(tmp_path / "tb" / "tensorboard" / "seed_0"))
    events.Reload()
    steps = [event.step for event in events.Scalars("train/loss")]
    assert steps == sorted(set(steps)) and steps[-1] == 3_072


def test_mean_ci_uses_the_t_distribution():
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302653 * 1.0 / 3**0.5, rel=1e-5)
    assert mean_ci([5.0]) == (5.0, 0.0)


def test_cli_lists_registered_envs(capsys):
    assert main(["list"]) == 0
    assert "ctrlgym/MultiClassQueue-v0" in capsys.readouterr().out


def _baselines_only(tmp_path: Path) -> Path:
    data = {
        "name": "baselines",
        "env": {"id": "ctrlgym/MultiClassQueue-v0", "num_envs": 1, "kwargs": {"max_episode_steps": 8}},
        "agent": None,
        "evaluation": {"episodes": 2, "baselines": ["broken", "c_mu"]},
        "seeds": [0],
        "output_dir": str(tmp_path / "baselines"),
    }
    path = tmp_path / "baselines.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _broken_baseline(monkeypatch, error: Exception) -> None:
    from ctrlgym.registry import Baseline

    def broken(env, seed):
        raise error

    monkeypatch.setitem(get_entry("ctrlgym/MultiClassQueue-v0").baselines, "broken", Baseline(broken))


def test_a_baseline_failing_with_a_ctrlgym_error_is_recorded_and_the_others_run(tmp_path, monkeypatch):
    _broken_baseline(monkeypatch, UsageError("this baseline needs another action mode"))
    evaluation = evaluate_run(_baselines_only(tmp_path), progress=False)
    assert evaluation["policies"]["broken"]["0"] == {"failed": "UsageError: this baseline needs another action mode"}
    assert "mean_return" in evaluation["policies"]["c_mu"]["0"]


def test_a_baseline_failing_with_a_bug_stops_evaluate_with_its_traceback(tmp_path, monkeypatch, capsys):
    _broken_baseline(monkeypatch, ZeroDivisionError("a bug in the baseline"))
    with pytest.raises(ZeroDivisionError, match="a bug in the baseline"):
        main(["evaluate", str(_baselines_only(tmp_path)), "--no-progress"])


def test_the_cli_prints_one_line_for_its_own_errors_and_the_traceback_with_debug(tmp_path, capsys):
    config = tiny_config(tmp_path)
    assert main(["train", str(config), "--no-progress", "--seeds", "7"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("ctrlgym: error: seeds [7] are not in the config's seeds [0, 1]") and error.count("\n") == 1
    with pytest.raises(UsageError, match=r"seeds \[7\]"):
        main(["train", str(config), "--no-progress", "--seeds", "7", "--debug"])


def test_a_report_without_output_is_named_after_its_run_and_shows_the_verdict_below_its_table(tmp_path, monkeypatch):
    config = tiny_config(tmp_path, total=256, seeds=(0, 1, 2))
    assert main(["train", str(config), "--no-progress"]) == 0
    assert main(["evaluate", str(config), "--no-progress"]) == 0
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(config)]) == 0
    blocks = json.loads((tmp_path / "reports" / "tiny.json").read_text())["blocks"]
    assert (tmp_path / "reports" / "tiny.html").is_file()
    table = next(i for i, block in enumerate(blocks) if block[0] == "table" and block[1][0] == "policy")
    after = next(block for block in blocks[table + 1 :] if block[0] != "table")
    assert after[0] == "p" and after[1].startswith("Best by IQM: ")  # the verdict right below its table
    assert "Learning curves show" in blocks[2][1]  # the help of the plots this report has
