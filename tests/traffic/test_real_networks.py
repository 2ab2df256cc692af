"""Scenarios run as their files say, RESCO's metrics from SUMO's records, baselines that serve
every approach, workers that never hang: on small networks built here (RESCO maps: -m slow)."""

import importlib.util
import json
import os
import signal
import time
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
import torch
import yaml

from ctrlgym.envs.traffic import (
    RESCO_MAPS,
    MaxPressure,
    MaxWave,
    ScenarioError,
    SignalNetwork,
    SumoError,
    TrafficSignalEnv,
    TrafficTwinEnv,
    make_scenario,
    resco_scenario,
)
from ctrlgym.experiment.cli import main
from ctrlgym.registry import Baseline, get_entry

HAS_RESCO = importlib.util.find_spec("sumo_rl") is not None


def run_episode(env, policy=None, seed=0):
    """Step one episode; return the per-step infos and the last info."""
    obs, _ = env.reset(seed=seed)
    infos = []
    while True:
        actions = policy(obs) if policy else torch.zeros((env.num_envs, env.num_agents), dtype=torch.long)
        obs, _, _, truncated, info = env.step(actions)
        infos.append(info)
        if bool(truncated.all()):
            return infos, info


def shifted_sumocfg(tmp_path, begin: int, end: int, demand: float = 1200.0):
    """A .sumocfg whose routes are the built-in single intersection's, shifted to depart from ``begin``."""
    scenario = make_scenario("single", demand=demand, duration=end - begin, tls_type="static")
    routes = ElementTree.parse(scenario.route_files[0])
    for vehicle in routes.getroot().iter("vehicle"):
        vehicle.set("depart", f"{float(vehicle.get('depart')) + begin:.2f}")
    routes.write(tmp_path / "shifted.rou.xml")
    config = tmp_path / "shifted.sumocfg"
    config.write_text(
        f"<configuration><input><net-file value='{scenario.net_file}'/><route-files value='shifted.rou.xml'/></input>"
        f"<time><begin value='{begin}'/><end value='{end}'/></time></configuration>"
    )
    return config


# ---------------------------------------------------------------------------- scenarios as their files say
def test_sumocfg_begin_gives_vehicles_in_the_first_minute_and_end_sets_the_episode(tmp_path):
    config = shifted_sumocfg(tmp_path, begin=5000, end=5300)
    env = TrafficSignalEnv(sumocfg=config)
    try:
        assert (env.clock.begin, env.clock.end, env.max_episode_steps) == (5000, 5300, 60)  # (end - begin) / delta_time
        env.reset(seed=0)
        on_road = []
        for _ in range(12):  # the first minute
            env.step(torch.zeros((1, 1), dtype=torch.long))
            on_road.append(float(env.lane_vehicle_counts().sum()))
        assert env.layout.value(env._rows, "time")[0] == 5060 and max(on_road) > 0
        infos, last = run_episode(env)
        assert len(infos) == 60 and env.layout.value(env._rows, "time")[0] == 5300
        assert last["vehicles"][0] > 50  # the routes' vehicles, not an empty network
    finally:
        env.close()
    with pytest.raises(ValueError, match="not a whole number of SUMO steps"):
        TrafficSignalEnv(sumocfg=config, sumo_args=["--step-length", "0.3"])


def test_num_seconds_and_step_length_override_the_file(tmp_path):
    config = shifted_sumocfg(tmp_path, begin=5000, end=5300)
    env = TrafficSignalEnv(sumocfg=config, num_seconds=100, sumo_args=["--step-length", "0.5"])
    try:
        infos, _ = run_episode(env)
        assert (
            len(infos) == 20 and env.layout.value(env._rows, "time")[0] == 5100
        )  # 5 s decisions of 10 half-second steps
    finally:
        env.close()


def test_time_to_teleport_is_obeyed_and_conflicts_are_errors():
    kwargs = {"scenario": "single", "demand": 3600, "num_seconds": 600, "max_green": 10_000}
    totals = {}
    for value in (5, -1):
        env = TrafficSignalEnv(**kwargs, time_to_teleport=value)
        try:
            totals[value] = float(run_episode(env)[1]["total_teleports"][0])  # one green held: a gridlock
        finally:
            env.close()
    assert totals[5] > 0 and totals[-1] == 0
    with pytest.raises(ValueError, match="disagree"):
        TrafficSignalEnv(**kwargs, time_to_teleport=5, sumo_args=["--time-to-teleport", "10"])
    with pytest.raises(ValueError, match="may not set --seed: ctrlgym sets it"):
        TrafficSignalEnv(**kwargs, sumo_args=["--seed", "3"])


# ---------------------------------------------------------------------------- metrics that count everyone
def test_delay_equals_sumo_tripinfo_including_vehicles_never_inserted(tmp_path):
    trips = tmp_path / "trips.xml"
    sumo_args = [
        "--tripinfo-output",
        str(trips),
        "--tripinfo-output.write-unfinished",
        "true",
        "--tripinfo-output.write-undeparted",
        "true",
    ]
    env = TrafficSignalEnv(scenario="arterial", cols=2, demand=3000, num_seconds=600, sumo_args=sumo_args)
    try:
        _, last = run_episode(env, MaxPressure(env))
    finally:
        env.close()  # SUMO writes the unfinished trips when it closes
    rows = [t.attrib for t in ElementTree.parse(trips).getroot().iter("tripinfo")]
    expected = np.mean([float(r["timeLoss"]) + float(r["departDelay"]) for r in rows])
    never_inserted = sum(r.get("depart") == "-1" for r in rows)
    # a congested entry; SUMO's close may add the one vehicle due at the very end second
    assert never_inserted > 20 and abs(float(last["final_backlog"][0]) - never_inserted) <= 1
    assert abs(float(last["vehicles"][0]) - len(rows)) <= 1
    assert float(last["delay"][0]) == pytest.approx(expected, rel=0.01)
    arrived = [float(r["duration"]) for r in rows if float(r["arrival"]) >= 0]
    assert float(last["arrived"][0]) == len(arrived)
    assert float(last["mean_trip_time"][0]) == pytest.approx(np.mean(arrived), rel=0.01)


def test_backlog_appears_when_an_entry_is_blocked():
    results = {}
    for name in ("blocked", "max_pressure"):
        env = TrafficSignalEnv(scenario="single", demand=1500, num_seconds=900, max_green=10_000, time_to_teleport=-1)
        try:
            infos, last = run_episode(env, MaxPressure(env) if name == "max_pressure" else None)
            results[name] = (
                max(float(i["insertion_backlog"][0]) for i in infos),
                float(last["final_backlog"][0]),
                float(last["delay"][0]),
            )
        finally:
            env.close()
    assert results["blocked"][0] > 20 and results["blocked"][1] > 20  # the red approaches' vehicles wait outside
    assert results["max_pressure"][1] < results["blocked"][1] / 4
    assert results["blocked"][2] > 2 * results["max_pressure"][2]  # and delay counts them


# ---------------------------------------------------------------------------- baselines that serve every approach
def one_approach_green_network(tmp_path):
    """The single intersection with three greens: N+S+E, N+S (a subset), and W alone. A greedy
    controller always prefers the first to the second, so a forced change to "the next green"
    (0 -> 1) never reaches W: only a change to the best *other* green serves it."""
    scenario = make_scenario("single", demand=1500, duration=900, tls_type="static")
    net = ElementTree.parse(scenario.net_file)
    logic = next(net.getroot().iter("tlLogic"))
    for phase in list(logic):
        logic.remove(phase)
    for state in ("gggggggggrrr", "gggrrrgggrrr", "rrrrrrrrrGGG"):  # links 0-2 top, 3-5 right, 6-8 bottom, 9-11 left
        ElementTree.SubElement(logic, "phase", duration="30", state=state)
    path = tmp_path / "one_approach.net.xml"
    net.write(path)
    return path, scenario.route_files[0]


@pytest.mark.parametrize("controller", [MaxPressure, MaxWave])
def test_greedy_controllers_serve_every_approach_when_max_green_forces_a_change(tmp_path, controller):
    net, routes = one_approach_green_network(tmp_path)
    env = TrafficSignalEnv(net_file=net, route_file=routes, num_seconds=900, max_green=30, time_to_teleport=-1)
    try:
        policy, shown = controller(env), set()
        obs, _ = env.reset(seed=0)
        for _ in range(env.max_episode_steps):
            obs, *_ = env.step(policy(obs))
            shown.add(int(env.signal_state()[0][0, 0]))
        light = env.network.lights[0]
        served = {in_lane for green in shown for in_lane, _ in light.served_movements(green)}
        assert 2 in shown and served == set(light.incoming_lanes)  # W's own green was reached
    finally:
        env.close()


def test_actuated_runs_on_a_network_with_only_static_programs():
    kwargs = {"scenario": "single", "demand": 1200, "num_seconds": 600, "tls_type": "static"}
    scores = {}
    for control in ("fixed_time", "actuated"):
        env = TrafficSignalEnv(**kwargs, signal_control=control)
        try:
            infos, last = run_episode(env)
            scores[control] = np.mean([float(i["queue_length"][0]) for i in infos])
        finally:
            env.close()
    assert scores["actuated"] < scores["fixed_time"]  # it actuates: shorter queues than the static cycle
    twin = TrafficTwinEnv(**kwargs, signal_control="actuated")
    assert twin.reset(seed=0)[0].shape == (1, 1, twin.single_observation_space.shape[-1])


def test_a_failing_baseline_does_not_abort_evaluate_and_an_edited_evaluation_reruns(tmp_path, monkeypatch, capsys):
    entry = get_entry("ctrlgym/TrafficSignalEnv-v0")

    def broken(env, seed):
        raise ScenarioError("this controller cannot run here")

    monkeypatch.setitem(entry.baselines, "broken", Baseline(broken))
    config = {
        "name": "tiny",
        "env": {
            "id": "ctrlgym/TrafficSignalEnv-v0",
            "num_envs": 1,
            "kwargs": {"scenario": "single", "num_seconds": 120},
        },
        "agent": None,
        "evaluation": {"episodes": 1, "baselines": ["broken", "max_pressure"]},
        "seeds": [0, 1],
        "output_dir": str(tmp_path / "run"),
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["evaluate", str(path), "--no-progress"]) == 1  # a failed job: the others ran, the exit code says it
    assert (
        "broken           FAILED on seed 0: ScenarioError: this controller cannot run here" in capsys.readouterr().out
    )
    policies = json.loads((tmp_path / "run" / "metrics.json").read_text())["evaluation"]["policies"]
    assert policies["broken"]["0"] == {"failed": "ScenarioError: this controller cannot run here"}
    assert {"delay", "final_backlog"} <= set(policies["max_pressure"]["1"]["metrics"])
    assert main(["report", str(path), "-o", str(tmp_path / "report")]) == 0
    run = json.loads((tmp_path / "report.json").read_text())["data"]["runs"][0]
    assert run["failures"] == ["broken failed on seeds 0, 1: ScenarioError: this controller cannot run here"]
    config["evaluation"]["baselines"] = ["max_pressure", "max_wave"]  # edited: evaluate again, no folder to delete
    path.write_text(yaml.safe_dump(config))
    assert main(["evaluate", str(path), "--no-progress"]) == 0
    policies = json.loads((tmp_path / "run" / "metrics.json").read_text())["evaluation"]["policies"]
    assert set(policies) == {"max_pressure", "max_wave"}
    assert main(["report", str(path), "-o", str(tmp_path / "report")]) == 0
    headline = json.loads((tmp_path / "report.json").read_text())["data"]["runs"][0]["headline"]
    assert (
        headline["metric"] == "delay" and headline["higher_is_better"] is False
    )  # traffic's headline: lower is better
    assert {row["policy"] for row in headline["rows"]} == {"max_pressure", "max_wave"}
    config["env"]["kwargs"]["num_seconds"] = 60  # another experiment: still refused
    path.write_text(yaml.safe_dump(config))
    assert main(["evaluate", str(path), "--no-progress"]) == 2
    assert "env differ" in capsys.readouterr().err


# ---------------------------------------------------------------------------- routes checked up front
def test_an_unknown_route_edge_fails_at_construction_naming_vehicle_edge_and_file(tmp_path):
    net = make_scenario("single", demand=600, duration=300).net_file
    routes = tmp_path / "bad.rou.xml"
    routes.write_text("<routes><vehicle id='v7' depart='0'><route edges='top0A0 no_such_edge'/></vehicle></routes>")
    with pytest.raises(
        ScenarioError,
        match=r"bad.rou.xml: vehicle 'v7' uses edge 'no_such_edge', which is not in the network net.net.xml",
    ):
        TrafficSignalEnv(net_file=net, route_file=routes, num_seconds=300)
    trips = tmp_path / "trips.rou.xml"
    trips.write_text("<routes><trip id='t1' depart='0' from='top0A0' to='nowhere'/></routes>")
    with pytest.raises(ScenarioError, match="trip 't1' uses edge 'nowhere'"):
        TrafficTwinEnv(net_file=net, route_file=trips, num_seconds=300)


# ---------------------------------------------------------------------------- workers that never hang
def test_a_failure_while_building_the_simulation_comes_back_with_sumos_message(tmp_path):
    net = make_scenario("single", demand=600, duration=300).net_file
    routes = tmp_path / "bad.rou.xml"
    routes.write_text("<routes><vehicle id='v' depart='0'><route edges='no_such_edge'/></vehicle></routes>")
    env = TrafficSignalEnv(net_file=net, route_file=routes, num_seconds=300, validate_routes=False)
    try:
        with pytest.raises(
            SumoError, match="scenario net, env 0: SUMO failed while starting the simulation: .*no_such_edge"
        ):
            env.reset(seed=0)
    finally:
        env.close()


def test_a_hung_sumo_times_out_with_a_clear_error_and_reset_recovers():
    env = TrafficSignalEnv(scenario="single", num_seconds=300, step_timeout=2, workers="process")
    try:
        env.reset(seed=0)
        os.kill(env.workers.pids()[0], signal.SIGSTOP)  # SUMO stops answering
        start = time.monotonic()
        with pytest.raises(SumoError, match=r"env 0: no answer from SUMO within step_timeout=2 s while stepping"):
            env.step(torch.zeros((1, 1), dtype=torch.long))
        assert time.monotonic() - start < 10
        env.reset(seed=0)  # a fresh worker
        env.step(torch.zeros((1, 1), dtype=torch.long))
    finally:
        env.close()
    with pytest.raises(SumoError, match="the env is closed; make a new one"):
        env.workers.start({0: 1}, env._rows)


def test_inline_simulation_steps_as_the_worker_process_does():
    finals = []
    for workers in ("process", "inline"):
        env = TrafficSignalEnv(scenario="single", num_seconds=300, workers=workers)
        try:
            _, last = run_episode(env, MaxPressure(env), seed=3)
            finals.append([float(last[k][0]) for k in ("delay", "arrived", "final_backlog")])
        finally:
            env.close()
    assert finals[0] == finals[1]
    with pytest.raises(ValueError, match="num_envs must be 1"):
        TrafficSignalEnv(num_envs=2, scenario="single", workers="inline")


# ---------------------------------------------------------------------------- RESCO maps
def test_resco_scenarios_name_the_missing_package(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ScenarioError, match=r"pip install 'ctrlgym\[benchmarks\]'"):
        resco_scenario("cologne8")
    with pytest.raises(ScenarioError, match="unknown RESCO map"):
        resco_scenario("paris")


@pytest.mark.skipif(not HAS_RESCO, reason="needs sumo-rl's RESCO maps: pip install 'ctrlgym[benchmarks]'")
def test_resco_maps_start_at_their_begin_with_resco_timing():
    scenario = resco_scenario("cologne8")
    assert (scenario.begin, scenario.end, scenario.sumocfg.name) == (25200, 28800, "cologne8.sumocfg")
    env = TrafficSignalEnv(scenario="resco:ingolstadt1", num_seconds=60)
    try:
        assert (env.timing.delta_time, env.timing.yellow_time, env.clock.begin) == (10, 3, 57600)
        run_episode(env)
        assert env.layout.value(env._rows, "time")[0] == 57660
        assert float(env.lane_vehicle_counts().sum()) > 0  # vehicles on the road in the first minute
    finally:
        env.close()


@pytest.mark.skipif(not HAS_RESCO, reason="needs sumo-rl's RESCO maps: pip install 'ctrlgym[benchmarks]'")
def test_a_stub_incoming_lane_reads_its_whole_approach_and_max_pressure_serves_it():
    """ingolstadt7's entry 10425609#0 (43.6 m) reaches light gneJ143 through a 0.92 m stub lane:
    read alone, its queue is invisible and max-pressure starves it (257 vehicles left outside)."""
    import sumolib

    env = TrafficSignalEnv(scenario="resco:ingolstadt7", time_to_teleport=-1, num_seconds=900, workers="inline")
    try:
        network = env.network
        stub = "10425609#1_1"
        assert network.approaches[stub][:2] == (stub, "10425609#0_1")  # the stub, then the entry lane before it
        assert network.lane_length[stub] >= 0.92 + 43.58 - 0.05
        net = sumolib.net.readNet(str(env.scenario.net_file))
        own = {lane: net.getLane(lane).getLength() for lane in network.all_lanes}
        assert all(
            network.approaches[lane] == (lane,) for lane in network.all_lanes if own[lane] >= 50.0
        )  # long lanes: unchanged
        extended = [lane for lane in network.all_lanes if len(network.approaches[lane]) > 1]
        assert len(extended) > 20 and all(
            network.lane_length[lane] > own[lane] for lane in extended
        )  # ingolstadt7: most stubs
        light = network.lights[network.agent_ids.index("gneJ143")]
        assert light.lane_capacity[stub] == pytest.approx(network.lane_length[stub] / 7.5)
        policy = MaxPressure(env)
        obs, _ = env.reset(seed=0)
        api = env.workers.simulation.api
        index = network.all_lanes.index(stub)
        seen = []
        for _ in range(90):
            obs, _, _, _, info = env.step(policy(obs))
            counted = float(env.lane_vehicle_counts()[0, index])
            assert counted == sum(api.lane.getLastStepVehicleNumber(lane) for lane in network.approaches[stub])
            seen.append(counted)
        assert max(seen) >= 3  # the queue on the entry edge is seen ...
        assert float(info["insertion_backlog"][0]) < 10  # ... and served (without approaches: 100+ waiting outside)
    finally:
        env.close()


@pytest.mark.slow
@pytest.mark.skipif(not HAS_RESCO, reason="needs sumo-rl's RESCO maps: pip install 'ctrlgym[benchmarks]'")
@pytest.mark.parametrize("name", ["cologne1", "ingolstadt7"])
def test_a_full_resco_episode_under_every_controller(name):
    assert name in RESCO_MAPS
    delays = {}
    for control, make in (("fixed_time", None), ("actuated", None), ("agent", MaxPressure), ("agent", MaxWave)):
        env = TrafficSignalEnv(scenario=f"resco:{name}", signal_control=control, time_to_teleport=-1)
        try:
            _, last = run_episode(env, make(env) if make else None)
            delays[make.__name__ if make else control] = float(last["delay"][0])
            assert float(last["arrived"][0]) > 0.5 * float(last["vehicles"][0])
        finally:
            env.close()
    assert all(0 < d < 600 for d in delays.values()), delays


@pytest.mark.skipif(not HAS_RESCO, reason="needs sumo-rl's RESCO maps: pip install 'ctrlgym[benchmarks]'")
def test_neighbour_reach_links_lights_through_unsignalled_junctions():
    """On cologne8 only 3 of 8 lights meet another directly; within 400 m of road through
    unsignalled junctions every light has a neighbour. grid4x4's lights all meet directly: unchanged."""
    net_file = resco_scenario("cologne8").net_file
    direct, reach = SignalNetwork(net_file).adjacency, SignalNetwork(net_file, neighbour_reach_m=400).adjacency
    assert direct.any(1).sum() == 3 and reach.any(1).all()
    assert (reach >= direct).all() and (reach == reach.T).all() and not reach.diagonal().any()
    assert (
        SignalNetwork(net_file, neighbour_reach_m=100).adjacency.sum() < reach.sum()
    )  # the reach is in metres of road
    grid = resco_scenario("grid4x4").net_file
    assert (SignalNetwork(grid).adjacency == SignalNetwork(grid, neighbour_reach_m=1000).adjacency).all()
    with pytest.raises(ValueError, match="neighbour_reach must be >= 0 metres, got -1"):
        TrafficTwinEnv(1, scenario="resco:cologne8", neighbour_reach=-1)


def test_auto_workers_run_one_env_inline_and_a_batch_or_a_second_env_in_processes():
    one = TrafficSignalEnv(scenario="single", num_seconds=30)
    try:
        assert one.workers.pids() == [os.getpid()]  # inline: no worker, no round trip
        second = TrafficSignalEnv(scenario="single", num_seconds=30)  # libsumo: one simulation per process
        batch = TrafficSignalEnv(num_envs=2, scenario="single", num_seconds=30)
        try:
            assert os.getpid() not in second.workers.pids() and len(set(batch.workers.pids())) == 2
        finally:
            second.close()
            batch.close()
    finally:
        one.close()


@pytest.mark.integration
def test_a_plain_script_with_one_sumo_env_needs_no_main_guard(tmp_path):
    script = tmp_path / "plain.py"
    script.write_text(
        "import torch\n"
        "from ctrlgym.envs.traffic import TrafficSignalEnv\n"
        "env = TrafficSignalEnv(scenario='single', num_seconds=60)\n"
        "obs, info = env.reset(seed=0)\n"
        "obs, *_ = env.step(torch.zeros((1, 1), dtype=torch.long))\n"
        "print('stepped', tuple(obs.shape))\n"
    )
    import subprocess
    import sys

    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0 and "stepped (1, 1, 11)" in result.stdout, result.stderr[-2000:]
