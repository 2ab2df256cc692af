"""Classic signal-control baselines: max-pressure, max-wave and random as policies; fixed-time and
actuated as SUMO's own programs (``signal_control`` set on the env, actions ignored).

Two families of greedy controllers. ``max_pressure`` and ``max_wave`` read ctrlgym's lane counts
(every vehicle on a lane's approach, every movement a green serves); ``resco_max_pressure`` and
``resco_max_wave`` follow RESCO's definitions (Ault & Sharon 2021): RESCO's detectors (50 m and
200 m from the stop line, queued vehicles only for the pressure) over the lane groups of a green's
phase pair (right turns out). On RESCO's grid4x4 the two families rank differently.
"""

from __future__ import annotations

import numpy as np
import torch

from ctrlgym.envs.traffic.env import TrafficSignalEnv
from ctrlgym.envs.traffic.network import SignalNetwork, lane_edge
from ctrlgym.errors import UsageError
from ctrlgym.registry import Baseline

__all__ = [
    "BASELINES",
    "MaxPressure",
    "MaxWave",
    "RescoMaxPressure",
    "RescoMaxWave",
    "RandomGreens",
    "ProgramControl",
    "resco_weights",
    "TWIN_BASELINES",
]


class _GreedyGreens:
    """Shared by the greedy controllers: per light and green a weight per lane; the light serves
    the green of largest weighted lane count. When a green has been held ``max_green`` seconds
    the env would force a change, so the best *other* green is served: every green stays reachable."""

    def __init__(self, env: TrafficSignalEnv, weights: np.ndarray, valid: np.ndarray) -> None:
        self.env = env
        self.weights = torch.as_tensor(weights, dtype=torch.float32, device=env.device)  # (agents, greens, lanes)
        self.invalid = torch.as_tensor(~valid, device=env.device)

    def counts(self) -> torch.Tensor:
        """What the weights multiply, per lane ``(num_envs, n_lanes)``: the vehicles on its approach."""
        return self.env.lane_vehicle_counts()

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        counts = self.counts()  # (num_envs, n_lanes)
        score = torch.einsum("nl,agl->nag", counts, self.weights).masked_fill(self.invalid, -torch.inf)
        green, seconds = self.env.signal_state()  # (num_envs, n_agents) each
        held_out = (seconds >= self.env.timing.max_green)[..., None] & (
            torch.arange(score.shape[-1], device=score.device) == green[..., None]
        )
        actions = score.masked_fill(held_out, -torch.inf).argmax(dim=-1)  # (num_envs, n_agents)
        return actions[:, 0] if self.env.single_agent else actions


class MaxPressure(_GreedyGreens):
    r"""Max-pressure control (Varaiya 2013): each light serves the green of largest pressure.

    The pressure of green p at light i is :math:`\sum_{(l, m) \in p} (x_l - x_m)`, the vehicles on
    each served movement's incoming lane l minus those on its outgoing lane m. It reads lane
    counts from the env it is given (they are not all in the observation). A green held
    ``max_green`` seconds gives way to the best other green.
    """

    def __init__(self, env: TrafficSignalEnv) -> None:
        weights, _ = env.network.pressure_weights()  # (agents, greens, lanes)
        valid = (
            np.arange(env.network.max_greens) < np.array([light.num_greens for light in env.network.lights])[:, None]
        )
        super().__init__(env, weights, valid)


class MaxWave(_GreedyGreens):
    """Greedy "max wave" control, ctrlgym's variant: each light serves the green whose incoming
    lanes (every lane with a movement it serves, right turns included) hold the most vehicles,
    approaching or queued, over each lane's whole approach (not RESCO's 50 m: see
    :class:`RescoMaxWave`). A green held ``max_green`` seconds gives way to the best other.
    """

    def __init__(self, env: TrafficSignalEnv) -> None:
        lanes = {lane: k for k, lane in enumerate(env.network.all_lanes)}
        weights = np.zeros((env.num_agents, env.network.max_greens, len(lanes)))
        valid = np.zeros((env.num_agents, env.network.max_greens), dtype=bool)
        for a, light in enumerate(env.network.lights):
            for g in range(light.num_greens):
                valid[a, g] = True
                for in_lane in {in_lane for in_lane, _ in light.served_movements(g)}:
                    weights[a, g, lanes[in_lane]] = 1.0
        super().__init__(env, weights, valid)


def resco_weights(network: SignalNetwork) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The weights of RESCO's two greedy controllers over :attr:`SignalNetwork.all_lanes`, each
    ``(n_agents, max_greens, lanes)``, and which greens exist ``(n_agents, max_greens)``.

    A green's score sums over its lane groups (:meth:`TrafficLight.lane_groups`, RESCO's phase
    pair): the wave weights put 1 on each group's incoming lanes; the pressure weights also put −1
    on the lanes its movements' roads bring to the next light (RESCO's downstream signal's
    inbound lanes; nothing at the network's edge or where the road meets no light first)."""
    column = {lane: k for k, lane in enumerate(network.all_lanes)}
    incoming_on_edge: dict[str, list[str]] = {}
    for light in network.lights:
        for lane in light.incoming_lanes:
            incoming_on_edge.setdefault(lane_edge(lane), []).append(lane)
    shape = (network.num_agents, network.max_greens, len(column))
    wave, pressure = np.zeros(shape), np.zeros(shape)
    valid = np.zeros(shape[:2], dtype=bool)
    for a, light in enumerate(network.lights):
        for g in range(light.num_greens):
            valid[a, g] = True
            for lanes, out_lanes in light.lane_groups(g).values():
                for lane in lanes:
                    wave[a, g, column[lane]] += 1
                    pressure[a, g, column[lane]] += 1
                for edge in dict.fromkeys(lane_edge(lane) for lane in out_lanes):
                    for lane in incoming_on_edge.get(edge, ()):  # lights' incoming lanes: all in all_lanes
                        pressure[a, g, column[lane]] -= 1
    return wave, pressure, valid


class RescoMaxWave(_GreedyGreens):
    """RESCO's MaxWave (Ault & Sharon 2021, ``agents/maxwave.py`` with its ``wave`` state): each
    light serves the green whose lane groups (through and left movements with protected right of
    way: RESCO's phase pair) hold the most vehicles within 50 m of the stop line, queued or
    approaching. Needs the env built with ``resco_detectors=True`` (the ``resco_max_wave``
    baseline sets it). As every ctrlgym controller, a green held ``max_green`` seconds gives way
    to the best other (RESCO has no maximum green).
    """

    def __init__(self, env: TrafficSignalEnv) -> None:
        wave, _, valid = resco_weights(env.network)
        super().__init__(env, wave, valid)

    def counts(self) -> torch.Tensor:
        return self.env.detector_counts()[..., 0]  # vehicles within 50 m


class RescoMaxPressure(_GreedyGreens):
    """RESCO's MaxPressure (Ault & Sharon 2021, ``agents/maxpressure.py`` with its ``mplight``
    state): each light serves the green of largest pressure, summed over its lane groups: the
    *queued* vehicles within 200 m of the stop line on the group's lanes minus those queued on the
    next light's inbound lanes of the roads the group enters (nothing subtracted at the network's
    edge). A vehicle counts as queued from its first halt until it leaves the light's detectors,
    as RESCO keeps it. Needs ``resco_detectors=True`` (the ``resco_max_pressure`` baseline sets
    it). A green held ``max_green`` seconds gives way to the best other.
    """

    def __init__(self, env: TrafficSignalEnv) -> None:
        _, pressure, valid = resco_weights(env.network)
        super().__init__(env, pressure, valid)

    def counts(self) -> torch.Tensor:
        return self.env.detector_counts()[..., 1]  # queued within 200 m


class RandomGreens:
    """A uniformly random green per light (seeded)."""

    def __init__(self, env: TrafficSignalEnv, seed: int = 0) -> None:
        self.env = env
        self.greens = torch.as_tensor([light.num_greens for light in env.network.lights], device=env.device)
        self.generator = torch.Generator(device=env.device).manual_seed(seed)

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        u = torch.rand((self.env.num_envs, self.env.num_agents), generator=self.generator, device=self.env.device)
        actions = torch.minimum((u * self.greens).long(), self.greens - 1)
        return actions[:, 0] if self.env.single_agent else actions


class ProgramControl:
    """Stands for SUMO's own signal program: the env runs with ``signal_control`` set to
    ``fixed_time`` or ``actuated`` and ignores actions, so any valid action does."""

    def __init__(self, env: TrafficSignalEnv) -> None:
        if env.signal_control == "agent":
            raise UsageError("ProgramControl needs an env built with signal_control='fixed_time' or 'actuated'")
        self.env = env

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        shape = (self.env.num_envs,) if self.env.single_agent else (self.env.num_envs, self.env.num_agents)
        return torch.zeros(shape, dtype=torch.long, device=self.env.device)


BASELINES = {  # the registry's baselines of every traffic env
    "fixed_time": Baseline(
        lambda env, seed: ProgramControl(env),
        {"signal_control": "fixed_time"},
        "the network's own fixed-time signal plans (the simulator runs the net file's programs)",
    ),
    "actuated": Baseline(
        lambda env, seed: ProgramControl(env),
        {"signal_control": "actuated"},
        "gap-based actuated control: a green is extended while vehicles arrive (SUMO's detectors; the twin's queues)",
    ),
    "max_pressure": Baseline(
        lambda env, seed: MaxPressure(env),
        description="max-pressure (Varaiya 2013), ctrlgym's: the green whose movements have the most vehicles in minus out, all vehicles on each lane",
    ),
    "max_wave": Baseline(
        lambda env, seed: MaxWave(env),
        description="max-wave, ctrlgym's: the green whose lanes hold the most vehicles, whole approaches, right-turn lanes included",
    ),
    "resco_max_pressure": Baseline(
        lambda env, seed: RescoMaxPressure(env),
        {"resco_detectors": True},
        description="RESCO's MaxPressure: queued vehicles within 200 m on the phase pair's lanes minus those at the next light",
    ),
    "resco_max_wave": Baseline(
        lambda env, seed: RescoMaxWave(env),
        {"resco_detectors": True},
        description="RESCO's MaxWave: vehicles within 50 m of the stop line on the phase pair's lanes (right turns out)",
    ),
    "random": Baseline(
        lambda env, seed: RandomGreens(env, seed), description="a uniformly random green at every decision: the floor"
    ),
}

#: the twin's baselines: all but RESCO's two, which read SUMO's vehicle positions (the twin has lane counts only)
TWIN_BASELINES = {name: baseline for name, baseline in BASELINES.items() if not name.startswith("resco_")}
