"""What a user would write instead of the torch twin: its store-and-forward queue model as a
hand-vectorised numpy batch, with the sums over the network's graph as scipy sparse products.

The network's tables (lanes, movements, turning shares, free-flow times, entry rates, each
light's greens) are read from ctrlgym's parse of the scenario; everything a step does is this
file's own, written from :class:`~ctrlgym.envs.traffic.TrafficTwinEnv`'s docstring: signal
switching (yellow, min and max green), the seconds of traffic, the lane readings, the
observation (phase, min_green, density, queue), the ``diff_waiting_time`` reward, the step's
metrics, the episode's delay at its end, the time limit and next-step autoreset. Agent control
only (the bench's setting: random greens).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sparse
from numpy_peers import NumpyBatch

__all__ = ["NumpyTrafficTwin"]


def _incidence(rows: np.ndarray, count: int, weights: np.ndarray | None = None) -> sparse.csr_matrix:
    """``(count, len(rows))``: column j adds ``weights[j]`` (1) into row ``rows[j]`` — a scatter-add as a product."""
    values = np.ones(len(rows), np.float32) if weights is None else weights.astype(np.float32)
    return sparse.csr_matrix((values, (rows, np.arange(len(rows)))), shape=(count, len(rows)))


class NumpyTrafficTwin(NumpyBatch):
    """The twin's queue model for ``num_envs`` copies of ``env``'s network (a
    :class:`TrafficTwinEnv` with agent control and the default observation and reward), in numpy
    float32, state laid out (lanes or movements, num_envs) as the twin's."""

    def __init__(self, env, num_envs: int, seed: int = 0) -> None:
        if env.signal_control != "agent" or env.reward_name != "diff_waiting_time" or env.single_agent:
            raise ValueError("NumpyTrafficTwin: agent control, the diff_waiting_time reward, multi-agent only")
        if tuple(env.observation_features) != ("phase", "min_green", "density", "queue"):
            raise ValueError("NumpyTrafficTwin: the default observation (phase, min_green, density, queue) only")
        super().__init__(num_envs, env.max_episode_steps, seed, reward_shape=(env.num_agents,))
        table = lambda t, dtype=np.float32: t.detach().cpu().numpy().astype(dtype)  # noqa: E731
        self.timing, self.begin, self.end = env.timing, int(env.clock.begin), int(env.clock.end)
        self.L, self.M, self.A = env.n_lanes, env.n_movements, env.num_agents
        self.sat, self.start_wave, self.yellow_share = env.saturation_flow, env.start_wave, env.yellow_share
        self.stop_rate = env.stop_rate
        self.movement_in, self.movement_light = table(env.movement_in, np.int64), table(env.movement_light, np.int64)
        self.split, self.exit_share = table(env.movement_split), table(env.exit_share)
        self.capacity, self.lane_speed = table(env.lane_capacity), table(env.lane_speed)
        self.green_service, self.num_greens = table(env.green_service), table(env.num_greens, np.int64)
        self.pair_movement, self.pair_lane = table(env.pair_movement, np.int64), table(env.pair_lane, np.int64)
        self.pair_weight = table(env.pair_weight)
        self.ring = env.ring
        # a ring per lane, by the second its vehicles reach the stop line
        self.ring_base = np.arange(self.L) * self.ring
        self.lane_delay = table(env.lane_delay, np.int64)
        self.entry_lanes, self.entry_rate, self.demand_bin = (
            table(env.entry_lanes, np.int64),
            table(env.entry_rate),
            env.demand_bin,
        )
        # the graph's sums as sparse products: movements → their lane, pairs → their lane, pairs → their movement
        self.lane_of_movement = _incidence(self.movement_in, self.L)
        self.lane_of_pair = _incidence(self.pair_lane, self.L)
        self.movement_of_pair = _incidence(self.pair_movement, self.M, self.pair_weight[:, 0])
        readout = env.readout
        self.in_lanes = table(readout.in_lanes, np.int64)  # (lights, width), padding → the zero row L
        self.in_capacity = table(readout.capacity)  # (lights, width)
        self.max_greens = env.network.max_greens
        self._allocate()

    # ------------------------------------------------------------------ state
    def _allocate(self) -> None:
        B, f32 = self.n, np.float32
        self.transit = np.zeros((self.L * self.ring, B), f32)  # vehicles reaching each stop line, by second
        self.vehicles = np.zeros((self.L, B), f32)
        self.queue, self.halting, self.waiting = (np.zeros((self.M, B), f32) for _ in range(3))
        self.backlog = np.zeros((len(self.entry_lanes), B), f32)
        self.arrivals, self.lost, self.arrived_total = (np.zeros(B, f32) for _ in range(3))
        self.green, self.next_green, self.green_time = (np.zeros((B, self.A), np.int64) for _ in range(3))
        self.previous_waiting = np.zeros((B, self.A), f32)
        self.incoming = np.zeros((3, self.A, self.in_lanes.shape[1], B), f32)  # vehicles, halting, waiting
        self.tick, self.time = 0, np.full(B, self.begin, np.int64)

    def restart(self, mask: np.ndarray) -> None:
        for array in (self.transit, self.vehicles, self.queue, self.halting, self.waiting, self.backlog):
            array[:, mask] = 0.0
        for array in (self.arrivals, self.lost, self.arrived_total):
            array[mask] = 0.0
        for array in (self.green, self.next_green, self.green_time, self.previous_waiting):
            array[mask] = 0
        self.incoming[..., mask] = 0.0
        self.time[mask] = self.begin

    # ------------------------------------------------------------------ one decision step
    def arrival_draws(self) -> np.ndarray:
        """Poisson arrivals of every second of the step, ``(delta_time, entry lanes, num_envs)``."""
        seconds = np.arange(self.timing.delta_time)
        bins = np.minimum((self.time + seconds[:, None]) // self.demand_bin, self.entry_rate.shape[1] - 1)
        return self.rng.poisson(self.entry_rate[:, bins].transpose(1, 0, 2)).astype(np.float32)

    def service_under(self, green: np.ndarray) -> np.ndarray:
        """Each movement's share of saturation flow under the greens ``(num_envs, lights)``: ``(movements, num_envs)``."""
        return np.take_along_axis(self.green_service, green.T[self.movement_light], axis=1)

    def transition(self, actions: np.ndarray):
        timing, B = self.timing, self.n
        arrivals = self.arrival_draws()
        vehicle_seconds, arrived = np.zeros(B, np.float32), np.zeros(B, np.float32)
        wanted = np.asarray(actions, np.int64).reshape(B, self.A)
        forced = (self.green_time >= timing.max_green) & (wanted == self.green)
        wanted = np.where(forced, (self.green + 1) % self.num_greens, wanted)
        change = (wanted != self.green) & (self.green_time >= timing.min_green)
        self.next_green = np.where(change, wanted, self.green)
        yellow = timing.yellow_time
        if yellow > 0:
            service = self.service_under(self.green)
            ending = change.T[self.movement_light] & (self.service_under(self.next_green) == 0)
            yellow_service = np.where(ending, self.yellow_share * service, service).astype(np.float32)
            for second in range(yellow):
                self.second(yellow_service, vehicle_seconds, arrived, arrivals[second])
            self.green_time = np.where(change, -yellow, self.green_time)
        else:
            self.green_time = np.where(change, 0, self.green_time)
        self.green = self.next_green
        service = self.service_under(self.green)
        for second in range(yellow, timing.delta_time):
            self.second(service, vehicle_seconds, arrived, arrivals[second])
        self.green_time += timing.delta_time
        return self.readings_rewards_metrics(arrived, vehicle_seconds)

    def second(self, service, vehicle_seconds, arrived, new) -> None:
        """One simulated second for every env (the twin docstring's four rules, in order)."""
        tiny = np.float32(1e-6)
        slot = self.ring_base + self.tick % self.ring
        reaching = self.transit[slot]
        self.transit[slot] = 0.0
        leaving = reaching * self.exit_share
        self.queue += reaching[self.movement_in] * self.split
        self.vehicles -= leaving
        arrived += leaving.sum(0)
        lane_queue = self.lane_of_movement @ self.queue
        head_seconds = self.lane_of_movement @ (self.queue / np.maximum(service, np.float32(1e-3)))
        lane_flow = np.minimum(self.sat * lane_queue / np.maximum(head_seconds, tiny), lane_queue)
        flow = (lane_flow / np.maximum(lane_queue, tiny))[self.movement_in] * self.queue * (service > 0)
        bound = flow[self.pair_movement] * self.pair_weight
        space = np.maximum(self.capacity - self.vehicles, 0)
        fits = np.minimum(space / np.maximum(self.lane_of_pair @ bound, tiny), 1)[self.pair_lane]
        entering = self.lane_of_pair @ (bound * fits)
        flow *= np.minimum(self.movement_of_pair @ fits, 1)
        self.queue -= flow
        self.vehicles -= self.lane_of_movement @ flow
        self.backlog += new
        self.arrivals += new.sum(0)
        room = np.maximum((self.capacity - self.vehicles - entering)[self.entry_lanes], 0)
        admitted = np.minimum(self.backlog, room)
        self.backlog -= admitted
        entering[self.entry_lanes] += admitted
        self.transit[self.ring_base + (self.tick + self.lane_delay) % self.ring] += entering
        self.vehicles += entering
        moving = service > 0
        stopping = self.halting + np.maximum(self.queue - self.halting, 0) * self.stop_rate
        still = np.minimum(np.where(moving, np.maximum(self.halting - self.start_wave, 0), stopping), self.queue)
        self.waiting = np.where(moving, self.waiting * still / np.maximum(self.halting, tiny), self.waiting) + still
        self.halting = still
        vehicle_seconds += self.vehicles.sum(0)
        self.lost += self.queue.sum(0) + self.backlog.sum(0)
        self.tick += 1
        self.time += 1

    def readings_rewards_metrics(self, arrived, vehicle_seconds):
        """Lane readings → each light's incoming lanes → reward, metrics and the episode's figures."""
        halting = self.lane_of_movement @ self.halting
        waiting = self.lane_of_movement @ self.waiting
        speed = self.lane_speed * np.clip(1 - halting / np.maximum(self.vehicles, 1e-6), 0, 1)
        padded = np.zeros((3, self.L + 1, self.n), np.float32)
        padded[0, : self.L], padded[1, : self.L], padded[2, : self.L] = self.vehicles, halting, waiting
        self.incoming = padded[:, self.in_lanes]  # (3, lights, width, num_envs)
        vehicles_in, halting_in, waiting_in = self.incoming.sum(2)  # (lights, num_envs) each
        rewards = (self.previous_waiting - waiting_in.T) / 100.0
        self.previous_waiting = waiting_in.T.copy()
        backlog = self.backlog.sum(0)
        total_in, vehicles = vehicles_in.sum(0), self.vehicles.sum(0)
        self.arrived_total += arrived
        last = self.time >= self.end
        info = {
            "queue_length": halting_in.mean(0),
            "waiting_time": np.where(total_in > 0, waiting_in.sum(0) / np.maximum(total_in, 1), 0.0),
            "throughput": arrived,
            "trip_time": vehicle_seconds,
            "mean_speed": np.where(vehicles > 0, (speed * self.vehicles).sum(0) / np.maximum(vehicles, 1), 0.0),
            "teleports": np.zeros(self.n, np.float32),
            "insertion_backlog": backlog,
            "light_queue_length": halting_in.T,
            "light_waiting_time": np.where(vehicles_in > 0, waiting_in / np.maximum(vehicles_in, 1), 0.0).T,
        }
        episode = {
            "delay": self.lost / np.maximum(self.arrivals, 1),
            "arrived": self.arrived_total.copy(),
            "vehicles": self.arrivals.copy(),
            "final_backlog": backlog,
        }
        for key, value in episode.items():
            info[key], info[f"_{key}"] = value, last
        return rewards, info

    def observe(self) -> np.ndarray:
        """``(num_envs, lights, obs_dim)``: one-hot green, may switch, then density and queue per incoming lane."""
        G, W = self.max_greens, self.in_lanes.shape[1]
        obs = np.zeros((self.n, self.A, G + 1 + 2 * W), np.float32)
        np.put_along_axis(obs, self.green[..., None], 1.0, axis=2)
        obs[..., G] = self.green_time >= self.timing.min_green
        obs[..., G + 1 : G + 1 + W] = np.clip(self.incoming[0] / self.in_capacity[..., None], 0, 1).transpose(2, 0, 1)
        obs[..., G + 1 + W :] = np.clip(self.incoming[1] / self.in_capacity[..., None], 0, 1).transpose(2, 0, 1)
        return obs
