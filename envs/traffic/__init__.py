"""Traffic signal networks on real SUMO (``pip install 'ctrlgym[traffic]'``); registered in :mod:`ctrlgym.envs`."""

from ctrlgym.envs.traffic.baselines import (
    BASELINES,
    MaxPressure,
    MaxWave,
    ProgramControl,
    RandomGreens,
    RescoMaxPressure,
    RescoMaxWave,
)
from ctrlgym.envs.traffic.env import OBSERVATION_FEATURES, REWARDS, SingleIntersection, TrafficSignalEnv
from ctrlgym.envs.traffic.network import SignalNetwork
from ctrlgym.envs.traffic.scenarios import RESCO_MAPS, Scenario, ScenarioError, make_scenario, resco_scenario
from ctrlgym.envs.traffic.twin import SingleIntersectionTwin, TrafficTwinEnv
from ctrlgym.envs.traffic.twin_network import QueueNetwork
from ctrlgym.envs.traffic.workers import SumoError

__all__ = [
    "TrafficSignalEnv",
    "SingleIntersection",
    "BASELINES",
    "Scenario",
    "ScenarioError",
    "SumoError",
    "SignalNetwork",
    "make_scenario",
    "MaxPressure",
    "MaxWave",
    "RescoMaxPressure",
    "RescoMaxWave",
    "RandomGreens",
    "RESCO_MAPS",
    "resco_scenario",
    "ProgramControl",
    "OBSERVATION_FEATURES",
    "REWARDS",
    "TrafficTwinEnv",
    "SingleIntersectionTwin",
    "QueueNetwork",
]
