"""TrafficSignalEnv on real SUMO: signal timing, observations, rewards, backends, faults."""

import os
import signal

import pytest
import torch
from pettingzoo.test import parallel_api_test

from ctrlgym.adapters.pettingzoo import PettingZooEnv
from ctrlgym.envs.traffic import MaxPressure, RandomGreens, SumoError, TrafficSignalEnv
from ctrlgym.experiment.evaluation import evaluate_policy

SMALL = {"scenario": "arterial", "cols": 2, "demand": 1200, "num_seconds": 600}


@pytest.fixture
def arterial():
    env = TrafficSignalEnv(num_envs=2, **SMALL)
    yield env
    env.close()


def test_shapes_follow_the_batched_multi_agent_convention(arterial):
    obs, _ = arterial.reset(seed=0)
    assert arterial.agent_ids == ["A0", "B0"] and arterial.num_agents == 2
    assert obs.shape == (2, 2, 2 + 1 + 4 + 4)  # phase one-hot, min-green flag, density and queue of 4 lanes
    assert arterial.neighbour_graph.tolist() == [[False, True], [True, False]]
    obs, rewards, terminated, truncated, info = arterial.step(torch.zeros(2, 2, dtype=torch.long))
    assert rewards.shape == (2, 2) and terminated.shape == (2,)
    for key in ("queue_length", "waiting_time", "throughput", "trip_time", "mean_speed", "teleports"):
        assert info[key].shape == (2,)
    assert ((obs >= 0) & (obs <= 1)).all()


def test_a_change_shows_yellow_then_the_new_green_and_min_green_holds():
    env = TrafficSignalEnv(num_envs=1, **SMALL, delta_time=5, yellow_time=2, min_green=10)
    try:
        obs, _ = env.reset(seed=0)
        phase = lambda obs: obs[0, :, :2].argmax(-1).tolist()  # noqa: E731
        switch = torch.ones(1, 2, dtype=torch.long)
        obs, *_ = env.step(switch)  # 5 s of green so far: below min_green, request held
        assert phase(obs) == [0, 0] and obs[0, :, 2].tolist() == [0.0, 0.0]
        obs, *_ = env.step(switch)  # 10 s: may switch now; the switch happens within this step
        assert obs[0, :, 2].tolist() == [1.0, 1.0]
        obs, *_ = env.step(switch)  # yellow 2 s, then green 1 for 3 s
        assert phase(obs) == [1, 1] and obs[0, :, 2].tolist() == [0.0, 0.0]
    finally:
        env.close()


def test_queue_reward_is_minus_halting_vehicles_on_incoming_lanes():
    env = TrafficSignalEnv(num_envs=1, **SMALL, reward="queue", observation=("queue",))
    try:
        env.reset(seed=3)
        for _ in range(20):
            obs, rewards, *_ = env.step(torch.zeros(1, 2, dtype=torch.long))
        halting = (obs[0] * env.readout.capacity).sum(-1)
        assert torch.allclose(rewards[0], -halting.round(), atol=1e-4)
        assert rewards.min() < 0, "a never-switching light must build a queue"
    finally:
        env.close()


def test_delay_reward_counts_halting_vehicles_fully_and_slow_moving_ones_in_part():
    """``delay`` = −Σ vehicles·(1 − v/v_max) per light: at least the queue (a halted vehicle loses
    ≥ 1 − 0.1/v_max s per s), at most the vehicles present, and more than the queue alone once
    vehicles queue up behind a red (they approach below the limit)."""
    env = TrafficSignalEnv(num_envs=1, **SMALL, reward="delay", observation=("density", "queue"))
    try:
        env.reset(seed=3)
        lanes = env.network.max_lanes
        beyond_queue = []
        for _ in range(20):
            obs, rewards, *_ = env.step(torch.zeros(1, 2, dtype=torch.long))
            vehicles = (obs[0, :, :lanes] * env.readout.capacity).sum(-1).round()
            halting = (obs[0, :, lanes:] * env.readout.capacity).sum(-1).round()
            delay = -rewards[0]
            assert (delay >= 0.99 * halting - 1e-4).all() and (delay <= vehicles + 1e-4).all()
            beyond_queue.append((delay - halting).max().item())
        assert max(beyond_queue) > 0.1, "moving vehicles below the speed limit must add delay"
        assert rewards.min() < -1, "a never-switching light must build delay"
    finally:
        env.close()


def test_unknown_options_and_bad_actions_raise():
    with pytest.raises(ValueError, match="unknown reward"):
        TrafficSignalEnv(num_envs=1, **SMALL, reward="speed")
    with pytest.raises(ValueError, match="unknown observation features"):
        TrafficSignalEnv(num_envs=1, **SMALL, observation=("phase", "colour"))
    env = TrafficSignalEnv(num_envs=1, **SMALL)
    try:
        env.reset(seed=0)
        with pytest.raises(ValueError, match="TrafficSignalEnv"):
            env.step(torch.full((1, 2), 2))
    finally:
        env.close()


def test_libsumo_and_traci_give_the_same_simulation():
    trajectories = []
    for backend in ("libsumo", "traci"):
        env = TrafficSignalEnv(num_envs=1, **SMALL, backend=backend)
        try:
            generator = torch.Generator().manual_seed(0)
            obs, _ = env.reset(seed=5)
            trace = [obs]
            for _ in range(15):
                obs, rewards, *_ = env.step(torch.randint(0, 2, (1, 2), generator=generator))
                trace += [obs, rewards]
            trajectories.append(torch.cat([t.flatten() for t in trace]))
        finally:
            env.close()
    assert torch.equal(trajectories[0], trajectories[1])


def test_same_seed_same_episode_and_seed_changes_the_traffic(arterial):
    def run(seed):
        obs, _ = arterial.reset(seed=seed)
        return torch.stack([arterial.step(torch.zeros(2, 2, dtype=torch.long))[0] for _ in range(20)])

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_max_pressure_and_actuated_beat_random_and_fixed_time_on_queues():
    kwargs = {**SMALL, "demand": 1800}
    scores = {}
    for name, make, extra in [
        ("max_pressure", MaxPressure, {}),
        ("random", lambda env: RandomGreens(env, 0), {}),
        ("fixed_time", lambda env: RandomGreens(env, 0), {"signal_control": "fixed_time"}),
        ("actuated", lambda env: RandomGreens(env, 0), {"signal_control": "actuated"}),
    ]:
        result = evaluate_policy(make, "ctrlgym/TrafficSignalEnv-v0", episodes=2, seed=0, **kwargs, **extra)
        scores[name] = result["metrics"]
    assert scores["max_pressure"]["queue_length"] < scores["random"]["queue_length"]
    assert scores["actuated"]["queue_length"] < scores["fixed_time"]["queue_length"]
    assert scores["max_pressure"]["travel_time"] < scores["random"]["travel_time"]


def test_killed_sumo_is_a_clear_error_and_reset_recovers(arterial):
    arterial.reset(seed=0)
    os.kill(arterial.workers.processes[1].pid, signal.SIGKILL)
    arterial.workers.processes[1].join()
    with pytest.raises(SumoError, match="arterial1x2, env 1: the SUMO process died"):
        arterial.step(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(RuntimeError, match="reset"):
        arterial.step(torch.zeros(2, 2, dtype=torch.long))
    obs, _ = arterial.reset(seed=0)
    obs, *_ = arterial.step(torch.zeros(2, 2, dtype=torch.long))
    assert obs.shape == (2, 2, 11)


def test_killed_sumo_under_traci_reports_sumo_message():
    env = TrafficSignalEnv(num_envs=1, **SMALL, backend="traci")
    try:
        env.reset(seed=0)
        worker = env.workers.processes[0]
        import psutil  # the SUMO child of the worker

        sumo = [p for p in psutil.Process(worker.pid).children() if "sumo" in p.name()]
        assert sumo, "traci runs SUMO as a child process of the worker"
        sumo[0].kill()
        with pytest.raises(SumoError, match="arterial1x2, env 0: SUMO failed"):
            for _ in range(3):
                env.step(torch.zeros(1, 2, dtype=torch.long))
        env.reset(seed=0)
        env.step(torch.zeros(1, 2, dtype=torch.long))
    finally:
        env.close()


def test_teleport_storm_raises_with_the_count():
    env = TrafficSignalEnv(
        num_envs=1, scenario="single", demand=3600, num_seconds=900, time_to_teleport=5, max_teleports=0
    )
    try:
        env.reset(seed=0)
        with pytest.raises(SumoError, match="teleport storm"):
            for _ in range(180):
                env.step(torch.zeros(1, 1, dtype=torch.long))  # one green forever: the other approach jams
    finally:
        env.close()


def test_pettingzoo_parallel_api():
    env = PettingZooEnv(TrafficSignalEnv(num_envs=1, **SMALL, autoreset_mode="disabled", max_episode_steps=15))
    try:
        parallel_api_test(env, num_cycles=20)
        observations, _ = env.reset(seed=0)
        assert set(observations) == {"A0", "B0"} and observations["A0"].shape == (11,)
        differ = 0
        for _ in range(10):  # two different greens: the lights' own values differ
            _, _, _, _, infos = env.step({"A0": 0, "B0": 1})
            own = [infos[agent]["queue_length"] for agent in ("A0", "B0")]
            network = infos["A0"]["network"]
            assert infos["B0"]["network"] == network and network["queue_length"] == pytest.approx(
                sum(own) / 2
            )  # mean over lights
            differ += infos["A0"]["waiting_time"] != infos["B0"]["waiting_time"] or own[0] != own[1]
        assert differ >= 5
    finally:
        env.close()


def test_pettingzoo_adapter_rejects_batches_and_missing_actions():
    with pytest.raises(ValueError, match="num_envs=1"):
        PettingZooEnv(TrafficSignalEnv(num_envs=2, **SMALL))
    env = PettingZooEnv(TrafficSignalEnv(num_envs=1, **SMALL, autoreset_mode="disabled"))
    try:
        env.reset(seed=0)
        with pytest.raises(ValueError, match="no action for agents \\['B0'\\]"):
            env.step({"A0": 0})
    finally:
        env.close()


def test_episode_truncates_after_num_seconds():
    env = TrafficSignalEnv(num_envs=1, **{**SMALL, "num_seconds": 50}, autoreset_mode="same_step")
    try:
        env.reset(seed=0)
        total = torch.zeros(1, 2)
        for _step in range(10):
            _, rewards, _, truncated, info = env.step(torch.zeros(1, 2, dtype=torch.long))
            total += rewards
        assert truncated.all() and info["episode"]["l"].tolist() == [10]
        assert info["episode"]["r"].shape == (1, 2)  # the return of each light
        torch.testing.assert_close(info["episode"]["r"], total)
    finally:
        env.close()


def test_the_constructors_list_every_option_as_a_typed_keyword_that_matches_its_dataclass():
    """IDEs and help() show the options; the signature cannot drift from the option dataclasses."""
    import dataclasses
    import inspect
    import typing

    from ctrlgym.envs.traffic import TrafficTwinEnv
    from ctrlgym.envs.traffic.options import SignalControlOptions, SumoProcessOptions, TwinModelOptions

    for env_class, kinds in (
        (TrafficSignalEnv, (SignalControlOptions, SumoProcessOptions)),
        (TrafficTwinEnv, (SignalControlOptions, SumoProcessOptions, TwinModelOptions)),
    ):
        parameters = inspect.signature(env_class.__init__).parameters
        hints = typing.get_type_hints(env_class.__init__)
        for kind in kinds:
            kind_hints = typing.get_type_hints(kind)
            for field in dataclasses.fields(kind):
                parameter = parameters[field.name]
                assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
                if kind is TwinModelOptions:  # None: the map's calibrated value, else the default
                    assert parameter.default is None and hints[field.name] == kind_hints[field.name] | None
                else:
                    assert parameter.default == field.default, (env_class.__name__, field.name)
                    assert hints[field.name] == kind_hints[field.name], (env_class.__name__, field.name)
    with pytest.raises(TypeError, match=r"TrafficSignalEnv: unknown option\(s\) min_gren; allowed: .*min_green"):
        TrafficSignalEnv(min_gren=3)
