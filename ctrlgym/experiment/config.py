"""Experiment configs: YAML files validated with pydantic.

An unknown key or a bad value is a one-line ``ConfigError`` naming the file and the key. The
defaults alone describe the demo experiment (PPO on ``MultiClassQueue``, three seeds).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ctrlgym.errors import CtrlgymError

__all__ = [
    "ConfigError",
    "shipped_configs",
    "config_path",
    "EnvConfig",
    "AgentConfig",
    "EvaluationConfig",
    "SolveConfig",
    "TuneConfig",
    "ExperimentConfig",
    "load_config",
    "apply_overrides",
    "save_config",
]


class ConfigError(CtrlgymError, ValueError):
    """A config file or value that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class _AtKey(ValueError):
    """A validator's errors about nested keys (``kwargs.buffer_size``), each shown after the field's own location."""

    def __init__(self, key: str, message: str, more: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.problems = [(key, message), *(more or [])]


def _did_you_mean(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _signatures(target) -> list:
    """The callables whose parameters ``target`` takes: a callable, or for a class every
    ``__init__`` up its bases while each passes ``**kwargs`` on."""
    if not isinstance(target, type):
        return [target]
    found = []
    for base in target.__mro__:
        if "__init__" not in base.__dict__ or base is object:
            continue
        init = base.__dict__["__init__"]
        found.append(init)
        if "option_types" in base.__dict__:  # its **options are the option types' fields, not its bases' parameters
            break
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(init).parameters.values()):
            break
    return found


def _keywords(target) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keyword parameters ``target`` takes and their type hints: its (and its bases') signature,
    plus the fields of the option dataclasses a class lists in ``option_types`` (it takes them as ``**options``)."""
    parameters: dict[str, Any] = {}
    hints: dict[str, Any] = {}
    for function in reversed(_signatures(target)):  # a subclass's parameters and hints win
        parameters.update(
            {
                n: p
                for n, p in inspect.signature(function).parameters.items()
                if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            }
        )
        hints.update(_hints(function))
    for kind in getattr(target, "option_types", ()):
        kind_hints = typing.get_type_hints(kind)
        for option in dataclasses.fields(kind):
            parameters.setdefault(option.name, option)
            hints.setdefault(option.name, kind_hints[option.name])
    return parameters, hints


def takes_keyword(target, name: str) -> bool:
    """Whether the callable or class ``target`` takes the keyword ``name`` (through its bases' ``**kwargs``
    or its ``option_types`` too)."""
    return name in _keywords(target)[0]


def _value_error(hint: Any, value: Any) -> str | None:
    """Why ``value`` does not fit the type hint, or None (also for hints pydantic cannot check)."""
    try:
        adapter = TypeAdapter(hint)
    except Exception:  # e.g. torch.device: not checkable here, the constructor checks it
        return None
    try:
        adapter.validate_python(value)
    except ValidationError as error:
        return error.errors()[0]["msg"]
    return None


def _hints(function) -> dict[str, Any]:
    """The parameter type hints of ``function`` that resolve here (one unresolvable hint, e.g. a
    name imported only for type checkers, does not lose the others)."""
    try:
        return typing.get_type_hints(function)
    except Exception:
        pass
    hints = {}
    for name, parameter in inspect.signature(function).parameters.items():
        annotation = parameter.annotation
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, getattr(function, "__globals__", {}))
            except Exception:
                continue
        if annotation is not inspect.Parameter.empty:
            hints[name] = annotation
    return hints


def _check_keywords(owner: str, target, keywords: dict[str, Any], reserved: set[str], prefix: str) -> None:
    """Raise if ``keywords`` names a parameter that ``target`` does not take (or that we set),
    or gives a value that does not fit its type hint; the error names ``prefix.key``."""
    parameters, hints = _keywords(target)
    problems = []
    for key, value in keywords.items():
        where = f"{prefix}.{key}" if prefix else key
        if key in reserved:
            problems.append((where, f"{key!r} is set by ctrlgym, not in {owner}"))
        elif key not in parameters:
            allowed = sorted(set(parameters) - reserved - {"self", "args", "kwargs"})
            hint = _did_you_mean(key, allowed) or f"; allowed: {', '.join(allowed)}"
            problems.append((where, f"unknown key {key!r} for {owner}{hint}"))
        elif key in hints and (problem := _value_error(hints[key], value)) is not None:
            problems.append((where, f"{problem}, got {value!r}"))
    if problems:
        raise _AtKey(*problems[0], more=problems[1:])


class EnvConfig(_Strict):
    id: str = Field("ctrlgym/MultiClassQueue-v0", description="registered env id (`ctrlgym list`)")
    num_envs: int = Field(16, ge=1, description="copies in the training batch")
    device: str = Field("cpu", description="torch device of the env: cpu, cuda, cuda:1, ...")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="constructor arguments of the env")

    @field_validator("id")
    @classmethod
    def _registered(cls, env_id: str) -> str:
        from ctrlgym.registry import get_entry

        get_entry(env_id)
        return env_id

    @field_validator("kwargs")
    @classmethod
    def _known_kwargs(cls, kwargs: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Checked even when another key of ``env`` is wrong, so every problem is reported at once."""
        from ctrlgym.registry import get_entry

        if "id" in info.data:  # a valid id (an invalid one is reported on its own)
            env_id = info.data["id"]
            _check_keywords(
                f"env {env_id}", get_entry(env_id).vector_cls, kwargs, {"num_envs", "device", "autoreset_mode"}, ""
            )
        return kwargs


class AgentConfig(_Strict):
    algo: str = Field(
        "ppo",
        description="a registered algorithm (ctrlgym.experiment.algorithms): ppo, sac (Stable-Baselines3); dqn, nash_dqn (ctrlgym.agents); channel_predictor (ctrlgym.envs.beamforming)",
    )
    policy: str = Field("MlpPolicy", description="SB3 policy class name (ppo, sac)")
    total_timesteps: int = Field(100_000, ge=1, description="env steps per seed (summed over the batch)")
    checkpoint_every: int = Field(10_000, ge=1, description="env steps between checkpoints")
    checkpoint_keep: int = Field(2, ge=1, description="complete checkpoints kept per seed (older ones are deleted)")
    device: str = Field("cpu", description="torch device of the agent's networks")
    normalize_reward: bool = Field(
        True,
        description="ppo, sac: scale rewards by a running std of the discounted return (SB3 VecNormalize); actions unaffected",
    )
    init_from: str | None = Field(
        None,
        description="dqn/nash_dqn: start each seed from the final model of the same seed in this run directory (fine-tuning)",
    )
    hyperparameters: dict[str, Any] | None = Field(
        None,
        description="keyword arguments of the algorithm (ppo default: a small PPO; dqn/nash_dqn: the agent's defaults)",
    )

    @field_validator("algo")
    @classmethod
    def _registered(cls, algo: str) -> str:
        from ctrlgym.experiment.algorithms import get_algorithm

        get_algorithm(algo)
        return algo

    @model_validator(mode="after")
    def _known_hyperparameters(self) -> AgentConfig:
        from ctrlgym.experiment.algorithms import get_algorithm

        algorithm = get_algorithm(self.algo)
        if self.hyperparameters is None:
            self.hyperparameters = dict(algorithm.defaults)
        if self.init_from is not None and not hasattr(algorithm.load(), "load_weights_from"):
            raise ValueError(f"init_from is for agents that start from saved weights (dqn, nash_dqn), not {self.algo}")
        if algorithm.sb3:
            reserved = {"policy", "env", "seed", "device", "tensorboard_log", "verbose", "_init_setup_model"}
            _check_keywords(
                f"agent {self.algo}", algorithm.load().__init__, self.hyperparameters, reserved, "hyperparameters"
            )
        else:
            _check_keywords(
                f"agent {self.algo}",
                algorithm.load(),
                self.hyperparameters,
                {"env", "seed", "device"},
                "hyperparameters",
            )
        return self


class EvaluationConfig(_Strict):
    episodes: int = Field(32, ge=1, description="episodes per policy and seed (run as one batch)")
    baselines: list[str] | None = Field(None, description="baseline names; default: every baseline of the env")
    seed_offset: int = Field(10_000, description="evaluation seed = training seed + seed_offset")
    sweep: dict[str, list[Any]] | None = Field(
        None,
        description="{env kwarg: [values]}: evaluate every policy again at each value (e.g. {speed_kmh: [3, 30, 120]})",
    )
    sweep_metric: str = Field(
        "mean_return", description="what the report plots against the swept values: mean_return or an info metric"
    )

    @field_validator("sweep")
    @classmethod
    def _one_parameter(cls, sweep: dict[str, list[Any]] | None) -> dict[str, list[Any]] | None:
        if sweep is not None and (len(sweep) != 1 or not next(iter(sweep.values()))):
            raise ValueError(f"sweep takes one env kwarg with a non-empty list of values, got {sweep}")
        return sweep


SOLVE_METHODS = (
    "value_iteration",
    "policy_iteration",
    "modified_policy_iteration",
    "inexact_policy_iteration",
    "frozen_state",
    "frozen_state_mpi",
    "omit_slow_state",
)


class SolveConfig(_Strict):
    epsilon: float = Field(1e-4, gt=0, description="target accuracy: policies are ε-optimal (span stopping)")
    methods: list[Literal[SOLVE_METHODS]] = Field(default_factory=lambda: list(SOLVE_METHODS))  # type: ignore[valid-type]
    periods: list[int] = Field(
        default_factory=lambda: [1, 5, 10, 25, 50], description="freezing periods T of frozen-state ADP"
    )
    evaluation_sweeps: int = Field(20, ge=1, description="upper-level evaluations per backup of frozen_state_mpi")
    device: str = Field("cpu", description="torch device of the solvers")

    @field_validator("periods")
    @classmethod
    def _positive(cls, periods: list[int]) -> list[int]:
        if not periods or min(periods) < 1:
            raise ValueError(f"periods must be a non-empty list of integers >= 1, got {periods}")
        return periods


class SearchDimension(_Strict):
    """One hyperparameter's search range for ``ctrlgym tune`` (Optuna's distributions)."""

    type: Literal["float", "int", "categorical"] = Field(description="float, int or categorical")
    low: float | None = Field(None, description="float/int: the smallest value")
    high: float | None = Field(None, description="float/int: the largest value")
    log: bool = Field(False, description="float/int: sample on a log scale")
    step: float | None = Field(None, description="float/int: a grid step")
    choices: list[Any] | None = Field(None, description="categorical: the values to choose from")

    @model_validator(mode="after")
    def _complete(self) -> SearchDimension:
        if self.type == "categorical" and not self.choices:
            raise ValueError("a categorical dimension needs choices: [...]")
        if self.type != "categorical" and (self.low is None or self.high is None or not self.low < self.high):
            raise ValueError(f"a {self.type} dimension needs low < high, got low={self.low}, high={self.high}")
        return self


class TuneConfig(_Strict):
    """``ctrlgym tune``: a hyperparameter search with Optuna (TPE sampler, median pruning over seeds)."""

    space: dict[str, SearchDimension] = Field(
        description="{config key path: range}, e.g. {agent.hyperparameters.learning_rate: {type: float, low: 1e-4, high: 1e-2, log: true}}"
    )
    trials: int = Field(20, ge=1, description="trials in the study (a rerun adds the missing ones)")
    metric: str | None = Field(
        None, description="what a trial is scored by: mean_return or an env metric (default: the env's headline metric)"
    )
    direction: Literal["maximize", "minimize"] | None = Field(
        None, description="default: from the metric (the headline metric's, else maximize)"
    )
    seeds: list[int] | None = Field(None, description="training seeds per trial (default: the config's seeds)")
    pruner: Literal["median", "none"] = Field(
        "median",
        description="median: stop a trial whose running mean over its seeds is below the median of the others'",
    )


class ExperimentConfig(_Strict):
    name: str = "ppo_multiclass_queue"
    env: EnvConfig = Field(default_factory=EnvConfig)
    agent: AgentConfig | None = Field(default_factory=AgentConfig, description="null: evaluate baselines only")
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    solve: SolveConfig | None = Field(None, description="exact and frozen-state solvers on the env's exact model")
    tune: TuneConfig | None = Field(None, description="hyperparameter search space for ctrlgym tune")
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
                raise _AtKey(
                    "evaluation.baselines",
                    f"unknown baseline {name!r} for {self.env.id}; known: {', '.join(sorted(known))}",
                )
        if self.evaluation.sweep:
            param, values = next(iter(self.evaluation.sweep.items()))
            for value in values:  # each swept value must be a valid env kwarg
                _check_keywords(
                    f"env {self.env.id}",
                    get_entry(self.env.id).vector_cls,
                    {param: value},
                    {"num_envs", "device", "autoreset_mode"},
                    "evaluation.sweep",
                )
        return self

    @model_validator(mode="after")
    def _whole_batches(self) -> ExperimentConfig:
        if self.agent is not None and self.agent.total_timesteps % self.env.num_envs:
            raise _AtKey(
                "agent.total_timesteps",
                f"{self.agent.total_timesteps} is not a multiple of env.num_envs={self.env.num_envs} (each batch step takes num_envs steps)",
            )
        return self

    _source: str = PrivateAttr("config")

    def settings(self) -> dict[str, Any]:
        """The config as a dict, with paths resolved: what two configs must share to be the same experiment."""
        data = self.model_dump()
        data["output_dir"] = str(Path(self.output_dir).resolve())
        if self.agent is not None and self.agent.init_from is not None:
            data["agent"]["init_from"] = str(Path(self.agent.init_from).resolve())
        return data

    def __eq__(self, other: object) -> bool:
        """The same experiment: the same settings wherever they were read from, however paths are spelled
        (the tune section, a search around the run, is not part of it)."""
        if not isinstance(other, ExperimentConfig):
            return False
        mine, theirs = self.settings(), other.settings()
        mine.pop("tune"), theirs.pop("tune")
        return mine == theirs

    @property
    def source(self) -> str:
        """Where the config came from (its file), for error messages."""
        return self._source

    def make_env(self, num_envs: int | None = None, env_id: str | None = None, **overrides: Any):
        """The config's native batch (``env.num_envs`` copies unless given); a device or kwarg
        the env rejects is a ``ConfigError`` naming the file and ``env.device`` / ``env.kwargs``."""
        from ctrlgym.registry import make_vector_env

        self._check_device("env.device", self.env.device)
        kwargs = {**self.env.kwargs, **overrides}
        try:
            return make_vector_env(
                env_id or self.env.id, num_envs or self.env.num_envs, device=self.env.device, **kwargs
            )
        except (TypeError, ValueError) as error:
            raise self.error("env.kwargs", error) from None

    def check_agent_device(self) -> None:
        """``ConfigError`` naming ``agent.device`` if this torch cannot use it (SB3 would fall back to the CPU silently)."""
        self._check_device("agent.device", self.trained_agent.device)

    @property
    def trained_agent(self) -> AgentConfig:
        """The ``agent`` section; ``ValueError`` for a baselines-only config (``agent: null``)."""
        if self.agent is None:
            raise ValueError(
                f"config {self.name} has no agent to train (agent: null); run ctrlgym evaluate CONFIG for its baselines"
            )
        return self.agent

    @property
    def baseline_names(self) -> list[str]:
        """The baselines evaluated beside the agent (every baseline of the env unless the config names some)."""
        return list(self.evaluation.baselines or [])

    @property
    def policy_names(self) -> list[str]:
        """The agent (by its algorithm's name) and then the baselines: every policy an evaluation runs."""
        return ([self.agent.algo] if self.agent is not None else []) + self.baseline_names

    def _check_device(self, key: str, device: str) -> None:
        from ctrlgym.vector_env import resolve_device

        try:
            resolve_device(device)
        except (RuntimeError, ValueError) as error:
            raise self.error(key, error) from None

    def error(self, key: str, message: Any) -> ConfigError:
        """A ``ConfigError`` naming this config's file and ``key`` (e.g. an env kwarg the env rejected)."""
        return ConfigError(f"{self._source}: {key}: {' '.join(str(message).split())}")


def _section_fields(loc: tuple) -> list[str]:
    """The keys a config section allows (for "did you mean"): the model at ``loc`` (its parents' field names)."""
    model: Any = ExperimentConfig
    for part in loc:
        field = model.model_fields.get(str(part)) if hasattr(model, "model_fields") else None
        annotation = getattr(field, "annotation", None)
        model = next(
            (
                a
                for a in typing.get_args(annotation) or (annotation,)
                if isinstance(a, type) and issubclass(a, BaseModel)
            ),
            None,
        )
        if model is None:
            return []
    return list(model.model_fields)


def _one_line(error: ValidationError, source: str) -> ConfigError:
    """Every problem pydantic and the validators found, in one line: ``file: key: message; key: message``."""
    found = []
    for item in error.errors():
        parts = [str(part) for part in item["loc"]]
        at_key = item.get("ctx", {}).get("error")
        message = item["msg"].removeprefix("Value error, ")
        if isinstance(at_key, _AtKey):
            found += [(".".join([*parts, key]), text) for key, text in at_key.problems]
            continue
        if item["type"] == "extra_forbidden":
            message = f"unknown key {parts[-1]!r}" + _did_you_mean(parts[-1], _section_fields(tuple(item["loc"][:-1])))
        found.append((".".join(parts) or "(top level)", message))
    return ConfigError(f"{source}: " + "; ".join(f"{where}: {message}" for where, message in found))


def parse_config(data: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Validate a config dict; ``ConfigError`` naming ``source`` and the key on failure."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    if not data:
        raise ConfigError(
            f"{source}: the config is empty; it needs at least env.id (`ctrlgym list` names the envs, `ctrlgym configs` shows examples)"
        )
    try:
        config = ExperimentConfig.model_validate(data)
    except ValidationError as error:
        raise _one_line(error, source) from None
    if not isinstance(data.get("env"), dict) or "id" not in data["env"]:
        raise ConfigError(f"{source}: env.id: missing; name the env to use (`ctrlgym list`)")
    config._source = source
    return config


def shipped_configs() -> dict[str, Path]:
    """The configs that ship with ctrlgym, by name (``fastslow/ppo_multiclass_queue``) -> file."""
    from importlib.resources import files

    root = Path(str(files("ctrlgym.configs")))
    return {str(path.relative_to(root).with_suffix("")): path for path in sorted(root.glob("**/*.yaml"))}


def config_path(path_or_name: str | Path) -> Path:
    """A config file: the path itself if it exists, else the shipped config of that name (``.yaml`` optional)."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    shipped = shipped_configs()
    name = str(path_or_name).removesuffix(".yaml").removeprefix("configs/")
    if name in shipped:
        return shipped[name]
    raise ConfigError(
        f"{path_or_name}: config file not found, and no shipped config has that name (`ctrlgym configs` lists them)"
    )


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read and validate a YAML experiment config (a path, or the name of a shipped config), with
    ``overrides`` (``"agent.hyperparameters.learning_rate=3e-4"``, as ``--set`` gives them) applied first."""
    path = config_path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    source = str(path) + (f" with --set {' '.join(overrides)}" if overrides else "")
    return parse_config(apply_overrides(data, overrides or [], source), source)


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str = "config") -> dict[str, Any]:
    """A copy of the config dict with each ``key.path=value`` set (the value read as YAML: ``3e-4``,
    ``true``, ``[0, 1]``, ``null``; missing sections are made). Validated afterwards like the file."""
    import copy

    data = copy.deepcopy(data) if isinstance(data, dict) else data
    for override in overrides:
        key, equals, text = override.partition("=")
        if not equals or not key.strip():
            raise ConfigError(f"{source}: --set {override!r}: expected KEY.PATH=VALUE, e.g. agent.total_timesteps=2048")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as error:
            raise ConfigError(f"{source}: --set {override!r}: the value is not valid YAML ({error})") from None
        *parents, last = key.strip().split(".")
        node = data
        for part in parents:
            child = node.get(part) if isinstance(node, dict) else None
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"{source}: --set {override!r}: {part} is not a section (it is {child!r})")
            node = child
        node[last] = value
    return data


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    """Write the config as YAML atomically (a per-process temporary file renamed into place), so
    that concurrent writers of one run directory and their readers never see half a file."""
    import os

    path = Path(path)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    partial.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    os.replace(partial, path)
