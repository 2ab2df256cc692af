"""The benchmark report across tasks, as a user builds it: a baselines sweep over the task
parameter on SUMO, agent runs trained on the twin and evaluated on SUMO, one report."""

import pytest
import yaml

from ctrlgym.experiment.cli import main
from ctrlgym.experiment.reports.benchmark import collect_benchmark
from ctrlgym.experiment.runs import RunDirError

TASKS = [2, 3]  # arterials of 2 and 3 lights
KWARGS = {"scenario": "arterial", "demand": 1200, "num_seconds": 300}


def write(tmp_path, name, data):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.fixture(scope="module")
def benchmark_runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("benchmark")
    classics = write(
        tmp_path,
        "classics",
        {
            "name": "classics",
            "env": {"id": "ctrlgym/TrafficSignalEnv-v0", "num_envs": 1, "kwargs": {**KWARGS, "cols": 2}},
            "agent": None,
            "evaluation": {"episodes": 1, "baselines": ["fixed_time", "max_pressure"], "sweep": {"cols": TASKS}},
            "seeds": [0, 1],
            "output_dir": str(tmp_path / "classics"),
        },
    )
    assert main(["evaluate", classics, "--no-progress"]) == 0
    agents = []
    for cols in TASKS:
        agents.append(
            write(
                tmp_path,
                f"nash_{cols}",
                {
                    "name": "nash_dqn",
                    "env": {"id": "ctrlgym/TrafficTwinEnv-v0", "num_envs": 4, "kwargs": {**KWARGS, "cols": cols}},
                    "agent": {
                        "algo": "nash_dqn",
                        "total_timesteps": 240,
                        "checkpoint_every": 240,
                        "hyperparameters": {
                            "learning_starts": 64,
                            "batch_size": 32,
                            "hidden": [16],
                            "payoffs": "pairwise",
                        },
                    },
                    "evaluation": {"episodes": 1, "baselines": []},
                    "seeds": [0, 1],
                    "output_dir": str(tmp_path / f"nash_{cols}"),
                },
            )
        )
        assert main(["train", agents[-1], "--no-progress"]) == 0
    return tmp_path, classics, agents


def test_a_benchmark_report_compares_the_agent_with_every_baseline_per_task(benchmark_runs):
    tmp_path, classics, agents = benchmark_runs
    with pytest.raises(
        RunDirError,
        match=r"no evaluation on ctrlgym/TrafficSignalEnv-v0 yet: run ctrlgym evaluate .* --env ctrlgym/TrafficSignalEnv-v0",
    ):
        collect_benchmark([classics.replace(".yaml", ""), str(tmp_path / "nash_2")], across="cols")
    for config in agents:
        assert main(["evaluate", config, "--env", "TrafficSignalEnv-v0", "--no-progress"]) == 0
    env_id, table = collect_benchmark(
        [str(tmp_path / "classics"), *(str(tmp_path / f"nash_{c}") for c in TASKS)], across="cols"
    )
    assert env_id == "ctrlgym/TrafficSignalEnv-v0" and sorted(table) == ["2", "3"]
    for task in table.values():
        assert set(task) == {"fixed_time", "max_pressure", "nash_dqn"} and task["nash_dqn"].kind == "agent"
        assert task["nash_dqn"].metric("delay").size == 2 and (task["fixed_time"].metric("delay") > 0).all()
        assert len(task["nash_dqn"].train_wall_s) == 2 and all(t > 0 for t in task["nash_dqn"].train_cpu_s)
        assert len(task["max_pressure"].eval_wall_s) == 2
    output = tmp_path / "report"
    assert main(["report", "--benchmark", "--across", "cols", classics, *agents, "-o", str(output)]) == 0
    markdown = (tmp_path / "report.md").read_text()
    assert "| policy | 2 | 3 | P(nash_dqn better), over the tasks both ran |" in markdown
    assert "### cols = 2" in markdown and "### cols = 3" in markdown and "P(nash_dqn better on delay)" in markdown
    assert "- 2: nash_dqn vs the best baseline, " in markdown and "## Cost" in markdown
    assert (
        "<img alt='profile'" in (tmp_path / "report.html").read_text()
    )  # the performance profile, normalised by fixed-time
    assert (
        main(
            ["report", "--benchmark", "--across", "cols", "--reference", "dqn_x", classics, *agents, "-o", str(output)]
        )
        == 2
    )
