"""RESCO's controllers, maps and delay as RESCO defines them (Ault & Sharon 2021), on a network
built here; the RESCO maps themselves where a test needs one (sumo-rl's wheel)."""

import importlib.util
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
import torch

from ctrlgym.envs.traffic import (
    MaxPressure,
    MaxWave,
    RescoMaxPressure,
    RescoMaxWave,
    SignalNetwork,
    TrafficSignalEnv,
    make_scenario,
    resco_scenario,
)
from ctrlgym.envs.traffic.baselines import resco_weights
from ctrlgym.errors import UsageError

HAS_RESCO = importlib.util.find_spec("sumo_rl") is not None
needs_resco = pytest.mark.skipif(not HAS_RESCO, reason="RESCO's maps come with sumo-rl (ctrlgym[benchmarks])")


def last_info(env, controller) -> dict:
    """Run one episode of ``env`` (seed 0) under ``controller(env)``, close the env, return the last info."""
    try:
        obs, _ = env.reset(seed=0)
        policy = controller(env)
        while True:
            obs, _, _, truncated, info = env.step(policy(obs))
            if truncated.all():
                return info
    finally:
        env.close()


def two_vehicle_routes(tmp_path) -> tuple:
    """The single intersection (142.8 m approaches; green 0 serves north-south) with two vehicles:
    ``near`` enters the east approach 12.8 m from the stop line at 0 s and halts there; ``far``
    enters the west approach at 5 s, moving, 132.8 m from the stop line. Both are red under green 0."""
    scenario = make_scenario("single", demand=1000, duration=300, tls_type="static")
    routes = tmp_path / "two.rou.xml"
    routes.write_text(
        "<routes>"
        "<vehicle id='near' depart='0' departPos='130' departSpeed='0'><route edges='right0A0 A0left0'/></vehicle>"
        "<vehicle id='far' depart='5' departPos='10' departSpeed='max'><route edges='left0A0 A0right0'/></vehicle>"
        "</routes>"
    )
    return scenario.net_file, routes


def test_resco_detectors_ignore_vehicles_beyond_50_m_and_moving_ones_and_ctrlgyms_counts_do_not(tmp_path):
    net, routes = two_vehicle_routes(tmp_path)
    env = TrafficSignalEnv(net_file=net, route_file=routes, num_seconds=60, resco_detectors=True, workers="inline")
    try:
        env.reset(seed=0)
        for _ in range(2):  # 10 s of green 0: west and east stay red
            env.step(torch.zeros((1, 1), dtype=torch.long))
        lanes = env.network.all_lanes
        west, east = lanes.index("left0A0_0"), lanes.index("right0A0_0")
        detected, counted = env.detector_counts()[0], env.lane_vehicle_counts()[0]
        # ctrlgym's counts see both vehicles; RESCO's see the far one neither in 50 m nor queued
        assert counted[west] == 1 and counted[east] == 1
        assert detected[west].tolist() == [0.0, 0.0]  # beyond 50 m and moving
        assert detected[east].tolist() == [1.0, 1.0]  # within 50 m and halted at the red
        for _ in range(3):  # the far vehicle reaches the red and stops: now RESCO counts it too
            env.step(torch.zeros((1, 1), dtype=torch.long))
        assert env.detector_counts()[0, west].tolist() == [1.0, 1.0]
    finally:
        env.close()


def test_resco_controllers_and_ours_choose_differently_from_the_same_state(tmp_path):
    """Green 1 serves both vehicles' approaches. With the far vehicle moving beyond 50 m, RESCO's
    wave for green 1 is 1 (the near one), ours 2; RESCO's pressure counts the one queued."""
    net, routes = two_vehicle_routes(tmp_path)
    env = TrafficSignalEnv(net_file=net, route_file=routes, num_seconds=60, resco_detectors=True, workers="inline")
    try:
        env.reset(seed=0)
        for _ in range(2):
            env.step(torch.zeros((1, 1), dtype=torch.long))
        scores = {}
        for controller in (RescoMaxWave, RescoMaxPressure, MaxWave, MaxPressure):
            policy = controller(env)
            scores[controller.__name__] = torch.einsum("nl,agl->nag", policy.counts(), policy.weights)[0, 0].tolist()
        assert scores["RescoMaxWave"] == [0.0, 1.0]
        assert scores["RescoMaxPressure"] == [0.0, 1.0]  # no light downstream: nothing subtracted
        assert scores["MaxWave"] == [0.0, 2.0]
        assert scores["MaxPressure"] == [0.0, 6.0]  # Varaiya's: each vehicle once per movement (3) its lane serves
    finally:
        env.close()


def test_detector_counts_need_the_option():
    env = TrafficSignalEnv(scenario="single", num_seconds=30, workers="inline")
    try:
        env.reset(seed=0)
        with pytest.raises(UsageError, match="resco_detectors=True"):
            env.detector_counts()
    finally:
        env.close()


def test_resco_pressure_subtracts_the_next_lights_inbound_lanes_and_wave_leaves_right_turns_out():
    scenario = make_scenario("arterial", cols=2, demand=600, duration=300, tls_type="static")
    network = SignalNetwork(scenario.net_file)
    wave, pressure, valid = resco_weights(network)
    lanes = network.all_lanes
    first, second = network.lights
    inbound_of_second = {lanes.index(lane) for lane in second.incoming_lanes}
    for g in range(first.num_greens):
        groups = first.lane_groups(g)
        assert groups and all(direction not in "rRt" for _, direction in groups)
        # pressure: +1 on each group's lanes; -1 only on the second light's inbound lanes
        negative = set(np.flatnonzero(pressure[0, g] < 0))
        assert negative <= inbound_of_second
        assert np.array_equal(wave[0, g] > 0, pressure[0, g] > 0)
    # a green that sends traffic east towards the second light subtracts its inbound lanes there
    assert any((pressure[0, g] < 0).any() for g in range(first.num_greens))
    assert valid[0, : first.num_greens].all()


@needs_resco
def test_lane_groups_are_rescos_phase_pairs_on_grid4x4():
    """RESCO's grid4x4 pairs (signal_config): e.g. [S-S, N-N], the two through lanes; its right-turn
    lanes (lane 0) are in no pair."""
    light = SignalNetwork(resco_scenario("grid4x4").net_file).lights[0]  # A0
    assert light.num_greens == 8
    groups = [light.lane_groups(g) for g in range(8)]
    assert all(len(g) == 2 for g in groups)
    lanes = {lane for g in groups for lane_list, _ in g.values() for lane in lane_list}
    assert not any(lane.endswith("_0") for lane in lanes)  # right-turn lanes
    assert {lane for lane_list, _ in groups[0].values() for lane in lane_list} == {"A1A0_1", "bottom0A0_1"}


@needs_resco
def test_resco_maps_run_with_rescos_timing_and_ingolstadt_phases_restored():
    arterial, grid = resco_scenario("arterial4x4"), resco_scenario("grid4x4")
    assert (arterial.defaults["delta_time"], arterial.defaults["yellow_time"]) == (5, 2)
    assert (grid.defaults["delta_time"], grid.defaults["yellow_time"]) == (10, 3)
    assert grid.defaults["time_to_teleport"] == -1
    for name in ("ingolstadt7", "ingolstadt21"):
        scenario = resco_scenario(name)
        assert "<!--" not in scenario.net_file.read_text().split("<tlLogic", 1)[1].rsplit("</tlLogic>", 1)[0]
        big = next(
            light for light in SignalNetwork(scenario.net_file).lights if light.id.startswith("cluster_306484187")
        )
        assert "rrrrrrGGGGrr" in big.green_states  # the phase sumo-rl's copy comments out
        assert scenario.route_files[0].exists() and scenario.begin == 57600
    assert resco_scenario("cologne1").sumocfg.parent.name == "cologne1"  # unedited maps run from sumo-rl itself


@needs_resco
def test_resco_detectors_read_along_a_stub_lanes_approach_as_rescos_lane_sets_do():
    """ingolstadt7's light gneJ143 meets its west entry through 0.9 m stub lanes; RESCO's lane sets
    name the long lane before them (10425609#0), so the detectors measure from the stop line back
    along it."""
    network = SignalNetwork(resco_scenario("ingolstadt7").net_file)
    geometry = network.approach_geometry["10425609#1_2"]
    stub, _ = geometry["10425609#1_2"]
    length, offset = geometry["10425609#0_2"]
    assert stub < 1 and offset == pytest.approx(stub) and length > 40
    further = [o for lane, (_, o) in geometry.items() if lane not in ("10425609#1_2", "10425609#0_2")]
    assert further and min(further) == pytest.approx(stub + length)  # and on, up the road, until 50 m


def resco_tripinfo_delay(tripinfo, route_file, end):
    """RESCO's utils/readXML.py, restated: mean timeLoss + departDelay over the tripinfo entries
    (written with write-unfinished), plus end - depart for each route-file <vehicle> scheduled
    after the scheduled departure of the entry that departed last (first such in file order)."""
    rows = [t.attrib for t in ElementTree.parse(tripinfo).getroot().iter("tripinfo")]
    total = sum(float(r["timeLoss"]) + float(r["departDelay"]) for r in rows)
    last_time, last_id = 0.0, ""
    for r in rows:
        if float(r["depart"]) > last_time:
            last_time, last_id = float(r["depart"]), r["id"]
    scheduled = {
        v.get("id"): float(v.get("depart")) for v in ElementTree.parse(route_file).getroot() if v.tag == "vehicle"
    }
    late = [end - depart for depart in scheduled.values() if depart > scheduled[last_id]]
    return (total + sum(late)) / (len(rows) + len(late)), np.mean([float(r["duration"]) for r in rows])


def test_delay_resco_is_rescos_tripinfo_formula_and_delay_counts_everyone(tmp_path):
    """An oversaturated entry: many vehicles never enter; RESCO's formula counts those scheduled
    after the last vehicle to enter (here, one route file in departure order: all of them)."""
    scenario = make_scenario("arterial", cols=2, demand=3000, duration=600, tls_type="static")
    routes = ElementTree.parse(scenario.route_files[0])
    for trip in routes.getroot().iter("trip"):
        trip.tag = "vehicle"  # RESCO's script counts <vehicle>s only
    route_file = tmp_path / "vehicles.rou.xml"
    routes.write(route_file)
    trips = tmp_path / "trips.xml"
    sumo_args = ["--tripinfo-output", str(trips), "--tripinfo-output.write-unfinished", "true"]
    env = TrafficSignalEnv(net_file=scenario.net_file, route_file=route_file, num_seconds=600, sumo_args=sumo_args)
    info = last_info(env, MaxPressure)  # closing the env makes SUMO write the unfinished trips
    expected_delay, expected_duration = resco_tripinfo_delay(trips, route_file, end=600.0)
    assert float(info["delay_resco"][0]) == pytest.approx(expected_delay, abs=0.05)
    assert float(info["trip_duration_resco"][0]) == pytest.approx(expected_duration, abs=0.05)
    assert float(info["final_backlog"][0]) > 20  # the formula's never-departed term is exercised


@needs_resco
@pytest.mark.integration
def test_on_grid4x4_resco_max_wave_ranks_ahead_of_resco_max_pressure_as_in_resco():
    delays = {}
    for controller in (RescoMaxWave, RescoMaxPressure):
        env = TrafficSignalEnv(scenario="resco:grid4x4", resco_detectors=True, workers="inline")
        delays[controller.__name__] = float(last_info(env, controller)["delay"][0])
    assert delays["RescoMaxWave"] < delays["RescoMaxPressure"] - 5  # RESCO: 34 s vs 52 s
