"""workers="ray": SUMO simulations in Ray actors behave as local workers do."""

import pytest
import torch

pytest.importorskip("ray", reason="workers='ray' needs ctrlgym[ray]")

from ctrlgym.envs.traffic import SumoError, TrafficSignalEnv

pytestmark = pytest.mark.integration  # subprocesses, clusters or a wheel build: `make test`, not `make test-fast`

SMALL = {"scenario": "arterial", "cols": 2, "demand": 1200, "num_seconds": 200}


@pytest.fixture(scope="module")
def ray_session():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def trajectory(env, steps=15):
    obs, _ = env.reset(seed=3)
    observed, rewards = [obs], []
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        actions = torch.randint(0, 2, (env.num_envs, 2), generator=generator)
        obs, reward, _, _, info = env.step(actions)
        observed.append(obs)
        rewards.append(reward)
    return torch.stack(observed), torch.stack(rewards)


def test_ray_actors_give_the_trajectories_of_local_workers(ray_session):
    on_ray, local = TrafficSignalEnv(num_envs=2, workers="ray", **SMALL), TrafficSignalEnv(num_envs=2, **SMALL)
    try:
        (obs_ray, rewards_ray), (obs_local, rewards_local) = trajectory(on_ray), trajectory(local)
        torch.testing.assert_close(obs_ray, obs_local, rtol=0, atol=0)
        torch.testing.assert_close(rewards_ray, rewards_local, rtol=0, atol=0)
        assert len(set(on_ray.workers.pids())) == 2  # one actor process per env
    finally:
        on_ray.close()
        local.close()


def test_a_killed_actor_is_a_clear_error_and_reset_replaces_it(ray_session):
    env = TrafficSignalEnv(num_envs=2, workers="ray", **SMALL)
    try:
        env.reset(seed=0)
        env.workers.kill(1)
        with pytest.raises(
            SumoError, match="scenario arterial1x2, env 1: the SUMO actor died while stepping; reset\\(\\) restarts it"
        ):
            env.step(torch.zeros(2, 2, dtype=torch.long))
        obs, _ = env.reset(seed=0)
        obs, *_ = env.step(torch.zeros(2, 2, dtype=torch.long))
        assert obs.shape == (2, 2, 11)
    finally:
        env.close()


def test_a_sumo_failure_in_an_actor_names_the_env_and_sumos_message(ray_session, tmp_path):
    env = TrafficSignalEnv(num_envs=1, workers="ray", sumo_args=["--no-such-option"], **SMALL)
    try:
        with pytest.raises(SumoError, match="env 0: SUMO failed while starting the simulation"):
            env.reset(seed=0)
    finally:
        env.close()
