"""The batched-env contract, checked on every registered env and in every autoreset mode."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import ctrlgym
from ctrlgym import AutoresetMode, check_vector_env
from ctrlgym.envs.fastslow import MultiClassQueue
from ctrlgym.errors import ActionError

ENTRIES = ctrlgym.registered_envs()
ENV_IDS = [entry.env_id for entry in ENTRIES]
SINGLE_AGENT_IDS = [entry.env_id for entry in ENTRIES if not entry.vector_cls.multi_agent]
MODES = ["next_step", "same_step", "disabled"]


def small_instance(env_id: str, **kwargs):
    """The registry's small instance of an env (``check_kwargs``), 8 copies unless it says fewer."""
    return {"num_envs": 8, **ctrlgym.get_entry(env_id).check_kwargs, **kwargs}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_registered_env_passes_check_vector_env(env_id, mode, device):
    kwargs = small_instance(env_id, device=device, autoreset_mode=mode, max_episode_steps=12)
    env = ctrlgym.make_vector_env(env_id, **kwargs)
    try:
        check_vector_env(env)
    finally:
        env.close()


@pytest.mark.parametrize("env_id", SINGLE_AGENT_IDS)
def test_single_env_passes_gymnasium_and_sb3_checkers(env_id):
    kwargs = small_instance(env_id)
    kwargs.pop("num_envs")
    env = gym.make(env_id, **kwargs)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_make_vec_returns_the_native_batch(env_id):
    kwargs = small_instance(env_id)
    num_envs = kwargs.pop("num_envs")
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    assert isinstance(envs, ctrlgym.TorchVectorEnv)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (num_envs, *envs.single_observation_space.shape)
    assert envs.metadata["autoreset_mode"] == envs.autoreset_mode == AutoresetMode.NEXT_STEP
    envs.close()


def test_autoreset_mode_is_declared_in_metadata_and_attribute():
    env = MultiClassQueue(num_envs=2, autoreset_mode="same_step")
    assert env.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert env.autoreset_mode is AutoresetMode.SAME_STEP
    assert MultiClassQueue.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP  # class default untouched


def test_unknown_autoreset_mode_raises():
    with pytest.raises(ValueError, match="autoreset_mode"):
        MultiClassQueue(num_envs=2, autoreset_mode="sometimes")


@pytest.mark.parametrize(
    "actions, problem",
    [
        (torch.zeros(5, dtype=torch.long), "wrong shape"),
        (torch.zeros(4, 1, dtype=torch.long), "wrong shape"),
        (torch.full((4,), 3), r"outside \[0, 2\]"),
        (torch.full((4,), -1), r"outside \[0, 2\]"),
        (torch.full((4,), float("nan")), "integer actions"),
        (torch.zeros(4, dtype=torch.float32), "integer actions"),
        (torch.empty(4, dtype=torch.long, device="meta"), "a meta tensor holds no values"),
        (torch.tensor([0, 9, 1, 12]), r"outside \[0, 2\]: \[1\] = 9, \[3\] = 12"),
    ],
)
def test_bad_actions_raise_value_error_naming_env_and_space(actions, problem):
    env = MultiClassQueue(num_envs=4)
    env.reset(seed=0)
    with pytest.raises(ActionError, match=problem) as error:  # an ActionError is a ValueError
        env.step(actions)
    assert "MultiClassQueue" in str(error.value) and "Discrete(3)" in str(error.value)
    assert isinstance(error.value, ValueError)


def test_single_env_rejects_out_of_range_action():
    env = gym.make("ctrlgym/MultiClassQueue-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="MultiClassQueue"):
        env.step(7)


def test_validation_switch_skips_value_checks_but_keeps_shape_checks():
    env = MultiClassQueue(num_envs=4, validate_actions=False)
    env.reset(seed=0)
    env.step(torch.full((4,), 2))
    with pytest.raises(ValueError, match="wrong shape"):
        env.step(torch.zeros(3, dtype=torch.long))


def test_numpy_actions_are_accepted():
    env = MultiClassQueue(num_envs=3)
    env.reset(seed=0)
    obs, *_ = env.step(np.array([0, 1, 2]))
    assert isinstance(obs, torch.Tensor)


def test_step_before_reset_raises():
    with pytest.raises(RuntimeError, match="reset"):
        MultiClassQueue(num_envs=2).step(torch.zeros(2, dtype=torch.long))


def test_reset_rejects_a_list_of_seeds_and_unknown_options():
    env = MultiClassQueue(num_envs=2)
    with pytest.raises(ValueError, match="one int seed"):
        env.reset(seed=[0, 1])
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"reset_maks": torch.ones(2, dtype=torch.bool)})


def test_first_reset_cannot_be_masked():
    env = MultiClassQueue(num_envs=2, autoreset_mode="disabled")
    with pytest.raises(ValueError, match="first reset"):
        env.reset(options={"reset_mask": torch.tensor([True, False])})


def _rollout(env, seed, steps=50):
    obs, _ = env.reset(seed=seed)
    generator = torch.Generator().manual_seed(1)
    trace = [obs]
    for _ in range(steps):
        actions = torch.randint(0, 3, (env.num_envs,), generator=generator)
        obs, rewards, *_ = env.step(actions)
        trace += [obs, rewards]
    return torch.cat([t.flatten().float() for t in trace])


def test_same_seed_same_trajectory_different_seed_different_trajectory(device):
    env = MultiClassQueue(num_envs=16, device=device)
    first, again, other = _rollout(env, 3), _rollout(env, 3), _rollout(env, 4)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert torch.equal(first, _rollout(MultiClassQueue(num_envs=16, device=device), 3))


def test_next_step_autoreset_returns_zero_reward_and_fresh_episode():
    env = MultiClassQueue(
        num_envs=3,
        max_episode_steps=4,
        holding_costs=((1.0, 1.0, 1.0),),
        arrival_probs=(1.0, 1.0, 1.0),
        service_probs=(1.0, 1.0, 1.0),
    )
    env.reset(seed=0)
    actions = torch.zeros(3, dtype=torch.long)
    for _step in range(1, 5):
        obs, rewards, terminated, truncated, info = env.step(actions)
    assert truncated.all() and not terminated.any()
    assert info["_episode"].all() and (info["episode"]["l"] == 4).all()
    assert torch.allclose(
        info["episode"]["r"], torch.tensor([-(0 + 3 + 5 + 7.0)] * 3)
    )  # total queue 0, 3, 5, 7: class 0 served every step
    obs, rewards, terminated, truncated, info = env.step(actions)
    assert (rewards == 0).all() and not (terminated | truncated).any()
    assert (obs[:, :3] == 0).all(), "the autoreset step returns the first observation of the new episode"
    assert (env.elapsed_steps == 0).all()


def test_same_step_autoreset_reports_final_observation():
    env = MultiClassQueue(num_envs=2, max_episode_steps=3, arrival_probs=(1.0, 1.0, 1.0), autoreset_mode="same_step")
    env.reset(seed=0)
    for _ in range(3):
        obs, rewards, terminated, truncated, info = env.step(torch.zeros(2, dtype=torch.long))
    assert truncated.all() and info["_final_obs"].all()
    assert (info["final_obs"][:, 1:3] == 3).all(), "classes 1 and 2 received one job per step and were not served"
    assert (obs[:, :3] == 0).all() and (env.elapsed_steps == 0).all()


def test_disabled_mode_never_resets_by_itself_and_masked_reset_is_partial():
    env = MultiClassQueue(num_envs=4, max_episode_steps=2, arrival_probs=(1.0, 1.0, 1.0), autoreset_mode="disabled")
    env.reset(seed=0)
    for _ in range(3):
        obs, _, _, truncated, _ = env.step(torch.zeros(4, dtype=torch.long))
    assert truncated.all() and (env.elapsed_steps == 3).all() and (obs[:, 1] == 3).all()
    mask = torch.tensor([True, False, True, False])
    obs, _ = env.reset(options={"reset_mask": mask})
    assert (obs[mask, :3] == 0).all() and (obs[~mask, 1] == 3).all()
    assert env.elapsed_steps.tolist() == [0, 3, 0, 3]


def test_reset_mask_must_be_bool_of_batch_shape():
    env = MultiClassQueue(num_envs=4, autoreset_mode="disabled")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="reset_mask"):
        env.reset(options={"reset_mask": torch.ones(3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="reset_mask"):
        env.reset(options={"reset_mask": torch.ones(4)})


def test_outputs_live_on_the_env_device(device):
    env = MultiClassQueue(num_envs=4, device=device, autoreset_mode="same_step")
    obs, _ = env.reset(seed=0)
    outputs = env.step(torch.zeros(4, dtype=torch.long, device=device))
    for tensor in (obs, *outputs[:4], outputs[4]["final_obs"], outputs[4]["episode"]["r"]):
        assert tensor.device.type == torch.device(device).type


class _NoResetEnv(MultiClassQueue):
    """A broken env whose masked reset does nothing: the checker must catch it."""

    def _reset_envs(self, mask):
        if not self._has_reset:
            super()._reset_envs(mask)


def test_checker_catches_an_env_that_ignores_masked_resets():
    with pytest.raises(ctrlgym.VectorEnvCheckError):
        check_vector_env(_NoResetEnv(num_envs=4, autoreset_mode="same_step", max_episode_steps=5))


class _UncheckedEnv(MultiClassQueue):
    """A broken env that accepts out-of-range actions."""

    def step(self, actions):
        return super().step(
            torch.as_tensor(actions).clamp(0, 2) if torch.as_tensor(actions).shape == (self.num_envs,) else actions
        )


def test_checker_catches_an_env_that_accepts_out_of_range_actions():
    with pytest.raises(ctrlgym.VectorEnvCheckError, match="out of range"):
        check_vector_env(_UncheckedEnv(num_envs=4))


def test_env_device_matches_the_device_its_tensors_report(device):
    env = MultiClassQueue(num_envs=2, device=device)
    obs, _ = env.reset(seed=0)
    assert obs.device == env.device


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_step_does_not_sync_with_the_host_on_cuda_when_validation_is_off(mode):
    env = MultiClassQueue(num_envs=256, device="cuda", autoreset_mode=mode, validate_actions=False, max_episode_steps=5)
    env.reset(seed=0)
    actions = torch.zeros(256, dtype=torch.long, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(12):  # spans episode ends and autoresets
            env.step(actions)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("env_id", [entry.env_id for entry in ENTRIES if entry.vector_cls.multi_agent])
def test_gym_make_of_a_multi_agent_env_is_one_clear_error_naming_the_ways_in(env_id):
    with pytest.raises(
        ValueError,
        match=r"is multi-agent .* no single-env Gymnasium view: use gymnasium.make_vec.*PettingZooEnv.*TorchRLEnv",
    ) as error:
        gym.make(env_id)
    assert "\n" not in str(error.value)
