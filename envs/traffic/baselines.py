"""Classic signal-control baselines: max-pressure, max-wave and random as policies; fixed-time and
actuated as SUMO's own programs (``signal_control`` set on the env, actions ignored)."""

from __future__ import annotations

import numpy as np
import torch

from ctrlgym.envs.traffic.env import TrafficSignalEnv
from ctrlgym.errors import UsageError
from ctrlgym.registry import Baseline

__all__ = ["BASELINES", "MaxPressure", "MaxWave", "RandomGreens", "ProgramControl"]


class _GreedyGreens:
    """Shared by the greedy controllers: per light and green a weight per lane; the light serves
    the green of largest weighted lane count. When a green has been held ``max_green`` seconds
    the env would force a change, so the best *other* green is served: every green stays reachable."""

    def __init__(self, env: TrafficSignalEnv, weights: np.ndarray, valid: np.ndarray) -> None:
        self.env = env
        self.weights = torch.as_tensor(weights, dtype=torch.float32, device=env.device)  # (agents, greens, lanes)
        self.invalid = torch.as_tensor(~valid, device=env.device)

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        counts = self.env.lane_vehicle_counts()  # (num_envs, n_lanes)
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
    """Greedy "max wave" control (RESCO's strongest classic controller, Ault & Sharon 2021): each
    light serves the green whose incoming lanes (those with a movement it serves) hold the most
    vehicles, approaching or queued. A green held ``max_green`` seconds gives way to the best other.
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
        description="max-pressure: the green with the largest upstream minus downstream queue (Varaiya 2013)",
    ),
    "max_wave": Baseline(
        lambda env, seed: MaxWave(env), description="max-wave: the green serving the most approaching vehicles"
    ),
    "random": Baseline(
        lambda env, seed: RandomGreens(env, seed), description="a uniformly random green at every decision: the floor"
    ),
}
