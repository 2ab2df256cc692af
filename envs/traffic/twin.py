"""The torch twin of a SUMO signal network: a batched store-and-forward queue model."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from ctrlgym.compiled import Compiled
from ctrlgym.envs.traffic.options import (
    SignalControlOptions,
    SumoProcessOptions,
    TwinModelOptions,
    check_options,
    options_of,
    prepare_signal_control,
)
from ctrlgym.envs.traffic.readout import LaneReadout
from ctrlgym.envs.traffic.scenarios import Scenario
from ctrlgym.envs.traffic.simulation import METRIC_DESCRIPTIONS
from ctrlgym.envs.traffic.twin_network import QueueNetwork
from ctrlgym.vector_env import AutoresetMode, TorchVectorEnv

__all__ = ["TrafficTwinEnv", "SingleIntersectionTwin"]


#: the state a reset zeroes, each laid out (rows, num_envs)
RESET_TO_ZERO = (
    "transit",
    "vehicles",
    "queue",
    "halting",
    "waiting",
    "backlog",
    "arrivals",
    "lost_seconds",
    "arrived_total",
    "phase_time",
    "phase",
)
#: the state a compiled step reads and returns anew (``_allocate`` creates it); ``transit``, a large ring
#: of which a step writes a few rows, is written in place instead
TWIN_STATE = (
    *(name for name in RESET_TO_ZERO if name != "transit"),
    "time",
    "green",
    "next_green",
    "green_time",
    "_previous_waiting",
    "_incoming",
    "_lanes",
    "tick",
)
#: what a compiled step takes besides the actions and arrivals
TWIN_INPUTS = (*TWIN_STATE, "transit")
#: the state laid out (num_envs, …) rather than (rows, num_envs); ``tick`` is one counter for the batch
BATCH_FIRST = frozenset({"time", "green", "next_green", "green_time", "_previous_waiting", "_incoming", "_lanes"})


#: inductor inlines a value read by up to ``realize_reads_threshold`` (4) loops into each of them; the
#: twin's step reads its service shares and lane sums in several loops a second, and recomputing them
#: there (a gather per element) costs more than storing them once: 2 measured 1.55x (4x4 grid) and
#: 1.79x (cologne8) the default's decisions/s at 256 envs on one CPU thread (1 and 3 gained less)
CPU_INDUCTOR_CONFIG = {"realize_reads_threshold": 2}


def _advance_from(constants: tuple, *tensors: torch.Tensor):
    """``env._advance(actions, arrivals)`` with the state and ``transit`` given as tensors (what
    :class:`Compiled` traces): returns the new state and the step's results, and writes the step's
    entries into the given ``transit`` in place; the env's own attributes are left as they were."""
    (env,) = constants
    saved = {name: getattr(env, name) for name in (*TWIN_INPUTS, "num_envs", "_traced")}
    try:
        for name, value in zip(TWIN_INPUTS, tensors, strict=False):
            setattr(env, name, value)
        env._traced = True  # sums as gathers, which inductor fuses
        env.num_envs = tensors[TWIN_STATE.index("time")].shape[0]  # a chunk of the batch, or all of it
        out = env._advance(*tensors[len(TWIN_INPUTS) :])
        # contiguous, as allocated: the next step's inputs keep the layout the graph was compiled for
        return tuple(getattr(env, name).contiguous() for name in TWIN_STATE), out
    finally:
        for name, value in saved.items():
            setattr(env, name, value)


class Members(NamedTuple):
    """Items grouped by the row they add into, item ``i`` into row ``owner[i]``: ``owner`` for one
    scatter-add, and a padded table of each row's items in increasing order, ``table`` ``(width,
    rows)`` (0 past a row's last) and ``valid`` ``(width, rows, 1)``, for the same sums as gathers."""

    owner: torch.Tensor
    table: torch.Tensor
    valid: torch.Tensor

    @classmethod
    def of(cls, owner: np.ndarray, rows: int, device: torch.device) -> Members:
        owner = np.asarray(owner, dtype=np.int64)
        order = np.argsort(owner, kind="stable")  # items grouped by row, in increasing order within each
        counts = np.bincount(owner, minlength=rows)
        position = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)  # rank within its row
        index = np.zeros((max(1, counts.max(initial=0)), rows), dtype=np.int64)
        index[position, owner[order]] = order
        valid = np.arange(index.shape[0])[:, None] < counts[None, :]
        return cls(*(torch.as_tensor(a, device=device) for a in (owner, index, valid[..., None])))

    def sum(self, values: torch.Tensor, gathered: bool) -> torch.Tensor:
        """Σ of each row's items of ``values`` ``(items, num_envs)``: one ``index_add_`` (eager on the CPU:
        one op), or ``gathered`` in index_add_'s CPU order (a traced step: inductor fuses gathers, where
        it runs a scatter-add as a pass of its own; and on a GPU, whose atomics add in no fixed order).
        The same floats either way."""
        if not gathered:
            return values.new_zeros(self.table.shape[1], *values.shape[1:]).index_add_(0, self.owner, values)
        total = torch.where(self.valid[0], values.index_select(0, self.table[0]), 0.0)
        for k in range(1, len(self.table)):
            total = total + torch.where(self.valid[k], values.index_select(0, self.table[k]), 0.0)
        return total

    def add(self, target: torch.Tensor, values: torch.Tensor, gathered: bool, alpha: float = 1.0) -> torch.Tensor:
        """``target`` plus ``alpha`` times each row's items of ``values``, one at a time in index order:
        ``target.index_add_(0, owner, values, alpha=alpha)`` (in place when eager)."""
        if not gathered:
            return target.index_add_(0, self.owner, values, alpha=alpha)
        for k in range(len(self.table)):
            target = target + alpha * torch.where(self.valid[k], values.index_select(0, self.table[k]), 0.0)
        return target


class TrafficTwinEnv(TorchVectorEnv):
    r"""The signal network of a SUMO scenario as a batched queue model in torch (CPU or GPU).

    ## Description
    The same network, routes, agents, actions, observations, rewards and metrics as
    :class:`TrafficSignalEnv`, simulated second by second as a store-and-forward queue network
    (Aboudolas, Papageorgiou & Kosmatopoulos 2009; the point-queue model of max-pressure,
    Varaiya 2013) for ``num_envs`` copies at once. Built from the scenario's ``.net.xml`` and
    route file by :class:`QueueNetwork`. Per lane ``l`` and movement ``m = (l → b)``, each second:

    * vehicles entering ``l`` reach its stop line after the free-flow time ``⌈length/speed⌉``;
      there they join the queue ``x_m`` of their movement with the turning share ``p_m`` (or
      leave the network, on exit lanes);
    * a lane discharges first in first out: its queue ``X_l = Σ_{m ∈ l} x_m`` leaves at the rate
      ``min(X_l, s / Σ_m (x_m / X_l) / σ_m)``, each movement in proportion to its queue (red
      movements hold theirs): saturation flow ``s`` (veh/s per lane), signal share ``σ_m`` (1 for
      ``G``, ``permissive_share`` for ``g``, ``yellow_share`` for yellow, 0 for red), so a slow
      or red vehicle at the head holds the lane; where a route runs from one light's outgoing
      edge to the next light's incoming edge with no light between (a priority junction, or
      unmodelled roads), an unsignalled *transfer* movement with ``σ = 1`` carries it on, so the
      vehicle stays in the network (the roads between are crossed in no time);
    * spill-back, per lane: a movement sends the share ``w_l`` of its discharge to each lane ``l``
      of its out-edge (the routes' lane shares); lane ``l`` takes ``min(1, space_l / demand_l)``
      of what is sent to it, with ``space_l = length_l / 7.5 m − vehicles_l``, and the rest waits
      at its stop line (a full lane cannot overfill while its edge's other lanes have room);
    * new vehicles enter at the network's edge as Poisson arrivals with the route file's rates
      (averaged per ``demand_bin`` seconds), wait outside while the entry lane is full;
    * at red, queued vehicles come to a halt, ``1/stop_seconds`` of the still-moving ones per
      second (they brake first); at green the halted ones start moving at ``start_wave`` veh/s
      (the start-up wave); a halting vehicle's waiting time grows by one second.

    Signals follow :class:`TrafficSignalEnv`'s rules exactly: a change shows yellow for
    ``yellow_time`` seconds, requests before ``min_green`` are held, ``max_green`` ends a green.
    ``signal_control="fixed_time"`` runs each light's own program with its durations,
    ``"actuated"`` with the program's min/max durations, a green ending (after its minimum)
    when its movements have less than one vehicle queued.

    ## Action, Observation, Rewards, Metrics
    As :class:`TrafficSignalEnv`: ``MultiDiscrete`` greens ``(num_envs, n_agents)``; observation
    ``(num_envs, n_agents, obs_dim)`` from the same lane readings (vehicles, halting vehicles,
    waiting seconds, mean speed per lane); rewards ``(num_envs, n_agents)``; the same metric
    names. Quantities are fluid (fractional vehicles). ``trip_time`` is the vehicle-seconds
    spent in the network in the step, so ``travel_time`` = Σ trip_time / Σ throughput is the
    mean trip time by Little's law. ``teleports`` is always 0. At each episode's last step (masks
    ``info["_delay"]`` …): ``delay`` (s per vehicle due to depart: the vehicle-seconds spent queued
    at stop lines or waiting to enter, per vehicle; SUMO's ``timeLoss + departDelay`` less the
    losses of braking and accelerating), ``arrived``, ``vehicles`` (due to depart), ``final_backlog``.

    ## Arguments
    ``compile=True`` traces each decision step (all its seconds, the readings and the rewards) and
    compiles it with TorchInductor (:class:`ctrlgym.compiled.Compiled`): the first step of each
    batch size compiles (tens of seconds), later steps run as a few fused kernels. On the CPU a
    batch larger than ``env.compile_chunk`` (256) envs runs that many at a time, each chunk's state
    staying in the caches through its seconds (the same results; ``bench_twin.py --chunks`` measures it). Its results
    agree with the eager step to float32 rounding (inductor fuses and reorders float operations),
    not bit for bit. Keywords of :class:`~ctrlgym.envs.traffic.options.SignalControlOptions` (the problem, as for
    :class:`TrafficSignalEnv`; ``env.options`` holds them) and
    :class:`~ctrlgym.envs.traffic.options.TwinModelOptions` (the queue model); all of
    :class:`TrafficSignalEnv`'s keywords are accepted, so a config switches between SUMO and the twin by the
    env name alone. Options of the SUMO processes (``gui``, ``max_teleports``, ``step_timeout``,
    ``workers``, ``backend``) raise a ``ValueError`` when set to anything but their defaults;
    ``sumo_args`` set the episode's begin and end as for SUMO; ``time_to_teleport`` has no
    effect (the twin never teleports). ``signal_control="actuated"`` on static programs actuates their greens
    between ``min_green`` and ``max_green``, as the SUMO env's built actuated programs do. Model parameters: ``saturation_flow``
    (veh/s per lane), ``permissive_share``, ``yellow_share``, ``start_wave`` (veh/s), ``stop_seconds`` (≥ 1 s), ``demand_bin`` (s); the
    defaults come from ``benchmarks/calibrate_twin.py`` on the 4x4 grid; a RESCO map may bring its own
    (``scenarios.RESCO_TWIN_PARAMETERS``), which keywords given here override (``env.model_options`` holds those in use).

    ## Examples
    >>> env = TrafficTwinEnv(num_envs=4096, scenario="grid")        # 4096 copies of the 4x4 grid in one batch
    >>> obs, info = env.reset(seed=0)
    >>> tuple(obs.shape)
    (4096, 16, 11)

    ## Version History
    * v0: initial version.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}
    multi_agent = True
    ratio_metrics = {"travel_time": ("trip_time", "throughput")}
    metric_descriptions = METRIC_DESCRIPTIONS
    #: what reports rank policies by beside the return: RESCO's average delay per vehicle
    headline_metric = ("delay", False)
    #: at each episode's last step: delay ≈ vehicle-seconds queued at stop lines or waiting to enter, per
    #: vehicle due to depart (SUMO's timeLoss + departDelay without the losses of braking and accelerating)
    final_metrics = ("delay", "arrived", "vehicles", "final_backlog")
    report_metrics = (
        "delay",
        "final_backlog",
        "insertion_backlog",
        "waiting_time",
        "queue_length",
        "travel_time",
        "throughput",
        "arrived",
    )

    #: the keyword options the constructor takes (config validation reads their fields and types)
    option_types = (SignalControlOptions, TwinModelOptions, SumoProcessOptions)

    def __init__(
        self,
        num_envs: int = 1,
        *,
        device: str | torch.device = "cpu",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        validate_actions: bool = True,
        compile: bool = False,
        # SignalControlOptions
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
        sumo_args: Sequence[str] = (),
        time_to_teleport: float | None = None,
        validate_routes: bool = True,
        signal_control: str = "agent",
        delta_time: int | None = None,
        yellow_time: int | None = None,
        min_green: int = 5,
        max_green: int = 60,
        observation: Sequence[str] = ("phase", "min_green", "density", "queue"),
        reward: str = "diff_waiting_time",
        num_seconds: int | None = None,
        max_episode_steps: int | None = None,
        single_agent: bool = False,
        neighbour_reach: float = 0.0,
        # TwinModelOptions, None: the map's calibrated value (RESCO_TWIN_PARAMETERS), else the model's default
        saturation_flow: float | None = None,
        permissive_share: float | None = None,
        start_wave: float | None = None,
        yellow_share: float | None = None,
        stop_seconds: float | None = None,
        demand_bin: int | None = None,
        # SumoProcessOptions: accepted so a config can switch between the SUMO env and the twin; refused when set
        backend: str = "libsumo",
        gui: bool = False,
        max_teleports: int | None = None,
        step_timeout: float = 300.0,
        workers: str = "auto",
        resco_detectors: bool = False,
        **unknown: Any,
    ) -> None:
        name = type(self).__name__
        given = locals()
        check_options(name, unknown, SignalControlOptions, TwinModelOptions, SumoProcessOptions)  # a misspelt option
        self.options = options_of(SignalControlOptions, given)
        chosen = {f.name: given[f.name] for f in dataclasses.fields(TwinModelOptions) if given[f.name] is not None}
        process = options_of(SumoProcessOptions, given)
        sumo_only = process.as_kwargs()  # accepted as keywords (a config switches envs by name), refused when set
        if sumo_only:
            changed = ", ".join(f"{key}={value!r}" for key, value in sumo_only.items())
            raise ValueError(
                f"{name}: {changed} set options of the SUMO processes, which the twin does not run; drop them or use TrafficSignalEnv"
            )
        o = self.options
        setup = prepare_signal_control(name, o)
        calibrated = setup.scenario.defaults.get("twin", {})
        self.model_options = model = TwinModelOptions(
            **{**calibrated, **chosen}
        )  # given, else calibrated, else default
        positive = {
            "saturation_flow": model.saturation_flow,
            "start_wave": model.start_wave,
            "demand_bin": model.demand_bin,
        }
        for label, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name}: {label} must be > 0, got {value}")
        if not model.stop_seconds >= 1:
            raise ValueError(f"{name}: stop_seconds must be >= 1, got {model.stop_seconds}")
        for label, value in (("permissive_share", model.permissive_share), ("yellow_share", model.yellow_share)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name}: {label} must be in [0, 1], got {value}")
        self.scenario, self.network, self.timing, self.clock = setup.scenario, setup.network, setup.timing, setup.clock
        self.model = QueueNetwork(
            self.scenario,
            self.network,
            permissive_share=model.permissive_share,
            yellow_share=model.yellow_share,
            demand_bin=model.demand_bin,
        )
        if (
            o.signal_control == "actuated"
        ):  # static programs actuate between min_green and max_green, as the SUMO env builds them
            static = ~self.model.program_actuated
            self.model.phase_min[static] = np.where(
                self.model.phase_green[static], o.min_green, self.model.phase_min[static]
            )
            self.model.phase_max[static] = np.where(
                self.model.phase_green[static], o.max_green, self.model.phase_max[static]
            )
        self.signal_control, self.backend = o.signal_control, process.backend
        self.observation_features = tuple(o.observation)
        self.reward_name = o.reward
        self.single_agent = o.single_agent
        self.saturation_flow, self.start_wave, self.yellow_share = (
            float(model.saturation_flow),
            float(model.start_wave),
            float(model.yellow_share),
        )
        self.stop_rate = 1.0 / float(
            model.stop_seconds
        )  # share of the still-moving queue that comes to a halt each second
        self.agent_ids, self.num_agents = self.network.agent_ids, self.network.num_agents
        self.reward_shape = () if o.single_agent else (self.num_agents,)
        greens = [light.num_greens for light in self.network.lights]
        super().__init__(
            num_envs,
            setup.observation_space,
            setup.action_space,
            device=device,
            max_episode_steps=setup.clock.max_episode_steps,
            autoreset_mode=autoreset_mode,
            validate_actions=validate_actions,
        )
        self.compile = bool(compile)  # the decision step (every second of it) traced and compiled as one graph
        self._traced = False  # True while Compiled traces the step (_advance_from)
        self._stepped_observation: torch.Tensor | None = None  # what the last step observed, until observed
        self._observed: torch.Tensor | None = None  # same-step mode: a copy of what was observed, until a step
        self._reset_observation: torch.Tensor | None = None  # what a just-reset env observes (one env's)
        self._compiled_advance = Compiled(_advance_from, CPU_INDUCTOR_CONFIG if self.device.type == "cpu" else None)
        self.compile_chunk = 256  # envs per compiled call on the CPU (bench_twin.py --chunks measures it)
        self.neighbour_graph = torch.as_tensor(self.network.adjacency, device=self.device)
        self.readout = LaneReadout(self.network, self.device)
        self._build_tables(torch.tensor(greens))
        self._allocate()

    # ------------------------------------------------------------------ tables and state
    # State is laid out (lanes or movements, num_envs): gathers and scatters over the network's
    # rows then move whole contiguous rows of the batch, on CPU and GPU alike.
    def _build_tables(self, greens: torch.Tensor) -> None:
        model, device = self.model, self.device
        tensor = lambda a, dtype=torch.float32: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731
        column = lambda a: tensor(a)[:, None]  # noqa: E731  (rows, 1): broadcasts over the batch
        self.n_lanes, self.n_movements = len(model.lanes), model.num_movements
        self.num_greens = greens.to(device)
        self.lane_movements = Members.of(model.movement_in, self.n_lanes, device)  # Σ over a lane's movements
        self.movement_in = self.lane_movements.owner
        # a transfer's rows read 1.0 under any light's state
        self.light_movements = Members.of(model.movement_light.clip(min=0), len(model.phase_duration), device)
        self.movement_light = self.light_movements.owner
        self.movement_signalled = column(model.movement_light >= 0)
        self.movement_split = column(model.movement_split)
        self.exit_share = column(model.exit_share)
        self.lane_capacity = column(model.capacity)
        self.lane_speed = column(model.speed)
        self.green_service = tensor(model.green_service)  # (movements, max greens)
        self.phase_service = tensor(model.phase_service)  # (movements, max phases)
        self.program_phases = tensor(model.program_phases, torch.long)[:, None]
        self.phase_duration = tensor(model.phase_duration)  # (lights, max phases)
        self.phase_min, self.phase_max = tensor(model.phase_min), tensor(model.phase_max)
        self.phase_green = tensor(model.phase_green, torch.bool)
        self.phase_to_green = tensor(model.phase_green_index, torch.long)
        pairs = np.array(model.inflow_pairs) if model.inflow_pairs else np.zeros((0, 3))
        self.pair_weight = column(pairs[:, 2])
        self.lane_pairs = Members.of(pairs[:, 1], self.n_lanes, device)  # Σ over the pairs into a lane
        self.movement_pairs = Members.of(pairs[:, 0], self.n_movements, device)  # Σ over a movement's pairs
        self.pair_movement, self.pair_lane = self.movement_pairs.owner, self.lane_pairs.owner
        delay = model.free_flow_seconds()  # at least 1 s: a vehicle reaches the stop line in a later second
        # the last max-delay seconds, and the step's: rows a step writes (its own seconds) are never
        # rows it reads, so writing them in place cannot race the reads, however a kernel orders them
        self.ring = int(delay.max()) + self.timing.delta_time
        self.lane_delay = tensor(delay, torch.long)
        self.lane_index = torch.arange(self.n_lanes, device=device)
        self.within_step = [  # per second of a step: the lanes reached by vehicles that entered earlier in it
            (
                column(delay <= second).bool(),
                tensor(((second - delay) * self.n_lanes).clip(min=0), torch.long) + self.lane_index,
            )
            if (delay <= second).any()
            else None
            for second in range(self.timing.delta_time)
        ]
        entry = np.flatnonzero(model.entry_rate.sum(0) > 0)
        self.lane_entries = Members.of(entry, self.n_lanes, device)  # each lane's entry row, if it has one
        self.entry_lanes = self.lane_entries.owner
        rates = np.concatenate(
            [model.entry_rate[:, entry], np.zeros((1, len(entry)))]
        )  # a zero row after the demand ends
        self.entry_rate = tensor(rates.T)  # (entry lanes, demand bins + 1)
        self.demand_bin = model.demand_bin

    def _allocate(self) -> None:
        B, L, M, A, device = self.num_envs, self.n_lanes, self.n_movements, self.num_agents, self.device
        zeros = lambda *shape, dtype=torch.float32: torch.zeros(shape, dtype=dtype, device=device)  # noqa: E731
        # vehicles that entered each lane in each of the last ``ring`` seconds, row ``(tick % ring) * L + lane``
        self.transit = zeros(self.ring * L, B)
        self.vehicles = zeros(L, B)
        self.queue, self.halting, self.waiting = zeros(M, B), zeros(M, B), zeros(M, B)
        self.backlog = zeros(len(self.entry_lanes), B)  # vehicles waiting to enter the network
        self.arrivals = zeros(B)  # vehicles that arrived at the network's edge this episode
        self.lost_seconds = zeros(B)  # vehicle-seconds queued at stop lines or waiting to enter: the delay's sum
        self.arrived_total = zeros(B)  # vehicles that left the network this episode
        self.time = zeros(B, dtype=torch.long)
        self.green, self.next_green = zeros(B, A, dtype=torch.long), zeros(B, A, dtype=torch.long)
        self.green_time = zeros(B, A, dtype=torch.long)
        self.phase, self.phase_time = zeros(A, B, dtype=torch.long), zeros(A, B)  # the lights' own programs
        self._previous_waiting = zeros(B, A)
        self._incoming = zeros(B, A, self.network.max_lanes, 4)  # the lights' incoming-lane readings, for _observe
        self._lanes = zeros(B, len(self.network.all_lanes), 4)  # every lane's readings, for _observe
        # global second counter: the ring index (the same for every env), a tensor so a compiled step reads it
        self.tick = zeros(dtype=torch.long)

    # ------------------------------------------------------------------ signals
    def _switch(self, wanted: torch.Tensor) -> torch.Tensor:
        """:meth:`SumoSimulation._switch`, batched: hold before min_green, end at max_green.

        Returns the lights that change (they show yellow first); a yellow always ends within
        the step (``yellow_time < delta_time``), so every decision starts on a green.
        """
        timing = self.timing
        forced = (self.green_time >= timing.max_green) & (wanted == self.green)
        wanted = torch.where(forced, (self.green + 1) % self.num_greens, wanted)
        change = (wanted != self.green) & (self.green_time >= timing.min_green)
        self.next_green = torch.where(change, wanted, self.green)
        return change

    def _green_service(self, green: torch.Tensor) -> torch.Tensor:
        """Share of saturation flow of every movement under the greens ``(num_envs, n_agents)``: ``(movements, num_envs)``."""
        return self.green_service.gather(1, green.T.index_select(0, self.movement_light))

    def _program_service(self) -> torch.Tensor:
        return self.phase_service.gather(1, self.phase.index_select(0, self.movement_light))

    def _advance_programs(self) -> None:
        """After a simulated second under the lights' own programs: end phases that are due."""
        self.phase_time += 1
        lookup = lambda table: table.gather(1, self.phase)  # noqa: E731  (lights, num_envs)
        if self.signal_control == "fixed_time":
            end = self.phase_time >= lookup(self.phase_duration)
        else:  # actuated: a green ends after its minimum once its movements have less than a vehicle queued
            served = self.light_movements.sum(
                self.queue * self.movement_signalled * (self._program_service() > 0), self._gathered
            )
            end = (self.phase_time >= lookup(self.phase_max)) | (
                lookup(self.phase_green) & (self.phase_time >= lookup(self.phase_min)) & (served < 1.0)
            )
        self.phase = torch.where(end, (self.phase + 1) % self.program_phases, self.phase)
        self.phase_time = torch.where(end, 0.0, self.phase_time)
        as_green = lookup(self.phase_to_green).T
        self.green = torch.where(as_green >= 0, as_green, self.green)

    # ------------------------------------------------------------------ one second of traffic
    def _reaching(self, entered: list[torch.Tensor]) -> torch.Tensor:
        """Vehicles reaching each lane's stop line in the step's next second ``(lanes, num_envs)``: those
        that entered it ``lane_delay`` seconds ago, read from ``transit`` (a ring of the seconds before
        the step, by ``tick``) or, for the lanes they crossed within the step, from ``entered`` (the
        step's seconds so far)."""
        rows = ((self.tick - self.lane_delay) % self.ring) * self.n_lanes + self.lane_index
        reaching = self.transit.index_select(0, rows)
        within = self.within_step[len(entered)]
        if within is None:
            return reaching
        lanes, rows = within
        return torch.where(lanes, torch.cat(entered).index_select(0, rows), reaching)

    def _store_entered(self, tick: torch.Tensor, entered: torch.Tensor) -> None:
        """Write the step's ``entered`` ``(delta_time, lanes, num_envs)`` into the ``transit`` ring at
        its seconds' slots, in place (a compiled step writes into its input): later seconds read them
        when they reach the stop lines."""
        slots = (tick + torch.arange(len(entered), device=self.device)) % self.ring
        self.transit.view(self.ring, self.n_lanes, -1).index_copy_(0, slots, entered)

    def _second(
        self,
        service: torch.Tensor,
        vehicle_seconds: torch.Tensor,
        arrived: torch.Tensor,
        new: torch.Tensor,
        reaching: torch.Tensor,
    ) -> torch.Tensor:
        """Advance every env by one simulated second under the movements' ``service`` ``(movements,
        num_envs)``, with ``new`` vehicles arriving at the entry lanes ``(entry lanes, num_envs)`` and
        ``reaching`` the stop lines ``(lanes, num_envs)``; returns the vehicles entering each lane."""
        # 1. vehicles reaching the stop lines join their movement's queue, or leave on exit lanes
        leaving = reaching * self.exit_share
        self.queue += reaching.index_select(0, self.movement_in) * self.movement_split
        self.vehicles -= leaving
        arrived += leaving.sum(0)
        # 2. discharge, first in first out: a lane serves its mix of movements at the harmonic rate
        #    s / Σ_m (x_m / X_l) / σ_m, so a slow (permissive) or red head vehicle holds the lane
        lane_queue = self.lane_movements.sum(self.queue, self._gathered)
        head_seconds = self.lane_movements.sum(self.queue / service.clamp(min=1e-3), self._gathered)
        lane_flow = torch.minimum(self.saturation_flow * lane_queue / head_seconds.clamp(min=1e-6), lane_queue)
        flow = (lane_flow / lane_queue.clamp(min=1e-6)).index_select(0, self.movement_in) * self.queue * (service > 0)
        #    spill-back per lane: a movement sends w_l of its flow to each lane l of its out-edge; a lane
        #    takes the share r_l = min(1, space_l / demand_l) of what is sent to it, the rest waits
        bound = flow.index_select(0, self.pair_movement) * self.pair_weight  # (pairs, B)
        space = (self.lane_capacity - self.vehicles).clamp(min=0)
        lane_demand = self.lane_pairs.sum(bound, self._gathered)
        fits = (space / lane_demand.clamp(min=1e-6)).clamp(max=1.0).index_select(0, self.pair_lane)
        entering = self.lane_pairs.sum(bound * fits, self._gathered)
        admitted = self.movement_pairs.sum(self.pair_weight * fits, self._gathered)  # Σ_l w_l r_l
        flow = flow * admitted.clamp(max=1.0)  # never more than the queue, even by rounding
        self.queue -= flow
        self.vehicles = self.lane_movements.add(self.vehicles, flow, self._gathered, alpha=-1.0)
        # 3. new vehicles at the network's edge (Poisson), admitted while their entry lane has room
        self.backlog += new
        self.arrivals += new.sum(0)
        room = (self.lane_capacity - self.vehicles - entering).index_select(0, self.entry_lanes).clamp(min=0)
        admitted = torch.minimum(self.backlog, room)
        self.backlog -= admitted
        entering = self.lane_entries.add(entering, admitted, self._gathered)
        self.vehicles += entering
        # 4. halting and waiting: red queues come to a halt; green queues start moving at the start-up wave
        moving = service > 0
        stopping = self.halting + (self.queue - self.halting).clamp(min=0) * self.stop_rate
        still = torch.where(moving, (self.halting - self.start_wave).clamp(min=0), stopping).minimum(self.queue)
        self.waiting = torch.where(moving, self.waiting * still / self.halting.clamp(min=1e-6), self.waiting) + still
        self.halting = still
        vehicle_seconds += self.vehicles.sum(0)
        self.lost_seconds += self.queue.sum(0) + self.backlog.sum(0)
        self.tick = self.tick + 1
        self.time += 1
        return entering

    # ------------------------------------------------------------------ TorchVectorEnv
    def _lane_readings(self) -> torch.Tensor:
        """``(num_envs, n_lanes, 4)``: vehicles, halting, waiting seconds, mean speed (m/s)."""
        halting = self.lane_movements.sum(self.halting, self._gathered)
        waiting = self.lane_movements.sum(self.waiting, self._gathered)
        speed = self.lane_speed * (1 - halting / self.vehicles.clamp(min=1e-6)).clamp(0, 1)
        return torch.stack([self.vehicles, halting, waiting, speed], dim=-1).transpose(0, 1)

    def _reset_envs(self, mask: torch.Tensor) -> None:
        if self.device.type == "cpu" and not bool(mask.any()):  # most steps reset nothing; on GPU stay sync-free
            return
        current = self._stepped_observation if self._stepped_observation is not None else self._observed
        if current is not None:  # the reset envs' rows: what an empty network reads
            reset = mask.reshape(-1, *(1,) * (current.dim() - 1))
            self._stepped_observation = torch.where(reset, self._observation_after_reset(), current)
        for name in RESET_TO_ZERO:
            getattr(self, name).masked_fill_(mask, 0)
        self.time.masked_fill_(
            mask, int(self.clock.begin)
        )  # SUMO time: demand is read from the route file's absolute departs
        for name in ("next_green", "green_time"):
            getattr(self, name).masked_fill_(mask[:, None], 0)
        self.green = torch.where(mask[:, None], self._first_green(), self.green)
        self._incoming = self._incoming.masked_fill(mask[:, None, None, None], 0.0)  # an empty network reads zeros
        self._lanes = self._lanes.masked_fill(mask[:, None, None], 0.0)
        self._previous_waiting = self._previous_waiting.masked_fill(mask[:, None], 0.0)

    @property
    def _gathered(self) -> bool:
        """Sums as gathers (``Members.sum``): in a traced step (inductor fuses gathers) and on a GPU,
        where ``index_add_`` adds with atomics in no fixed order, so one seed would not give one result."""
        return self._traced or self.device.type != "cpu"

    def _arrival_draws(self) -> torch.Tensor:
        """The Poisson arrivals of every second of the step, ``(delta_time, entry lanes, num_envs)``:
        one draw, second by second in order, at the route file's rate of each env's clock."""
        seconds = torch.arange(self.timing.delta_time, device=self.device)
        bins = ((self.time + seconds[:, None]) // self.demand_bin).clamp(max=self.entry_rate.shape[1] - 1)
        return torch.poisson(self.entry_rate[:, bins].transpose(0, 1).contiguous(), generator=self.generator)

    def _step_envs(self, actions: torch.Tensor):
        self._observed = None  # the state changes
        rewards, terminated, info, self._stepped_observation = self._run_step(actions)
        return rewards, terminated, info

    def _run_step(self, actions: torch.Tensor):
        """``_advance`` eager, compiled, or compiled in chunks: rewards, terminated, info, observation."""
        arrivals = self._arrival_draws()
        if not self.compile:
            return self._advance(actions, arrivals)
        chunk = self.compile_chunk
        if self.device.type != "cpu" or self.num_envs <= chunk:
            state, out = self._compiled_advance(
                (self,), *(getattr(self, name) for name in TWIN_INPUTS), actions, arrivals
            )
            for name, value in zip(TWIN_STATE, state, strict=True):
                setattr(self, name, value)
            return out
        return self._advance_in_chunks(actions, arrivals, chunk)

    def _advance_in_chunks(self, actions: torch.Tensor, arrivals: torch.Tensor, chunk: int):
        """The compiled step over ``chunk`` envs at a time (CPU): each chunk's state stays in the caches
        through its seconds, where a whole large batch would stream every pass from memory. The graph
        reads each chunk's state in place (strided views of the batch's) and writes its ``transit``
        rows there."""
        tick, outs = self.tick, []  # every chunk starts from the same second
        for start in range(0, self.num_envs, chunk):
            envs = slice(start, start + chunk)
            views = {
                name: getattr(self, name)[envs] if name in BATCH_FIRST else getattr(self, name)[..., envs]
                for name in TWIN_INPUTS
                if name != "tick"
            }
            inputs = (tick if name == "tick" else views[name] for name in TWIN_INPUTS)
            state, out = self._compiled_advance((self,), *inputs, actions[envs], arrivals[..., envs])
            for name, value in zip(TWIN_STATE, state, strict=True):
                if name == "tick":
                    self.tick = value
                else:
                    views[name].copy_(value)  # written back into the batch's state
            outs.append(out)
        return torch.utils._pytree.tree_map(lambda *parts: torch.cat(parts), *outs)

    def _advance(self, actions: torch.Tensor, arrivals: torch.Tensor):
        """One decision step (``delta_time`` seconds) from the state and the step's ``arrivals``."""
        tick = self.tick  # the step's first second: where its entries go in the transit ring
        vehicle_seconds = torch.zeros(self.num_envs, device=self.device)
        arrived = torch.zeros(self.num_envs, device=self.device)
        yellow, delta = self.timing.yellow_time, self.timing.delta_time
        entered: list[torch.Tensor] = []

        def second(service: torch.Tensor) -> None:
            reaching = self._reaching(entered)
            entered.append(self._second(service, vehicle_seconds, arrived, arrivals[len(entered)], reaching))

        if self.signal_control == "agent":
            change = self._switch(actions.reshape(self.num_envs, self.num_agents).long())
            if yellow > 0:  # ending greens turn yellow; links green before and after keep going
                service = self._green_service(self.green)
                ending = change.T.index_select(0, self.movement_light) & (self._green_service(self.next_green) == 0)
                yellow_service = torch.where(ending, self.yellow_share * service, service)
                for _ in range(yellow):
                    second(yellow_service)
                self.green_time = torch.where(change, -yellow, self.green_time)
            else:
                self.green_time = torch.where(change, 0, self.green_time)
            self.green = self.next_green
            service = self._green_service(self.green)
            for _ in range(yellow, delta):
                second(service)
        else:
            for _ in range(delta):
                second(self._program_service())
                self._advance_programs()
        self.green_time += delta
        self._store_entered(tick, torch.stack(entered))
        lanes = self._lane_readings()
        self._incoming, self._lanes = self.readout.incoming(lanes), lanes  # what _observe reads next
        rewards = self.readout.rewards(self.reward_name, lanes, self._incoming, self._previous_waiting)
        self._previous_waiting = self.readout.waiting(self._incoming)
        backlog = self.backlog.sum(0)
        info = self.readout.metrics(lanes, self._incoming, arrived, vehicle_seconds, torch.zeros_like(arrived), backlog)
        self.arrived_total += arrived
        last = self.time >= int(self.clock.end)  # on the device: no host sync
        episode = {
            "delay": self.lost_seconds / self.arrivals.clamp(min=1.0),
            "arrived": self.arrived_total.clone(),
            "vehicles": self.arrivals.clone(),
            "final_backlog": backlog,
        }
        for key, value in episode.items():  # read at an episode's last step (the masks), as the SUMO env's
            info[key], info[f"_{key}"] = value, last
        if self.single_agent:
            rewards = rewards[:, 0]
        terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return rewards, terminated, info, self._observation_now()

    def _observe(self) -> torch.Tensor:
        """The step's observation, computed within it (in the compiled graph), its reset envs' rows patched.
        In same-step mode the step's observation is handed out (``final_obs``) before the restart: a copy
        is kept, so the restart patches it instead of observing the batch again (on a GPU every step restarts)."""
        obs, self._stepped_observation = self._stepped_observation, None  # handed out once: a fresh tensor
        if obs is None:
            obs = self._observation_now()
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            self._observed = obs.clone()  # the caller may change what it was handed
        return obs

    def _observation_now(self) -> torch.Tensor:
        return self._observation_of(self._lanes, self._incoming, self.green, self.green_time)

    def _observation_of(self, lanes, incoming, green, green_time) -> torch.Tensor:
        can_switch = green_time >= self.timing.min_green  # every decision starts on a green
        obs = self.readout.observe(self.observation_features, lanes, incoming, green, can_switch)
        return obs[:, 0] if self.single_agent else obs

    def _first_green(self) -> torch.Tensor:
        """Each light's green after a reset ``(lights,)``: the agents' green 0, a program's first phase."""
        if self.signal_control == "agent":
            return torch.zeros_like(self.green[0])
        return self.phase_to_green[:, 0].clamp(min=0)

    def _observation_after_reset(self) -> torch.Tensor:
        """What a just-reset env observes (an empty network, its first green, no green time), the same for
        every env: computed once, so a step's observation is patched, not observed again, after a restart
        (on a GPU every step restarts, the envs of an empty mask)."""
        if self._reset_observation is None:
            empty = (torch.zeros_like(self._lanes[:1]), torch.zeros_like(self._incoming[:1]))
            self._reset_observation = self._observation_of(
                *empty, self._first_green()[None], torch.zeros_like(self.green_time[:1])
            )[0]
        return self._reset_observation

    def lane_vehicle_counts(self) -> torch.Tensor:
        """Vehicles on every lane, ``(num_envs, n_lanes)`` (what max-pressure reads)."""
        return self.vehicles.T.clone()

    def signal_state(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each light's current green index and the seconds it has shown it, ``(num_envs, n_agents)`` each."""
        return self.green.clone(), self.green_time.float()


class SingleIntersectionTwin(TrafficTwinEnv):
    """The torch twin of :class:`SingleIntersection`: one 4-arm intersection, single-agent.

    Same defaults, spaces and kwargs as :class:`SingleIntersection`, so an SB3 agent trained here
    evaluates on SUMO by changing the env name (``ctrlgym evaluate RUN --env SingleIntersection-v0``).
    """

    multi_agent = False

    def __init__(self, num_envs: int = 1, *, demand: float = 1000.0, num_seconds: int = 1800, **kwargs) -> None:
        kwargs.setdefault("scenario", "single")
        super().__init__(num_envs, demand=demand, num_seconds=num_seconds, single_agent=True, **kwargs)
