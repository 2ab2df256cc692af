"""``ctrlgym solve`` then ``ctrlgym report``, as a user runs them on a small model."""

import json

import pytest
import yaml

from ctrlgym.experiment.cli import main


@pytest.mark.parametrize(
    "env_id, kwargs", [("ctrlgym/MultiClassQueue-v0", {"buffer_size": 3}), ("ctrlgym/RestlessBandit-v0", {})]
)
def test_solve_writes_regret_and_time_per_method_and_report_plots_them(tmp_path, env_id, kwargs, capsys):
    config = {
        "name": "tiny_solve",
        "env": {"id": env_id, "kwargs": kwargs},
        "agent": None,
        "solve": {"periods": [1, 10], "epsilon": 1e-5},
        "output_dir": str(tmp_path / "run"),
    }
    path = tmp_path / "solve.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["solve", str(path), "--no-progress"]) == 0
    solve = json.loads((tmp_path / "run" / "metrics.json").read_text())["solve"]
    methods = [(row["method"], row["period"]) for row in solve["rows"]]
    assert ("value_iteration", None) in methods and ("frozen_state", 1) in methods and ("frozen_state", 10) in methods
    for row in solve["rows"]:
        assert row["seconds"] > 0 and row["regret_percent"] > -1e-6
        if row["method"] in ("value_iteration", "policy_iteration", "modified_policy_iteration") or row["period"] == 1:
            assert row["regret_percent"] < 1e-3  # ε-optimal
    omit = next(row for row in solve["rows"] if row["method"] == "omit_slow_state")
    assert omit["regret_percent"] > 1.0, "ignoring the slow state must cost something on these models"
    assert "frozen_state" in capsys.readouterr().out
    assert main(["report", str(path), "-o", str(tmp_path / "report")]) == 0
    assert "fraction of VI time" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "report.html").read_text().count("data:image/png;base64,") == 1


def test_solve_needs_a_solve_section(tmp_path, capsys):
    path = tmp_path / "no_solve.yaml"
    path.write_text(
        yaml.safe_dump(
            {"env": {"id": "ctrlgym/MultiClassQueue-v0"}, "agent": None, "output_dir": str(tmp_path / "run")}
        )
    )
    assert main(["solve", str(path)]) == 2
    assert "no solve section" in capsys.readouterr().err


def test_unknown_solve_method_is_a_config_error(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"agent": None, "solve": {"methods": ["gradient_descent"]}}))
    assert main(["solve", str(path)]) == 2
    assert "solve.methods.0" in capsys.readouterr().err
