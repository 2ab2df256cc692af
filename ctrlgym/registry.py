"""The registry of ctrlgym environments, mirrored into Gymnasium's.

``register_env`` records an env class with its family, a one-line summary and its baseline
policies, and registers ``ctrlgym/<Name>-v<version>`` with Gymnasium: ``gymnasium.make`` gives
the single numpy env, ``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")`` the
native batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from ctrlgym.single_env import SingleEnv
from ctrlgym.vector_env import TorchVectorEnv

__all__ = [
    "Baseline", "EnvEntry", "EnvUnavailableError", "register_env", "registered_envs", "get_entry", "make_vector_env",
    "mark_unavailable",
]  # fmt: skip


@dataclass(frozen=True)
class Baseline:
    """A baseline policy of an env: ``make(env, seed)`` builds it on the env it will act in;
    ``env_kwargs`` are set on that env (e.g. ``signal_control="actuated"`` hands the lights to SUMO)."""

    make: Callable[[TorchVectorEnv, int], Any]
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""  # one line for reports: what the policy does


@dataclass(frozen=True)
class EnvEntry:
    env_id: str
    family: str
    summary: str
    vector_cls: type[TorchVectorEnv]
    baselines: dict[str, Baseline] = field(default_factory=dict)
    check_kwargs: dict[str, Any] = field(default_factory=dict)  # a small instance for the conformance tests


_REGISTRY: dict[str, EnvEntry] = {}
_NEEDS_EXTRA: dict[str, str] = {}  # env id -> the pip extra its family needs, for families not installed


def mark_unavailable(env_ids: list[str], extra: str) -> None:
    """Declare envs of a family whose optional dependencies are missing (a clear error on use)."""
    for env_id in env_ids:
        _NEEDS_EXTRA[env_id] = extra


class EnvUnavailableError(ValueError):
    """A known env whose family's optional dependencies are not installed."""


def register_env(
    vector_cls: type[TorchVectorEnv],
    *,
    family: str,
    summary: str,
    baselines: dict[str, Baseline | Callable[[TorchVectorEnv, int], Any]] | None = None,
    check_kwargs: dict[str, Any] | None = None,
    version: int = 0,
) -> EnvEntry:
    """Register ``vector_cls`` as ``ctrlgym/<ClassName>-v<version>`` here and in Gymnasium.

    ``baselines`` maps names to :class:`Baseline` (or plain ``make(env, seed)`` callables);
    ``check_kwargs`` are constructor arguments of a small instance for the test suite.
    """
    env_id = f"ctrlgym/{vector_cls.__name__}-v{version}"
    wrapped = {name: b if isinstance(b, Baseline) else Baseline(b) for name, b in (baselines or {}).items()}
    entry = EnvEntry(env_id, family, summary, vector_cls, wrapped, dict(check_kwargs or {}))
    _REGISTRY[env_id] = entry
    if env_id not in gym.registry:
        gym.register(id=env_id, entry_point=SingleEnv.factory(vector_cls), vector_entry_point=vector_cls)
    return entry


def registered_envs() -> list[EnvEntry]:
    """Every registered env, sorted by family then id."""
    return sorted(_REGISTRY.values(), key=lambda entry: (entry.family, entry.env_id))


def get_entry(env_id: str) -> EnvEntry:
    """The entry of ``env_id``; ``ValueError`` listing the known ids if there is none."""
    if env_id not in _REGISTRY and f"ctrlgym/{env_id}" in _REGISTRY:
        env_id = f"ctrlgym/{env_id}"
    if env_id in _NEEDS_EXTRA:
        extra = _NEEDS_EXTRA[env_id]
        raise EnvUnavailableError(f"environment {env_id!r} needs the {extra} extra: pip install 'ctrlgym[{extra}]'")
    try:
        return _REGISTRY[env_id]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ValueError(f"unknown environment {env_id!r}; registered: {known}") from None


def make_vector_env(env_id: str, num_envs: int = 1, **kwargs: Any) -> TorchVectorEnv:
    """The native batch of ``env_id`` (what ``gymnasium.make_vec`` builds, without the lookup)."""
    return get_entry(env_id).vector_cls(num_envs=num_envs, **kwargs)
