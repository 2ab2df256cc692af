"""Envs and agents from outside ctrlgym: named in a config as ``package.module:Class``, or
registered by an installed package through the entry-point groups ``ctrlgym.envs`` and
``ctrlgym.algorithms``. The package is ``tests/plugin_package/ctrlgym_example_plugin``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ctrlgym.experiment.config import ConfigError, parse_config
from ctrlgym.experiment.evaluation import evaluate_run
from ctrlgym.experiment.training import train

PLUGIN_ROOT = Path(__file__).parent / "plugin_package"
LENGTH = 8  # MatchingEnv's episode: a perfect agent earns 8


def _config(tmp_path: Path, env_id: str, algo: str) -> dict:
    return {
        "name": "plugin",
        "env": {"id": env_id, "num_envs": 8},
        "agent": {"algo": algo, "total_timesteps": 1600, "checkpoint_every": 800},
        "evaluation": {"episodes": 4},
        "seeds": [0],
        "output_dir": str(tmp_path / "runs" / "plugin"),
    }


@pytest.fixture
def plugin_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN_ROOT))


def test_a_config_trains_and_evaluates_an_env_and_agent_named_by_module_and_class(tmp_path, plugin_on_path):
    config = parse_config(
        _config(tmp_path, "ctrlgym_example_plugin:MatchingEnv", "ctrlgym_example_plugin:TabularAgent")
    )
    run_dir = train(config, progress=False)
    evaluation = evaluate_run(run_dir, progress=False)
    agent = evaluation["policies"]["ctrlgym_example_plugin:TabularAgent"]["0"]
    assert agent["mean_return"] >= 0.9 * LENGTH  # random actions earn a third of it
    assert (run_dir / "seed_0" / "final_model.pt").is_file()


def test_a_module_path_that_is_not_an_env_or_agent_is_one_clear_error(tmp_path, plugin_on_path):
    with pytest.raises(ConfigError, match="not a subclass of ctrlgym.TorchVectorEnv"):
        parse_config(_config(tmp_path, "ctrlgym_example_plugin:TabularAgent", "dqn"))
    with pytest.raises(ConfigError, match="lacks learn, save, load, set_last_observation"):
        parse_config(_config(tmp_path, "ctrlgym_example_plugin:MatchingEnv", "ctrlgym_example_plugin:MatchingEnv"))
    with pytest.raises(ConfigError, match="cannot import it"):
        parse_config(_config(tmp_path, "ctrlgym_example_plugin.missing:MatchingEnv", "dqn"))


def _installed_plugin(root: Path) -> Path:
    """A site folder holding the example package and its distribution metadata with entry points, as pip leaves them."""
    site = root / "site"
    (site / "ctrlgym_example_plugin").mkdir(parents=True)
    source = PLUGIN_ROOT / "ctrlgym_example_plugin" / "__init__.py"
    (site / "ctrlgym_example_plugin" / "__init__.py").write_text(source.read_text())
    dist_info = site / "ctrlgym_example_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: ctrlgym-example-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(
        "[ctrlgym.envs]\nexample/Matching-v0 = ctrlgym_example_plugin:MatchingEnv\n\n"
        "[ctrlgym.algorithms]\ntabular = ctrlgym_example_plugin:TabularAgent\n"
    )
    return site


@pytest.mark.integration
def test_an_installed_package_registers_its_env_and_agent_through_entry_points(tmp_path):
    site = _installed_plugin(tmp_path)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    listing = subprocess.run(
        [sys.executable, "-m", "ctrlgym", "list"], capture_output=True, text=True, env=environment, check=True
    )
    assert "example/Matching-v0" in listing.stdout and "ctrlgym-example-plugin" in listing.stdout
    config = tmp_path / "plugin.yaml"
    config.write_text(yaml.safe_dump(_config(tmp_path, "example/Matching-v0", "tabular")))
    for command in ("train", "evaluate"):
        subprocess.run(
            [sys.executable, "-m", "ctrlgym", command, str(config), "--no-progress"],
            env=environment,
            check=True,
            timeout=300,
        )
    metrics = json.loads((tmp_path / "runs" / "plugin" / "metrics.json").read_text())
    assert metrics["evaluation"]["env"] == "example/Matching-v0"
    assert metrics["evaluation"]["policies"]["tabular"]["0"]["mean_return"] >= 0.9 * LENGTH
