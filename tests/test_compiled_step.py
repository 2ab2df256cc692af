"""``compile=True``: a PureSteps family's whole step fused and compiled gives the eager step's
results bit for bit, in every autoreset mode, across episode ends and direct state edits."""

import pytest
import torch
from gymnasium import spaces

from ctrlgym.envs.fastslow import EnergyStorage, InventoryControl, MultiClassQueue, RestlessBandit, TaskGridworld
from ctrlgym.errors import UsageError
from ctrlgym.vector_env import TorchVectorEnv, fused_step


def _rollout(compile: bool, mode: str, steps: int = 14, num_envs: int = 6, device: str = "cpu"):
    env = MultiClassQueue(num_envs=num_envs, compile=compile, max_episode_steps=4, autoreset_mode=mode, device=device)
    obs, _ = env.reset(seed=3)
    actions = torch.randint(0, env.num_classes, (steps, num_envs), generator=torch.Generator().manual_seed(1))
    actions = actions.to(device)
    trace = [obs]
    for t in range(steps):
        if t == 6:  # a direct edit of the state between steps, as the solver tests do
            env.queue_lengths = torch.full((num_envs, env.num_classes), 7, device=device)
        obs, rewards, terminated, truncated, info = env.step(actions[t])
        trace += [obs, rewards, terminated, truncated, info["episode"]["r"], info["episode"]["l"], info["holding_cost"]]
        if mode == "same_step":
            trace.append(info["final_obs"])
    return trace


def _assert_bit_for_bit(eager: list, compiled: list) -> None:
    assert len(eager) == len(compiled)
    for a, b in zip(eager, compiled, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a, b)


@pytest.mark.parametrize("mode", ["next_step", "same_step", "disabled"])
def test_compiled_step_equals_eager_step(mode):
    eager = _rollout(False, mode)
    _assert_bit_for_bit(eager, _rollout(True, mode))
    assert any(bool(t.any()) for t in eager[4::8])  # episodes did end inside the rollout (truncations)


def _family_rollout(family, compile: bool, steps: int = 10, num_envs: int = 6):
    env = family(num_envs=num_envs, compile=compile, max_episode_steps=4)
    obs, _ = env.reset(seed=3)
    generator = torch.Generator().manual_seed(1)
    trace = [obs]
    for _ in range(steps):
        actions = torch.randint(0, env.single_action_space.n, (num_envs,), generator=generator)
        obs, rewards, terminated, truncated, info = env.step(actions)
        trace += [
            obs,
            rewards,
            terminated,
            truncated,
            *(value for key, value in sorted(info.items()) if key != "episode"),
        ]
        trace += [info["episode"]["r"], info["episode"]["l"]]
    return trace


@pytest.mark.parametrize("family", [RestlessBandit, EnergyStorage, InventoryControl, TaskGridworld])
def test_every_pure_steps_family_compiles_to_its_eager_step(family):
    eager = _family_rollout(family, False)
    _assert_bit_for_bit(eager, _family_rollout(family, True))
    observations = [t for t in eager if t.shape == eager[0].shape and not t.dtype == torch.bool]
    assert len({tuple(obs.flatten().tolist()) for obs in observations}) > 5  # the state did move


def test_eager_step_skips_idle_resets_with_the_same_result():
    env = MultiClassQueue(num_envs=5, max_episode_steps=3)
    env.reset(seed=0)
    for _ in range(2):
        env.step(torch.zeros(5, dtype=torch.long))
    args = (
        MultiClassQueue,
        env._params(),
        env._get_state(),
        env._elapsed_steps,
        env._episode_returns,
        torch.tensor([True, False, True, False, False]),
        torch.ones(5, dtype=torch.long),
        env._draw(env.num_step_draws + env.num_reset_draws),
        env.num_step_draws,
        "NextStep",
        3,
    )
    skipped, computed = fused_step(*args, True), fused_step(*args, False)
    state_skipped, *rest_skipped = skipped[:8]
    state_computed, *rest_computed = computed[:8]
    for a, b in zip([*state_skipped, *rest_skipped], [*state_computed, *rest_computed], strict=True):
        assert torch.equal(a, b)
    assert torch.equal(skipped[0][0][:, 0], torch.zeros(env.num_classes, dtype=torch.long))  # env 0 restarted


def test_compile_needs_a_pure_steps_family():
    class TemplateMethods(TorchVectorEnv):  # the three template methods, no pure functions
        def __init__(self):
            super().__init__(2, spaces.Discrete(2), spaces.Discrete(2), compile=True)

    with pytest.raises(UsageError, match="compile=True needs a family whose step is written as pure functions"):
        TemplateMethods()


def _assert_close_or_equal(eager: list, compiled: list) -> None:
    """Integer and bool results equal; float results equal to float rounding (GPU kernels may fuse a
    multiply-add that the eager ops round twice)."""
    assert len(eager) == len(compiled)
    for a, b in zip(eager, compiled, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and a.device == b.device
        if a.is_floating_point():
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
        else:
            assert torch.equal(a, b)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_compiled_queue_and_twin_give_the_eager_results_on_cuda():
    for mode in ("next_step", "same_step"):
        expected = _rollout(False, mode, num_envs=64, device="cuda")
        _assert_close_or_equal(expected, _rollout(True, mode, num_envs=64, device="cuda"))

    from ctrlgym.envs.traffic import TrafficTwinEnv
    from ctrlgym.envs.traffic.twin import TWIN_INPUTS

    kwargs = {"scenario": "arterial", "cols": 2, "demand": 1200, "num_seconds": 600, "device": "cuda"}
    eager, compiled = TrafficTwinEnv(num_envs=64, **kwargs), TrafficTwinEnv(num_envs=64, compile=True, **kwargs)
    eager.reset(seed=4)
    compiled.reset(seed=4)
    generator = torch.Generator(device="cuda").manual_seed(0)
    for step in range(25):
        actions = eager.random_actions(generator)
        a, b = eager.step(actions), compiled.step(actions)
        for name in TWIN_INPUTS:  # the first state that parts, named: where a GPU kernel differs from eager
            x, y = getattr(eager, name), getattr(compiled, name)
            torch.testing.assert_close(y, x, rtol=1e-4, atol=1e-3, msg=lambda m, n=name, k=step: f"step {k}, {n}: {m}")
        for x, y in zip(a[:4], b[:4], strict=True):  # obs, rewards, terminated, truncated
            torch.testing.assert_close(y, x, rtol=1e-4, atol=1e-3)
    assert float(eager.vehicles.sum()) > 1  # traffic flowed, so the comparison compared something
