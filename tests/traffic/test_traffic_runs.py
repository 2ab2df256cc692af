"""Baselines on SUMO from a config, as a user runs them: evaluate, then report."""

import json

import yaml

from ctrlgym.experiment.cli import main


def test_baselines_from_a_config_give_a_report_with_traffic_metrics(tmp_path, capsys):
    config = {
        "name": "tiny_arterial",
        "env": {
            "id": "ctrlgym/TrafficSignalEnv-v0",
            "num_envs": 1,
            "kwargs": {"scenario": "arterial", "cols": 2, "demand": 1200, "num_seconds": 300},
        },
        "agent": None,
        "evaluation": {"episodes": 1},
        "seeds": [0, 1, 2],
        "output_dir": str(tmp_path / "run"),
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["evaluate", str(path), "--no-progress"]) == 0
    policies = json.loads((tmp_path / "run" / "metrics.json").read_text())["evaluation"]["policies"]
    assert set(policies) == {
        "fixed_time",
        "actuated",
        "max_pressure",
        "max_wave",
        "resco_max_pressure",
        "resco_max_wave",
        "random",
    }
    for per_seed in policies.values():
        assert set(per_seed) == {"0", "1", "2"}
        for result in per_seed.values():
            assert {
                "queue_length",
                "waiting_time",
                "travel_time",
                "throughput",
                "mean_speed",
                "delay",
                "insertion_backlog",
            } <= set(result["metrics"])
    assert main(["report", str(path), "-o", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    tables = [block for block in report["blocks"] if block[0] == "table"]
    assert tables and all(len(header) <= 9 for _, header, _ in tables)  # 11-18 metrics split into tables that fit
    assert sum("max_pressure" in [row[0] for row in cells] for _, _, cells in tables) >= 2  # the rest of its metrics
    run = report["data"]["runs"][0]
    assert run["agent"] is None and run["descriptions"]["max_pressure"].startswith("max-pressure")
    assert run["metric_descriptions"]["delay"].startswith("s per vehicle")
    assert {row["policy"] for row in run["rows"]} == set(policies)
    assert main(["train", str(path)]) == 2
    assert "no agent to train" in capsys.readouterr().err
