"""ctrlgym's hot paths run with its own intra-op thread count and restore the caller's."""

import pytest
import torch

import ctrlgym
from ctrlgym.registry import make_vector_env
from ctrlgym.threads import adopt_thread_policy, limited_threads
from ctrlgym.vector_env import PureSteps


@pytest.fixture
def two_torch_threads():
    adopt_thread_policy()  # as after this process's first env: the caller's count set afterwards is kept
    before, policy = torch.get_num_threads(), ctrlgym.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)
    ctrlgym.set_num_threads(policy)


def threads_seen_in_step(env) -> list[int]:
    """The thread counts inside the env's own step (the pure-function step, or ``_step_envs``)."""
    name = "_pure_step" if isinstance(env, PureSteps) else "_step_envs"
    seen, own_step = [], getattr(env, name)

    def recording(actions):
        seen.append(torch.get_num_threads())
        return own_step(actions)

    setattr(env, name, recording)
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


@pytest.mark.parametrize(("setting", "after"), [(None, 1), ("0", 2), ("3", 3)])
def test_the_first_cpu_env_sets_torchs_threads_once_unless_the_user_opts_out(setting, after):
    """A fresh process (the policy is process-wide, once): torch's count follows ctrlgym's from the first
    CPU env on, so the loop around the env (SB3's update) runs with it; CTRLGYM_NUM_THREADS=0 opts out."""
    import os
    import subprocess
    import sys

    script = (
        "import torch, ctrlgym\n"
        "torch.set_num_threads(2)\n"
        "env = ctrlgym.make_vector_env('MultiClassQueue-v0', 4)\n"
        "first = torch.get_num_threads()\n"
        "torch.set_num_threads(2)\n"  # the caller's own choice afterwards is kept
        "ctrlgym.make_vector_env('MultiClassQueue-v0', 4)\n"
        "print(first, torch.get_num_threads())\n"
    )
    environment = {key: value for key, value in os.environ.items() if key != "CTRLGYM_NUM_THREADS"}
    if setting is not None:
        environment["CTRLGYM_NUM_THREADS"] = setting
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=True
    ).stdout
    assert out.split() == [str(after), "2"]
