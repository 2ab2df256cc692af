"""Traffic signal control on real SUMO: one agent per traffic light, a batch of simulations."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ctrlgym.envs.traffic.options import (
    SignalControlOptions,
    SumoProcessOptions,
    check_options,
    options_of,
    prepare_signal_control,
)
from ctrlgym.envs.traffic.readout import OBSERVATION_FEATURES, REWARDS, LaneReadout
from ctrlgym.envs.traffic.resco_results import RESCO_RESULTS
from ctrlgym.envs.traffic.scenarios import Scenario, actuated_programs
from ctrlgym.envs.traffic.simulation import EPISODE_METRICS, METRIC_DESCRIPTIONS, ReadingLayout
from ctrlgym.envs.traffic.workers import WORKER_KINDS, InlineSimulation, SumoError, SumoWorkers, choose_workers
from ctrlgym.errors import UsageError
from ctrlgym.vector_env import AutoresetMode, TorchVectorEnv

if TYPE_CHECKING:
    from ctrlgym.envs.traffic.ray_workers import RayWorkers

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
    | ``pressure`` | max greens | per green, (1 + p) / 2, p = mean over its movements of density in − density out |

    Lights with fewer lanes or greens are zero-padded. ``agent_ids`` and ``neighbour_graph``
    (a bool tensor ``(n_agents, n_agents)``) describe the agents: lights whose roads meet
    directly, or, with ``neighbour_reach`` metres, also those reached through unsignalled
    junctions within that much road (real city maps such as RESCO's cologne8, where most lights
    meet no other directly). An incoming lane shorter than
    50 m stands for its *approach*: it and the lanes upstream through unsignalled links up to
    50 m (``network.approaches``); its readings sum over them and its capacity is their length
    / 7.5 m, so a queue behind a stub lane (common on RESCO's ingolstadt maps) is seen.

    ## Rewards
    Per light, shape ``(num_envs, n_agents)``, by ``reward``: ``diff_waiting_time`` (default; the
    drop in total waiting time on its incoming lanes, in 100 s), ``queue`` (minus its halting
    vehicles), ``pressure`` (minus |vehicles on incoming − vehicles on outgoing lanes|),
    ``delay`` (minus the delay accruing on its incoming lanes, Σ vehicles · (1 − v/v_max), the
    rate of the time loss the ``delay`` metric sums per trip).

    ## Metrics (``info``)
    Per env and step: ``queue_length`` (halting vehicles per light), ``waiting_time`` (mean
    accumulated waiting time of the vehicles on controlled lanes, s), ``throughput`` (vehicles
    that finished their trip in the step), ``mean_speed`` (m/s), ``trip_time`` (summed travel
    times of those trips; ``evaluate`` reports ``travel_time`` = Σ trip_time / Σ throughput),
    ``teleports``, ``insertion_backlog`` (vehicles due to depart that SUMO could not insert yet:
    ``simulation.getPendingVehicles()``).

    Per episode, at its last step (with the masks ``info["_delay"]`` …, and so in ``final_info``
    and in ``evaluate``), RESCO's definitions from SUMO's own records:

    | metric | meaning (SUMO's names) |
    |---|---|
    | ``delay`` | s per vehicle: mean of ``timeLoss + departDelay`` over every vehicle due to depart — arrived (SUMO's trip statistics ``device.tripinfo.*``), en route (``vehicle.getTimeLoss`` + ``getDepartDelay`` so far) and never inserted (their ``departDelay`` so far) |
    | ``mean_trip_time`` | s: mean ``duration`` of the trips that arrived (tripinfo) |
    | ``arrived`` | vehicles that arrived |
    | ``vehicles`` | vehicles counted in ``delay`` (arrived + en route + waiting to enter) |
    | ``total_teleports`` | teleports in the episode |
    | ``final_backlog`` | vehicles still waiting to enter at the end |
    | ``delay_resco`` | s per vehicle: ``delay`` as RESCO's script computes it from tripinfo (vehicles that departed, plus route-file ``<vehicle>``\ s scheduled after the last one to enter); for comparison with RESCO's published numbers, it leaves out most of an insertion backlog |
    | ``trip_duration_resco`` | s: RESCO's ``duration``, the mean trip time of the vehicles that departed, those en route counted to the end |

    ## Starting State
    SUMO at the scenario's begin time (a ``.sumocfg``'s ``<begin>``, e.g. 25200 s on RESCO's
    cologne maps), seeded from the batch generator; all lights on their first green (agent
    control).

    ## Episode End
    * Termination: never. * Truncation: after ``num_seconds`` simulated seconds; by default the
      scenario's own span (``<end> − <begin>`` of a ``.sumocfg``, else 3600 s). SUMO gets
      ``--end`` = begin + the episode's length.

    ## Arguments
    ``compile`` is accepted and has no effect (a twin config with ``compile: true`` runs here
    unchanged; SUMO's step is a host simulation). Keywords of
    :class:`~ctrlgym.envs.traffic.options.SignalControlOptions` (the problem, the same
    for the twin; ``env.options`` holds them) and of
    :class:`~ctrlgym.envs.traffic.options.SumoProcessOptions` (how the simulations run):
    ``scenario`` (``"single"``, ``"arterial"``, ``"grid"``, ``"resco:<map>"`` for one of RESCO's
    eight maps from the ``sumo-rl`` package, or a :class:`Scenario`), ``rows``, ``cols``,
    ``demand`` (veh/h), ``lanes``, ``route_seed``, ``tls_type`` for built-in scenarios;
    ``net_file`` + ``route_file`` or ``sumocfg`` (run as the file says) for your own network;
    ``sumo_args`` (more SUMO options, e.g. ``["--tripinfo-output", "trips.xml"]``; ``--begin``,
    ``--end``, ``--step-length`` and ``-a`` there are honoured, the options ctrlgym sets — config,
    net, routes, seed, port — are refused); ``time_to_teleport`` (default: the scenario's —
    ``-1`` on RESCO's maps, teleports off as RESCO runs them — else SUMO's or the config's); ``validate_routes`` (check every route's
    edges against the network before SUMO starts); ``backend``, ``signal_control``,
    ``delta_time`` and ``yellow_time`` (default: the scenario's, RESCO's own per map on its
    maps — 5 s and 2 s on arterial4x4, 10 s and 3 s elsewhere — else 5 s and 2 s), ``min_green``, ``max_green``, ``observation``, ``reward``,
    ``num_seconds``, ``gui`` (``sumo-gui`` to watch), ``max_teleports`` (raise ``SumoError``
    when an episode exceeds it), ``step_timeout`` (s to wait for a SUMO step before
    ``SumoError``; worker processes only), ``workers`` (``"auto"``, the default: ``"inline"`` for a
    single libsumo env when no other is open in this process, else ``"process"``; ``"process"``:
    one worker process per env, started from a forkserver, so a script that builds one at top level
    needs ``if __name__ == "__main__":``; ``"inline"``: one libsumo simulation in this process,
    ``num_envs=1``; ``"ray"``: one Ray actor per env, anywhere in the Ray cluster, same seeds same
    trajectories, ``ctrlgym[ray]``); ``resco_detectors`` (read
    RESCO's detector counts each decision, :meth:`detector_counts`, for the ``resco_max_wave`` and
    ``resco_max_pressure`` baselines).

    With ``signal_control="actuated"`` on a network whose programs are all static, ctrlgym
    builds SUMO actuated programs from the static phases (greens between ``min_green`` and
    ``max_green``), so SUMO's actuated control runs on every map.

    ## Examples
    >>> env = TrafficSignalEnv(num_envs=2, scenario="arterial", cols=2)  # two SUMO simulations
    >>> obs, info = env.reset(seed=0)
    >>> tuple(obs.shape)                                                 # (envs, lights, features)
    (2, 2, 11)
    >>> obs, rewards, terminated, truncated, info = env.step(env.action_space.sample())
    >>> tuple(rewards.shape), tuple(info["queue_length"].shape)          # per light; per env
    ((2, 2), (2,))
    >>> env.close()
    >>> env = TrafficSignalEnv(scenario="resco:cologne8")  # a RESCO map, as RESCO runs it
    >>> len(env.network.lights), env.scenario.begin, env.timing.delta_time, env.time_to_teleport
    (8, 25200.0, 10, -1)

    ## Version History
    * v0: initial version.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}
    multi_agent = True
    #: evaluation reports travel_time = Σ trip_time / Σ throughput over an episode
    ratio_metrics = {"travel_time": ("trip_time", "throughput")}
    metric_descriptions = METRIC_DESCRIPTIONS
    #: what reports rank policies by beside the return: RESCO's average delay per vehicle
    headline_metric = ("delay", False)
    #: reported at each episode's last step (RESCO's per-episode metrics from SUMO's records)
    final_metrics = EPISODE_METRICS
    #: the order reports show metrics in: the field's headline first
    report_metrics = (
        "delay",
        "delay_resco",
        "trip_duration_resco",
        "final_backlog",
        "insertion_backlog",
        "waiting_time",
        "queue_length",
        "mean_trip_time",
        "travel_time",
        "throughput",
        "arrived",
    )
    #: the simulations' state lives in SUMO processes: a resumed training run restarts its episodes
    resumable = False

    #: the keyword options the constructor takes (config validation reads their fields and types)
    option_types = (SignalControlOptions, SumoProcessOptions)
    #: RESCO's recorded results, beside each map in benchmark reports
    published_results = RESCO_RESULTS

    def __init__(
        self,
        num_envs: int = 1,
        *,
        device: str | torch.device = "cpu",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        validate_actions: bool = True,
        compile: bool = False,  # accepted so a twin config with compile: true runs here too; SUMO has nothing to compile
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
        # SumoProcessOptions
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
        check_options(
            name, unknown, SignalControlOptions, SumoProcessOptions
        )  # a misspelt option: named, with the allowed
        self.options = options_of(SignalControlOptions, given)
        process = options_of(SumoProcessOptions, given)
        o = self.options
        if process.workers not in WORKER_KINDS:
            raise ValueError(f"{name}: unknown workers {process.workers!r}; choose one of {WORKER_KINDS}")
        if not process.step_timeout > 0:
            raise ValueError(f"{name}: step_timeout must be > 0 seconds, got {process.step_timeout}")
        setup = prepare_signal_control(name, o)
        time_to_teleport = o.time_to_teleport
        if "time_to_teleport" in setup.read_args:
            if time_to_teleport is not None and float(setup.read_args["time_to_teleport"]) != float(time_to_teleport):
                raise ValueError(
                    f"{name}: time_to_teleport={time_to_teleport} and sumo_args --time-to-teleport {setup.read_args['time_to_teleport']} disagree; give one"
                )
            time_to_teleport = float(setup.read_args["time_to_teleport"])
        if time_to_teleport is None:  # the scenario's own (RESCO's maps: -1, as RESCO runs them), else SUMO's
            time_to_teleport = setup.scenario.defaults.get("time_to_teleport")
        backend = (
            "traci" if process.gui else process.backend
        )  # libsumo from PyPI runs without a GUI; sumo-gui is driven over traci
        self.scenario, self.network, self.timing, self.clock = setup.scenario, setup.network, setup.timing, setup.clock
        self.observation_features = tuple(o.observation)
        self.reward_name = o.reward
        self.max_teleports = process.max_teleports
        self.single_agent = o.single_agent
        self.agent_ids, self.num_agents = self.network.agent_ids, self.network.num_agents
        self.reward_shape = () if o.single_agent else (self.num_agents,)
        super().__init__(
            num_envs,
            setup.observation_space,
            setup.action_space,
            device=device,
            max_episode_steps=setup.clock.max_episode_steps,
            autoreset_mode=autoreset_mode,
            validate_actions=validate_actions,
        )
        workers = choose_workers(process.workers, self.num_envs, backend)
        if workers == "inline" and self.num_envs != 1:
            raise ValueError(
                f"{name}: workers='inline' runs one simulation in this process; num_envs must be 1, got {self.num_envs}"
            )
        additional = tuple(Path(a) for a in setup.read_args.get("additional", "").split(",") if a)
        if o.signal_control == "actuated":
            built = actuated_programs(
                self.scenario, o.min_green, o.max_green
            )  # static-only networks get SUMO actuated programs
            additional += (built,) if built is not None else ()
        self.neighbour_graph = torch.as_tensor(self.network.adjacency, device=self.device)  # (n_agents, n_agents)
        self.readout = LaneReadout(self.network, self.device)
        clock = setup.clock
        simulation_kwargs = {
            "scenario": self.scenario,
            "network": self.network,
            "timing": self.timing,
            "backend": backend,
            "signal_control": o.signal_control,
            "gui": process.gui,
            "time_to_teleport": time_to_teleport,
            "sumo_args": setup.passed_args,
            "additional_files": additional,
            "begin": clock.begin,
            "end": clock.end,
            "step_length": clock.step_length,
            "resco_detectors": process.resco_detectors,
        }
        self.resco_detectors = process.resco_detectors
        self.layout = ReadingLayout(len(self.network.all_lanes), self.num_agents, process.resco_detectors)
        if workers == "inline":
            self.workers: InlineSimulation | RayWorkers | SumoWorkers = InlineSimulation(
                simulation_kwargs, self.scenario.name
            )
        elif workers == "ray":
            from ctrlgym.envs.traffic.ray_workers import RayWorkers

            self.workers = RayWorkers(self.num_envs, simulation_kwargs, self.scenario.name, process.step_timeout)
        else:
            self.workers = SumoWorkers(self.num_envs, simulation_kwargs, self.scenario.name, process.step_timeout)
        self.backend, self.signal_control, self.time_to_teleport = backend, o.signal_control, time_to_teleport
        self._rows = np.zeros((self.num_envs, self.layout.size))  # the latest readings of every env (one flat row each)
        self._refresh()
        self._waiting = torch.zeros((self.num_envs, self.num_agents), device=self.device)
        self._teleports = np.zeros(self.num_envs)

    # ------------------------------------------------------------------ TorchVectorEnv
    def _refresh(self) -> None:
        """The latest readings as one tensor (one host-to-device copy per step); lanes and signals are views of it."""
        self._state = torch.as_tensor(self._rows, dtype=torch.float32, device=self.device)
        self._lanes_now = self.layout.lanes(self._state)  # (num_envs, n_lanes, 4)
        self._incoming = self.readout.incoming(self._lanes_now)

    def _reset_envs(self, mask: torch.Tensor) -> None:
        indices = np.flatnonzero(mask.cpu().numpy())
        if indices.size == 0:  # the autoreset modes ask every step; most steps reset nothing
            return
        seeds = (
            torch.randint(0, 2**31 - 1, (self.num_envs,), generator=self.generator, device=self.device).cpu().numpy()
        )
        try:
            self.workers.start({int(i): int(seeds[i]) for i in indices}, self._rows)
        except SumoError:
            self._has_reset = False
            raise
        self._teleports[indices] = 0.0
        self._refresh()
        self._waiting = torch.where(mask[:, None], self.readout.waiting(self._incoming), self._waiting)

    def _step_envs(self, actions: torch.Tensor):
        greens = actions.reshape(self.num_envs, -1).cpu().numpy()
        # this step ends the episode (the base class truncates at max_episode_steps): SUMO reports its metrics
        assert self.max_episode_steps is not None  # the episode clock always sets it
        final = ((self._elapsed_steps + 1 >= self.max_episode_steps) & ~self._autoreset_pending).cpu().numpy()
        try:
            self.workers.step(greens, final, self._rows)
        except SumoError:
            self._has_reset = False  # the batch must be reset before it steps again
            raise
        self._teleports += self.layout.value(self._rows, "teleports")
        if self.max_teleports is not None and (self._teleports > self.max_teleports).any():
            worst = int(np.argmax(self._teleports))
            self._has_reset = False
            raise SumoError(
                f"scenario {self.scenario.name}, env {worst}: teleport storm, {int(self._teleports[worst])} teleports "
                f"this episode (max_teleports={self.max_teleports}); the network is gridlocked"
            )
        self._refresh()
        lanes, incoming = self._lanes_now, self._incoming
        rewards = self.readout.rewards(self.reward_name, lanes, incoming, self._waiting)
        self._waiting = self.readout.waiting(incoming)
        info = self.readout.metrics(
            lanes,
            incoming,
            *(
                self.layout.value(self._state, key)
                for key in ("trips_ended", "trip_time", "teleports", "insertion_backlog")
            ),
        )
        if final.any():
            mask = torch.as_tensor(final, device=self.device)
            for key in EPISODE_METRICS:
                info[key] = self.layout.value(self._state, key)
                info[f"_{key}"] = mask
        if self.single_agent:
            rewards = rewards[:, 0]
        terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return rewards, terminated, info

    def _observe(self) -> torch.Tensor:
        green, can_switch = self.signal_state()[0], self.layout.part(self._state, "can_switch") > 0
        obs = self.readout.observe(self.observation_features, self._lanes_now, self._incoming, green, can_switch)
        return obs[:, 0] if self.single_agent else obs  # (num_envs, [n_agents,] obs_dim)

    def signal_state(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each light's current green index and the seconds it has shown it, ``(num_envs, n_agents)`` each."""
        return self.layout.part(self._state, "green").long(), self.layout.part(self._state, "green_seconds").clone()

    def lane_vehicle_counts(self) -> torch.Tensor:
        """Vehicles on every controlled lane (incoming and outgoing), ``(num_envs, n_lanes)``."""
        return self._lanes_now[..., 0].clone()

    def detector_counts(self) -> torch.Tensor:
        """RESCO's detector counts on every controlled lane, ``(num_envs, n_lanes, 2)``: vehicles
        within 50 m of the stop line, and queued vehicles within 200 m (see
        :meth:`~ctrlgym.envs.traffic.simulation.SumoSimulation.detector_readings`); needs
        ``resco_detectors=True``."""
        if not self.resco_detectors:
            raise UsageError(
                f"{type(self).__name__}: detector_counts() needs the env built with resco_detectors=True "
                "(the resco_max_wave and resco_max_pressure baselines set it)"
            )
        return self.layout.detectors(self._state).clone()

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
