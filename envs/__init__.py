"""The catalogue of ctrlgym environments, one sub-package per family.

Every env is registered here by entry-point string, so ``import ctrlgym`` imports no family:
a family's modules (and its simulator or data sets) load when one of its envs is first made.
Families whose dependencies are an optional extra (traffic needs SUMO, mixup scikit-learn for its
data) stay listed without them, and name the extra to install when used.
"""

import importlib
from typing import Any

from ctrlgym.registry import register_env, register_installed_plugins

__all__ = ["beamforming", "fastslow", "mixup", "traffic"]


def __getattr__(name: str):
    """``ctrlgym.envs.fastslow`` and the other families import on first access (PEP 562)."""
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_FASTSLOW = "ctrlgym.envs.fastslow"
# class, one-line summary, the name of its baselines in fastslow/baselines.py
_FASTSLOW_MODELS = (
    (
        "MultiClassQueue",
        "one server, K job classes, holding costs driven by a slowly switching state (c-mu scheduling)",
        "MULTICLASS_QUEUE",
    ),
    (
        "RestlessBandit",
        "restless bandit: N arms that move on their own, M played per step, payoffs set by a slow state",
        "RESTLESS_BANDIT",
    ),
    (
        "EnergyStorage",
        "energy demand response: a battery traded against real-time (fast) and day-ahead (slow) prices",
        "ENERGY_STORAGE",
    ),
    (
        "InventoryControl",
        "inventory control with a fixed order cost while the wholesale cost drifts slowly",
        "INVENTORY_CONTROL",
    ),
    (
        "DynamicPricing",
        "dynamic pricing with loss-averse reference-price demand while the market size changes slowly",
        "DYNAMIC_PRICING",
    ),
    (
        "TaskGridworld",
        "a robot on a grid serves spatial tasks; which site has the task changes slowly",
        "TASK_GRIDWORLD",
    ),
)
for name, summary, baselines in _FASTSLOW_MODELS:
    register_env(
        f"{_FASTSLOW}:{name}",
        family="fastslow",
        summary=summary,
        baselines=f"{_FASTSLOW}.baselines:{baselines}_BASELINES",
    )

register_env(
    "ctrlgym.envs.beamforming:BeamformingEnv",
    family="beamforming",
    summary="multi-user downlink precoding from a stale uplink channel estimate while the channel ages (Doppler)",
    baselines="ctrlgym.envs.beamforming.baselines:BASELINES",
    check_kwargs={"num_envs": 4, "antennas": 4, "users": 2, "history": 2},
)

_TRAFFIC: dict[str, Any] = {
    "family": "traffic",
    "baselines": "ctrlgym.envs.traffic.baselines:BASELINES",
    "requires": ("sumolib",),
    "extra": "traffic",
}
register_env(
    "ctrlgym.envs.traffic:TrafficSignalEnv",
    summary="multi-agent signal control on SUMO (one agent per light; grid 4x4 by default)",
    check_kwargs={"scenario": "arterial", "cols": 2, "num_envs": 2},
    **_TRAFFIC,
)
register_env(
    "ctrlgym.envs.traffic:SingleIntersection",
    summary="one signalised intersection on SUMO, single-agent",
    check_kwargs={"num_envs": 2},
    **_TRAFFIC,
)
_TWIN = {**_TRAFFIC, "baselines": "ctrlgym.envs.traffic.baselines:TWIN_BASELINES"}  # RESCO's controllers need SUMO
register_env(
    "ctrlgym.envs.traffic:TrafficTwinEnv",
    summary="torch queue-model twin of a SUMO network, batched on CPU/GPU (same spaces as TrafficSignalEnv)",
    check_kwargs={"scenario": "arterial", "cols": 2, "num_envs": 4},
    **_TWIN,
)
register_env(
    "ctrlgym.envs.traffic:SingleIntersectionTwin",
    summary="torch twin of SingleIntersection (one light, single-agent), batched on CPU/GPU",
    check_kwargs={"num_envs": 4},
    **_TWIN,
)

register_env(
    "ctrlgym.envs.mixup:MixupPolicyEnv",
    family="mixup",
    summary="choose the mix-up operation while a population of classifiers trains on real digits",
    baselines="ctrlgym.envs.mixup.baselines:BASELINES",
    check_kwargs={"num_envs": 3, "budget": 3, "steps_per_action": 2, "batch_size": 16, "hidden": 16},
    requires=("sklearn",),
    extra="mixup",
)

register_installed_plugins()  # envs of installed packages (entry-point group ctrlgym.envs)
