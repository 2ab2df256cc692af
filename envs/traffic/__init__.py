"""Traffic signal networks on real SUMO (``pip install 'ctrlgym[traffic]'``)."""

from ctrlgym.envs.traffic.baselines import MaxPressure, MaxWave, ProgramControl, RandomGreens
from ctrlgym.envs.traffic.env import OBSERVATION_FEATURES, REWARDS, SingleIntersection, TrafficSignalEnv
from ctrlgym.envs.traffic.network import SignalNetwork
from ctrlgym.envs.traffic.scenarios import RESCO_MAPS, Scenario, ScenarioError, make_scenario, resco_scenario
from ctrlgym.envs.traffic.twin import SingleIntersectionTwin, TrafficTwinEnv
from ctrlgym.envs.traffic.twin_network import QueueNetwork
from ctrlgym.envs.traffic.workers import SumoError

from ctrlgym.registry import Baseline, register_env

_BASELINES = {
    "fixed_time": Baseline(lambda env, seed: ProgramControl(env), {"signal_control": "fixed_time"}, "the network's own fixed-time signal plans, run by SUMO"),
    "actuated": Baseline(lambda env, seed: ProgramControl(env), {"signal_control": "actuated"}, "SUMO's gap-based actuated control (detectors extend greens)"),
    "max_pressure": Baseline(lambda env, seed: MaxPressure(env), description="max-pressure: the green with the largest upstream minus downstream queue (Varaiya 2013)"),
    "max_wave": Baseline(lambda env, seed: MaxWave(env), description="max-wave: the green serving the most approaching vehicles"),
    "random": Baseline(lambda env, seed: RandomGreens(env, seed), description="a uniformly random green at every decision: the floor"),
}

register_env(
    TrafficSignalEnv,
    family="traffic",
    summary="multi-agent signal control on SUMO (one agent per light; grid 4x4 by default)",
    baselines=_BASELINES,
    check_kwargs={"scenario": "arterial", "cols": 2, "num_envs": 2},
)
register_env(
    SingleIntersection,
    family="traffic",
    summary="one signalised intersection on SUMO, single-agent",
    baselines=_BASELINES,
    check_kwargs={"num_envs": 2},
)
register_env(
    TrafficTwinEnv,
    family="traffic",
    summary="torch queue-model twin of a SUMO network, batched on CPU/GPU (same spaces as TrafficSignalEnv)",
    baselines=_BASELINES,
    check_kwargs={"scenario": "arterial", "cols": 2, "num_envs": 4},
)
register_env(
    SingleIntersectionTwin,
    family="traffic",
    summary="torch twin of SingleIntersection (one light, single-agent), batched on CPU/GPU",
    baselines=_BASELINES,
    check_kwargs={"num_envs": 4},
)

__all__ = [
    "TrafficSignalEnv", "SingleIntersection", "Scenario", "ScenarioError", "SumoError", "SignalNetwork", "make_scenario",
    "MaxPressure", "MaxWave", "RandomGreens", "RESCO_MAPS", "resco_scenario", "ProgramControl", "OBSERVATION_FEATURES", "REWARDS", "TrafficTwinEnv", "SingleIntersectionTwin", "QueueNetwork",
]  # fmt: skip
