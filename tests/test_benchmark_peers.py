"""The benchmarks' peers simulate the same thing as ctrlgym's envs, so their speed ratios compare like with like."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from numpy_peers import FAMILY_PEERS

from ctrlgym.envs import fastslow


@pytest.mark.parametrize("family", sorted(FAMILY_PEERS))
def test_each_numpy_peer_has_its_familys_dynamics_time_limit_episode_statistics_and_info(family):
    n, steps = 4096, 300
    env, peer = getattr(fastslow, family)(num_envs=n), FAMILY_PEERS[family](n, seed=5)
    env.reset(seed=5)
    num_actions = env.single_action_space.n
    totals = {"peer": np.zeros(n), "ctrlgym": np.zeros(n)}
    ended = {"peer": 0, "ctrlgym": 0}
    for t in range(steps):
        actions = (np.arange(n) + t) % num_actions  # every action, in a fixed rotation
        _, reward, _, truncated, info_peer = peer.step(actions)
        totals["peer"] += reward
        ended["peer"] += int(truncated.sum())
        _, reward, _, truncated, info_env = env.step(torch.as_tensor(actions))
        totals["ctrlgym"] += reward.numpy()
        ended["ctrlgym"] += int(truncated.sum())
    # the same mean return per env (different random streams: a two-sample z-test over the envs)
    difference = totals["peer"].mean() - totals["ctrlgym"].mean()
    standard_error = np.sqrt((totals["peer"].var() + totals["ctrlgym"].var()) / n)
    assert abs(difference) < 4.5 * standard_error, (family, totals["peer"].mean(), totals["ctrlgym"].mean())
    assert ended["peer"] == ended["ctrlgym"] == n  # 256-step episodes, next-step autoreset
    assert set(info_peer) >= set(info_env) - {"episode", "_episode"}  # the peer fills the same info


def test_the_solver_peers_reach_the_same_optimal_values_on_the_same_flat_matrix():
    from bench_solvers_flat import contenders, random_mdp

    from ctrlgym.solvers import inexact_policy_iteration, policy_evaluation
    from ctrlgym.solvers.mdp import FiniteMDP

    matrices, rewards = random_mdp(2_000, seed=3)
    mdp = FiniteMDP.from_matrices(matrices, rewards, 0.9)
    optimum = inexact_policy_iteration(mdp, epsilon=1e-10).values
    entries = contenders(matrices, rewards, 0.9, 1e-4, mdp, include_mdpsolver=True)
    assert {name.split()[0] for name in entries} == {"ctrlgym", "quantecon", "mdpsolver"}
    for name, prepare in entries.items():
        values = policy_evaluation(mdp, torch.as_tensor(np.asarray(prepare()()), dtype=torch.long))
        assert float((optimum - values).max()) < 1e-4, name  # every contender's policy is ε-optimal


@pytest.mark.parametrize(
    "scenario",
    [
        {"scenario": "grid", "rows": 2, "cols": 2, "demand": 1800.0},
        {"scenario": "resco:cologne8"},  # lanes of 2 s: vehicles enter and reach the stop line within one step
    ],
    ids=["grid2x2", "cologne8"],
)
def test_the_numpy_peer_of_the_twin_runs_the_twins_model_step_for_step(scenario):
    from numpy_twin import NumpyTrafficTwin

    from ctrlgym.envs.traffic import TrafficTwinEnv

    n = 6
    env = TrafficTwinEnv(num_envs=n, num_seconds=400, **scenario)
    peer = NumpyTrafficTwin(env, n)
    draws = {}
    twin_draws = env._arrival_draws
    env._arrival_draws = lambda: draws.setdefault("twin", twin_draws())  # the peer sees the twin's Poisson arrivals
    peer.arrival_draws = lambda: draws.pop("twin").numpy()
    env.reset(seed=2)
    generator = np.random.default_rng(0)
    ended = 0
    for _ in range(100):  # 400-s episodes: each ends and restarts on the next step at least once
        actions = generator.integers(0, 2, (n, env.num_agents))
        obs, rewards, _, truncated, info = env.step(torch.as_tensor(actions))
        peer_obs, peer_rewards, _, peer_truncated, peer_info = peer.step(actions)
        np.testing.assert_allclose(peer_obs, obs.numpy(), atol=1e-5)
        np.testing.assert_allclose(peer_rewards, rewards.numpy(), atol=1e-5)
        np.testing.assert_array_equal(peer_truncated, truncated.numpy())
        for key in ("queue_length", "waiting_time", "throughput", "trip_time", "light_waiting_time", "delay"):
            np.testing.assert_allclose(peer_info[key], info[key].numpy(), rtol=1e-4, atol=1e-3, err_msg=key)
        ended += int(truncated.sum())
    assert ended >= n and float(env.vehicles.sum()) > 1  # every env ended an episode, and traffic flowed


def test_a_machine_without_sumo_takes_sumo_alone_from_the_stored_cpu_run_and_names_it():
    import json

    from bench_twin import stored_sumo_alone

    path = Path(__file__).parents[1] / "benchmarks" / "results" / "bench_twin.json"
    stored = json.loads(path.read_text())
    quiet = next(r for r in stored["results"] if r["contender"] == "SUMO alone" and r["machine"] == "quiet")
    rate, spread, source = stored_sumo_alone(str(path))
    assert (rate, spread) == (quiet["simulated_seconds_per_second"], quiet["range"])
    assert stored["provenance"]["cpu"] in source and stored["provenance"]["commit"] in source


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the script runs the whole GPU check")
def test_the_gpu_check_without_cuda_lists_its_steps_and_exits_cleanly():
    import subprocess

    root = Path(__file__).parents[1]
    run = {
        "cwd": root,
        "env": {"PATH": "/usr/bin:/bin", "PY": sys.executable, "OUT": "/tmp/ctrlgym-gpu-check-dry"},
        "capture_output": True,
        "text": True,
        "timeout": 120,
    }
    done = subprocess.run(["bash", "benchmarks/gpu_check.sh"], **run)
    assert done.returncode == 0, done.stderr
    assert "dry run" in done.stdout
    for step in ("-m pytest -m cuda", "bench_twin.py --device cuda", "bench_vector.py --device cuda"):
        assert step in done.stdout
    assert "tests/test_no_host_sync.py" in done.stdout  # the CUDA test files were found
    some = subprocess.run(["bash", "benchmarks/gpu_check.sh", "tests", "mixup"], **run)
    assert some.returncode == 0, some.stderr
    assert "-m pytest -m cuda" in some.stdout and "bench_mixup.py" in some.stdout
    assert "bench_twin.py" not in some.stdout and "bench_vector.py" not in some.stdout
    unknown = subprocess.run(["bash", "benchmarks/gpu_check.sh", "tset"], **run)
    assert unknown.returncode == 2 and "unknown step 'tset'" in unknown.stderr
