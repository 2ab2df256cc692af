"""The algorithm registry: every agent a config can name, Stable-Baselines3's and ctrlgym's own.

An entry says where the class lives (an entry-point string, imported on first use), a one-line
description for reports, whether it is an SB3 algorithm (trained through the SB3 adapter) and
its config defaults. Adding an algorithm is one class with the :class:`ctrlgym.policies.Agent`
interface plus one :func:`register_algorithm` call; configs validate ``agent.algo`` and the
hyperparameters against what is registered here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from ctrlgym.errors import UsageError

__all__ = ["Algorithm", "register_algorithm", "get_algorithm", "registered_algorithms"]


@dataclass(frozen=True)
class Algorithm:
    name: str
    entry_point: str  # "package.module:ClassName"
    description: str
    sb3: bool = False  # trained and loaded through Stable-Baselines3 (model.learn, .zip files)
    defaults: dict[str, Any] = field(default_factory=dict)  # hyperparameters when a config gives none

    def load(self) -> Any:
        """The algorithm's class (imported now)."""
        module, _, name = self.entry_point.partition(":")
        return getattr(import_module(module), name)

    @property
    def model_suffix(self) -> str:
        return ".zip" if self.sb3 else ".pt"


_ALGORITHMS: dict[str, Algorithm] = {}


def register_algorithm(
    name: str, entry_point: str, description: str, *, sb3: bool = False, defaults: dict[str, Any] | None = None
) -> Algorithm:
    """Register an algorithm under ``name`` (what ``agent.algo`` names in a config)."""
    entry = Algorithm(name, entry_point, description, sb3, dict(defaults or {}))
    _ALGORITHMS[name] = entry
    return entry


def get_algorithm(name: str) -> Algorithm:
    """The registered algorithm ``name``, or the class ``"package.module:Class"`` names (an agent
    outside ctrlgym with the :class:`ctrlgym.policies.Agent` interface, or an SB3 algorithm);
    ``ValueError`` listing the known ones."""
    if name not in _ALGORITHMS and ":" in name:
        return _register_by_entry_point(name)
    try:
        return _ALGORITHMS[name]
    except KeyError:
        raise UsageError(f"unknown algorithm {name!r}; registered: {', '.join(sorted(_ALGORITHMS))}") from None


def _register_by_entry_point(entry_point: str) -> Algorithm:
    """Register the agent class ``"package.module:Class"`` under that string."""
    from ctrlgym.registry import load_entry_point

    try:
        target = load_entry_point(entry_point)
    except (ImportError, AttributeError, ValueError) as error:
        raise UsageError(f"algorithm {entry_point!r}: cannot import it ({type(error).__name__}: {error})") from None
    if not isinstance(target, type):
        raise UsageError(f"algorithm {entry_point!r} is {target!r}, not a class")
    sb3 = _is_sb3_algorithm(target)
    missing = [] if sb3 else [m for m in ("learn", "save", "load", "set_last_observation") if not hasattr(target, m)]
    if missing:
        raise UsageError(
            f"algorithm {entry_point!r} lacks {', '.join(missing)} (subclass ctrlgym.policies.CheckpointedAgent)"
        )
    description = (target.__doc__ or target.__name__).strip().splitlines()[0]
    return register_algorithm(entry_point, entry_point, description, sb3=sb3)


def _is_sb3_algorithm(target: type) -> bool:
    from stable_baselines3.common.base_class import BaseAlgorithm

    return issubclass(target, BaseAlgorithm)


ALGORITHM_ENTRY_POINTS = "ctrlgym.algorithms"


def register_installed_algorithms(group: str = ALGORITHM_ENTRY_POINTS) -> list[Algorithm]:
    """Register the algorithms installed packages declare in the entry-point group ``ctrlgym.algorithms``
    (name: what ``agent.algo`` names; value: ``"package.module:Class"``, imported on first use)."""
    from importlib.metadata import entry_points

    found = []
    for plugin in entry_points(group=group):
        if plugin.name not in _ALGORITHMS:
            dist = plugin.dist.name if plugin.dist is not None else "an installed package"
            found.append(register_algorithm(plugin.name, plugin.value, f"{plugin.name} (from {dist})"))
    return found


def registered_algorithms() -> dict[str, Algorithm]:
    return dict(_ALGORITHMS)


register_algorithm(
    "ppo",
    "stable_baselines3:PPO",
    "PPO (Schulman et al. 2017; Stable-Baselines3), the policy trained in this run",
    sb3=True,
    defaults={"n_steps": 128, "batch_size": 256, "learning_rate": 3e-4, "ent_coef": 0.01, "gamma": 0.99},
)
register_algorithm(
    "sac",
    "stable_baselines3:SAC",
    "SAC (Haarnoja et al. 2018; Stable-Baselines3), the policy trained in this run",
    sb3=True,
)
register_algorithm(
    "dqn",
    "ctrlgym.agents.dqn:IndependentDQN",
    "independent double DQN, one learner per agent (Tan 1993; Mnih et al. 2015), trained in this run",
)
register_algorithm(
    "nash_dqn",
    "ctrlgym.agents.nash_dqn:NashDQN",
    "off-policy Nash DQN: targets from the neighbourhood's Nash equilibrium by fictitious play (arXiv 2301.00637), trained in this run",
)
register_algorithm(
    "channel_predictor",
    "ctrlgym.envs.beamforming.channel_predictor:ChannelPredictor",
    "CNN channel predictor correcting the blind Wiener prediction, trained on its `loss` (rate: the sum rate it yields; mse); precodes with RZF on it (trained in this run)",
)
register_installed_algorithms()  # agents of installed packages (entry-point group ctrlgym.algorithms)
