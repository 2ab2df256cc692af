"""The signal network of a SUMO ``.net.xml``, read once with sumolib.

For every traffic light: its green phases (from the network's static program), the yellow
state between any two greens, its incoming and outgoing lanes, the movements (lane -> lane
links) each green serves, and which lights are its neighbours. The SUMO env and its torch twin
both build on this description.

Approaches. A light's incoming lane can be a stub a metre long (SUMO splits edges at every
geometry change; on RESCO's ingolstadt7 half the incoming lanes are under 27 m), with the queue
standing on the lanes before it. So each incoming lane stands for its *approach*: the lane and
the lanes upstream of it reached through unsignalled links, breadth-first, until every branch
covers :data:`APPROACH_M` metres or ends. Readings of an incoming lane sum over its approach,
and its capacity is the approach's length / 7.5 m. Lanes at least that long are their own approach.

Neighbours. Two lights are neighbours when a road leaving one reaches the other: directly (the
default), or, with ``neighbour_reach_m`` > 0, also through unsignalled junctions within that many
metres of road (:func:`downstream_lights`). On RESCO's cologne8 only 3 of 8 lights meet another
directly; within 400 m of road every light has one.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctrlgym.envs.traffic.errors import ScenarioError

__all__ = [
    "TrafficLight",
    "SignalNetwork",
    "yellow_state",
    "is_green_phase",
    "VEHICLE_SPACING_M",
    "APPROACH_M",
    "downstream_lights",
    "lane_edge",
]

VEHICLE_SPACING_M = 7.5  # default car length (5 m) + minimum gap (2.5 m): lane capacity = length / 7.5
APPROACH_M = 50.0  # an incoming lane's approach reaches upstream until it covers this many metres


#: SUMO movement directions RESCO's phase pairs leave out: right turns and turnarounds
_TURNS_LEFT_OUT = frozenset("rRt")


def lane_edge(lane_id: str) -> str:
    """The edge a SUMO lane belongs to: lane ids are ``<edge id>_<index>``."""
    return lane_id.rsplit("_", 1)[0]


def is_green_phase(state: str) -> bool:
    """A green phase of a SUMO program: some link has right of way (G or g) and none shows yellow."""
    return ("G" in state or "g" in state) and "y" not in state


def approach(lane, metres: float = APPROACH_M) -> tuple:
    """``lane`` (a sumolib lane) and the lanes upstream of it through unsignalled links,
    breadth-first, each branch until it covers ``metres`` (see the module docstring)."""
    return tuple(upstream for upstream, _ in approach_offsets(lane, metres))


def approach_offsets(lane, metres: float = APPROACH_M) -> list[tuple]:
    """:func:`approach` with each lane's offset: the metres of road from its end to the stop line
    of ``lane`` (0 for ``lane`` itself), so a vehicle at position p on approach lane a is
    ``offset + length(a) − p`` from the stop line."""
    found, seen, frontier = [(lane, 0.0)], {lane.getID()}, [(lane, 0.0)]
    while frontier:
        current, offset = frontier.pop(0)
        covered = offset + current.getLength()  # from the start of ``current`` to the stop line
        if covered >= metres:
            continue
        for upstream in current.getIncoming():
            signalled = any(c.getToLane() is current and c.getTLSID() for c in upstream.getOutgoing())
            if signalled or upstream.getID() in seen:
                continue
            seen.add(upstream.getID())
            found.append((upstream, covered))
            frontier.append((upstream, covered))
    return found


def downstream_lights(edge, node_owner: dict[str, int], reach_m: float) -> dict[int, float]:
    """The lights a vehicle on ``edge`` (a sumolib edge) reaches first, through unsignalled
    junctions, within ``reach_m`` metres of road (the edge itself counts; it always reaches the
    light at its own end, however long it is): ``{light index: metres}``, shortest roads first
    (Dijkstra; no U-turns). ``node_owner`` maps a junction to the light that controls it."""
    found: dict[int, float] = {}
    edges, heap, settled = {edge.getID(): edge}, [(edge.getLength(), edge.getID())], set()
    while heap:
        metres, edge_id = heapq.heappop(heap)
        if edge_id in settled:
            continue
        settled.add(edge_id)
        current = edges[edge_id]
        node = current.getToNode()
        if node.getID() in node_owner:  # a light: stop here
            found.setdefault(node_owner[node.getID()], metres)
            continue
        for onward in node.getOutgoing():
            if onward.getToNode() is not current.getFromNode() and metres + onward.getLength() <= reach_m:
                edges[onward.getID()] = onward
                heapq.heappush(heap, (metres + onward.getLength(), onward.getID()))
    return found


def yellow_state(from_state: str, to_state: str) -> str:
    """The intermediate state: links green now and not green next turn yellow; the rest hold."""
    return "".join("y" if a in "Gg" and b not in "Gg" else a for a, b in zip(from_state, to_state, strict=False))


@dataclass(frozen=True)
class TrafficLight:
    id: str
    green_states: tuple[str, ...]  # one SUMO state string per green phase
    incoming_lanes: tuple[str, ...]
    outgoing_lanes: tuple[str, ...]
    lane_capacity: dict[str, float]  # vehicles a lane (an incoming lane: its approach) holds, length / 7.5 m
    movements: tuple[tuple[str, str, int], ...]  # (in lane, out lane, link index)
    lane_speed: dict[str, float]  # speed limit of each incoming and outgoing lane, m/s
    #: SUMO's direction of each movement, in ``movements`` order: s(traight), l / L (left, partly
    #: left), r / R (right, partly right), t (turnaround)
    directions: tuple[str, ...] = ()

    @property
    def num_greens(self) -> int:
        return len(self.green_states)

    def served_movements(self, green: int) -> list[tuple[str, str]]:
        """Lane pairs with right of way (G or g) in green phase ``green``."""
        state = self.green_states[green]
        return [(a, b) for a, b, link in self.movements if state[link] in "Gg"]

    def lane_groups(self, green: int) -> dict[tuple[str, str], tuple[list[str], list[str]]]:
        """The lane groups green phase ``green`` serves, as RESCO scores a phase pair (Ault & Sharon
        2021): ``{(incoming edge, direction): (its incoming lanes, the lanes its movements enter)}``
        for every movement with protected right of way (``G``) that is not a right turn or a
        turnaround; a green that protects none of those counts all its movements (``G`` or ``g``).

        RESCO writes the groups by hand per map (``lane_sets`` and ``phase_pairs``: e.g. the
        through lanes from the south and from the north); derived from the network they are the
        same on its grid4x4 and cologne1, and defined on any net."""
        state = self.green_states[green]
        served = [
            (a, b, d)
            for (a, b, link), d in zip(self.movements, self.directions, strict=True)
            if state[link] == "G" and d not in _TURNS_LEFT_OUT
        ]
        if not served:
            served = [
                (a, b, d)
                for (a, b, link), d in zip(self.movements, self.directions, strict=True)
                if state[link] in "Gg"
            ]
        groups: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
        for in_lane, out_lane, direction in served:
            lanes, out_lanes = groups.setdefault((lane_edge(in_lane), direction), ([], []))
            if in_lane not in lanes:
                lanes.append(in_lane)
            if out_lane not in out_lanes:
                out_lanes.append(out_lane)
        return groups


class SignalNetwork:
    """The traffic lights of a network, in a fixed order (sorted ids), and their neighbour graph."""

    def __init__(self, net_file: str | Path, approach_m: float = APPROACH_M, neighbour_reach_m: float = 0.0) -> None:
        import sumolib

        try:
            net = sumolib.net.readNet(str(net_file), withPrograms=True)
        except Exception as error:  # sumolib fails deep inside on incomplete files (e.g. KeyError: 'version')
            detail = " ".join(str(error).split()) or "no detail"
            raise ScenarioError(
                f"{net_file}: not a readable SUMO network ({type(error).__name__}: {detail}); give a complete .net.xml as netconvert or netgenerate write it"
            ) from None
        lights = sorted(net.getTrafficLights(), key=lambda tls: tls.getID())
        if not lights:
            raise ValueError(f"{net_file}: the network has no traffic lights to control")
        self.lights: list[TrafficLight] = []
        #: each incoming lane's approach (itself first, then upstream lanes); other lanes are their own
        self.approaches: dict[str, tuple[str, ...]] = {}
        #: metres of road each lane stands for: its approach's summed length
        self.lane_length: dict[str, float] = {}
        #: per incoming lane, each lane of its approach with (its length, metres from its end to the stop line)
        self.approach_geometry: dict[str, dict[str, tuple[float, float]]] = {}
        for tls in lights:
            for in_lane, _out_lane, _ in tls.getConnections():
                if in_lane.getID() not in self.approaches:
                    placed = approach_offsets(in_lane, approach_m)
                    self.approaches[in_lane.getID()] = tuple(lane.getID() for lane, _ in placed)
                    self.lane_length[in_lane.getID()] = sum(lane.getLength() for lane, _ in placed)
                    self.approach_geometry[in_lane.getID()] = {
                        lane.getID(): (lane.getLength(), offset) for lane, offset in placed
                    }
        for tls in lights:
            for _, out_lane, _ in tls.getConnections():
                self.approaches.setdefault(out_lane.getID(), (out_lane.getID(),))
                self.lane_length.setdefault(out_lane.getID(), out_lane.getLength())
        #: vehicles each lane (an incoming lane: its approach) holds, length / 7.5 m, at least 1
        self.lane_capacity = {lane: max(1.0, length / VEHICLE_SPACING_M) for lane, length in self.lane_length.items()}
        node_owner: dict[str, int] = {}
        for index, tls in enumerate(lights):
            programs = tls.getPrograms()
            if not programs:
                raise ValueError(f"{net_file}: traffic light {tls.getID()} has no signal program")
            program = programs.get("0") or next(iter(programs.values()))
            greens = tuple(p.state for p in program.getPhases() if is_green_phase(p.state))
            if not greens:
                raise ValueError(
                    f"{net_file}: traffic light {tls.getID()} has no green phase in program {program.getID()}"
                )
            movements, directions, capacity, speed = [], [], {}, {}
            for in_lane, out_lane, link in tls.getConnections():
                movements.append((in_lane.getID(), out_lane.getID(), int(link)))
                directions.append(
                    next((c.getDirection() for c in in_lane.getOutgoing() if c.getToLane() is out_lane), "s")
                )
                for lane in (in_lane, out_lane):
                    capacity[lane.getID()] = self.lane_capacity[lane.getID()]
                    speed[lane.getID()] = max(0.1, lane.getSpeed())
                node_owner[in_lane.getEdge().getToNode().getID()] = index
            incoming = tuple(dict.fromkeys(a for a, _, _ in sorted(movements, key=lambda m: m[2])))
            outgoing = tuple(dict.fromkeys(b for _, b, _ in sorted(movements, key=lambda m: m[2])))
            self.lights.append(
                TrafficLight(
                    tls.getID(), greens, incoming, outgoing, capacity, tuple(movements), speed, tuple(directions)
                )
            )

        n = len(self.lights)
        adjacency = np.zeros((n, n), dtype=bool)
        for i, light in enumerate(self.lights):
            for edge in {net.getLane(lane_id).getEdge() for lane_id in light.outgoing_lanes}:
                for j in downstream_lights(edge, node_owner, neighbour_reach_m):
                    if j != i:
                        adjacency[i, j] = adjacency[j, i] = True
        self.adjacency = adjacency  # (n_agents, n_agents) bool, symmetric

    @property
    def agent_ids(self) -> list[str]:
        return [light.id for light in self.lights]

    @property
    def num_agents(self) -> int:
        return len(self.lights)

    @property
    def max_greens(self) -> int:
        return max(light.num_greens for light in self.lights)

    @property
    def max_lanes(self) -> int:
        return max(len(light.incoming_lanes) for light in self.lights)

    @property
    def all_lanes(self) -> list[str]:
        return list(
            dict.fromkeys(lane for light in self.lights for lane in (*light.incoming_lanes, *light.outgoing_lanes))
        )

    @property
    def read_lanes(self) -> list[str]:
        """Every SUMO lane read each step: :attr:`all_lanes`, then the rest of their approaches."""
        return list(dict.fromkeys(lane for own in self.all_lanes for lane in self.approaches[own]))

    def pressure_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Max-pressure's weights (Varaiya 2013), ``(n_agents, max_greens, len(all_lanes))``: per light
        and green, +1 on each served movement's incoming lane and −1 on its outgoing lane; and
        ``(n_agents, max_greens)`` the number of movements each green serves (0: padding)."""
        column = {lane: k for k, lane in enumerate(self.all_lanes)}
        weights = np.zeros((self.num_agents, self.max_greens, len(column)))
        served = np.zeros((self.num_agents, self.max_greens), dtype=np.int64)
        for a, light in enumerate(self.lights):
            for g in range(light.num_greens):
                movements = light.served_movements(g)
                served[a, g] = len(movements)
                for in_lane, out_lane in movements:
                    weights[a, g, column[in_lane]] += 1
                    weights[a, g, column[out_lane]] -= 1
        return weights, served

    def approach_matrix(self) -> np.ndarray:
        """``(len(all_lanes), len(read_lanes))`` 0/1: row l marks the lanes of l's approach."""
        column = {lane: k for k, lane in enumerate(self.read_lanes)}
        matrix = np.zeros((len(self.all_lanes), len(column)))
        for row, lane in enumerate(self.all_lanes):
            matrix[row, [column[a] for a in self.approaches[lane]]] = 1.0
        return matrix
