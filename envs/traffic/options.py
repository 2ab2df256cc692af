"""The options of the traffic envs, shared by the SUMO env and its torch twin.

:class:`SignalControlOptions` is what both envs mean by a signal-control problem: the scenario,
the signal timing, the episode, what each light observes and is rewarded by. The SUMO env adds
:class:`SumoProcessOptions` (how its simulations run), the twin :class:`TwinModelOptions` (its
queue model's parameters). The envs take all of them as keywords, so a config switches between
SUMO and the twin by the env's name, and ``TrafficTwinEnv(n, **sumo_env.options.as_kwargs())``
builds the twin of a SUMO env.

:func:`prepare_signal_control` does the part both constructors share: it resolves the scenario,
the episode clock and the network, checks the routes, and builds the spaces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import gymnasium as gym

from ctrlgym.envs.traffic.network import SignalNetwork
from ctrlgym.envs.traffic.readout import signal_spaces
from ctrlgym.envs.traffic.scenarios import Scenario, resolve_scenario
from ctrlgym.envs.traffic.scenarios import validate_routes as check_routes
from ctrlgym.envs.traffic.simulation import SIGNAL_CONTROLS, EpisodeClock, SignalTiming, episode_clock, parse_sumo_args

__all__ = [
    "SignalControlOptions",
    "SumoProcessOptions",
    "TwinModelOptions",
    "SignalControlSetup",
    "check_options",
    "options_of",
    "prepare_signal_control",
]


@dataclass(frozen=True)
class _Options:
    def as_kwargs(self) -> dict[str, Any]:
        """The options that differ from their defaults, as constructor keywords."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) != f.default}


@dataclass(frozen=True)
class SignalControlOptions(_Options):
    """A signal-control problem, the same for SUMO and the twin (see :class:`TrafficSignalEnv`'s docs)."""

    scenario: str | Scenario = "grid"  # "single", "arterial", "grid", "resco:<map>", or a Scenario
    rows: int = 4  # built-in scenarios: grid rows,
    cols: int = 4  # columns (arterial: lights),
    demand: float = 2400.0  # veh/h,
    lanes: int = 1  # lanes per direction,
    route_seed: int = 0  # seed of their random trips,
    tls_type: str = "actuated"  # netgenerate's signal programs
    net_file: str | Path | None = None  # your own network: .net.xml + route_file,
    route_file: str | Path | Sequence[str | Path] | None = None
    sumocfg: str | Path | None = None  # or a .sumocfg, run as the file says
    sumo_args: Sequence[str] = ()  # more SUMO options; --begin, --end, --step-length, -a are honoured
    time_to_teleport: float | None = None  # s; -1 disables teleports (as RESCO runs)
    validate_routes: bool = True  # check every route's edges against the network first
    signal_control: str = "agent"  # "agent", or SUMO's "fixed_time" / "actuated" programs
    delta_time: int | None = None  # s between decisions (default: the scenario's, else 5)
    yellow_time: int | None = None  # s of yellow at a change (default: the scenario's, else 2)
    min_green: int = 5  # s before a light may leave a green
    max_green: int = 60  # s after which a green is ended
    observation: Sequence[str] = ("phase", "min_green", "density", "queue")  # features per light
    reward: str = "diff_waiting_time"  # per light: diff_waiting_time, queue, pressure, ...
    num_seconds: int | None = None  # episode length (default: the scenario's span, else 3600)
    max_episode_steps: int | None = None  # or the episode length in decisions
    single_agent: bool = False  # one light, single-agent spaces
    neighbour_reach: float = (
        0.0  # m of road through unsignalled junctions within which lights are neighbours (0: roads meet directly)
    )


@dataclass(frozen=True)
class SumoProcessOptions(_Options):
    """How the SUMO env runs its simulations (the twin runs none, and refuses them set)."""

    backend: str = "libsumo"  # or "traci"
    gui: bool = False  # sumo-gui to watch (over traci)
    max_teleports: int | None = None  # raise SumoError when an episode exceeds it
    step_timeout: float = 300.0  # s to wait for a SUMO step before SumoError
    workers: str = "auto"  # "inline" for one libsumo env, else "process" (one per env); "ray": Ray actors
    resco_detectors: bool = False  # read RESCO's detector counts each decision (what its MaxWave/MaxPressure see)


@dataclass(frozen=True)
class TwinModelOptions(_Options):
    """The twin's queue model (defaults from ``benchmarks/calibrate_twin.py`` on the 4x4 grid)."""

    saturation_flow: float = 0.55  # veh/s per lane at green
    permissive_share: float = 0.25  # share of it for permissive (g) movements
    start_wave: float = 1.0  # veh/s of halted vehicles starting to move at green
    yellow_share: float = 0.0  # share of the saturation flow at yellow
    stop_seconds: float = 6.0  # s for a moving queue to come to a halt at red (>= 1)
    demand_bin: int = 60  # s over which the route file's arrivals are averaged


Options = TypeVar("Options", bound=_Options)


def check_options(owner: str, kwargs: dict[str, Any], *types: type[_Options]) -> None:
    """``TypeError`` naming every keyword that no options type has, and the keywords allowed (as
    Python does for a function's keywords)."""
    names = {f.name for kind in types for f in dataclasses.fields(kind)}
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise TypeError(f"{owner}: unknown option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}")


def options_of(kind: type[Options], kwargs: dict[str, Any]) -> Options:
    """The options of type ``kind`` among the keywords (the others belong to other types)."""
    fields = {f.name for f in dataclasses.fields(kind)}
    return kind(**{key: value for key, value in kwargs.items() if key in fields})


class SignalControlSetup(NamedTuple):
    """What both traffic envs build from :class:`SignalControlOptions`."""

    scenario: Scenario
    clock: EpisodeClock
    network: SignalNetwork
    timing: SignalTiming
    observation_space: gym.Space
    action_space: gym.Space
    passed_args: tuple[str, ...]  # SUMO options passed on as given
    read_args: dict[str, str]  # SUMO options ctrlgym reads (begin, end, time_to_teleport, additional, ...)


def prepare_signal_control(owner: str, options: SignalControlOptions) -> SignalControlSetup:
    """Resolve the scenario, the episode clock and the network; check the routes; build the spaces."""
    o = options
    if o.signal_control not in SIGNAL_CONTROLS:
        raise ValueError(f"{owner}: unknown signal_control {o.signal_control!r}; choose one of {SIGNAL_CONTROLS}")
    passed_args, read_args = parse_sumo_args(owner, o.sumo_args)
    scenario = resolve_scenario(
        owner,
        o.scenario,
        rows=o.rows,
        cols=o.cols,
        demand=o.demand,
        lanes=o.lanes,
        route_seed=o.route_seed,
        tls_type=o.tls_type,
        net_file=o.net_file,
        route_file=o.route_file,
        sumocfg=o.sumocfg,
        num_seconds=o.num_seconds,
    )
    clock = episode_clock(owner, scenario, read_args, o.num_seconds, o.delta_time, o.yellow_time, o.max_episode_steps)
    if o.validate_routes:
        check_routes(scenario)
    if o.neighbour_reach < 0:
        raise ValueError(f"{owner}: neighbour_reach must be >= 0 metres, got {o.neighbour_reach}")
    network = SignalNetwork(scenario.net_file, neighbour_reach_m=o.neighbour_reach)
    observation_space, action_space = signal_spaces(owner, network, tuple(o.observation), o.reward, o.single_agent)
    timing = SignalTiming(clock.delta_time, clock.yellow_time, o.min_green, o.max_green)
    return SignalControlSetup(scenario, clock, network, timing, observation_space, action_space, passed_args, read_args)
