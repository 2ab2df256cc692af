"""The torch twin: network import, queue dynamics, signal rules, and the switch to SUMO."""

import json
import textwrap

import numpy as np
import pytest
import torch
import yaml
from pettingzoo.test import parallel_api_test

from ctrlgym.adapters.pettingzoo import PettingZooEnv
from ctrlgym.envs.traffic import (
    MaxPressure,
    QueueNetwork,
    RandomGreens,
    ScenarioError,
    TrafficSignalEnv,
    TrafficTwinEnv,
    make_scenario,
)
from ctrlgym.envs.traffic.twin_network import read_routes
from ctrlgym.experiment.cli import main
from ctrlgym.experiment.evaluation import evaluate_policy

SMALL = {"scenario": "arterial", "cols": 2, "demand": 1200, "num_seconds": 600}


def vehicles_due(trips, begin: float, end: float) -> float:
    """Vehicles of ``trips`` that depart in [begin, end): flows spread uniformly over their span."""
    return sum(
        trip.count * max(0.0, min(trip.end, end) - max(trip.begin, begin)) / (trip.end - trip.begin)
        if trip.end > trip.begin
        else trip.count * (begin <= trip.begin < end)
        for trip in trips
    )


@pytest.fixture(scope="module")
def grid():
    return make_scenario("grid", rows=4, cols=4, demand=2400, duration=3600)


def test_grid_import_has_every_lane_movement_and_the_route_demand(grid):
    model = QueueNetwork(grid)
    assert len(model.lanes) == 80 and model.num_movements == 16 * 12  # 1 lane per direction, 3 turns per arm
    shares = np.zeros(len(model.lanes))
    np.add.at(shares, model.movement_in, model.movement_split)
    assert np.allclose(shares + model.exit_share, 1.0)  # every vehicle reaching a stop line goes somewhere
    vehicles = sum(trip.count for trip in read_routes(grid.route_files, 3600))
    assert model.entry_rate.sum() * model.demand_bin == pytest.approx(vehicles)
    assert vehicles == pytest.approx(2400, rel=0.02)
    # the fixed-time program is the network's own: green, yellow, green, yellow
    assert model.phase_duration[0].tolist() == [42, 3, 42, 3] and model.phase_green[0].tolist() == [
        True,
        False,
        True,
        False,
    ]
    assert model.phase_green_index[0].tolist() == [0, -1, 1, -1]


def test_flows_named_routes_and_routed_trips_are_read(tmp_path):
    routes = tmp_path / "r.rou.xml"
    routes.write_text(
        textwrap.dedent(
            """\
            <routes>
              <route id="ab" edges="a b"/>
              <vehicle id="v0" depart="10" route="ab"/>
              <flow id="f" begin="0" end="1800" vehsPerHour="600"><route edges="b c"/></flow>
            </routes>"""
        )
    )
    trips = read_routes((routes,), 3600)
    assert [(t.edges, t.count) for t in trips] == [(("a", "b"), 1.0), (("b", "c"), 300.0)]
    routes.write_text(
        '<routes><trip id="t" depart="0" from="a" to="c" via="b"/><trip id="u" depart="5" from="a" to="z"/></routes>'
    )
    with pytest.raises(ScenarioError, match="trip 't' has no route the twin can read"):
        read_routes((routes,), 3600)  # no router
    paths = {("a", "c", ("b",)): ("a", "b", "c")}
    with pytest.raises(ScenarioError, match="trip 'u': no path from edge 'a' to 'z'"):
        read_routes((routes,), 3600, lambda *key: paths.get(key))
    paths[("a", "z", ())] = ("a", "z")
    assert [t.edges for t in read_routes((routes,), 3600, lambda *key: paths.get(key))] == [("a", "b", "c"), ("a", "z")]


def test_vehicles_are_conserved_and_the_demand_gets_through():
    env = TrafficTwinEnv(num_envs=3, **SMALL, signal_control="fixed_time", max_episode_steps=240)  # 1200 s
    env.reset(seed=0)
    throughput = torch.zeros(3)
    for _ in range(240):
        *_, info = env.step(torch.zeros(3, 2, dtype=torch.long))
        throughput += info["throughput"]
        assert (env.vehicles <= env.lane_capacity + 1e-4).all() and (env.queue >= -1e-5).all()  # (lanes, envs)
    in_system = env.vehicles.sum(0) + env.backlog.sum(0)
    assert torch.allclose(throughput + in_system, env.arrivals, rtol=1e-4)
    # demand ends at 600 s and the network drains by 1200 s: about 1200 veh/h x 600 s got through
    assert in_system.max() < 1.0 and throughput.mean() == pytest.approx(200, rel=0.15)


def test_a_light_held_on_one_green_queues_only_the_other_approaches():
    env = TrafficTwinEnv(
        num_envs=1, scenario="single", demand=1500, single_agent=True, observation=("queue",), max_green=10_000
    )
    env.reset(seed=0)
    for _ in range(100):
        obs, *_ = env.step(torch.zeros(1, dtype=torch.long))
    served = env.green_service[:, 0] > 0
    red_lanes = env.movement_in[~served].unique()
    assert env.queue[~served, 0].sum() > 10 * env.queue[served, 0].sum()  # (movements, envs)
    assert (env.queue[~served, 0] > 0).all()
    assert obs[0, red_lanes].min() > 0.5  # the halted approaches fill up


def test_spill_back_caps_every_lane_at_its_capacity():
    env = TrafficTwinEnv(num_envs=2, **{**SMALL, "demand": 6000})
    env.reset(seed=0)
    for _ in range(120):
        env.step(torch.zeros(2, 2, dtype=torch.long))
    assert (env.vehicles <= env.lane_capacity + 1e-4).all()
    assert (env.vehicles >= env.lane_capacity - 1e-3).any()  # some lane is full: spill-back is binding
    assert env.backlog.sum() > 0  # and vehicles queue to enter


def test_signal_rules_match_the_sumo_env():
    twin = TrafficTwinEnv(num_envs=1, **SMALL, delta_time=5, yellow_time=2, min_green=10)
    obs, _ = twin.reset(seed=0)
    phase = lambda obs: obs[0, :, :2].argmax(-1).tolist()  # noqa: E731
    switch = torch.ones(1, 2, dtype=torch.long)
    obs, *_ = twin.step(switch)  # 5 s of green: below min_green, the request is held
    assert phase(obs) == [0, 0] and obs[0, :, 2].tolist() == [0.0, 0.0]
    obs, *_ = twin.step(switch)  # 10 s of green: may switch from now on
    assert phase(obs) == [0, 0] and obs[0, :, 2].tolist() == [1.0, 1.0]
    obs, *_ = twin.step(switch)  # yellow 2 s, then green 1 for 3 s
    assert phase(obs) == [1, 1] and obs[0, :, 2].tolist() == [0.0, 0.0]
    forced = TrafficTwinEnv(num_envs=1, **SMALL, min_green=5, max_green=10)
    obs, _ = forced.reset(seed=0)
    for _ in range(3):  # held on green 0 past max_green: ended for the next green
        obs, *_ = forced.step(torch.zeros(1, 2, dtype=torch.long))
    assert phase(obs) == [1, 1]


def test_same_spaces_observation_features_and_metrics_as_sumo():
    for kwargs in ({}, {"observation": ("phase", "queue", "neighbours", "pressure"), "reward": "pressure"}):
        twin, sumo = TrafficTwinEnv(num_envs=2, **SMALL, **kwargs), TrafficSignalEnv(num_envs=1, **SMALL, **kwargs)
        try:
            assert twin.single_observation_space == sumo.single_observation_space
            assert twin.single_action_space == sumo.single_action_space and twin.agent_ids == sumo.agent_ids
            assert torch.equal(twin.neighbour_graph, sumo.neighbour_graph)
            twin.reset(seed=0)
            sumo.reset(seed=0)
            twin_info = twin.step(torch.zeros(2, 2, dtype=torch.long))[-1]
            sumo_info = sumo.step(torch.zeros(1, 2, dtype=torch.long))[-1]
            episode = {
                key for name in type(twin).final_metrics for key in (name, f"_{name}")
            }  # the twin reports them every step, masked
            assert set(twin_info) - episode == set(sumo_info) and set(type(twin).final_metrics) <= set(
                type(sumo).final_metrics
            )
        finally:
            sumo.close()


def test_the_pressure_feature_is_each_greens_mean_density_drop_over_its_movements():
    env = TrafficTwinEnv(num_envs=2, scenario="grid", rows=2, cols=2, demand=2400, observation=("pressure",))
    obs, _ = env.reset(seed=0)
    for _ in range(30):  # queues build under one green
        obs, *_ = env.step(torch.zeros(2, 4, dtype=torch.long))
    counts = env.lane_vehicle_counts()
    lane = {name: k for k, name in enumerate(env.network.all_lanes)}
    for a, light in enumerate(env.network.lights):
        for g in range(env.network.max_greens):
            if g >= light.num_greens:
                expected = torch.full((2,), 0.5)
            else:
                drops = [
                    (counts[:, lane[i]] / light.lane_capacity[i]).clamp(max=1)
                    - (counts[:, lane[o]] / light.lane_capacity[o]).clamp(max=1)
                    for i, o in light.served_movements(g)
                ]
                expected = (1 + torch.stack(drops).mean(0)) / 2
            torch.testing.assert_close(obs[:, a, g], expected, atol=1e-5, rtol=0)
    red = [(a, g) for a, light in enumerate(env.network.lights) for g in range(1, light.num_greens)]
    assert max(float(obs[:, a, g].max()) for a, g in red) > 0.55  # the red greens' queues press to be served


def test_same_seed_same_traffic_and_seeds_differ():
    env = TrafficTwinEnv(num_envs=2, **SMALL)

    def run(seed):
        env.reset(seed=seed)
        return torch.stack([env.step(torch.zeros(2, 2, dtype=torch.long))[1] for _ in range(30)])

    first = run(1)
    assert torch.equal(first, run(1)) and not torch.equal(first, run(2))
    assert not torch.equal(first[:, 0], first[:, 1])  # the envs of a batch draw their own arrivals


@pytest.mark.parametrize("scenario", [SMALL, {"scenario": "resco:cologne8"}], ids=["arterial", "cologne8"])
def test_a_step_never_reads_the_transit_rows_it_writes(scenario):
    """The step writes its seconds' entries into the ring in place (a compiled step, into its input):
    no row it reads from the ring may be one of them, or a GPU kernel could read it after the write."""
    env = TrafficTwinEnv(num_envs=2, **scenario)
    env.reset(seed=0)
    read, reaching = [], env._reaching

    def recording(entered):
        crossed = env.within_step[len(entered)]
        from_ring = torch.ones(env.n_lanes, dtype=torch.bool) if crossed is None else ~crossed[0].squeeze(-1)
        read.append(((env.tick - env.lane_delay) % env.ring)[from_ring])
        return reaching(entered)

    env._reaching = recording
    for _ in range(3):
        tick, read[:] = int(env.tick), []
        env.step(env.random_actions(torch.Generator().manual_seed(0)))
        written = {(tick + k) % env.ring for k in range(env.timing.delta_time)}
        assert len(read) == env.timing.delta_time and not written & set(torch.cat(read).tolist())


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
@pytest.mark.parametrize("control", ["agent", "fixed_time"])
def test_after_a_restart_the_step_observation_is_what_the_state_reads(mode, control):
    """A step's observation comes from within the step; the envs restarted after it have their rows
    replaced by what an empty network reads, which must be what observing their state gives."""
    env = TrafficTwinEnv(num_envs=3, **SMALL, signal_control=control, autoreset_mode=mode, max_episode_steps=3)
    env.reset(seed=0)
    generator, restarts, readouts = torch.Generator().manual_seed(0), 0, []
    observation_now = env._observation_now
    env._observation_now = lambda: readouts.append(1) or observation_now()  # counts the step's readouts
    for step in range(8):
        readouts.clear()
        obs, _, terminated, truncated, _ = env.step(env.random_actions(generator))
        assert len(readouts) == 1, (step, len(readouts))  # the step's own, none after a restart
        assert torch.equal(obs, observation_now()), step
        restarts += int((terminated | truncated).sum())
    assert restarts >= 3  # the episodes ended, so restarts were patched in
    obs[:] = -1.0  # a caller changing what it was handed changes no later observation
    obs, _ = env.reset(options={"reset_mask": torch.tensor([True, False, False])})
    assert torch.equal(obs, observation_now())


def test_max_pressure_and_actuated_beat_random_and_fixed_time_on_queues():
    scores = {}
    for name, make, extra in [
        ("max_pressure", MaxPressure, {}),
        ("random", lambda env: RandomGreens(env, 0), {}),
        ("fixed_time", lambda env: RandomGreens(env, 0), {"signal_control": "fixed_time"}),
        ("actuated", lambda env: RandomGreens(env, 0), {"signal_control": "actuated"}),
    ]:
        result = evaluate_policy(
            make, "ctrlgym/TrafficTwinEnv-v0", episodes=4, seed=0, **{**SMALL, "demand": 1800}, **extra
        )
        scores[name] = result["metrics"]
    assert scores["max_pressure"]["queue_length"] < scores["random"]["queue_length"]
    assert scores["actuated"]["queue_length"] < scores["fixed_time"]["queue_length"]
    assert scores["max_pressure"]["travel_time"] < scores["random"]["travel_time"]


def test_bad_model_parameters_and_options_raise():
    with pytest.raises(ValueError, match="saturation_flow"):
        TrafficTwinEnv(num_envs=1, **SMALL, saturation_flow=0)
    with pytest.raises(ValueError, match="permissive_share"):
        TrafficTwinEnv(num_envs=1, **SMALL, permissive_share=1.5)
    with pytest.raises(ValueError, match="unknown signal_control"):
        TrafficTwinEnv(num_envs=1, **SMALL, signal_control="adaptive")
    with pytest.raises(ScenarioError, match="file not found"):
        TrafficTwinEnv(num_envs=1, net_file="missing.net.xml", route_file="missing.rou.xml")


def test_pettingzoo_parallel_api():
    parallel_api_test(PettingZooEnv(TrafficTwinEnv(num_envs=1, **SMALL, autoreset_mode="disabled")), num_cycles=20)


def test_runs_on_the_device(device):
    env = TrafficTwinEnv(num_envs=8, **SMALL, device=device)
    obs, _ = env.reset(seed=0)
    obs, rewards, *_, info = env.step(MaxPressure(env)(obs))
    assert obs.device.type == rewards.device.type == info["queue_length"].device.type == torch.device(device).type


def test_agent_trained_on_the_twin_evaluates_on_sumo_by_changing_the_env_name(tmp_path):
    kwargs = {"demand": 800, "num_seconds": 300}
    config = {
        "name": "twin_to_sumo",
        "env": {"id": "ctrlgym/SingleIntersectionTwin-v0", "num_envs": 4, "kwargs": kwargs},
        "agent": {
            "algo": "ppo",
            "total_timesteps": 256,
            "checkpoint_every": 256,
            "hyperparameters": {"n_steps": 32, "batch_size": 64},
        },
        "evaluation": {"episodes": 1, "baselines": ["max_pressure"]},
        "seeds": [0],
        "output_dir": str(tmp_path / "run"),
    }
    path = tmp_path / "twin.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path), "--no-progress"]) == 0
    assert main(["evaluate", str(path), "--no-progress"]) == 0
    assert main(["evaluate", str(path), "--no-progress", "--env", "SingleIntersection-v0"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["evaluation"]["env"] == "ctrlgym/SingleIntersectionTwin-v0"
    on_sumo = metrics["transfer"]["ctrlgym/SingleIntersection-v0"]["policies"]
    assert set(on_sumo) == {"ppo", "max_pressure"}
    sumo_metrics = on_sumo["ppo"]["0"]["metrics"]  # SUMO's own per-vehicle records: only the SUMO env has them
    assert 0 < sumo_metrics["arrived"] <= sumo_metrics["vehicles"] and sumo_metrics["delay"] > 0
    assert main(["report", str(path), "-o", str(tmp_path / "report")]) == 0
    assert (
        "Evaluated on ctrlgym/SingleIntersection-v0, trained on ctrlgym/SingleIntersectionTwin-v0"
        in (tmp_path / "report.md").read_text()
    )


def test_the_twin_refuses_options_of_the_sumo_processes():
    from ctrlgym.envs.traffic import TrafficTwinEnv

    for option in (
        {"gui": True},
        {"max_teleports": 5},
        {"workers": "inline"},
        {"step_timeout": 10.0},
        {"backend": "traci"},
    ):
        with pytest.raises(
            ValueError, match=f"TrafficTwinEnv: {next(iter(option))}=.* set options of the SUMO processes"
        ):
            TrafficTwinEnv(num_envs=1, scenario="arterial", cols=2, **option)
    TrafficTwinEnv(num_envs=1, scenario="arterial", cols=2, time_to_teleport=-1, sumo_args=["--begin", "0"])  # accepted


def test_one_options_object_builds_the_sumo_env_and_its_twin():
    """Both envs read the same SignalControlOptions: the twin of a SUMO env, built from ``env.options``,
    has its agents, spaces, clock and timing; an unknown option is named with the ones allowed."""
    from ctrlgym.envs.traffic import TrafficSignalEnv, TrafficTwinEnv
    from ctrlgym.envs.traffic.options import SignalControlOptions

    sumo = TrafficSignalEnv(
        num_envs=1, scenario="arterial", cols=2, min_green=7, reward="queue", num_seconds=300, workers="inline"
    )
    try:
        assert sumo.options.as_kwargs() == {
            "scenario": "arterial",
            "cols": 2,
            "min_green": 7,
            "reward": "queue",
            "num_seconds": 300,
        }
        twin = TrafficTwinEnv(num_envs=3, **sumo.options.as_kwargs())
        assert twin.options == sumo.options and isinstance(twin.options, SignalControlOptions)
        assert twin.agent_ids == sumo.agent_ids and twin.single_observation_space == sumo.single_observation_space
        assert twin.single_action_space == sumo.single_action_space
        assert (twin.clock, twin.timing, twin.reward_name) == (sumo.clock, sumo.timing, "queue")
    finally:
        sumo.close()
    with pytest.raises(TypeError, match=r"TrafficTwinEnv: unknown option\(s\) min_gren; allowed: .*min_green"):
        TrafficTwinEnv(num_envs=1, scenario="arterial", cols=2, min_gren=7)


def test_the_twin_starts_a_resco_map_at_its_begin_time_with_its_demand():
    """cologne3's routes depart from 25200 s: the twin's clock starts there, so its first ten minutes carry that demand."""
    import torch

    from ctrlgym.envs.traffic import TrafficTwinEnv
    from ctrlgym.envs.traffic.twin_network import read_routes

    env = TrafficTwinEnv(num_envs=1, scenario="resco:cologne3", signal_control="fixed_time", num_seconds=600)
    env.reset(seed=0)
    assert int(env.time[0]) == 25200
    for _ in range(env.clock.max_episode_steps):
        env.step(torch.zeros(1, 3, dtype=torch.long))
    entered = float(env.vehicles.sum() + env.backlog.sum() + env.arrivals.sum())
    due = vehicles_due(read_routes(env.scenario.route_files, env.scenario.duration), 25200, 25800)
    assert due > 400 and entered > 0.5 * due, (entered, due)


@pytest.mark.parametrize("resco_map", ["cologne8", "ingolstadt7"])
def test_the_twin_routes_unrouted_trips_of_resco_maps(resco_map):
    """cologne8 and ingolstadt7 give trips as from/to edges: the twin routes them by the fastest path,
    as SUMO does at insertion, so every vehicle due enters the model's demand."""
    from ctrlgym.envs.traffic import TrafficTwinEnv
    from ctrlgym.envs.traffic.twin_network import read_routes

    env = TrafficTwinEnv(num_envs=1, scenario=f"resco:{resco_map}", num_seconds=300)
    trips = read_routes(env.scenario.route_files, env.scenario.duration, lambda a, b, via: (a, b))
    assert env.num_agents == len(env.network.lights) and float(env.model.entry_rate.sum()) > 0
    assert len(trips) > 1000  # the trips read, each routed (here by a stand-in router)
    with pytest.raises(ScenarioError, match="has no route the twin can read"):
        read_routes(env.scenario.route_files, env.scenario.duration)  # without a router


def test_a_resco_map_brings_its_calibrated_twin_parameters_and_keywords_override_them():
    """cologne8's twin runs at its calibrated saturation flow (0.7 veh/s, ``RESCO_TWIN_PARAMETERS``):
    more vehicles leave a queue per green second than at the grid default, unless the keyword says otherwise."""
    import torch

    from ctrlgym.envs.traffic import MaxPressure, TrafficTwinEnv
    from ctrlgym.envs.traffic.scenarios import RESCO_TWIN_PARAMETERS

    calibrated = TrafficTwinEnv(num_envs=1, scenario="resco:cologne8", num_seconds=600)
    given = TrafficTwinEnv(num_envs=1, scenario="resco:cologne8", num_seconds=600, saturation_flow=0.55)
    grid = TrafficTwinEnv(num_envs=1, scenario="resco:grid4x4", num_seconds=60)
    assert calibrated.model_options.saturation_flow == RESCO_TWIN_PARAMETERS["cologne8"]["saturation_flow"] == 0.7
    assert given.model_options.saturation_flow == 0.55 and grid.model_options.as_kwargs() == {}
    queues = []
    for env in (calibrated, given):
        obs, _ = env.reset(seed=0)
        policy, total = MaxPressure(env), 0.0
        for _ in range(env.clock.max_episode_steps):
            obs, _, _, _, info = env.step(policy(obs))
            total += float(info["queue_length"][0])
        queues.append(total)
    assert queues[0] < queues[1], queues  # the faster discharge keeps shorter queues under the same controller
    assert torch.equal(calibrated.neighbour_graph, given.neighbour_graph)


def test_the_twin_reports_delay_per_vehicle_and_ranks_random_last():
    """``delay`` at the episode's end: vehicle-seconds queued or waiting to enter per vehicle due; random
    greens delay vehicles more than max-pressure."""
    from ctrlgym.envs.traffic import MaxPressure, RandomGreens
    from ctrlgym.experiment.evaluation import evaluate_policy

    kwargs = {"scenario": "arterial", "cols": 3, "num_seconds": 600}
    delay = {
        name: evaluate_policy(make, "ctrlgym/TrafficTwinEnv-v0", episodes=4, seed=0, **kwargs)["metrics"]
        for name, make in (("max_pressure", MaxPressure), ("random", lambda env: RandomGreens(env, 0)))
    }
    assert 0 < delay["max_pressure"]["delay"] < delay["random"]["delay"]
    assert 0 < delay["max_pressure"]["arrived"] <= delay["max_pressure"]["vehicles"]


def test_no_lane_overfills_on_an_oversaturated_multilane_map():
    """arterial4x4 under max-wave: edges have several lanes with different route shares. A lane
    takes only what fits in it (per-lane spill-back); when the cap was per edge, one lane held
    280 vehicles at 1500 s while its neighbour stood empty, and the twin let through 55% fewer
    vehicles than SUMO."""
    from ctrlgym.envs.traffic import MaxWave

    env = TrafficTwinEnv(num_envs=2, scenario="resco:arterial4x4", num_seconds=1500)
    obs, _ = env.reset(seed=0)
    policy, overfill, full = MaxWave(env), 0.0, False
    for _ in range(env.clock.max_episode_steps - 1):
        obs, *_ = env.step(policy(obs))
        overfill = max(overfill, float((env.vehicles - env.lane_capacity).max()))
        full |= bool((env.vehicles >= env.lane_capacity - 1e-3).any())
    assert overfill <= 1e-3, f"a lane holds {overfill:.1f} vehicles more than its capacity"
    assert full  # spill-back binds somewhere: the test exercises it


def test_a_vehicle_crossing_an_unsignalled_junction_between_lights_stays_in_the_twin():
    """cologne3's routes run from one light's outgoing edge to the next light's incoming edge across
    priority junctions: transfer movements carry them on, so each vehicle is due once (not once per
    light it meets) and the twin's demand is the route file's."""
    env = TrafficTwinEnv(num_envs=1, scenario="resco:cologne3", signal_control="fixed_time", num_seconds=600)
    model = env.model
    transfers = model.movement_light < 0
    assert (
        transfers.sum() >= 4
        and np.all(model.green_service[transfers] == 1.0)
        and np.all(model.phase_service[transfers] == 1.0)
    )
    modelled = set(model.lane_edge)
    trips = [
        trip for trip in read_routes(env.scenario.route_files, env.scenario.duration) if modelled & set(trip.edges)
    ]
    assert float(model.entry_rate.sum()) * model.demand_bin == pytest.approx(
        sum(trip.count for trip in trips), rel=1e-6
    )

    env.reset(seed=0)
    carried = 0.0
    for _ in range(env.clock.max_episode_steps):
        env.step(torch.zeros(1, 3, dtype=torch.long))
        carried += float(env.queue[torch.as_tensor(transfers)].sum())
    due = vehicles_due(trips, 25200, 25800)
    assert carried > 0  # vehicles queue at the transfers' stop lines and go on
    assert float(env.arrivals.sum()) == pytest.approx(due, rel=0.15)  # Poisson arrivals, each vehicle once


def test_every_metric_the_twin_reports_has_a_meaning_and_unit():
    env = TrafficTwinEnv(num_envs=2, scenario="arterial", cols=2, num_seconds=120)
    env.reset(seed=0)
    keys = set()
    for _ in range(30):
        _, _, terminated, truncated, info = env.step(torch.zeros(2, env.num_agents, dtype=torch.long))
        keys |= {key for key, value in info.items() if isinstance(value, torch.Tensor) and not key.startswith("_")}
    assert {"delay", "queue_length", "light_queue_length"} <= keys
    assert sorted(key for key in keys if key not in env.metric_descriptions) == []


@pytest.mark.integration  # compiling a decision step takes tens of seconds on 2 cores
def test_the_compiled_twin_agrees_with_the_eager_twin_to_float_rounding():
    import pickle

    kwargs = {**SMALL, "reward": "delay", "observation": ["phase", "min_green", "density", "queue"]}
    eager, compiled = TrafficTwinEnv(num_envs=3, **kwargs), TrafficTwinEnv(num_envs=3, compile=True, **kwargs)
    compiled.compile_chunk = 2  # two chunks, of 2 envs and 1: each written back into the batch's state
    eager.reset(seed=4)
    compiled.reset(seed=4)
    generator = torch.Generator().manual_seed(0)
    for _ in range(25):
        actions = eager.random_actions(generator)
        a, b = eager.step(actions), compiled.step(actions)
        for x, y in zip(a[:4], b[:4], strict=True):  # obs, rewards, terminated, truncated
            torch.testing.assert_close(y, x, rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(b[4]["queue_length"], a[4]["queue_length"], rtol=1e-4, atol=1e-3)
    assert float(eager.vehicles.sum()) > 1  # traffic flowed, so the comparison compared something
    assert len(compiled._compiled_advance.cache) == 2  # one graph per chunk size
    restored = pickle.loads(pickle.dumps(compiled))  # the compiled code is dropped, the state kept
    assert restored.compile and not restored._compiled_advance.cache
    assert torch.equal(restored.vehicles, compiled.vehicles)


def test_the_twins_gathered_sums_add_in_index_adds_order_bit_for_bit():
    from ctrlgym.envs.traffic.twin import Members

    owner = np.array([3, 0, 3, 1, 3, 0, 5])  # rows 2 and 4 own nothing, row 3 three items
    values = torch.randn(7, 9, generator=torch.Generator().manual_seed(0)) * 1e3
    members = Members.of(owner, 6, torch.device("cpu"))
    assert members.table.shape == (3, 6)  # as wide as the largest row
    expected = torch.zeros(6, 9).index_add_(0, torch.as_tensor(owner), values)
    assert torch.equal(members.sum(values, gathered=False), expected)
    assert torch.equal(members.sum(values, gathered=True), expected)
    target = torch.randn(6, 9, generator=torch.Generator().manual_seed(1))
    for alpha in (1.0, -1.0):
        expected = target.clone().index_add_(0, torch.as_tensor(owner), values, alpha=alpha)
        assert torch.equal(members.add(target.clone(), values, gathered=True, alpha=alpha), expected)
        assert torch.equal(members.add(target.clone(), values, gathered=False, alpha=alpha), expected)
