"""The registry of ctrlgym environments, mirrored into Gymnasium's.

``register_env`` records an env with its family, a one-line summary and its baseline policies,
and registers ``ctrlgym/<Name>-v<version>`` with Gymnasium: ``gymnasium.make`` gives the single
numpy env, ``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")`` the native batch.

Envs and baselines are given as entry-point strings (``"package.module:Name"``), as Gymnasium's
own registry does: registering imports nothing, and a family's modules (and its simulator or data
sets) load on first use. ``import ctrlgym`` therefore stays light.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import gymnasium as gym

from ctrlgym.errors import UsageError
from ctrlgym.single_env import SingleEnv
from ctrlgym.vector_env import TorchVectorEnv

__all__ = [
    "Baseline",
    "EnvEntry",
    "EnvUnavailableError",
    "register_env",
    "registered_envs",
    "get_entry",
    "make_vector_env",
    "load_entry_point",
]


@dataclass(frozen=True)
class Baseline:
    """A baseline policy of an env: ``make(env, seed)`` builds it on the env it will act in;
    ``env_kwargs`` are set on that env (e.g. ``signal_control="actuated"`` hands the lights to SUMO)."""

    make: Callable[[Any, int], Any]  # (the env it acts in, a seed) -> a policy
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""  # one line for reports: what the policy does


class EnvUnavailableError(UsageError):
    """A known env whose family's optional dependencies are not installed."""


def load_entry_point(entry_point: str) -> Any:
    """The object an entry-point string ``"package.module:attribute"`` names (imported on call)."""
    module_name, _, attribute = entry_point.partition(":")
    if not attribute:
        raise UsageError(f"entry point {entry_point!r} is not of the form 'package.module:attribute'")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


@dataclass(frozen=True)
class EnvEntry:
    """One registered env. ``vector_cls`` and ``baselines`` are resolved (imported) on first access."""

    env_id: str
    family: str
    summary: str
    entry_point: str | type[TorchVectorEnv]
    baselines_entry_point: str | dict[str, Any] | None = None  # Baseline or make(env, seed) values
    check_kwargs: dict[str, Any] = field(default_factory=dict)  # a small instance for the conformance tests
    requires: tuple[str, ...] = ()  # modules the family needs; missing ones make the env unavailable
    extra: str | None = None  # the pip extra that installs them

    @property
    def available(self) -> bool:
        return all(importlib.util.find_spec(module) is not None for module in self.requires)

    def _require(self) -> None:
        if not self.available:
            missing = ", ".join(m for m in self.requires if importlib.util.find_spec(m) is None)
            raise EnvUnavailableError(
                f"environment {self.env_id!r} needs {missing}: pip install 'ctrlgym[{self.extra}]'"
            )

    @cached_property
    def vector_cls(self) -> type[TorchVectorEnv]:
        self._require()
        return load_entry_point(self.entry_point) if isinstance(self.entry_point, str) else self.entry_point

    @cached_property
    def baselines(self) -> dict[str, Baseline]:
        self._require()
        raw = self.baselines_entry_point
        raw = load_entry_point(raw) if isinstance(raw, str) else (raw or {})
        return {name: b if isinstance(b, Baseline) else Baseline(b) for name, b in raw.items()}


_REGISTRY: dict[str, EnvEntry] = {}


def register_env(
    entry_point: str | type[TorchVectorEnv],
    *,
    family: str,
    summary: str,
    baselines: str | dict[str, Baseline | Callable[[Any, int], Any]] | None = None,
    check_kwargs: dict[str, Any] | None = None,
    version: int = 0,
    requires: tuple[str, ...] = (),
    extra: str | None = None,
    env_id: str | None = None,
) -> EnvEntry:
    """Register an env as ``ctrlgym/<ClassName>-v<version>`` here and in Gymnasium.

    ``entry_point`` is ``"package.module:ClassName"`` (imported on first use) or the class itself;
    ``baselines`` maps names to :class:`Baseline` (or plain ``make(env, seed)`` callables), or is the
    entry point of such a dict; ``check_kwargs`` are constructor arguments of a small instance for
    the test suite; ``requires`` lists the modules the env needs and ``extra`` the pip extra that
    brings them (an env whose modules are missing stays listed and names the extra on use).
    ``env_id`` replaces the ``ctrlgym/`` id: a plug-in registers under its own namespace (``my_pkg/MyEnv-v0``).
    """
    name = entry_point.rpartition(":")[2].rpartition(".")[2] if isinstance(entry_point, str) else entry_point.__name__
    env_id = env_id or f"ctrlgym/{name}-v{version}"
    entry = EnvEntry(env_id, family, summary, entry_point, baselines, dict(check_kwargs or {}), tuple(requires), extra)
    _REGISTRY[env_id] = entry
    if env_id not in gym.registry:
        gym.register(
            id=env_id,
            entry_point=SingleEnv.factory(lambda: get_entry(env_id).vector_cls, name),
            vector_entry_point=_vector_factory(env_id),
        )
    return entry


def _vector_factory(env_id: str) -> Callable[..., TorchVectorEnv]:
    def make(**kwargs: Any) -> TorchVectorEnv:
        return get_entry(env_id).vector_cls(**kwargs)

    make.__name__ = f"make_vector_{env_id.split('/')[-1].split('-')[0]}"
    return make


def registered_envs() -> list[EnvEntry]:
    """Every registered env (available or not), sorted by family then id."""
    return sorted(_REGISTRY.values(), key=lambda entry: (entry.family, entry.env_id))


def get_entry(env_id: str) -> EnvEntry:
    """The entry of ``env_id`` (the ``ctrlgym/`` prefix may be left out, and ``"package.module:Class"``
    names a :class:`TorchVectorEnv` outside ctrlgym, imported now); ``ValueError`` listing the known
    ids if there is none, :class:`EnvUnavailableError` naming the extra if its family is not installed."""
    if env_id not in _REGISTRY and f"ctrlgym/{env_id}" in _REGISTRY:
        env_id = f"ctrlgym/{env_id}"
    if env_id not in _REGISTRY and ":" in env_id:
        return _register_by_entry_point(env_id)
    try:
        entry = _REGISTRY[env_id]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise UsageError(f"unknown environment {env_id!r}; registered: {known}") from None
    entry._require()
    return entry


def make_vector_env(env_id: str, num_envs: int = 1, **kwargs: Any) -> TorchVectorEnv:
    """The native batch of ``env_id`` (what ``gymnasium.make_vec`` builds, without the lookup)."""
    return get_entry(env_id).vector_cls(num_envs=num_envs, **kwargs)


def _register_by_entry_point(entry_point: str) -> EnvEntry:
    """Register the env class that ``"package.module:Class"`` names, under that string as its id."""
    try:
        target = load_entry_point(entry_point)
    except (ImportError, AttributeError) as error:
        raise UsageError(f"env {entry_point!r}: cannot import it ({type(error).__name__}: {error})") from None
    if not (isinstance(target, type) and issubclass(target, TorchVectorEnv)):
        raise UsageError(f"env {entry_point!r} is {target!r}, not a subclass of ctrlgym.TorchVectorEnv")
    summary = (target.__doc__ or target.__name__).strip().splitlines()[0]
    entry = EnvEntry(entry_point, "plugin", summary, target)
    _REGISTRY[entry_point] = entry
    return entry


ENV_ENTRY_POINTS = "ctrlgym.envs"


def register_installed_plugins(group: str = ENV_ENTRY_POINTS) -> list[EnvEntry]:
    """Register the envs that installed packages declare in the entry-point group ``ctrlgym.envs``:
    each entry's name is the env id (``my_pkg/MyEnv-v0``), its value ``"package.module:Class"``
    (imported on first use, as ctrlgym's own envs are). In ``pyproject.toml``::

        [project.entry-points."ctrlgym.envs"]
        "my_pkg/MyEnv-v0" = "my_pkg.envs:MyEnv"
    """
    from importlib.metadata import entry_points

    found = []
    for plugin in entry_points(group=group):
        if plugin.name in _REGISTRY:
            continue
        dist = plugin.dist.name if plugin.dist is not None else "an installed package"
        found.append(register_env(plugin.value, family="plugin", summary=f"from {dist}", env_id=plugin.name))
    return found
