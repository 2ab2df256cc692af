"""A busy competitor for "beside a busy process" measurements: a one-thread torch matmul loop in a
process of its own (a second training job on the machine)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["COMPETITOR", "busy_machine"]

COMPETITOR = "import torch\ntorch.set_num_threads(1)\nx = torch.randn(1024, 1024)\nwhile True:\n    x = torch.tanh(x @ x * 1e-3)\n"


@contextmanager
def busy_machine(busy: bool = True) -> Iterator[None]:
    """Run the block beside the competitor (started half a second before, killed after); a no-op if not ``busy``."""
    if not busy:
        yield
        return
    competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR])
    try:
        time.sleep(0.5)  # let it get going
        yield
    finally:
        competitor.kill()
        competitor.wait()
