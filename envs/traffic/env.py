"""Traffic signal control on real SUMO: one agent per traffic light, a batch of simulations."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from ctrlgym.envs.traffic.network import SignalNetwork
from ctrlgym.envs.traffic.readout import OBSERVATION_FEATURES, REWARDS, LaneReadout, signal_spaces
from ctrlgym.envs.traffic.scenarios import Scenario, resolve_scenario
from ctrlgym.envs.traffic.simulation import SignalTiming
from ctrlgym.envs.traffic.workers import SumoError, SumoWorkers

from ctrlgym.vector_env import AutoresetMode, TorchVectorEnv

__all__ = ["TrafficSignalEnv", "SingleIntersection", "OBSERVATION_FEATURES", "REWARDS"]



class TrafficSignalEnv(TorchVectorEnv):
    r"""Signal control of a SUMO network: each traffic light picks its next green phase.

    ## Description
    A batch of ``num_envs`` SUMO simulations of one scenario (``libsumo`` by default, ``traci``
    by choice), each in a worker process. Every ``delta_time`` simulated seconds each light
    (agent) chooses one of its green phases, taken from the network's own signal program. A
    change shows the yellow state for ``yellow_time`` seconds first; a request before
    ``min_green`` seconds of green is held; a green held ``max_green`` seconds is ended. The
    setting of multi-agent traffic-signal RL (sumo-rl, RESCO) and of the Nash DQN paper
    (Zhang, Wang & Jiang, arXiv 2301.00637).

    ## Action Space
    ``MultiDiscrete([greens_1, ..., greens_n])``: the green phase index per light, shape
    ``(num_envs, n_agents)``. With ``signal_control="fixed_time"`` or ``"actuated"`` SUMO runs the
    network's own programs and actions are ignored (the classic baselines).

    ## Observation Space
    ``Box(0, 1, (n_agents, obs_dim))``, per light, by the ``observation`` features chosen:

    | feature | size | meaning |
    |---|---|---|
    | ``phase`` | max greens | one-hot of the current green |
    | ``min_green`` | 1 | 1 if the light may switch now |
    | ``density`` | max lanes | vehicles / capacity (length / 7.5 m) per incoming lane |
    | ``queue`` | max lanes | halting vehicles / capacity per incoming lane |
    | ``neighbours`` | 1 | mean queue ratio over the neighbouring lights' incoming lanes |

    Lights with fewer lanes or greens are zero-padded. ``agent_ids`` and ``neighbour_graph``
    (a bool tensor ``(n_agents, n_agents)``) describe the agents.

    ## Rewards
    Per light, shape ``(num_envs, n_agents)``, by ``reward``: ``diff_waiting_time`` (default; the
    drop in total waiting time on its incoming lanes, in 100 s), ``queue`` (minus its halting
    vehicles), ``pressure`` (minus |vehicles on incoming − vehicles on outgoing lanes|).

    ## Metrics (``info``, per env and step)
    ``queue_length`` (halting vehicles per light), ``waiting_time`` (mean accumulated waiting
    time of the vehicles on controlled lanes, s), ``throughput`` (vehicles that finished their
    trip in the step), ``mean_speed`` (m/s), ``trip_time`` (summed travel times of those trips;
    ``evaluate`` reports ``travel_time`` = Σ trip_time / Σ throughput), ``teleports``.

    ## Starting State
    The scenario's routes from time 0, SUMO seeded from the batch generator; all lights on
    their first green (agent control).

    ## Episode End
    * Termination: never. * Truncation: after ``num_seconds`` simulated seconds.

    ## Arguments
    ``scenario`` (``"single"``, ``"arterial"``, ``"grid"`` or a :class:`Scenario`), ``rows``,
    ``cols``, ``demand`` (veh/h), ``lanes``, ``route_seed``, ``tls_type`` for built-in scenarios;
    ``net_file`` + ``route_file`` or ``sumocfg`` for your own network; ``backend``,
    ``signal_control``, ``delta_time``, ``yellow_time``, ``min_green``, ``max_green``,
    ``observation``, ``reward``, ``num_seconds``, ``gui`` (``sumo-gui`` to watch),
    ``max_teleports`` (raise ``SumoError`` when an episode exceeds it).

    ## Examples
    >>> env = TrafficSignalEnv(num_envs=2, scenario="grid")        # doctest: +SKIP
    >>> obs, info = env.reset(seed=0)                                # (2, 16, 11)

    ## Version History
    * v0: initial version.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}
    multi_agent = True
    #: evaluation reports travel_time = Σ trip_time / Σ throughput over an episode
    ratio_metrics = {"travel_time": ("trip_time", "throughput")}

    def __init__(
        self,
        num_envs: int = 1,
        *,
        scenario: str | Scenario = "grid",
        rows: int = 4,
        cols: int = 4,
        demand: float = 2400.0,
        lanes: int = 1,
        route_seed: int = 0,
        tls_type: str = "actuated",
        net_file: str | Path | None = None,
        route_file: str | Path | Sequence[str | Path] | None = None,
        sumocfg: str | Path | None = None,
        backend: str = "libsumo",
        signal_control: str = "agent",
        delta_time: int = 5,
        yellow_time: int = 2,
        min_green: int = 5,
        max_green: int = 60,
        observation: Sequence[str] = ("phase", "min_green", "density", "queue"),
        reward: str = "diff_waiting_time",
        num_seconds: int = 3600,
        max_episode_steps: int | None = None,
        gui: bool = False,
        time_to_teleport: int = 300,
        max_teleports: int | None = None,
        single_agent: bool = False,
        device: str | torch.device = "cpu",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        validate_actions: bool = True,
    ) -> None:
        name = type(self).__name__
        self.scenario = resolve_scenario(
            name, scenario, rows=rows, cols=cols, demand=demand, lanes=lanes, route_seed=route_seed, tls_type=tls_type,
            net_file=net_file, route_file=route_file, sumocfg=sumocfg, num_seconds=num_seconds,
        )  # fmt: skip
        if gui:
            backend = "traci"  # libsumo from PyPI runs without a GUI; sumo-gui is driven over traci
        self.network = SignalNetwork(self.scenario.net_file)
        observation_space, action_space = signal_spaces(name, self.network, tuple(observation), reward, single_agent)
        self.timing = SignalTiming(delta_time, yellow_time, min_green, max_green)
        self.observation_features = tuple(observation)
        self.reward_name = reward
        self.max_teleports = max_teleports
        self.single_agent = single_agent
        self.agent_ids, self.num_agents = self.network.agent_ids, self.network.num_agents
        self.reward_shape = () if single_agent else (self.num_agents,)
        if max_episode_steps is None:
            max_episode_steps = max(1, num_seconds // delta_time)
        super().__init__(
            num_envs,
            observation_space,
            action_space,
            device=device,
            max_episode_steps=max_episode_steps,
            autoreset_mode=autoreset_mode,
            validate_actions=validate_actions,
        )
        self.neighbour_graph = torch.as_tensor(self.network.adjacency, device=self.device)  # (n_agents, n_agents)
        self.readout = LaneReadout(self.network, self.device)
        self.workers = SumoWorkers(
            self.num_envs,
            {
                "scenario": self.scenario,
                "network": self.network,
                "timing": self.timing,
                "backend": backend,
                "signal_control": signal_control,
                "gui": gui,
                "time_to_teleport": time_to_teleport,
            },
            self.scenario.name,
        )
        self.backend, self.signal_control = backend, signal_control
        lanes_total, n_agents = len(self.network.all_lanes), self.num_agents
        self._lanes = np.zeros((self.num_envs, lanes_total, 4))  # (num_envs, n_lanes, [vehicles, halting, waiting, speed])
        self._green = np.zeros((self.num_envs, n_agents), dtype=np.int64)
        self._can_switch = np.zeros((self.num_envs, n_agents), dtype=bool)
        self._waiting = torch.zeros((self.num_envs, n_agents), device=self.device)
        self._teleports = np.zeros(self.num_envs)

    # ------------------------------------------------------------------ TorchVectorEnv
    def _store(self, i: int, readings: dict) -> None:
        self._lanes[i] = readings["lanes"]
        self._green[i] = readings["green"]
        self._can_switch[i] = readings["can_switch"]

    def _lane_tensor(self) -> torch.Tensor:
        return torch.as_tensor(self._lanes, dtype=torch.float32, device=self.device)  # one copy per step

    def _reset_envs(self, mask: torch.Tensor) -> None:
        indices = np.flatnonzero(mask.cpu().numpy())
        if indices.size == 0:  # the autoreset modes ask every step; most steps reset nothing
            return
        seeds = torch.randint(0, 2**31 - 1, (self.num_envs,), generator=self.generator, device=self.device).cpu().numpy()
        try:
            started = self.workers.start({int(i): int(seeds[i]) for i in indices})
        except SumoError:
            self._has_reset = False
            raise
        for i, readings in started.items():
            self._store(i, readings)
            self._teleports[i] = 0.0
        self._waiting = torch.where(mask[:, None], self.readout.waiting(self.readout.incoming(self._lane_tensor())), self._waiting)

    def _step_envs(self, actions: torch.Tensor):
        greens = actions.reshape(self.num_envs, -1).cpu().numpy()
        try:
            results = self.workers.step(list(greens))
        except SumoError:
            self._has_reset = False  # the batch must be reset before it steps again
            raise
        counts = np.zeros((3, self.num_envs))  # arrived, trip_time, teleports
        for i, readings in enumerate(results):
            self._store(i, readings)
            counts[:, i] = readings["arrived"], readings["trip_time"], readings["teleports"]
        self._teleports += counts[2]
        if self.max_teleports is not None and (self._teleports > self.max_teleports).any():
            worst = int(np.argmax(self._teleports))
            self._has_reset = False
            raise SumoError(
                f"scenario {self.scenario.name}, env {worst}: teleport storm, {int(self._teleports[worst])} teleports "
                f"this episode (max_teleports={self.max_teleports}); the network is gridlocked"
            )
        lanes = self._lane_tensor()
        incoming = self.readout.incoming(lanes)
        rewards = self.readout.rewards(self.reward_name, lanes, incoming, self._waiting)
        self._waiting = self.readout.waiting(incoming)
        info = self.readout.metrics(lanes, incoming, *torch.as_tensor(counts, dtype=torch.float32, device=self.device))
        if self.single_agent:
            rewards = rewards[:, 0]
        terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return rewards, terminated, info

    def _observe(self) -> torch.Tensor:
        green = torch.as_tensor(self._green, device=self.device)
        can_switch = torch.as_tensor(self._can_switch, device=self.device)
        obs = self.readout.observe(self.observation_features, self.readout.incoming(self._lane_tensor()), green, can_switch)
        return obs[:, 0] if self.single_agent else obs  # (num_envs, [n_agents,] obs_dim)

    def lane_vehicle_counts(self) -> torch.Tensor:
        """Vehicles on every controlled lane (incoming and outgoing), ``(num_envs, n_lanes)``."""
        return self._lane_tensor()[..., 0]

    def close(self, **kwargs) -> None:
        if not getattr(self, "closed", False) and hasattr(self, "workers"):
            self.workers.close()
        super().close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class SingleIntersection(TrafficSignalEnv):
    """One signalised 4-arm intersection as a single-agent env (flat observation, Discrete action).

    The same model as :class:`TrafficSignalEnv` with ``scenario="single"`` and
    ``single_agent=True``; this is the one to use with Gymnasium's single-env API and SB3.
    """

    multi_agent = False

    def __init__(self, num_envs: int = 1, *, demand: float = 1000.0, num_seconds: int = 1800, **kwargs) -> None:
        kwargs.setdefault("scenario", "single")
        super().__init__(num_envs, demand=demand, num_seconds=num_seconds, single_agent=True, **kwargs)
