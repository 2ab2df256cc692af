"""Every way a new user got stuck is one clear, one-line error (or no longer a dead end)."""

import re
from pathlib import Path

import pytest
import torch
import yaml

from ctrlgym.experiment.cli import build_parser, main
from ctrlgym.experiment.config import ConfigError, load_config
from ctrlgym.experiment.training import train

QUEUE = "ctrlgym/MultiClassQueue-v0"


def write(tmp_path: Path, data, name: str = "experiment.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def tiny(tmp_path: Path, **env_kwargs) -> dict:
    return {
        "name": "tiny",
        "env": {"id": QUEUE, "num_envs": 8, "kwargs": {"max_episode_steps": 16, **env_kwargs}},
        "agent": {
            "total_timesteps": 256,
            "checkpoint_every": 128,
            "hyperparameters": {"n_steps": 16, "batch_size": 64, "n_epochs": 1},
        },
        "evaluation": {"episodes": 2},
        "seeds": [0],
        "output_dir": str(tmp_path / "run"),
    }


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def test_a_run_that_failed_at_start_can_be_started_again_and_overwritten(tmp_path, capsys):
    path = write(tmp_path, tiny(tmp_path, arrival_probs=[0.1, 0.2]))  # the env rejects it at construction
    err = one_line_error(capsys, ["train", str(path), "--no-progress"])
    assert f"{path}: env.kwargs: MultiClassQueue: arrival_probs has 2 entries but service_probs 3" in err
    assert (tmp_path / "run" / "config.yaml").is_file()  # left behind, as before
    path = write(tmp_path, tiny(tmp_path))  # fixed: the same command now trains
    assert main(["train", str(path), "--no-progress"]) == 0
    assert "--overwrite" in one_line_error(capsys, ["train", str(path), "--no-progress"])
    assert main(["train", str(path), "--no-progress", "--overwrite"]) == 0
    changed = write(tmp_path, {**tiny(tmp_path), "seeds": [0, 1]})
    err = one_line_error(capsys, ["train", str(changed), "--resume", "--no-progress"])
    assert "seeds differ" in err and "--overwrite" in err


def test_an_empty_config_or_one_without_env_id_is_an_error(tmp_path, capsys):
    assert "the config is empty; it needs at least env.id" in one_line_error(
        capsys, ["train", str(write(tmp_path, ""))]
    )
    no_env = write(tmp_path, {"name": "x", "output_dir": str(tmp_path / "x")})
    assert "env.id: missing" in one_line_error(capsys, ["train", str(no_env)])
    assert not (tmp_path / "x").exists() and not Path("runs/ppo_multiclass_queue").exists()


@pytest.mark.parametrize(
    "change, where",
    [
        (
            {"agent": {"algo": "dqn", "total_timesteps": 256, "hyperparameters": {"buffer_size": "ten"}}},
            "agent.hyperparameters.buffer_size: Input should be a valid integer",
        ),
        (
            {"agent": {"hyperparameters": {"n_steps": "many"}}},
            "agent.hyperparameters.n_steps: Input should be a valid integer",
        ),
        (
            {"env": {"id": QUEUE, "kwargs": {"switch_prob": "often"}}},
            "env.kwargs.switch_prob: Input should be a valid number",
        ),
        ({"evaluation": {"baselines": ["oracle"]}}, "evaluation.baselines: unknown baseline 'oracle'"),
        (
            {"evaluation": {"sweep": {"switch_prob": [0.1, "high"]}}},
            "evaluation.sweep.switch_prob: Input should be a valid number",
        ),
        ({"agent": {"total_timesteps": 100}}, "agent.total_timesteps: 100 is not a multiple of env.num_envs=16"),
    ],
)
def test_config_value_errors_name_the_file_and_the_key(tmp_path, change, where):
    data = {"env": {"id": QUEUE}, **change}
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and where in message and "\n" not in message


def test_env_ids_resolve_without_the_prefix_and_unknown_ones_are_named(capsys):
    assert main(["check", "MultiClassQueue-v0", "--num-envs", "2"]) == 0
    assert "gymnasium check_env         ok" in capsys.readouterr().out
    err = one_line_error(capsys, ["check", "NoSuchEnv-v0"])
    assert "unknown environment 'NoSuchEnv-v0'" in err and "ctrlgym/MultiClassQueue-v0" in err


def test_a_malformed_network_is_a_scenario_error_naming_the_file(tmp_path):
    pytest.importorskip("sumolib", reason="the traffic envs need ctrlgym[traffic]")
    from ctrlgym.envs.traffic.network import SignalNetwork
    from ctrlgym.envs.traffic.scenarios import ScenarioError

    garbage = tmp_path / "garbage.net.xml"
    garbage.write_text("<net>\n<edge id='a'/>\n</net>\n")  # XML with a <net> root, not a network sumolib can read
    with pytest.raises(ScenarioError, match=rf"{garbage}: not a readable SUMO network \(KeyError: 'version'\)"):
        SignalNetwork(garbage)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch without CUDA")
def test_cuda_without_cuda_names_the_key(tmp_path, capsys):
    env_on_cuda = write(tmp_path, {**tiny(tmp_path), "env": {**tiny(tmp_path)["env"], "device": "cuda"}})
    err = one_line_error(capsys, ["train", str(env_on_cuda), "--no-progress"])
    assert (
        f"{env_on_cuda}: env.device: device 'cuda' is not available: torch {torch.__version__}" in err
        and "use device='cpu'" in err
    )
    agent_on_cuda = write(tmp_path, {**tiny(tmp_path), "agent": {**tiny(tmp_path)["agent"], "device": "cuda:0"}})
    assert "agent.device: device 'cuda:0' is not available" in one_line_error(
        capsys, ["train", str(agent_on_cuda), "--overwrite"]
    )


@pytest.mark.parametrize(
    "command",
    [
        ["configs"],
        ["list"],
        ["check", "x"],
        ["train", "c"],
        ["evaluate", "r"],
        ["solve", "c"],
        ["report", "r"],
        ["demo"],
    ],
)
def test_every_command_takes_the_common_flags(command):
    args = build_parser().parse_args([*command, "--no-progress", "--threads", "2"])
    assert args.no_progress and args.threads == 2


def test_solve_on_a_missing_config_says_the_config_is_missing(tmp_path, capsys):
    err = one_line_error(capsys, ["solve", str(tmp_path / "missing.yaml")])
    assert "missing.yaml: config file not found" in err and "train first" not in err


def test_train_on_a_shipped_name_and_a_run_dir_name_that_is_neither(tmp_path, capsys):
    err = one_line_error(capsys, ["report", str(tmp_path / "nothing")])
    assert "no such run directory, config file or shipped config" in err
    run_dir = train(write(tmp_path, tiny(tmp_path)), progress=False)
    assert (run_dir / "seed_0" / "final_model.zip").is_file()


# ------------------------------------------------------------------ runs that never dead-end
def test_a_corrupt_newest_checkpoint_resumes_from_the_previous_one_exactly(tmp_path, monkeypatch, capsys):
    import json

    from ctrlgym.experiment import sb3_training

    data = {**tiny(tmp_path), "agent": {**tiny(tmp_path)["agent"], "total_timesteps": 768}}
    whole = train(write(tmp_path, {**data, "output_dir": str(tmp_path / "whole")}, "whole.yaml"), progress=False)
    saves = {"count": 0}
    original = sb3_training._CheckpointAndCurve.save_checkpoint

    def save_then_stop(self):
        original(self)
        saves["count"] += 1
        if saves["count"] == 3:  # checkpoints at 128, 256, 384: 256 and 384 kept
            raise KeyboardInterrupt

    monkeypatch.setattr(sb3_training._CheckpointAndCurve, "save_checkpoint", save_then_stop)
    path = write(tmp_path, data)
    with pytest.raises(KeyboardInterrupt):
        train(path, progress=False)
    monkeypatch.setattr(sb3_training._CheckpointAndCurve, "save_checkpoint", original)
    folder = tmp_path / "run" / "seed_0" / "checkpoints"
    newest = max(folder.glob("step_*.zip"), key=lambda p: int(p.stem.split("_")[1]))
    newest.write_bytes(newest.read_bytes()[:100])  # a truncated model file
    capsys.readouterr()
    train(path, resume=True, progress=False)
    said = capsys.readouterr().out
    assert f"{newest}: unreadable" in said and "resuming from the one at step 256" in said
    assert (folder / "corrupt" / newest.name).is_file()
    curve = lambda run: json.loads((run / "seed_0" / "training.json").read_text())["learning_curve"]  # noqa: E731
    assert curve(tmp_path / "run") == curve(whole)  # resumed from 256, it ends as the uninterrupted run


def test_garbage_trainer_state_and_learning_curve_are_named_and_skipped(tmp_path, capsys):
    from ctrlgym.experiment.checkpoints import open_checkpoints
    from ctrlgym.experiment.runs import RunDir

    run = train(write(tmp_path, tiny(tmp_path)), progress=False)
    folder = run / "seed_0" / "checkpoints"
    (folder / "trainer_256.pt").write_bytes(b"not a pickle")
    _, found = open_checkpoints(RunDir.open(run), 0)
    assert found is None  # the only checkpoint is unreadable: the seed would start again
    assert "trainer_256.pt: unreadable (UnpicklingError" in capsys.readouterr().out


def test_an_evaluate_config_the_env_rejects_leaves_nothing_and_can_be_fixed_and_rerun(tmp_path, capsys):
    data = {**tiny(tmp_path, no_such_option=1), "agent": None}
    path = write(tmp_path, data)
    assert "env.kwargs" in one_line_error(capsys, ["evaluate", str(path), "--no-progress"])
    assert not (tmp_path / "run").exists()  # nothing to delete by hand
    data["env"]["kwargs"].pop("no_such_option")
    write(tmp_path, data)
    assert main(["evaluate", str(path), "--no-progress"]) == 0
    data["env"]["kwargs"]["max_episode_steps"] = 8  # another experiment in the same output_dir
    write(tmp_path, data)
    assert "pass --overwrite" in one_line_error(capsys, ["evaluate", str(path), "--no-progress"])
    assert main(["evaluate", str(path), "--no-progress", "--overwrite"]) == 0
    assert load_config(tmp_path / "run" / "config.yaml").env.kwargs["max_episode_steps"] == 8


def test_overwrite_with_an_unreachable_ray_cluster_keeps_the_old_run(tmp_path, capsys):
    import time

    pytest.importorskip("ray")
    path = write(tmp_path, tiny(tmp_path))
    run = train(path, progress=False)
    started = time.perf_counter()
    argv = ["train", str(path), "--overwrite", "--executor", "ray", "--address", "127.0.0.1:9", "--no-progress"]
    assert "no Ray cluster answers there" in one_line_error(capsys, argv)
    assert time.perf_counter() - started < 15
    assert (run / "seed_0" / "final_model.zip").is_file() and (run / "config.yaml").is_file()


def test_a_final_model_that_does_not_load_fails_its_job_and_evaluate_exits_non_zero(tmp_path, capsys):
    run = train(write(tmp_path, tiny(tmp_path)), progress=False)
    (run / "seed_0" / "final_model.zip").write_bytes(b"PK\x03\x04 truncated")
    assert main(["evaluate", str(run), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "ppo              FAILED on seed 0: SavedAgentError:" in out and "final_model.zip" in out


@pytest.mark.parametrize("seeds", [[0], [0, 1, 2, 3, 4]])
def test_the_console_summary_shows_the_reports_numbers(tmp_path, capsys, seeds):
    import json
    import re

    data = {**tiny(tmp_path), "agent": None, "seeds": seeds}
    data["evaluation"] = {"episodes": 2, "baselines": ["c_mu", "random"]}
    path = write(tmp_path, data)
    assert main(["evaluate", str(path), "--no-progress"]) == 0
    console = capsys.readouterr().out
    assert main(["report", str(path), "-o", str(tmp_path / "report")]) == 0
    rows = json.loads((tmp_path / "report.json").read_text())["data"]["runs"][0]["rows"]
    for row in rows:
        line = next(line for line in console.splitlines() if line.startswith(row["policy"] + " "))
        shown = re.search(r"return (\S+) (\[(\S+), (\S+)\]|\(n too small)", line)
        assert float(shown.group(1)) == pytest.approx(row["iqm"], rel=1e-3)
        if len(seeds) < 3:
            assert shown.group(2) == "(n too small" and "cannot tell the policies apart" in console
        else:
            assert float(shown.group(3)) == pytest.approx(row["low"], rel=1e-3)
            assert float(shown.group(4)) == pytest.approx(row["high"], rel=1e-3)
    assert ("Best by IQM" in console) == (len(seeds) >= 3)
    verdict = json.loads((tmp_path / "report.json").read_text())["data"]["runs"][0]["verdicts"][0]
    if len(seeds) >= 3:
        assert verdict["best"] == rows[0]["policy"] and set(verdict["tied"]) <= {row["policy"] for row in rows[1:]}
        for other, (point, low, high) in verdict["p_best_better"].items():
            assert other in {row["policy"] for row in rows[1:4]} and 0 <= low <= point <= high <= 1


@pytest.mark.integration
def test_ctrl_c_stops_training_with_exit_130_and_the_resume_command(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    data = {**tiny(tmp_path), "agent": {**tiny(tmp_path)["agent"], "total_timesteps": 200_000}}
    path = write(tmp_path, data)
    # `python -m ctrlgym train ...` with Python's Ctrl-C handler installed, even when the suite runs as a
    # background job (whose children inherit an ignored SIGINT, so Python would install none)
    child = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv = ['ctrlgym', *sys.argv[1:]]; runpy.run_module('ctrlgym', run_name='__main__')"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", child, "train", str(path), "--no-progress"], stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    from ctrlgym.experiment.runs import latest_checkpoint

    while latest_checkpoint(tmp_path / "run" / "seed_0") is None:  # a complete checkpoint (not a .partial file)
        assert process.poll() is None and time.time() < deadline
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert re.search(r"seed 0 at step [\d,]+ \(newest checkpoints\)\. Continue with: ctrlgym train .* --resume", err)
