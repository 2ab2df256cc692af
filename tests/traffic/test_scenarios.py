"""Scenarios built with SUMO's own tools, and user files with clear errors."""

import xml.etree.ElementTree as ElementTree

import pytest

from ctrlgym.envs.traffic import Scenario, ScenarioError, SignalNetwork, make_scenario
from ctrlgym.envs.traffic.network import yellow_state


@pytest.mark.parametrize(
    "kind, kwargs, lights", [("single", {}, 1), ("arterial", {"cols": 3}, 3), ("grid", {"rows": 2, "cols": 3}, 6)]
)
def test_built_in_scenarios_have_one_light_per_intersection(kind, kwargs, lights):
    scenario = make_scenario(kind, demand=600, duration=300, **kwargs)
    assert SignalNetwork(scenario.net_file).num_agents == lights


def test_demand_sets_the_number_of_vehicles_and_seed_the_routes():
    scenario = make_scenario("grid", rows=2, cols=2, demand=1800, duration=600, seed=1)
    vehicles = ElementTree.parse(scenario.route_files[0]).getroot().findall("vehicle")
    assert abs(len(vehicles) - 1800 * 600 / 3600) <= 5  # --validate may drop an unroutable trip
    same = make_scenario("grid", rows=2, cols=2, demand=1800, duration=600, seed=1)
    other = make_scenario("grid", rows=2, cols=2, demand=1800, duration=600, seed=2)
    assert same.route_files == scenario.route_files  # cached
    assert other.route_files[0].read_text() != scenario.route_files[0].read_text()


def test_grid_neighbour_graph_links_adjacent_intersections():
    network = SignalNetwork(make_scenario("grid", rows=2, cols=3, demand=600, duration=300).net_file)
    # ids: letter = column (x), digit = row (y); the middle column B has 3 neighbours each
    assert network.adjacency.sum(axis=1).tolist() == [2, 2, 3, 3, 2, 2]  # A0 A1 B0 B1 C0 C1
    assert (network.adjacency == network.adjacency.T).all() and not network.adjacency.diagonal().any()


def test_yellow_state_turns_only_ending_greens_yellow():
    assert yellow_state("GGgrrr", "rrrGGg") == "yyyrrr"
    assert yellow_state("GGrr", "GrGr") == "Gyrr"


def test_missing_files_name_the_path(tmp_path):
    with pytest.raises(ScenarioError, match="file not found: .*nowhere.net.xml"):
        Scenario.from_files(tmp_path / "nowhere.net.xml", tmp_path / "nowhere.rou.xml")
    with pytest.raises(ScenarioError, match="sumocfg file not found"):
        Scenario.from_sumocfg(tmp_path / "absent.sumocfg")


def test_malformed_network_is_a_clear_error(tmp_path):
    broken, routes = tmp_path / "broken.net.xml", tmp_path / "r.rou.xml"
    broken.write_text("<net><edge id='a'")
    routes.write_text("<routes/>")
    with pytest.raises(ScenarioError, match="broken.net.xml is not valid XML"):
        Scenario.from_files(broken, routes)
    broken.write_text("<routes/>")
    with pytest.raises(ScenarioError, match="not a SUMO network"):
        Scenario.from_files(broken, routes)


def test_sumocfg_names_the_network_and_routes(tmp_path):
    built = make_scenario("single", demand=600, duration=300)
    config = tmp_path / "run.sumocfg"
    config.write_text(
        f"<configuration><input><net-file value='{built.net_file}'/><route-files value='{built.route_files[0]}'/></input>"
        "<time><end value='300'/></time></configuration>"
    )
    scenario = Scenario.from_sumocfg(config)
    assert scenario.net_file == built.net_file and scenario.duration == 300


def test_unknown_kind_and_bad_sizes_raise():
    with pytest.raises(ScenarioError, match="unknown scenario kind"):
        make_scenario("roundabout")
    with pytest.raises(ScenarioError, match="rows must be >= 1"):
        make_scenario("grid", rows=0)


def test_sumocfg_with_another_scenario_argument_and_an_empty_route_file_are_clear_errors(tmp_path):
    from ctrlgym.envs.traffic import TrafficSignalEnv, TrafficTwinEnv

    built = make_scenario("single", demand=600, duration=300)
    config = tmp_path / "run.sumocfg"
    config.write_text(
        f"<configuration><input><net-file value='{built.net_file}'/><route-files value='{built.route_files[0]}'/></input>"
        "<time><end value='300'/></time></configuration>"
    )
    with pytest.raises(ScenarioError, match=r"sumocfg= names the whole scenario; drop scenario='resco:cologne1'"):
        TrafficSignalEnv(sumocfg=config, scenario="resco:cologne1")
    with pytest.raises(ScenarioError, match=r"drop net_file"):
        TrafficTwinEnv(sumocfg=config, net_file=built.net_file)
    empty = tmp_path / "empty.rou.xml"
    empty.write_text("<routes/>")
    for env_class in (TrafficSignalEnv, TrafficTwinEnv):  # would score a perfect delay of 0.0
        with pytest.raises(ScenarioError, match="hold no vehicle, trip or flow"):
            env_class(net_file=built.net_file, route_file=empty)


def test_importing_libsumo_beside_another_pyarrow_prints_nothing():
    import subprocess
    import sys

    script = "from ctrlgym.envs.traffic.simulation import SumoSimulation\nimport ctrlgym.envs.traffic.simulation as s\n"
    script += "s.SumoSimulation._import_backend(type('S', (), {'backend': 'libsumo'})())\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "pyarrow" not in out.stdout + out.stderr


@pytest.mark.integration
def test_sumo_worker_processes_print_nothing_about_pyarrow():
    import subprocess
    import sys

    script = (
        "from ctrlgym.envs.traffic import TrafficSignalEnv\n"
        "if __name__ == '__main__':\n"
        "    env = TrafficSignalEnv(num_envs=2, scenario='grid', rows=2, cols=2, num_seconds=60, workers='process')\n"
        "    env.reset(seed=0)\n"
        "    env.close()\n"
        "    print('reset done')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert "reset done" in out.stdout, out.stderr[-2000:]
    assert "pyarrow" not in out.stdout + out.stderr  # the workers' forkserver imports libsumo quietly
