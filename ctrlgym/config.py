"""Experiment configs: YAML files validated with pydantic.

An unknown key or a bad value is a one-line ``ConfigError`` naming the file and the key. The
defaults alone describe the demo experiment (PPO on ``MultiClassQueue``, three seeds).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "ConfigError", "SB3_ALGOS", "sb3_class", "shipped_configs", "config_path", "EnvConfig", "AgentConfig", "EvaluationConfig", "SolveConfig", "ExperimentConfig", "load_config", "save_config",
]  # fmt: skip


class ConfigError(ValueError):
    """A config file or value that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _check_keywords(owner: str, target, keywords: dict[str, Any], reserved: set[str]) -> None:
    """Raise if ``keywords`` names a parameter that ``target`` does not take (or that we set).

    ``target`` is a callable, or a class: then the parameters of every ``__init__`` along its
    bases count (a subclass passes ``**kwargs`` on to its base).
    """
    if isinstance(target, type):
        parameters = {}
        for base in target.__mro__:  # up the bases while each __init__ passes **kwargs on
            if "__init__" not in base.__dict__ or base is object:
                continue
            own = inspect.signature(base.__init__).parameters
            parameters.update(own)
            if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in own.values()):
                break
    else:
        parameters = dict(inspect.signature(target).parameters)
    for key in keywords:
        if key in reserved:
            raise ValueError(f"{key!r} is set by ctrlgym, not in {owner}")
        if key not in parameters:
            allowed = sorted(set(parameters) - reserved - {"self", "args", "kwargs"})
            raise ValueError(f"unknown key {key!r} for {owner}; allowed: {', '.join(allowed)}")


class EnvConfig(_Strict):
    id: str = Field("ctrlgym/MultiClassQueue-v0", description="registered env id (`ctrlgym list`)")
    num_envs: int = Field(16, ge=1, description="copies in the training batch")
    device: str = Field("cpu", description="torch device of the env: cpu, cuda, cuda:1, ...")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="constructor arguments of the env")

    @model_validator(mode="after")
    def _known_env_and_kwargs(self) -> EnvConfig:
        from ctrlgym.registry import get_entry

        entry = get_entry(self.id)
        _check_keywords(f"env {self.id}", entry.vector_cls, self.kwargs, {"num_envs", "device", "autoreset_mode"})
        return self


PPO_DEFAULTS = {"n_steps": 128, "batch_size": 256, "learning_rate": 3e-4, "ent_coef": 0.01, "gamma": 0.99}
AGENT_ALGOS = ("ppo", "sac", "dqn", "nash_dqn", "channel_predictor")
SB3_ALGOS = ("ppo", "sac")


def sb3_class(algo: str):
    """The Stable-Baselines3 class of an SB3 algo name."""
    from stable_baselines3 import PPO, SAC

    return {"ppo": PPO, "sac": SAC}[algo]


class AgentConfig(_Strict):
    algo: Literal[AGENT_ALGOS] = Field(  # type: ignore[valid-type]
        "ppo",
        description="ppo or sac (Stable-Baselines3); dqn (independent DQN), nash_dqn or channel_predictor (ctrlgym.agents)",
    )
    policy: str = Field("MlpPolicy", description="SB3 policy class name (ppo, sac)")
    total_timesteps: int = Field(100_000, ge=1, description="env steps per seed (summed over the batch)")
    checkpoint_every: int = Field(10_000, ge=1, description="env steps between checkpoints")
    device: str = Field("cpu", description="torch device of the agent's networks")
    normalize_reward: bool = Field(
        True, description="ppo, sac: scale rewards by a running std of the discounted return (SB3 VecNormalize); actions unaffected"
    )
    init_from: str | None = Field(
        None, description="dqn/nash_dqn: start each seed from the final model of the same seed in this run directory (fine-tuning)"
    )
    hyperparameters: dict[str, Any] | None = Field(
        None, description="keyword arguments of the algorithm (ppo default: a small PPO; dqn/nash_dqn: the agent's defaults)"
    )

    @model_validator(mode="after")
    def _known_hyperparameters(self) -> AgentConfig:
        if self.hyperparameters is None:
            self.hyperparameters = dict(PPO_DEFAULTS) if self.algo == "ppo" else {}
        if self.init_from is not None and self.algo not in ("dqn", "nash_dqn"):
            raise ValueError("init_from is for dqn and nash_dqn agents")
        if self.algo in SB3_ALGOS:
            reserved = {"policy", "env", "seed", "device", "tensorboard_log", "verbose", "_init_setup_model"}
            _check_keywords(f"agent {self.algo}", sb3_class(self.algo).__init__, self.hyperparameters, reserved)
        else:
            from ctrlgym.agents import AGENTS

            _check_keywords(f"agent {self.algo}", AGENTS[self.algo], self.hyperparameters, {"env", "seed", "device"})
        return self


class EvaluationConfig(_Strict):
    episodes: int = Field(32, ge=1, description="episodes per policy and seed (run as one batch)")
    baselines: list[str] | None = Field(None, description="baseline names; default: every baseline of the env")
    seed_offset: int = Field(10_000, description="evaluation seed = training seed + seed_offset")
    sweep: dict[str, list[Any]] | None = Field(
        None, description="{env kwarg: [values]}: evaluate every policy again at each value (e.g. {speed_kmh: [3, 30, 120]})"
    )
    sweep_metric: str = Field("mean_return", description="what the report plots against the swept values: mean_return or an info metric")

    @field_validator("sweep")
    @classmethod
    def _one_parameter(cls, sweep: dict[str, list[Any]] | None) -> dict[str, list[Any]] | None:
        if sweep is not None and (len(sweep) != 1 or not next(iter(sweep.values()))):
            raise ValueError(f"sweep takes one env kwarg with a non-empty list of values, got {sweep}")
        return sweep


SOLVE_METHODS = (
    "value_iteration", "policy_iteration", "modified_policy_iteration", "inexact_policy_iteration", "frozen_state",
    "frozen_state_mpi", "omit_slow_state",
)  # fmt: skip


class SolveConfig(_Strict):
    epsilon: float = Field(1e-4, gt=0, description="target accuracy: policies are ε-optimal (span stopping)")
    methods: list[Literal[SOLVE_METHODS]] = Field(default_factory=lambda: list(SOLVE_METHODS))  # type: ignore[valid-type]
    periods: list[int] = Field(default_factory=lambda: [1, 5, 10, 25, 50], description="freezing periods T of frozen-state ADP")
    evaluation_sweeps: int = Field(20, ge=1, description="upper-level evaluations per backup of frozen_state_mpi")
    device: str = Field("cpu", description="torch device of the solvers")

    @field_validator("periods")
    @classmethod
    def _positive(cls, periods: list[int]) -> list[int]:
        if not periods or min(periods) < 1:
            raise ValueError(f"periods must be a non-empty list of integers >= 1, got {periods}")
        return periods


class ExperimentConfig(_Strict):
    name: str = "ppo_multiclass_queue"
    env: EnvConfig = Field(default_factory=EnvConfig)
    agent: AgentConfig | None = Field(default_factory=AgentConfig, description="null: evaluate baselines only")
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    solve: SolveConfig | None = Field(None, description="exact and frozen-state solvers on the env's exact model")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    output_dir: str = "runs/ppo_multiclass_queue"

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        return seeds

    @model_validator(mode="after")
    def _known_baselines(self) -> ExperimentConfig:
        from ctrlgym.registry import get_entry

        known = get_entry(self.env.id).baselines
        if self.evaluation.baselines is None:
            self.evaluation.baselines = list(known)
        for name in self.evaluation.baselines:
            if name not in known:
                raise ValueError(f"unknown baseline {name!r} for {self.env.id}; known: {', '.join(sorted(known))}")
        if self.evaluation.sweep:
            _check_keywords(f"evaluation.sweep of env {self.env.id}", get_entry(self.env.id).vector_cls, self.evaluation.sweep, {"num_envs", "device", "autoreset_mode"})
        return self


def _one_line(error: ValidationError, source: str) -> ConfigError:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return ConfigError(f"{source}: {where}: {message}{more}")


def parse_config(data: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Validate a config dict; ``ConfigError`` naming ``source`` and the key on failure."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as error:
        raise _one_line(error, source) from None


def shipped_configs() -> dict[str, Path]:
    """The configs that ship with ctrlgym, by name (``fastslow/ppo_multiclass_queue``) -> file."""
    from importlib.resources import files

    root = Path(str(files("ctrlgym.configs")))
    return {str(path.relative_to(root).with_suffix("")): path for path in sorted(root.glob("*/*.yaml"))}


def config_path(path_or_name: str | Path) -> Path:
    """A config file: the path itself if it exists, else the shipped config of that name (``.yaml`` optional)."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    shipped = shipped_configs()
    name = str(path_or_name).removesuffix(".yaml").removeprefix("configs/")
    if name in shipped:
        return shipped[name]
    raise ConfigError(f"{path_or_name}: config file not found, and no shipped config has that name (`ctrlgym configs` lists them)")


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate a YAML experiment config (a path, or the name of a shipped config)."""
    path = config_path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    return parse_config(data, str(path))


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
