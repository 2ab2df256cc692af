"""ctrlgym's hot paths run with its own intra-op thread count and restore the caller's."""

import pytest
import torch

import ctrlgym
from ctrlgym.registry import make_vector_env
from ctrlgym.threads import limited_threads


@pytest.fixture
def two_torch_threads():
    before, policy = torch.get_num_threads(), ctrlgym.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)
    ctrlgym.set_num_threads(policy)


def threads_seen_in_step(env) -> list[int]:
    seen, step_envs = [], env._step_envs

    def recording(actions):
        seen.append(torch.get_num_threads())
        return step_envs(actions)

    env._step_envs = recording
    env.reset(seed=0)
    env.step(env.random_actions(torch.Generator().manual_seed(0)))
    return seen


def test_env_steps_run_with_ctrlgyms_threads_and_restore_the_callers(two_torch_threads):
    env = make_vector_env("ctrlgym/MultiClassQueue-v0", 8)
    assert threads_seen_in_step(env) == [1] and torch.get_num_threads() == 2
    ctrlgym.set_num_threads(0)  # torch's own setting
    assert threads_seen_in_step(env) == [2]
    ctrlgym.set_num_threads(1)
    env.num_threads = 2  # one env's own choice
    assert threads_seen_in_step(env) == [2]


def test_solvers_and_the_context_restore_on_errors(two_torch_threads):
    from ctrlgym.envs.fastslow import MultiClassQueue
    from ctrlgym.solvers import value_iteration

    with pytest.raises(RuntimeError):
        with limited_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError("inside")
    assert torch.get_num_threads() == 2
    mdp = MultiClassQueue(num_envs=1, buffer_size=3).exact_model()
    assert value_iteration(mdp, epsilon=1e-2).values.shape == (mdp.num_states,)
    assert torch.get_num_threads() == 2
    with pytest.raises(ValueError, match="whole number >= 0"):
        ctrlgym.set_num_threads(-1)
