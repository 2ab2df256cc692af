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
    "block",
    [
        pytest.param(block, marks=_marks(block), id=f"block{i}-{block.splitlines()[0][:40]}")
        for i, block in enumerate(BLOCKS)
    ],
)
@pytest.mark.integration
def test_readme_example_runs(block, tmp_path):
    if "ctrlgym.envs.traffic" in block or "TrafficTwinEnv" in block:
        pytest.importorskip("sumo", reason="the traffic examples need ctrlgym[traffic]")
    if "ray.rllib" in block:
        pytest.importorskip("ray.rllib", reason="the RLlib example needs ctrlgym[rllib]")
    result = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_readme_has_examples():
    assert len(BLOCKS) >= 8


def _demo_table(markdown: str) -> dict[str, list[str]]:
    """policy -> [IQM cell, mean cell] of a demo table (README or report)."""
    rows = {}
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) >= 4 and cells[0] != "policy" and "[" in cells[2]:
            rows[cells[0]] = [cells[2], cells[3]]
    return rows


@pytest.mark.integration
def test_make_demo_writes_the_table_the_readme_shows(tmp_path):
    """`make demo` (ctrlgym demo) from scratch writes a report with the README demo table's policies, each
    with an IQM inside its CI (~1 min). The digits are the generated results page's, not this test's."""
    text = README.read_text()
    in_readme = _demo_table(text[text.index("<!-- demo-table -->") : text.index("<!-- /demo-table -->")])
    assert len(in_readme) == 7
    subprocess.run(
        [sys.executable, "-m", "ctrlgym", "demo", "--output-dir", str(tmp_path / "demo"), "--no-progress"],
        check=True,
        timeout=900,
        cwd=tmp_path,
    )
    produced = _demo_table((tmp_path / "demo" / "report.md").read_text())
    assert set(produced) == set(in_readme)
    for policy, (interval, _) in produced.items():
        iqm, low, high = (float(x) for x in re.findall(r"-?[\d.]+", interval))
        assert low <= iqm <= high, (policy, interval)
