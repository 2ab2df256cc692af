"""No host-device sync in ``step`` on CUDA, for every registered torch env and action mode.

SUMO envs step a host simulation by design and are left out. Runs where CUDA exists
(``make gpu-check``); skipped elsewhere.
"""

import pytest
import torch

from ctrlgym.registry import make_vector_env, registered_envs

HOST_SIMULATED = {"ctrlgym/TrafficSignalEnv-v0", "ctrlgym/SingleIntersection-v0"}


def _cases():
    cases = []
    for entry in registered_envs():
        if entry.env_id in HOST_SIMULATED:
            continue
        kwargs = {k: v for k, v in entry.check_kwargs.items() if k != "num_envs"}
        if entry.env_id == "ctrlgym/BeamformingEnv-v0":
            cases += [
                pytest.param(entry.env_id, {**kwargs, "action_mode": mode}, id=f"{entry.env_id}-{mode}")
                for mode in ("precoder", "codebook", "rzf")
            ]
        else:
            cases.append(pytest.param(entry.env_id, kwargs, id=entry.env_id))
    return cases


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(("env_id", "kwargs"), _cases())
def test_step_does_not_sync_with_the_host(env_id, kwargs):
    env = make_vector_env(env_id, 8, device="cuda", validate_actions=False, autoreset_mode="same_step", **kwargs)
    env.reset(seed=0)
    actions = env.random_actions(torch.Generator(device="cuda").manual_seed(0))
    env.step(actions)  # first-step allocations
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(6):
            env.step(actions)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    env.close()


def test_the_cases_cover_every_torch_env():
    ids = {case.values[0] for case in _cases()}
    assert ids == {e.env_id for e in registered_envs()} - HOST_SIMULATED and "ctrlgym/TrafficTwinEnv-v0" in ids
