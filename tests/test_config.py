"""Experiment configs: every shipped YAML validates; bad ones fail in one line naming the key."""

from pathlib import Path

import pytest
import yaml

from ctrlgym import registry
from ctrlgym.experiment.config import ConfigError, ExperimentConfig, load_config
from ctrlgym.registry import EnvUnavailableError, get_entry

ROOT = Path(__file__).parents[1]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml")) + sorted(
    (ROOT / "experiments").rglob("*.yaml")
)  # shipped + research


def test_shipped_configs_exist():
    assert CONFIGS, "configs/ should hold at least one experiment"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_validates(path):
    env_id = yaml.safe_load(path.read_text())["env"]["id"]
    try:
        get_entry(env_id)
    except EnvUnavailableError as error:
        pytest.skip(str(error))
    assert isinstance(load_config(path), ExperimentConfig)


def test_env_of_a_missing_extra_names_the_extra(tmp_path, monkeypatch):
    entry = registry.EnvEntry(
        "ctrlgym/FutureEnv-v0",
        "future",
        "-",
        "future_simulator.env:FutureEnv",
        requires=("future_simulator",),
        extra="future",
    )
    monkeypatch.setitem(registry._REGISTRY, entry.env_id, entry)
    with pytest.raises(ConfigError, match=r"needs future_simulator: pip install 'ctrlgym\[future\]'"):
        load_config(_write(tmp_path, {"env": {"id": "ctrlgym/FutureEnv-v0"}}))


def _write(tmp_path, data) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "data, where",
    [
        ({"seed": [0]}, "seed: unknown key 'seed'; did you mean 'seeds'?"),
        ({"env": {"num_env": 4}}, "env.num_env: unknown key 'num_env'; did you mean 'num_envs'?"),
        ({"agent": {"hyperparameters": {"learnin_rate": 0.1}}}, "unknown key 'learnin_rate'"),
        ({"env": {"kwargs": {"bufer_size": 3}}}, "unknown key 'bufer_size'"),
        ({"env": {"kwargs": {"num_envs": 3}}}, "'num_envs' is set by ctrlgym"),
        ({"env": {"id": "ctrlgym/Nope-v0"}}, "unknown environment 'ctrlgym/Nope-v0'"),
        ({"env": {"num_envs": 0}}, "env.num_envs: Input should be greater than or equal to 1"),
        ({"evaluation": {"baselines": ["oracle"]}}, "unknown baseline 'oracle'"),
        ({"seeds": [1, 1]}, "seeds: seeds must be distinct"),
    ],
)
def test_bad_config_is_a_one_line_error_naming_file_and_key(tmp_path, data, where):
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and where in message


def test_every_bad_key_is_reported_at_once_with_a_suggestion(tmp_path):
    data = {
        "env": {"id": "ctrlgym/MultiClassQueue-v0", "num_env": 4, "kwargs": {"max_episode_step": 3, "zzz": 1}},
        "agent": {"algo": "dqn", "hyperparameters": {"learning_rte": 0.1, "gamma": "high"}},
        "agnet": {},
    }
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert "\n" not in message
    for expected in (
        "env.num_env: unknown key 'num_env'; did you mean 'num_envs'?",
        "env.kwargs.max_episode_step: unknown key 'max_episode_step' for env ctrlgym/MultiClassQueue-v0; did you mean 'max_episode_steps'?",
        "env.kwargs.zzz: unknown key 'zzz' for env ctrlgym/MultiClassQueue-v0; allowed: ",
        "agent.hyperparameters.learning_rte: unknown key 'learning_rte' for agent dqn; did you mean 'learning_rate'?",
        "agent.hyperparameters.gamma: Input should be a valid number",
        "agnet: unknown key 'agnet'; did you mean 'agent'?",
    ):
        assert expected in message


def test_missing_and_malformed_files_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("env: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_shipped_configs_load_by_name_and_unknown_names_are_one_clear_error():
    from ctrlgym.experiment.config import ConfigError, load_config, shipped_configs

    assert "fastslow/ppo_multiclass_queue" in shipped_configs() and "traffic/resco_baselines" in shipped_configs()
    assert load_config("quickstart/ppo_multiclass_queue_tiny").agent.total_timesteps == 4096
    assert load_config("configs/quickstart/ppo_multiclass_queue_tiny.yaml").name == "ppo_multiclass_queue_tiny"
    with pytest.raises(
        ConfigError,
        match=r"no/such: config file not found, and no shipped config has that name \(`ctrlgym configs` lists them\)",
    ):
        load_config("no/such")
