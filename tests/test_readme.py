"""Every Python example in the README runs as written (the SB3 training example only with -m slow)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def _marks(block: str):
    return [pytest.mark.slow] if ".learn(" in block else []


@pytest.mark.parametrize(
    "block", [pytest.param(block, marks=_marks(block), id=f"block{i}-{block.splitlines()[0][:40]}") for i, block in enumerate(BLOCKS)]
)
def test_readme_example_runs(block, tmp_path):
    if "ctrlgym.envs.traffic" in block:
        pytest.importorskip("sumo", reason="the traffic examples need ctrlgym[traffic]")
    result = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_readme_has_examples():
    assert len(BLOCKS) >= 8
