import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

# the CUDA cases carry the `cuda` marker, so `pytest -m cuda` (make gpu-check) selects exactly them
DEVICES = ["cpu"] + ([pytest.param("cuda", marks=pytest.mark.cuda)] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Every device test runs on CPU, and on CUDA where a GPU exists."""
    return request.param


def _kill_at_a_random_step(command: list[str], seed_dir: Path, total: int) -> int:
    """Start ``command`` and SIGKILL it at a random step in the first half of training (after a
    checkpoint past a random target, plus a random fraction of a second); the newest checkpoint's step.
    The draw is seeded by ``CTRLGYM_KILL_SEED`` (default 0) and printed, so a failure can be replayed."""
    from ctrlgym.experiment.runs import latest_checkpoint

    seed = int(os.environ.get("CTRLGYM_KILL_SEED", "0"))
    draw = random.Random(seed)
    target = draw.uniform(0, total / 2)
    print(f"kill-and-resume: CTRLGYM_KILL_SEED={seed}, killing after the first checkpoint past step {target:.0f}")
    process = subprocess.Popen(command, start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while (found := latest_checkpoint(seed_dir)) is None or found[0] < target:
        assert process.poll() is None, f"training ended before it could be killed (target step {target:.0f})"
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    time.sleep(draw.uniform(0.0, 0.1))
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    steps, _ = latest_checkpoint(seed_dir)
    print(f"kill-and-resume: killed at the checkpoint of step {steps}")
    assert 0 < steps < total and not list(seed_dir.glob("final_model.*")), "killed too late: make the run longer"
    return steps


@pytest.fixture
def kill_at_a_random_step():
    """``kill(command, seed_dir, total)``: run a training command and SIGKILL it at a random step after its first checkpoint."""
    return _kill_at_a_random_step
