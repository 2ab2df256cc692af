"""The adapters, each tested against the library it serves."""

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from ctrlgym.adapters import SB3VecEnv
from ctrlgym.envs.fastslow import MultiClassQueue


def test_sb3_adapter_requires_same_step_autoreset():
    with pytest.raises(ValueError, match="SAME_STEP"):
        SB3VecEnv(MultiClassQueue(num_envs=2))


def test_sb3_adapter_fills_terminal_observation_truncation_and_episode():
    env = SB3VecEnv(MultiClassQueue(num_envs=4, max_episode_steps=5, autoreset_mode="same_step"))
    env.seed(0)
    obs = env.reset()
    assert isinstance(obs, np.ndarray) and obs.shape == (4, 4)
    total = np.zeros(4)
    for _step in range(5):
        obs, rewards, dones, infos = env.step(np.zeros(4, dtype=np.int64))
        total += rewards
    assert dones.all()
    for i, info in enumerate(infos):
        assert info["TimeLimit.truncated"] is True
        assert info["episode"]["l"] == 5 and info["episode"]["r"] == pytest.approx(total[i])
        assert info["terminal_observation"].shape == (4,)
    assert (obs[:, :3] == 0).all(), "the returned observation is the first of the next episode"


def test_sb3_adapter_seed_makes_resets_reproducible():
    env = SB3VecEnv(MultiClassQueue(num_envs=8, autoreset_mode="same_step"))
    runs = []
    for _ in range(2):
        env.seed(11)
        env.reset()
        runs.append(np.stack([env.step(np.ones(8, dtype=np.int64))[0] for _ in range(20)]))
    assert np.array_equal(runs[0], runs[1])


def test_short_sb3_ppo_run_through_the_adapter():
    env = SB3VecEnv(MultiClassQueue(num_envs=8, max_episode_steps=32, autoreset_mode="same_step"))
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=64, n_epochs=2, seed=0, device="cpu").learn(1024)
    assert model.num_timesteps >= 1024
    lengths = [info["l"] for info in model.ep_info_buffer]
    assert len(lengths) >= 8 and set(lengths) == {32}
    actions, _ = model.predict(env.reset(), deterministic=True)
    assert actions.shape == (8,) and env.action_space.contains(actions[0])


def test_torchrl_adapter_passes_check_env_specs_and_resets_partially():
    pytest.importorskip("torchrl")
    from torchrl.envs.utils import check_env_specs

    from ctrlgym.adapters.torchrl import TorchRLEnv

    env = TorchRLEnv(MultiClassQueue(num_envs=6, max_episode_steps=4, autoreset_mode="disabled"))
    check_env_specs(env)
    env.set_seed(0)
    rollout = env.rollout(10, break_when_any_done=False)
    assert rollout.batch_size == torch.Size([6, 10])
    done = rollout["next", "done"].squeeze(-1)
    assert done[:, 3].all() and done[:, 7].all() and done.sum() == 12, "episodes of 4 steps, reset by TorchRL"


def test_torchrl_adapter_requires_disabled_autoreset():
    pytest.importorskip("torchrl")
    from ctrlgym.adapters.torchrl import TorchRLEnv

    with pytest.raises(ValueError, match="disabled"):
        TorchRLEnv(MultiClassQueue(num_envs=2))


def test_torchrl_multi_agent_env_uses_grouped_keys_and_matches_the_env():
    pytest.importorskip("torchrl")
    pytest.importorskip("sumo", reason="the traffic envs need ctrlgym[traffic]")
    from torchrl.envs.utils import check_env_specs

    from ctrlgym.adapters.torchrl import TorchRLEnv
    from ctrlgym.envs.traffic import TrafficTwinEnv

    kwargs = {"scenario": "arterial", "cols": 3, "num_seconds": 60, "autoreset_mode": "disabled"}
    env = TorchRLEnv(TrafficTwinEnv(num_envs=3, **kwargs))
    check_env_specs(env)
    rollout = env.rollout(20)
    assert rollout["agents", "observation"].shape == (3, 12, 3, 11)  # 60 s of 5 s decisions: 12 steps, then done
    assert rollout["next", "agents", "reward"].shape == (3, 12, 3, 1) and rollout["next", "done"].shape == (3, 12, 1)
    assert rollout["next", "done"][:, -1].all() and not rollout["next", "done"][:, :-1].any()
    # the same seed and actions through the plain env give the same per-light rewards
    plain = TrafficTwinEnv(num_envs=3, **kwargs)
    env.set_seed(7)
    td = env.reset()
    plain.generator.manual_seed(7)
    plain.reset()
    for _step in range(3):
        td["agents", "action"] = torch.randint(0, 2, (3, 3))
        td = env.step(td)
        _, rewards, _, _, _ = plain.step(td["agents", "action"])
        torch.testing.assert_close(td["next", "agents", "reward"][..., 0], rewards)
        td = td["next"]


def test_torchrl_masks_the_actions_of_lights_with_fewer_greens():
    pytest.importorskip("torchrl")
    pytest.importorskip("sumo", reason="the traffic envs need ctrlgym[traffic]")
    from torchrl.envs.utils import check_env_specs

    from ctrlgym.adapters.torchrl import TorchRLEnv
    from ctrlgym.envs.traffic import TrafficTwinEnv

    env = TorchRLEnv(
        TrafficTwinEnv(num_envs=4, scenario="resco:cologne3", autoreset_mode="disabled")
    )  # lights with 3, 4, 4 greens
    check_env_specs(env)
    rollout = env.rollout(50)
    assert rollout["agents", "action_mask"][0, 0].sum(-1).tolist() == [3, 4, 4]
    assert rollout["agents", "action"][..., 0].max() <= 2  # random actions respect the mask


def test_single_agent_adapters_refuse_a_multi_agent_env():
    pytest.importorskip("sumo", reason="the traffic envs need ctrlgym[traffic]")
    from ctrlgym.envs.traffic import TrafficTwinEnv

    with pytest.raises(ValueError, match="SB3VecEnv: TrafficTwinEnv is multi-agent"):
        SB3VecEnv(TrafficTwinEnv(num_envs=2, scenario="arterial", cols=2, autoreset_mode="same_step"))
