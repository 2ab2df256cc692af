"""A SUMO network and its routes as the tables of a queue model (the torch twin's input).

Read once with ``sumolib`` and the route file(s): the lanes of :class:`SignalNetwork` (every
incoming and outgoing lane of a light; an incoming lane stands for its approach) with their lengths, speeds and capacities; the movements
(lane -> lane links) with the share of green each signal state gives them; the lights' own
programs (for the fixed-time and actuated baselines); and, from the routes, the turning shares
of each lane, the entry demand of each lane over time, and the transfers: unsignalled links
between a light's outgoing edge and the next light's incoming edge that routes take across
priority junctions or roads the model leaves out (``movement_light == -1``, always served), so
a vehicle is due once, where it enters the modelled network, and stays in it to its last light.

Turning shares. For an edge ``e`` let ``P(e2 | e)`` be the share of the vehicles on ``e`` that go
on to edge ``e2`` (counted over the routes) and ``P(end | e)`` the share that leave the modelled
network there. A vehicle takes, uniformly, one of the lanes of ``e`` that connect to its next edge,
so lane ``l`` of ``e`` receives the share ``w(l) = Σ_e2 P(e2|e) [l → e2] / k(e2) + P(end|e) / n(e)``
of the edge's inflow (``k(e2)`` lanes of ``e`` reach ``e2``; ``n(e)`` lanes in all), and a vehicle
on ``l`` heads for movement ``l → b`` with probability ``P(edge(b)|e) / (k · c_l) / w(l)`` (``c_l``
links from ``l`` into that edge).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctrlgym.envs.traffic.network import SignalNetwork, is_green_phase
from ctrlgym.envs.traffic.scenarios import Scenario, ScenarioError

__all__ = ["QueueNetwork", "read_routes", "Trip"]


@dataclass(frozen=True)
class Trip:
    """Vehicles (``count``, fractional for flows) that depart uniformly in [begin, end) on ``edges``
    (at ``begin`` when ``end == begin``)."""

    edges: tuple[str, ...]
    begin: float
    end: float
    count: float = 1.0


def _depart(value: str | None) -> float:
    try:
        return float(value) if value is not None else 0.0
    except ValueError:  # "triggered", "now", ...: treat as time 0
        return 0.0


def read_routes(
    route_files: tuple[Path, ...],
    duration: float,
    router: Callable[[str, str, tuple[str, ...]], tuple[str, ...] | None] | None = None,
) -> list[Trip]:
    """The trips of SUMO route files: ``<vehicle>`` and ``<flow>`` with a nested or named ``<route>``,
    and unrouted ``<trip>`` / ``<flow>`` / ``<vehicle>`` given ``from``, ``to`` (and ``via``) edges,
    which ``router(from, to, via)`` routes (SUMO routes them at insertion by the fastest path; without
    a router they raise :class:`ScenarioError`, as does a pair with no path).
    """
    named: dict[str, tuple[str, ...]] = {}
    routed: dict[tuple[str, str, tuple[str, ...]], tuple[str, ...] | None] = {}
    trips: list[Trip] = []
    for path in route_files:
        try:
            root = ElementTree.parse(path).getroot()
        except ElementTree.ParseError as err:
            raise ScenarioError(f"{path} is not valid XML: {err}") from None
        for route in root.findall("route"):
            named[route.attrib["id"]] = tuple(route.get("edges", "").split())
        for element in root:
            if element.tag not in ("vehicle", "flow", "trip"):
                continue
            nested = element.find("route")
            if nested is not None:
                edges = tuple(nested.get("edges", "").split())
            elif element.get("route") in named:
                edges = named[element.attrib["route"]]
            elif router is not None and element.get("from") and element.get("to"):
                key = (element.attrib["from"], element.attrib["to"], tuple(element.get("via", "").split()))
                if key not in routed:
                    routed[key] = router(*key)
                found = routed[key]
                if found is None:
                    raise ScenarioError(
                        f"{path}: {element.tag} {element.get('id')!r}: no path from edge {key[0]!r} to {key[1]!r} in the network"
                    )
                edges = found
            else:
                raise ScenarioError(
                    f"{path}: {element.tag} {element.get('id')!r} has no route the twin can read "
                    "(give it a route, or from/to edges; route distributions are not supported)"
                )
            if element.tag == "flow":
                begin, end = _depart(element.get("begin")), float(element.get("end", duration))
                span = max(end - begin, 1e-9)
                number, per_hour = element.get("number"), element.get("vehsPerHour")
                period, probability = element.get("period"), element.get("probability")
                if number is not None:
                    count = float(number)
                elif per_hour is not None:
                    count = float(per_hour) * span / 3600.0
                elif period is not None:
                    count = span / float(period.replace("exp(", "").rstrip(")"))
                elif probability is not None:
                    count = float(probability) * span
                else:
                    raise ScenarioError(
                        f"{path}: flow {element.get('id')!r} gives no number, vehsPerHour, period or probability"
                    )
                trips.append(Trip(edges, begin, end, count))
            else:
                depart = _depart(element.get("depart"))
                trips.append(Trip(edges, depart, depart))
    if not trips:
        raise ScenarioError(f"no vehicles in the route files {[str(p) for p in route_files]}")
    return trips


def _fastest_path_router(net) -> Callable[[str, str, tuple[str, ...]], tuple[str, ...] | None]:
    """Routes ``from → via… → to`` by the fastest path at free-flow speeds for passenger cars
    (``sumolib``'s Dijkstra), as SUMO routes an unrouted trip when it is inserted into an empty network."""

    def route(origin: str, destination: str, via: tuple[str, ...]) -> tuple[str, ...] | None:
        stops, edges = (origin, *via, destination), list[str]()
        for a, b in zip(stops[:-1], stops[1:], strict=False):
            if not (net.hasEdge(a) and net.hasEdge(b)):
                return None
            path, _ = net.getFastestPath(net.getEdge(a), net.getEdge(b), vClass="passenger")
            if path is None:
                return None
            edges += [edge.getID() for edge in path][1 if edges else 0 :]
        return tuple(edges)

    return route


class QueueNetwork:
    """Numpy tables of the queue model of ``scenario`` (see the module docstring).

    ``permissive_share`` and ``yellow_share`` are the shares of saturation flow a permissive green
    (``g``, yielding to opposing traffic) and a yellow get; ``demand_bin`` the seconds over which
    departures are averaged.
    """

    def __init__(
        self,
        scenario: Scenario,
        network: SignalNetwork | None = None,
        *,
        permissive_share: float = 0.25,
        yellow_share: float = 0.0,
        demand_bin: int = 60,
    ) -> None:
        import sumolib

        self.network = network or SignalNetwork(scenario.net_file)
        net = sumolib.net.readNet(str(scenario.net_file), withPrograms=True)
        self.lanes = self.network.all_lanes
        lane_index = {lane: i for i, lane in enumerate(self.lanes)}
        sumo_lanes = [net.getLane(lane) for lane in self.lanes]
        self.length = np.array(
            [self.network.lane_length[lane] for lane in self.lanes]
        )  # an incoming lane: its approach
        self.speed = np.array([lane.getSpeed() for lane in sumo_lanes])
        self.capacity = np.array([self.network.lane_capacity[lane] for lane in self.lanes])
        self.lane_edge = [lane.getEdge().getID() for lane in sumo_lanes]
        edge_lanes: dict[str, list[int]] = defaultdict(list)
        for i, edge in enumerate(self.lane_edge):
            edge_lanes[edge].append(i)

        # movements, in light order then link order
        movements: list[tuple[int, int]] = []
        light_of: list[int] = []
        links: list[int] = []
        service: list[list[float]] = []
        max_greens = self.network.max_greens
        for a, light in enumerate(self.network.lights):
            for in_lane, out_lane, link in sorted(light.movements, key=lambda m: m[2]):
                movements.append((lane_index[in_lane], lane_index[out_lane]))
                light_of.append(a)
                links.append(link)
                row = [_share(state[link], permissive_share) for state in light.green_states]
                service.append(row + [0.0] * (max_greens - len(row)))
        trips = read_routes(scenario.route_files, scenario.duration, _fastest_path_router(net))
        signalled = {(self.lane_edge[i], self.lane_edge[o]) for i, o in movements}
        for transfer_in, transfer_out in _transfers(trips, edge_lanes, signalled, net, self.lanes):
            movements.append((transfer_in, transfer_out))
            light_of.append(-1)
            links.append(-1)
            service.append([1.0] * max_greens)
        self.movement_in = np.array([m[0] for m in movements])
        self.movement_out = np.array([m[1] for m in movements])
        self.movement_light = np.array(light_of)  # -1: an unsignalled transfer, always served
        self.movement_link = np.array(links)  # index into the light's state string (-1: a transfer)
        self.green_service = np.array(service)  # (movements, max_greens): share of saturation flow
        self._read_programs(net, permissive_share, yellow_share)
        self._read_demand(trips, edge_lanes, demand_bin)

    @property
    def num_movements(self) -> int:
        return len(self.movement_in)

    def _read_programs(self, net, permissive_share: float, yellow_share: float) -> None:
        """The lights' own programs (program ``0``): per phase its service, duration, min/max."""
        programs = []
        for light in self.network.lights:
            tls = net.getTLS(light.id)
            all_programs = tls.getPrograms()
            programs.append(all_programs.get("0") or next(iter(all_programs.values())))
        n_phases = [len(p.getPhases()) for p in programs]
        width = max(n_phases)
        n_lights = len(programs)
        self.program_phases = np.array(n_phases)
        self.program_actuated = np.array([p.getType() == "actuated" for p in programs])
        self.phase_duration = np.ones((n_lights, width))
        self.phase_min = np.ones((n_lights, width))
        self.phase_max = np.ones((n_lights, width))
        self.phase_green = np.zeros((n_lights, width), dtype=bool)
        self.phase_green_index = np.full((n_lights, width), -1)  # which of the light's greens a phase is (-1: none)
        self.phase_service = np.zeros((self.num_movements, width))
        for a, program in enumerate(programs):
            for p, phase in enumerate(program.getPhases()):
                duration = float(phase.duration)
                self.phase_duration[a, p] = duration
                self.phase_min[a, p] = phase.minDur if phase.minDur is not None and phase.minDur >= 0 else duration
                self.phase_max[a, p] = phase.maxDur if phase.maxDur is not None and phase.maxDur >= 0 else duration
                self.phase_green[a, p] = is_green_phase(phase.state)
                greens = self.network.lights[a].green_states
                self.phase_green_index[a, p] = greens.index(phase.state) if phase.state in greens else -1
        for m, (a, link) in enumerate(zip(self.movement_light, self.movement_link, strict=False)):
            if a < 0:  # a transfer: served under every phase
                self.phase_service[m] = 1.0
                continue
            for p, phase in enumerate(programs[a].getPhases()):
                self.phase_service[m, p] = _share(phase.state[link], permissive_share, yellow_share)

    def _read_demand(self, trips: list[Trip], edge_lanes: dict[str, list[int]], demand_bin: int) -> None:
        movement_edges = {
            (self.lane_edge[i], self.lane_edge[o]) for i, o in zip(self.movement_in, self.movement_out, strict=False)
        }
        # edge -> next edge (None: leaves the model) -> vehicles
        onward: dict[str, dict[str | None, float]] = defaultdict(lambda: defaultdict(float))
        entries: list[tuple[str, float, float, float]] = []
        for trip in trips:
            previous = None  # the last modelled edge (unmodelled ones between are crossed by a transfer)
            for edge in trip.edges:
                if edge not in edge_lanes:  # not a modelled edge
                    continue
                if previous is not None and (previous, edge) in movement_edges:
                    onward[previous][edge] += trip.count
                else:
                    if previous is not None:
                        onward[previous][None] += trip.count
                    entries.append((edge, trip.begin, trip.end, trip.count))
                previous = edge
            if previous is not None:
                onward[previous][None] += trip.count

        n_lanes = len(self.lanes)
        lane_weight = np.zeros(n_lanes)  # w(l): share of its edge's inflow
        movement_split = np.zeros(self.num_movements)  # P(movement | on its in-lane)
        exit_share = np.zeros(n_lanes)
        links_into: dict[tuple[int, str], list[int]] = defaultdict(list)  # (lane, next edge) -> movements
        for m, (i, o) in enumerate(zip(self.movement_in, self.movement_out, strict=False)):
            links_into[(i, self.lane_edge[o])].append(m)
        for edge, lanes in edge_lanes.items():
            counts = onward.get(edge)
            if counts is None or sum(counts.values()) == 0:  # no route passes: uniform over the links
                next_edges = {e2 for (lane, e2) in links_into if lane in lanes}
                counts = dict.fromkeys(next_edges, 1.0) or {None: 1.0}
            total = sum(counts.values())
            for e2, count in counts.items():
                share = count / total
                if e2 is None:
                    for lane in lanes:
                        lane_weight[lane] += share / len(lanes)
                        exit_share[lane] += share / len(lanes)
                    continue
                reaching = [lane for lane in lanes if (lane, e2) in links_into]
                for lane in reaching:
                    lane_weight[lane] += share / len(reaching)
                    for m in links_into[(lane, e2)]:
                        movement_split[m] += share / len(reaching) / len(links_into[(lane, e2)])
        safe = np.maximum(lane_weight, 1e-12)
        self.lane_weight = lane_weight
        self.movement_split = movement_split / safe[self.movement_in]  # per in-lane, sums with exit to 1
        self.exit_share = np.where(lane_weight > 0, exit_share / safe, 1.0)
        # where flow into each edge goes: every movement's flow is spread over its out-edge's lanes
        self.inflow_pairs = [
            (m, lane, lane_weight[lane])
            for m in range(self.num_movements)
            for lane in edge_lanes[self.lane_edge[self.movement_out[m]]]
            if lane_weight[lane] > 0
        ]

        horizon = max([end for _, _, end, _ in entries], default=0.0)
        self.demand_bin = int(demand_bin)
        n_bins = int(horizon // self.demand_bin) + 1
        rates = np.zeros((n_bins, n_lanes))  # vehicles per second entering each lane
        for edge, begin, end, count in entries:
            split = count * lane_weight[edge_lanes[edge]] / self.demand_bin
            if end <= begin:  # one departure
                rates[int(begin // self.demand_bin), edge_lanes[edge]] += split
                continue
            for b in range(int(begin // self.demand_bin), min(int(end // self.demand_bin), n_bins - 1) + 1):
                overlap = min(end, (b + 1) * self.demand_bin) - max(begin, b * self.demand_bin)
                rates[b, edge_lanes[edge]] += split * max(overlap, 0.0) / (end - begin)
        self.entry_rate = rates  # (demand bins, lanes)

    def free_flow_seconds(self) -> np.ndarray:
        """Seconds to drive each lane at its speed limit (at least 1)."""
        return np.maximum(1, np.round(self.length / self.speed)).astype(np.int64)


def _transfers(
    trips: list[Trip], edge_lanes: dict[str, list[int]], signalled: set[tuple[str, str]], net, lanes: list[str]
) -> list[tuple[int, int]]:
    """Unsignalled links ``(in lane, out lane)`` between modelled edges that follow each other on a
    route with no light between them (directly, or across unmodelled roads): a vehicle leaving one
    light's outgoing edge for the next light's incoming edge stays in the model. The lanes of the
    first edge with a SUMO connection to the second are linked (all of them where the roads between
    are unmodelled); the road between is crossed in no time."""
    pairs: set[tuple[str, str]] = set()
    for trip in trips:
        modelled = [edge for edge in trip.edges if edge in edge_lanes]
        pairs.update(
            (a, b) for a, b in zip(modelled[:-1], modelled[1:], strict=False) if (a, b) not in signalled and a != b
        )
    links = []
    for a, b in sorted(pairs):
        connected = [
            i
            for i in edge_lanes[a]
            if any(c.getToLane().getEdge().getID() == b for c in net.getLane(lanes[i]).getOutgoing())
        ]
        for i in connected or edge_lanes[a]:
            links.append((i, edge_lanes[b][0]))  # a movement's flow is spread over its out-edge's lanes
    return links


def _share(state: str, permissive_share: float, yellow_share: float = 0.0) -> float:
    """Share of saturation flow under a link state: ``G`` priority green, ``g`` permissive green
    (yields to opposing traffic), ``y`` yellow (those who cannot stop still pass), else red."""
    return {"G": 1.0, "g": permissive_share, "y": yellow_share, "Y": yellow_share}.get(state, 0.0)
