"""RLlib: the MultiAgentEnv adapter passes RLlib's own checker and PPO trains on the twin."""

import math

import pytest
import torch

pytest.importorskip("ray.rllib", reason="the RLlib adapter needs ctrlgym[rllib]")
pytest.importorskip("sumo", reason="the traffic envs need ctrlgym[traffic]")

from ctrlgym.adapters.rllib import RLlibMultiAgentEnv

pytestmark = pytest.mark.integration  # subprocesses, clusters or a wheel build: `make test`, not `make test-fast`

TWIN = {"env_id": "ctrlgym/TrafficTwinEnv-v0", "kwargs": {"scenario": "arterial", "cols": 2, "num_seconds": 120}}


def test_the_adapter_has_per_agent_spaces_and_all_flags():
    from ray.rllib.utils.pre_checks.env import check_multiagent_environments

    env = RLlibMultiAgentEnv(TWIN)
    check_multiagent_environments(env)
    observations, infos = env.reset(seed=0)
    assert set(observations) == set(env.possible_agents) == {"A0", "B0"} and observations["A0"].shape == (11,)
    for _step in range(24):  # 120 s of 5 s decisions
        observations, rewards, terminateds, truncateds, infos = env.step({agent: 0 for agent in env.agents})
    assert truncateds["__all__"] and not terminateds["__all__"] and env.agents == []
    assert set(rewards) == {"A0", "B0"} and "queue_length" in infos["A0"]


def test_a_single_agent_env_is_one_agent():
    env = RLlibMultiAgentEnv({"env_id": "ctrlgym/MultiClassQueue-v0", "kwargs": {"max_episode_steps": 3}})
    observations, _ = env.reset(seed=0)
    assert list(observations) == ["agent"]
    for _ in range(3):
        _, rewards, terminateds, truncateds, _ = env.step({"agent": 0})
    assert truncateds == {"agent": True, "__all__": True} and isinstance(rewards["agent"], float)


def test_rllib_ppo_updates_one_shared_policy_on_the_twin():
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        config = (
            PPOConfig()
            .environment(RLlibMultiAgentEnv, env_config=TWIN)
            .multi_agent(policies={"shared"}, policy_mapping_fn=lambda agent_id, episode, **kwargs: "shared")
            .env_runners(num_env_runners=0)
            .training(train_batch_size_per_learner=192, minibatch_size=64, num_epochs=2)
            .debugging(seed=0)
        )
        algo = config.build_algo()
        before = {k: v.clone() for k, v in algo.get_module("shared").state_dict().items()}
        results = [algo.train() for _ in range(2)]
        after = algo.get_module("shared").state_dict()
        algo.stop()
    finally:
        ray.shutdown()
    sampled = results[-1]["env_runners"]["num_env_steps_sampled_lifetime"]
    assert sampled >= 384  # two iterations of 192 env steps
    assert results[-1]["env_runners"]["num_episodes_lifetime"] >= 1  # 24-step episodes ended and were counted
    assert math.isfinite(results[-1]["learners"]["shared"]["total_loss"])
    assert any(
        not torch.equal(before[k], after[k]) for k in before
    )  # the shared policy learned from the lights' rewards
