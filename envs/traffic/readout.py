"""Observations, rewards and metrics from per-lane readings, shared by SUMO and its torch twin.

Both traffic simulators produce the same lane readings, a tensor ``(num_envs, n_lanes, 4)`` of
(vehicles, halting vehicles, summed waiting seconds, mean speed m/s) over the network's lanes in
:attr:`SignalNetwork.all_lanes` order, plus each light's green and whether it may switch. This
module turns them into what the agent sees, so the two envs cannot disagree on a definition.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

from ctrlgym.envs.traffic.network import SignalNetwork

__all__ = [
    "LaneReadout",
    "signal_spaces",
    "OBSERVATION_FEATURES",
    "REWARDS",
    "METRICS",
    "LIGHT_METRICS",
    "VEHICLES",
    "HALTING",
    "WAITING",
    "SPEED",
]

OBSERVATION_FEATURES = ("phase", "min_green", "density", "queue", "neighbours", "pressure")
REWARDS = ("diff_waiting_time", "queue", "pressure", "delay")
METRICS = ("queue_length", "waiting_time", "throughput", "trip_time", "mean_speed", "teleports", "insertion_backlog")
#: per light, shape ``(num_envs, n_lights)``: each light's own halting vehicles and mean waiting time (s) on its incoming lanes
LIGHT_METRICS = ("light_queue_length", "light_waiting_time")
VEHICLES, HALTING, WAITING, SPEED = range(4)


def signal_spaces(owner: str, network: SignalNetwork, observation: tuple[str, ...], reward: str, single_agent: bool):
    """Check the observation features and reward named, and build the (observation, action)
    spaces of a signal network: per light, the features' sizes in order; a green per light."""
    unknown = [f for f in observation if f not in OBSERVATION_FEATURES]
    if unknown or not observation:
        raise ValueError(f"{owner}: unknown observation features {unknown}; choose from {OBSERVATION_FEATURES}")
    if reward not in REWARDS:
        raise ValueError(f"{owner}: unknown reward {reward!r}; choose one of {REWARDS}")
    if single_agent and network.num_agents != 1:
        raise ValueError(
            f"{owner}: single_agent=True needs a one-light scenario, the network has {network.num_agents} lights"
        )
    sizes = {
        "phase": network.max_greens,
        "min_green": 1,
        "density": network.max_lanes,
        "queue": network.max_lanes,
        "neighbours": 1,
        "pressure": network.max_greens,
    }
    obs_dim = sum(sizes[f] for f in observation)
    greens = [light.num_greens for light in network.lights]
    if single_agent:
        return spaces.Box(0.0, 1.0, (obs_dim,), np.float32), spaces.Discrete(greens[0])
    return spaces.Box(0.0, 1.0, (network.num_agents, obs_dim), np.float32), spaces.MultiDiscrete(greens)


class LaneReadout:
    """Per-light views of the lane readings: each light's incoming/outgoing lanes, zero-padded."""

    def __init__(self, network: SignalNetwork, device: torch.device) -> None:
        lane_index = {lane: i for i, lane in enumerate(network.all_lanes)}
        pad = len(lane_index)  # index of a zero row appended at read time
        n, width = network.num_agents, network.max_lanes
        width_out = max(len(light.outgoing_lanes) for light in network.lights)
        in_lanes = torch.full((n, width), pad, dtype=torch.long)
        out_lanes = torch.full((n, width_out), pad, dtype=torch.long)
        capacity, speed_limit = torch.ones(n, width), torch.ones(n, width)
        for a, light in enumerate(network.lights):
            for k, lane in enumerate(light.incoming_lanes):
                in_lanes[a, k] = lane_index[lane]
                capacity[a, k] = light.lane_capacity[lane]
                speed_limit[a, k] = light.lane_speed[lane]
            for k, lane in enumerate(light.outgoing_lanes):
                out_lanes[a, k] = lane_index[lane]
        self.max_greens = network.max_greens
        self.green_index = torch.arange(self.max_greens, device=device)  # the phase feature's one-hot columns
        self.in_lanes, self.out_lanes = in_lanes.to(device), out_lanes.to(device)
        self.capacity = capacity.to(device)  # (n_agents, max_lanes) vehicles a lane holds
        self.speed_limit = speed_limit.to(device)  # (n_agents, max_lanes) m/s
        self.lane_mask = (in_lanes != pad).to(device)
        # max-pressure's weights over each green's movements, (n_agents, max_greens, lanes): their
        # mean density drop, in lanes (+) minus out lanes (-)
        weights, served = network.pressure_weights()
        self.green_serves = torch.as_tensor(
            weights / np.maximum(served, 1)[..., None], dtype=torch.float32, device=device
        )
        self.all_capacity = torch.as_tensor(
            [network.lane_capacity[lane] for lane in network.all_lanes], dtype=torch.float32, device=device
        )  # (lanes,)
        adjacency = torch.as_tensor(network.adjacency, dtype=torch.float32)
        self.neighbour_mean = (adjacency / adjacency.sum(1, keepdim=True).clamp(min=1)).to(device)  # row-normalised

    def _gather(self, lanes: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        padded = torch.cat([lanes, lanes.new_zeros(lanes.shape[0], 1, lanes.shape[2])], dim=1)
        return padded.index_select(1, index.flatten()).reshape(lanes.shape[0], *index.shape, lanes.shape[2])

    def incoming(self, lanes: torch.Tensor) -> torch.Tensor:
        """Readings of each light's incoming lanes, ``(num_envs, n_agents, max_lanes, 4)``; the
        ``incoming`` argument of the methods below (gathered once per step)."""
        return self._gather(lanes, self.in_lanes)

    @staticmethod
    def waiting(incoming: torch.Tensor) -> torch.Tensor:
        """Summed waiting seconds on each light's incoming lanes, ``(num_envs, n_agents)``."""
        return incoming[..., WAITING].sum(-1)

    def delay_rate(self, incoming: torch.Tensor) -> torch.Tensor:
        """Seconds of delay accruing per second on each light's incoming lanes, ``(num_envs, n_agents)``:
        Σ_lanes n·(1 − v̄/v_max) = Σ_vehicles (1 − v/v_max), the rate of the time loss that the
        ``delay`` metric sums per trip (RESCO's delay; SUMO's ``timeLoss``)."""
        slowdown = (1 - incoming[..., SPEED] / self.speed_limit).clamp(0, 1)
        return (incoming[..., VEHICLES] * slowdown).sum(-1)

    def green_pressure(self, lanes: torch.Tensor) -> torch.Tensor:
        """Per light and green, ``(num_envs, n_agents, max_greens)`` in [0, 1]: (1 + p) / 2 with p the
        mean over the green's served movements (l -> m) of density(l) − density(m) (density =
        vehicles / capacity; max-pressure's weight per movement, Varaiya 2013, in lane-size units).
        Above 0.5 the green drains more than it fills; padding greens read 0.5."""
        density = (lanes[..., VEHICLES] / self.all_capacity).clamp(0, 1)
        pressure = torch.einsum("nl,agl->nag", density, self.green_serves)
        return ((1 + pressure) / 2).clamp(0, 1)

    def observe(
        self,
        features: tuple[str, ...],
        lanes: torch.Tensor,
        incoming: torch.Tensor,
        green: torch.Tensor,
        can_switch: torch.Tensor,
    ) -> torch.Tensor:
        """The observation ``(num_envs, n_agents, obs_dim)`` in [0, 1] (see the env docstrings) from
        every lane's readings (``pressure``) and the incoming ones (the rest)."""
        parts = []
        for feature in features:
            if feature == "phase":
                # one-hot by comparison: torch's one_hot reads the values back to check them (no compiled step)
                parts.append((green[..., None] == self.green_index).to(incoming.dtype))
            elif feature == "min_green":
                parts.append(can_switch[..., None].to(incoming.dtype))
            elif feature == "density":
                parts.append((incoming[..., VEHICLES] / self.capacity).clamp(0, 1))
            elif feature == "queue":
                parts.append((incoming[..., HALTING] / self.capacity).clamp(0, 1))
            elif feature == "pressure":
                parts.append(self.green_pressure(lanes))
            else:  # neighbours: mean queue ratio over the neighbouring lights' incoming lanes
                ratio = (incoming[..., HALTING] / self.capacity).clamp(0, 1) * self.lane_mask
                ratio = ratio.sum(-1) / self.lane_mask.sum(-1)
                parts.append((ratio @ self.neighbour_mean.T)[..., None])
        return torch.cat(parts, dim=-1).float()

    def rewards(
        self, name: str, lanes: torch.Tensor, incoming: torch.Tensor, previous_waiting: torch.Tensor
    ) -> torch.Tensor:
        """Per-light rewards ``(num_envs, n_agents)``: ``diff_waiting_time`` (drop in waiting, in
        100 s), ``queue`` (minus halting vehicles), ``pressure`` (minus |in − out vehicles|),
        ``delay`` (minus :meth:`delay_rate`)."""
        if name == "diff_waiting_time":
            return (previous_waiting - incoming[..., WAITING].sum(-1)) / 100.0
        if name == "queue":
            return -incoming[..., HALTING].sum(-1)
        if name == "delay":
            return -self.delay_rate(incoming)
        outgoing = self._gather(lanes, self.out_lanes)[..., VEHICLES].sum(-1)
        return -(incoming[..., VEHICLES].sum(-1) - outgoing).abs()

    def metrics(
        self,
        lanes: torch.Tensor,
        incoming: torch.Tensor,
        arrived: torch.Tensor,
        trip_time: torch.Tensor,
        teleports: torch.Tensor,
        backlog: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Per-env metrics of one step, named as in :data:`METRICS`, and per-light ones (:data:`LIGHT_METRICS`)."""
        vehicles_in = incoming[..., VEHICLES].sum((1, 2))
        waiting = incoming[..., WAITING].sum((1, 2))
        vehicles = lanes[..., VEHICLES].sum(1)
        moving = (lanes[..., SPEED] * lanes[..., VEHICLES]).sum(1)
        values = (
            incoming[..., HALTING].sum(-1).mean(1),  # queue_length: halting vehicles per light
            torch.where(vehicles_in > 0, waiting / vehicles_in.clamp(min=1), 0.0),  # waiting_time per vehicle
            arrived,  # throughput
            trip_time,
            torch.where(vehicles > 0, moving / vehicles.clamp(min=1), 0.0),  # mean_speed
            teleports,
            backlog,  # insertion_backlog: vehicles due to depart, waiting outside the network
        )
        per_light_vehicles = incoming[..., VEHICLES].sum(-1)
        per_light = (
            incoming[..., HALTING].sum(-1),
            torch.where(per_light_vehicles > 0, incoming[..., WAITING].sum(-1) / per_light_vehicles.clamp(min=1), 0.0),
        )
        return {name: value.float() for name, value in zip(METRICS + LIGHT_METRICS, values + per_light, strict=False)}
