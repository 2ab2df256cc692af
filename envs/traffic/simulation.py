"""One SUMO simulation driven at the signal level (libsumo or traci), numpy in and out.

Each decision step lasts ``delta_time`` simulated seconds (``delta_time / step_length`` SUMO
steps). A light asked for a different green (and past ``min_green``) shows the yellow state for
``yellow_time`` seconds, then the new green; a green held ``max_green`` seconds is ended for the
next one.

SUMO is started from the scenario's ``.sumocfg`` (``-c``) when it has one, so every option of
the file holds; ctrlgym adds only what it needs: the seed, the episode's ``--begin``/``--end``,
``--duration-log.statistics`` (SUMO's trip statistics, read for the delay), a long waiting-time
memory, and the user's ``sumo_args``.

Lane state is read once per decision, never per simulated second. Under traci (a socket round
trip per call) through lane subscriptions, one batched result; under libsumo (an in-process
call, ~1 µs) through direct getters at the decision second, because SUMO evaluates
subscriptions at *every* simulated second. A step's readings come back as one flat float64
array (:class:`ReadingLayout`), one compact message per step from a worker process.
"""

from __future__ import annotations

import contextlib
import io
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from ctrlgym.envs.traffic.network import SignalNetwork, yellow_state
from ctrlgym.envs.traffic.scenarios import Scenario, sumo_binary, sumo_time

__all__ = [
    "SignalTiming",
    "SumoSimulation",
    "ReadingLayout",
    "SIGNAL_CONTROLS",
    "BACKENDS",
    "STEP_VALUES",
    "EPISODE_METRICS",
]

SIGNAL_CONTROLS = ("agent", "fixed_time", "actuated")
BACKENDS = ("libsumo", "traci")
#: per-step scalars: SUMO time (s), trips ended, their summed travel time (s), teleports started, vehicles waiting to enter
STEP_VALUES = ("time", "trips_ended", "trip_time", "teleports", "insertion_backlog")
#: per-episode values, filled at an episode's last step (NaN before): see TrafficSignalEnv's docs
EPISODE_METRICS = (
    "delay",
    "mean_trip_time",
    "arrived",
    "vehicles",
    "total_teleports",
    "final_backlog",
    "delay_resco",
    "trip_duration_resco",
)
#: RESCO's detection ranges (Ault & Sharon 2021, ``agent_config``): MaxWave sees vehicles within 50 m of
#: the stop line, MaxPressure queues within 200 m
RESCO_WAVE_RANGE_M, RESCO_QUEUE_RANGE_M = 50.0, 200.0
#: what each traffic metric measures, in which unit (reports show these); the same for SUMO and the twin
METRIC_DESCRIPTIONS = {
    "delay": "s per vehicle: time lost + departure delay over every vehicle due to depart (RESCO's headline metric, counting everyone; lower is better)",
    "delay_resco": "s per vehicle: delay as RESCO's tripinfo script computes it (departed vehicles, plus route-file vehicles scheduled after the last one to depart); compare with RESCO's published numbers",
    "trip_duration_resco": "s: mean trip duration over the vehicles that departed, those en route counted to the episode's end (RESCO's 'duration')",
    "final_backlog": "vehicles still waiting to enter the network at the episode's end",
    "insertion_backlog": "vehicles due to depart that could not enter yet (per-step mean)",
    "waiting_time": "s: mean accumulated waiting time of vehicles on controlled lanes (per-step mean)",
    "queue_length": "halting vehicles per light (per-step mean)",
    "mean_trip_time": "s: mean duration of the trips that arrived",
    "travel_time": "s: summed trip times / trips finished in the episode",
    "throughput": "trips finished per step",
    "arrived": "vehicles that arrived in the episode",
    "vehicles": "vehicles counted in delay (arrived + en route + waiting to enter)",
    "total_teleports": "vehicles SUMO teleported in the episode (jams it resolved by removal)",
    "teleports": "teleports per step",
    "mean_speed": "m/s: mean speed on controlled lanes (per-step mean)",
    "trip_time": "s: summed durations of the trips finished this step (travel_time is its ratio to throughput)",
    "light_queue_length": "halting vehicles on each light's approaches (one value per light)",
    "light_waiting_time": "s: accumulated waiting time on each light's approaches (one value per light)",
}

# TraCI variable ids (traci.constants), fixed by the TraCI protocol
_VEHICLE_NUMBER, _HALTING_NUMBER, _WAITING_TIME, _MEAN_SPEED = 0x10, 0x14, 0x7A, 0x11


@dataclass(frozen=True)
class SignalTiming:
    delta_time: int = 5
    yellow_time: int = 2
    min_green: int = 5
    max_green: int = 60

    def __post_init__(self) -> None:
        if not 0 <= self.yellow_time < self.delta_time:
            raise ValueError(f"yellow_time must be in [0, delta_time={self.delta_time}), got {self.yellow_time}")
        if not 0 < self.min_green <= self.max_green:
            raise ValueError(f"need 0 < min_green <= max_green, got {self.min_green}, {self.max_green}")


Rows = TypeVar("Rows", np.ndarray, torch.Tensor)  # readings in a worker (numpy) or in the env (torch)


class ReadingLayout:
    """Where each reading sits in the flat float64 array one simulation step returns."""

    def __init__(self, n_lanes: int, n_lights: int, detectors: bool = False) -> None:
        sizes = {
            "lanes": n_lanes * 4,
            "detectors": n_lanes * 2 if detectors else 0,
            "green": n_lights,
            "can_switch": n_lights,
            "green_seconds": n_lights,
            "step": len(STEP_VALUES),
            "episode": len(EPISODE_METRICS),
        }
        self.slices, offset = {}, 0
        for name, size in sizes.items():
            self.slices[name] = slice(offset, offset + size)
            offset += size
        self.size, self.n_lanes = offset, n_lanes
        assert not set(STEP_VALUES) & set(EPISODE_METRICS), "a reading's name must say which part it is in"

    def lanes(self, rows: Rows) -> Rows:
        """``(..., n_lanes, 4)`` lane readings of one or many arrays."""
        return rows[..., self.slices["lanes"]].reshape(*rows.shape[:-1], self.n_lanes, 4)

    def detectors(self, rows: Rows) -> Rows:
        """``(..., n_lanes, 2)`` RESCO's detector counts (see :meth:`SumoSimulation.detector_readings`)."""
        return rows[..., self.slices["detectors"]].reshape(*rows.shape[:-1], self.n_lanes, 2)

    def part(self, rows: Rows, name: str) -> Rows:
        return rows[..., self.slices[name]]

    def value(self, rows: Rows, name: str) -> Rows:
        """One per-step or per-episode scalar (a name of STEP_VALUES or EPISODE_METRICS)."""
        if name in STEP_VALUES:
            return rows[..., self.slices["step"].start + STEP_VALUES.index(name)]
        return rows[..., self.slices["episode"].start + EPISODE_METRICS.index(name)]


class SumoSimulation:
    """A single SUMO run of ``scenario``; ``start(seed)``, then ``step(greens)`` per decision.

    ``begin`` and ``end`` are the episode's SUMO times; ``step_length`` SUMO's step (s);
    ``additional_files`` are added to the scenario's own; ``sumo_args`` go to SUMO last;
    ``resco_detectors`` adds RESCO's detector counts to every reading (:meth:`detector_readings`).
    """

    def __init__(
        self,
        scenario: Scenario,
        network: SignalNetwork,
        timing: SignalTiming,
        *,
        backend: str = "libsumo",
        signal_control: str = "agent",
        gui: bool = False,
        time_to_teleport: float | None = None,
        sumo_args: tuple[str, ...] = (),
        additional_files: tuple[Path, ...] = (),
        begin: float = 0.0,
        end: float = 3600.0,
        step_length: float = 1.0,
        label: str = "ctrlgym",
        resco_detectors: bool = False,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown SUMO backend {backend!r}; choose one of {BACKENDS}")
        if signal_control not in SIGNAL_CONTROLS:
            raise ValueError(f"unknown signal_control {signal_control!r}; choose one of {SIGNAL_CONTROLS}")
        self.scenario, self.network, self.timing = scenario, network, timing
        self.backend, self.signal_control, self.gui = backend, signal_control, gui
        self.time_to_teleport, self.sumo_args, self.label = time_to_teleport, tuple(sumo_args), label
        self.additional_files = tuple(additional_files)
        self.begin, self.end, self.step_length = begin, end, step_length
        self.steps_per_decision = round(timing.delta_time / step_length)
        self.yellow_steps = round(timing.yellow_time / step_length)
        self.lanes = network.all_lanes
        self.read_lanes = network.read_lanes  # all_lanes, then the rest of the incoming lanes' approaches
        self._approach = network.approach_matrix()  # (lanes, read lanes): sums each approach's readings
        self.layout = ReadingLayout(len(self.lanes), network.num_agents, resco_detectors)
        self.resco_detectors = resco_detectors
        # RESCO's detectors: each light's incoming lanes along their approaches (k, SUMO lane, its
        # length, metres from its end to the stop line, the light)
        column = {lane: k for k, lane in enumerate(self.lanes)}
        self._detected_lanes = (
            [
                (column[lane], read, length, offset, owner)
                for owner, light in enumerate(network.lights)
                for lane in light.incoming_lanes
                for read, (length, offset) in network.approach_geometry[lane].items()
            ]
            if resco_detectors
            else []
        )
        self._has_waited: list[set[str]] = [set() for _ in network.lights]  # RESCO's per-light waiting record
        self._scheduled: dict[str, float] | None = None  # route-file <vehicle> departures, read at the first final step
        self._last_departed: str | None = None  # the vehicle that entered the network last
        self._api: Any = None  # libsumo or a traci connection, from reset on
        self._module = self._import_backend()  # at worker start, not inside the first reset
        n = network.num_agents
        self.num_greens = np.array([light.num_greens for light in network.lights])
        self.green = np.zeros(n, dtype=np.int64)
        self.next_green = np.zeros(n, dtype=np.int64)
        self.yellow_left = np.zeros(n, dtype=np.int64)  # SUMO steps of yellow still to show
        self.green_time = np.zeros(n, dtype=np.float64)  # seconds since the current green began
        self._trips = (0.0, 0.0)  # SUMO's trip count and summed travel time at the last decision
        self._teleports = self._teleports_read = 0.0  # teleports this episode, and at the last reading
        self.sumo_seconds = 0.0  # wall time inside SUMO's simulationStep (what any env must pay)

    # ------------------------------------------------------------------ lifecycle
    def command(self, seed: int) -> list[str]:
        s = self.scenario
        command = [sumo_binary("sumo-gui" if self.gui else "sumo")]
        if s.sumocfg is not None:
            command += ["-c", str(s.sumocfg)]
        else:
            command += ["-n", str(s.net_file), "-r", ",".join(map(str, s.route_files))]
        if self.additional_files or (s.additional_files and s.sumocfg is None):
            command += [
                "-a",
                ",".join(map(str, (*s.additional_files, *self.additional_files))),
            ]  # replaces the config's list
        command += [
            "--seed",
            str(int(seed)),
            "--begin",
            f"{self.begin:g}",
            "--end",
            f"{self.end:g}",
            "--step-length",
            f"{self.step_length:g}",
            "--no-step-log",
            "true",
            "--no-warnings",
            "true",
            "--waiting-time-memory",
            "10000",
            "--duration-log.statistics",
            "true",
            "--verbose",
            "false",  # the statistics option turns SUMO verbose; keep a run's console quiet (errors still show)
            "--precision",
            "6",  # SUMO's trip statistics to 6 decimals (default 2): delay from exact per-vehicle values
        ]
        if self.time_to_teleport is not None:
            command += ["--time-to-teleport", f"{self.time_to_teleport:g}"]
        if self.gui:
            command += ["--start", "--quit-on-end"]
        return command + list(self.sumo_args)

    def _import_backend(self):
        if self.backend == "libsumo":
            # libsumo prints a warning when the pyarrow installed (Ray brings one) is not the version it was
            # built against; libsumo uses pyarrow only for its own data exports, which ctrlgym never calls
            with contextlib.redirect_stdout(io.StringIO()):
                import libsumo

            return libsumo
        import traci

        return traci

    def start(self, seed: int) -> np.ndarray:
        """(Re)start SUMO with ``seed`` at the episode's begin; return the readings there."""
        self.close()
        if self.backend == "libsumo":
            self._module.start(self.command(seed))
            api = self._module
        else:
            self._module.start(self.command(seed), label=self.label)
            api = self._module.getConnection(self.label)
        self._api = api
        if self.backend == "traci":
            for lane in self.read_lanes:
                api.lane.subscribe(lane, [_VEHICLE_NUMBER, _HALTING_NUMBER, _WAITING_TIME, _MEAN_SPEED])
        self.green[:] = 0
        self.next_green[:] = 0
        self.yellow_left[:] = 0
        self.green_time[:] = 0
        self._trips, self._teleports, self._teleports_read = (0.0, 0.0), 0.0, 0.0
        self._has_waited = [set() for _ in self.network.lights]
        self._last_departed = None
        for light in self.network.lights:
            if self.signal_control == "agent":
                api.trafficlight.setRedYellowGreenState(light.id, light.green_states[0])
            else:
                api.trafficlight.setProgram(light.id, self._program_for(light.id))
        return self.read()  # at the episode's begin: after k decisions SUMO's time is begin + k * delta_time

    def _program_for(self, light_id: str) -> str:
        """The program id that runs under ``signal_control`` (SUMO activates the last one loaded)."""
        logics = self._api.trafficlight.getAllProgramLogics(light_id)
        wanted_type = 0 if self.signal_control == "fixed_time" else 3  # TraCI: 0 static, 3 actuated
        for logic in logics:
            if logic.type == wanted_type:
                return logic.programID
        raise ValueError(
            f"scenario {self.scenario.name}: traffic light {light_id} has no {self.signal_control} program "
            f"(programs: {[(logic.programID, logic.type) for logic in logics]})"
        )

    def close(self) -> None:
        if self._api is not None:
            try:
                self._api.close()
            except Exception:  # a dead SUMO cannot be closed politely
                pass
            self._api = None

    # ------------------------------------------------------------------ dynamics
    def _switch(self, wanted: np.ndarray) -> None:
        api = self.api
        forced = (self.green_time >= self.timing.max_green) & (wanted == self.green)
        wanted = np.where(forced, (self.green + 1) % self.num_greens, wanted)
        change = (wanted != self.green) & (self.green_time >= self.timing.min_green) & (self.yellow_left == 0)
        for i in np.flatnonzero(change).tolist():
            light = self.network.lights[i]
            self.next_green[i] = wanted[i]
            if self.yellow_steps > 0:
                api.trafficlight.setRedYellowGreenState(
                    light.id, yellow_state(light.green_states[self.green[i]], light.green_states[wanted[i]])
                )
                self.yellow_left[i] = self.yellow_steps
            else:
                self._begin_green(i)

    def _begin_green(self, i: int) -> None:
        light = self.network.lights[i]
        self.green[i] = self.next_green[i]
        # counted from the start of the decision step (step() adds delta_time to every light)
        self.green_time[i] = -float(self.timing.yellow_time)
        self.api.trafficlight.setRedYellowGreenState(light.id, light.green_states[self.green[i]])

    def step(self, greens: np.ndarray, final: bool = False) -> np.ndarray:
        """Run one decision step with the requested green index per light; return the readings
        (with the episode's metrics when ``final``)."""
        api = self.api
        if self.signal_control == "agent":
            self._switch(np.asarray(greens, dtype=np.int64))
        # a yellow starts only at a decision and lasts yellow_steps < steps_per_decision: they all end on the same SUMO step
        changing = np.flatnonzero(self.yellow_left > 0).tolist() if self.signal_control == "agent" else []
        teleports = 0
        for k in range(self.steps_per_decision):
            started = time.perf_counter()
            api.simulationStep()
            self.sumo_seconds += time.perf_counter() - started
            teleports += api.simulation.getStartingTeleportNumber()
            departed = api.simulation.getDepartedIDList()
            if departed:
                self._last_departed = departed[-1]  # ties within a second: the last inserted
            if k + 1 == self.yellow_steps and len(changing):
                self.yellow_left[changing] = 0
                for i in changing:
                    self._begin_green(i)
        self._teleports += teleports
        self.green_time += self.timing.delta_time
        if self.signal_control != "agent":
            self._read_program_greens()
        return self.read(final)

    def _read_program_greens(self) -> None:
        """Under SUMO's own programs, map each light's state to its green index (yellow keeps the last)."""
        for i, light in enumerate(self.network.lights):
            state = self.api.trafficlight.getRedYellowGreenState(light.id)
            if state in light.green_states:
                self.green[i] = light.green_states.index(state)

    def _trip_statistics(self, name: str) -> float:
        """SUMO's running trip statistic ``device.tripinfo.<name>`` over the vehicles arrived so far."""
        return float(self.api.simulation.getParameter("", f"device.tripinfo.{name}") or 0.0)

    def episode_metrics(self) -> dict[str, float]:
        """The episode so far (Ault & Sharon 2021's delay). ``delay`` is the mean over every vehicle
        due to depart of ``timeLoss + departDelay``: arrived ones from SUMO's trip statistics (to 6
        decimals), those en route with their time loss so far, those still waiting to enter with
        their wait so far.

        ``delay_resco`` is what RESCO's script (``utils/readXML.py``) computes from a tripinfo file
        written with ``--tripinfo-output.write-unfinished``: the mean of ``timeLoss + departDelay``
        over the vehicles that departed (arrived or en route), plus, for every route-file
        ``<vehicle>`` scheduled to depart after the scheduled departure of the last vehicle to
        enter, ``end − scheduled depart`` (negative for one scheduled after the end, as there;
        ``<trip>``s and flows never count). Most vehicles still waiting to enter are left out.
        ``trip_duration_resco`` is RESCO's ``duration``: the mean trip duration over the vehicles
        that departed, those en route counted to now."""
        api = self.api
        arrived = self._trip_statistics("count")
        loss = arrived * (self._trip_statistics("timeLoss") + self._trip_statistics("departDelay"))
        running, pending = api.vehicle.getIDList(), api.simulation.getPendingVehicles()
        loss += sum(api.vehicle.getTimeLoss(v) + api.vehicle.getDepartDelay(v) for v in running)
        departed_loss = loss
        loss += sum(api.vehicle.getDepartDelay(v) for v in pending)
        vehicles = arrived + len(running) + len(pending)
        now = api.simulation.getTime()
        durations = arrived * self._trip_statistics("duration") + sum(
            now - api.vehicle.getDeparture(v) for v in running
        )
        departed = arrived + len(running)
        late = self._never_departed_resco()
        return {
            "delay": loss / vehicles if vehicles else 0.0,
            "mean_trip_time": self._trip_statistics("duration") if arrived else 0.0,
            "arrived": arrived,
            "vehicles": float(vehicles),
            "total_teleports": self._teleports,
            "final_backlog": float(len(pending)),
            "delay_resco": (departed_loss + sum(late)) / (departed + len(late)) if departed + len(late) else 0.0,
            "trip_duration_resco": durations / departed if departed else 0.0,
        }

    def _never_departed_resco(self) -> list[float]:
        """RESCO's term for vehicles that never departed: ``end − scheduled depart`` of each
        route-file ``<vehicle>`` scheduled after the last vehicle to enter was."""
        if self._scheduled is None:
            self._scheduled = scheduled_departures(self.scenario.route_files)
        last = self._scheduled.get(self._last_departed, -np.inf) if self._last_departed else -np.inf
        return [self.end - depart for depart in self._scheduled.values() if depart > last]

    def read(self, final: bool = False) -> np.ndarray:
        """The readings as one flat array (see :class:`ReadingLayout`): lanes ``(n_lanes, 4)``
        (vehicles, halting, waiting s, mean speed), the signal state, the step's trips, teleports
        and insertion backlog, and (``final``) the episode's metrics."""
        api, layout = self.api, self.layout
        lane_api = api.lane
        if self.backend == "traci":
            results = lane_api.getAllSubscriptionResults()
            empty = {
                _VEHICLE_NUMBER: 0,
                _HALTING_NUMBER: 0,
                _WAITING_TIME: 0.0,
                _MEAN_SPEED: 0.0,
            }  # before SUMO's first step
            rows = [
                (r[_VEHICLE_NUMBER], r[_HALTING_NUMBER], r[_WAITING_TIME], r[_MEAN_SPEED])
                for r in (results.get(lane, empty) for lane in self.read_lanes)
            ]
        else:
            rows = [
                (
                    lane_api.getLastStepVehicleNumber(lane),
                    lane_api.getLastStepHaltingNumber(lane),
                    lane_api.getWaitingTime(lane),
                    lane_api.getLastStepMeanSpeed(lane),
                )
                for lane in self.read_lanes
            ]
        out = np.full(layout.size, np.nan)
        out[layout.slices["lanes"]] = self._approach_readings(np.asarray(rows, dtype=np.float64)).ravel()
        if self.resco_detectors:
            out[layout.slices["detectors"]] = self.detector_readings().ravel()
        out[layout.slices["green"]] = self.green
        out[layout.slices["can_switch"]] = (self.green_time >= self.timing.min_green) & (self.yellow_left == 0)
        out[layout.slices["green_seconds"]] = self.green_time
        trips = (self._trip_statistics("count"), self._trip_statistics("totalTravelTime"))
        backlog = len(api.simulation.getPendingVehicles())
        step = (
            api.simulation.getTime(),
            trips[0] - self._trips[0],
            trips[1] - self._trips[1],
            self._teleports - self._teleports_read,
            backlog,
        )
        out[layout.slices["step"]] = step
        self._trips, self._teleports_read = trips, self._teleports
        if final:
            out[layout.slices["episode"]] = list(self.episode_metrics().values())
        return out

    def detector_readings(self) -> np.ndarray:
        """RESCO's detectors (Ault & Sharon 2021, ``traffic_signal.py``), ``(lanes, 2)`` over
        :attr:`lanes` (zero but on lights' incoming lanes): the vehicles within
        :data:`RESCO_WAVE_RANGE_M` of the lane's stop line (queued and approaching: MaxWave's
        "wave"), and the *queued* vehicles within :data:`RESCO_QUEUE_RANGE_M` (MaxPressure's):
        those halted now (waiting time > 0), or halted at an earlier reading and detected at this
        light since, as RESCO keeps a vehicle queued until it leaves the light's detectors.

        Distances run along the lane's approach (:attr:`SignalNetwork.approach_geometry`): where
        an incoming lane is a stub, RESCO's hand-written lane sets name the long lane before it
        (ingolstadt7's ``10425609#0`` before the 0.9 m ``10425609#1``); the approach finds it on
        any network."""
        vehicle_api = self.api.vehicle
        out = np.zeros((len(self.lanes), 2))
        detected: list[set[str]] = [set() for _ in self._has_waited]
        for k, lane, length, offset, owner in self._detected_lanes:
            for vehicle in self.api.lane.getLastStepVehicleIDs(lane):
                distance = offset + length - vehicle_api.getLanePosition(vehicle)
                if distance <= RESCO_WAVE_RANGE_M:
                    out[k, 0] += 1
                if distance <= RESCO_QUEUE_RANGE_M:
                    detected[owner].add(vehicle)
                    if vehicle in self._has_waited[owner] or vehicle_api.getWaitingTime(vehicle) > 0:
                        self._has_waited[owner].add(vehicle)
                        out[k, 1] += 1
        for owner, seen in enumerate(detected):
            self._has_waited[owner] &= seen
        return out

    def _approach_readings(self, rows: np.ndarray) -> np.ndarray:
        """Per-lane readings ``(read lanes, 4)`` summed over each lane's approach ``(lanes, 4)``:
        vehicles, halting and waiting add up; the mean speed is vehicle-weighted (an empty
        approach keeps its own lane's reading, SUMO's speed limit)."""
        summed = self._approach @ rows
        vehicles = summed[:, 0]
        speed = np.divide(
            self._approach @ (rows[:, 0] * rows[:, 3]),
            vehicles,
            out=rows[: len(vehicles), 3].copy(),
            where=vehicles > 0,
        )
        summed[:, 3] = speed
        return summed

    @property
    def api(self):
        if self._api is None:
            raise RuntimeError(f"scenario {self.scenario.name}: the SUMO simulation is not running")
        return self._api


def scheduled_departures(route_files) -> dict[str, float]:
    """``{vehicle id: depart}`` of the ``<vehicle>`` elements of route files (what RESCO's script reads)."""
    departures: dict[str, float] = {}
    for path in route_files:
        for _, element in ElementTree.iterparse(path):
            if element.tag == "vehicle" and element.get("id") is not None:
                with contextlib.suppress(TypeError, ValueError):
                    departures[element.attrib["id"]] = sumo_time(element.get("depart", ""))
            if element.tag in ("vehicle", "trip", "flow", "person"):
                element.clear()
    return departures


#: SUMO options ctrlgym sets itself: given in ``sumo_args`` they are an error naming the keyword to use
_OWNED_OPTIONS = {
    "-c": "sumocfg=",
    "--configuration-file": "sumocfg=",
    "-n": "net_file= or sumocfg=",
    "--net-file": "net_file= or sumocfg=",
    "-r": "route_file= or sumocfg=",
    "--route-files": "route_file= or sumocfg=",
    "--seed": "reset(seed=...)",
    "--random": "reset(seed=...)",
    "--remote-port": "backend=",
    "--num-clients": "backend=",
}
#: SUMO options ctrlgym reads from ``sumo_args`` (they decide the episode's clock) and passes on itself
_READ_OPTIONS = {
    "-b": "begin",
    "--begin": "begin",
    "-e": "end",
    "--end": "end",
    "--step-length": "step_length",
    "--time-to-teleport": "time_to_teleport",
    "-a": "additional",
    "--additional-files": "additional",
}


def parse_sumo_args(owner: str, sumo_args) -> tuple[tuple[str, ...], dict[str, str]]:
    """Split the user's SUMO options into those passed on as they are and those ctrlgym reads
    (``begin``, ``end``, ``step_length``, ``time_to_teleport``, ``additional``); options ctrlgym
    owns raise ``ValueError`` naming the keyword to use instead."""
    if isinstance(sumo_args, str) or not all(isinstance(a, (str, int, float)) for a in sumo_args):
        raise ValueError(
            f"{owner}: sumo_args must be a list of strings, e.g. ['--tripinfo-output', 'trips.xml'], got {sumo_args!r}"
        )
    args, passed, read = [str(a) for a in sumo_args], [], {}
    i = 0
    while i < len(args):
        name, _, inline = args[i].partition("=")
        if name in _OWNED_OPTIONS:
            raise ValueError(
                f"{owner}: sumo_args may not set {name}: ctrlgym sets it; use {_OWNED_OPTIONS[name]} instead"
            )
        if name in _READ_OPTIONS:
            if not inline and i + 1 >= len(args):
                raise ValueError(f"{owner}: sumo_args option {name} has no value")
            read[_READ_OPTIONS[name]] = inline or args[i + 1]
            i += 1 if inline else 2
            continue
        passed.append(args[i])
        i += 1
    return tuple(passed), read


@dataclass(frozen=True)
class EpisodeClock:
    """When an episode runs in SUMO time and how its decisions divide it."""

    begin: float  # SUMO time of the episode's start (s)
    end: float  # begin + max_episode_steps * delta_time: SUMO's --end
    step_length: float  # SUMO's step (s)
    delta_time: int  # seconds per decision
    yellow_time: int
    max_episode_steps: int


def episode_clock(
    owner: str,
    scenario: Scenario,
    read_args: dict[str, str],
    num_seconds: int | None,
    delta_time: int | None,
    yellow_time: int | None,
    max_episode_steps: int | None,
) -> EpisodeClock:
    """The episode's clock: it starts at the scenario's begin (``--begin`` in ``sumo_args`` wins)
    and lasts ``num_seconds``, else the scenario's ``end − begin``, else its duration; decisions
    every ``delta_time`` s (default: the scenario's, else 5), yellow ``yellow_time`` (else 2)."""
    delta = int(delta_time if delta_time is not None else scenario.defaults.get("delta_time", 5))
    yellow = int(yellow_time if yellow_time is not None else scenario.defaults.get("yellow_time", 2))
    try:
        begin = sumo_time(read_args["begin"]) if "begin" in read_args else float(scenario.begin)
        end = sumo_time(read_args["end"]) if "end" in read_args else scenario.end
        step_length = float(read_args.get("step_length", scenario.step_length))
    except ValueError as error:
        raise ValueError(f"{owner}: a time in sumo_args is not a number: {error}") from None
    if not step_length > 0:
        raise ValueError(f"{owner}: step length must be > 0 s, got {step_length}")
    for label, value in (("delta_time", delta), ("yellow_time", yellow)):
        if abs(value / step_length - round(value / step_length)) > 1e-9:
            raise ValueError(
                f"{owner}: {label}={value} s is not a whole number of SUMO steps of {step_length:g} s (the scenario's step-length)"
            )
    seconds = num_seconds if num_seconds is not None else (end - begin if end is not None else scenario.duration)
    if not seconds > 0:
        raise ValueError(
            f"{owner}: the episode must last > 0 s, got {seconds} (num_seconds, or the scenario's end {end} - begin {begin})"
        )
    steps = int(max_episode_steps) if max_episode_steps is not None else max(1, int(seconds // delta))
    return EpisodeClock(begin, begin + steps * delta, step_length, delta, yellow, steps)
