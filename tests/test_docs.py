"""The README and the docs say what is true: their examples run, their commands exist, their
generated parts are in sync, the tutorials run in their time limits and the site builds strictly."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
GENERATED = ("environments", "agents", "reference", "results")
PAGES = [ROOT / "README.md"] + sorted(
    p for p in (ROOT / "docs").rglob("*.md") if p.relative_to(ROOT / "docs").parts[0] not in GENERATED
)


def blocks(language: str) -> list[tuple[str, str]]:
    """``(page, code)`` of every fenced block in ``language`` in the README and the hand-written docs."""
    found = []
    for page in PAGES:
        for code in re.findall(rf"```{language}\n(.*?)```", page.read_text(), re.S):
            if not code.startswith("--8<--"):  # a tutorial's script, included: run by its own test below
                found.append((str(page.relative_to(ROOT)), code))
    return found


NEEDS = {  # what a block imports -> the module that must be installed to run it
    "ctrlgym.envs.traffic": "sumo",
    "TrafficTwinEnv": "sumo",
    "ray.rllib": "ray.rllib",
    "torchrl": "torchrl",
    "ctrlgym.envs.mixup": "sklearn",
    "pettingzoo": "pettingzoo",
}
HEAVY = ("ctrlgym.envs.traffic", "TrafficTwinEnv", "ray", "torchrl", ".learn(", "mixup", "pettingzoo")


def _param(page: str, code: str, index: int):
    marks = [] if not any(word in code for word in HEAVY) else [pytest.mark.integration]
    return pytest.param(code, marks=marks, id=f"{page}-{index}")


PYTHON = [_param(page, code, i) for i, (page, code) in enumerate(blocks("python"))]


@pytest.mark.parametrize("code", PYTHON)
def test_every_python_example_runs_as_written(code, tmp_path):
    for word, module in NEEDS.items():
        if word in code and importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module}")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_there_are_examples_to_run():
    assert len(PYTHON) >= 12 and len(blocks("bash")) >= 8


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))


def test_every_shell_command_in_the_docs_names_a_real_target_subcommand_and_file():
    """The shell blocks are long runs (training, benchmarks) that the tests do not repeat; each line
    must name a make target, a ctrlgym subcommand and config files that exist."""
    from ctrlgym.experiment.cli import build_parser

    subcommands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    targets, checked = _make_targets(), 0
    for page, code in blocks("bash"):
        for line in code.splitlines():
            command = line.split("#")[0].strip().rstrip("&").strip()
            words = command.split()
            if not words:
                continue
            if words[0] == "make":
                assert words[1] in targets, f"{page}: make {words[1]}: no such target"
            elif words[0] == "ctrlgym":
                assert words[1] in subcommands, f"{page}: ctrlgym {words[1]}: no such command"
            for path in re.findall(r"(?:configs|docs|benchmarks)/[\w./-]+\.(?:yaml|py)", command):
                assert (ROOT / path).is_file(), f"{page}: {path} does not exist"
            checked += 1
    assert checked >= 20


def test_the_readme_is_a_front_page():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    assert "make demo" in text and "make test" in text
    for word in ("issue", "session", "lent", "../shared"):
        assert word not in text.lower(), word


def test_generated_sections_and_results_pages_are_in_sync():
    """The README's env table and headline results, and the committed results pages, are what
    docs/generate.py makes from the registry and the JSON in benchmarks/results/."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "generate.py"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_the_readme_env_table_lists_every_registered_env():
    from ctrlgym.registry import registered_envs

    text = (ROOT / "README.md").read_text()
    table = text[text.index("<!-- envs:start -->") : text.index("<!-- envs:end -->")]
    assert {e.env_id for e in registered_envs()} == set(re.findall(r"`(ctrlgym/[\w]+-v\d+)`", table))


TUTORIALS = {  # script -> seconds it may take on 2 cores (they take a third of that or less)
    "custom_env.py": 180,
    "custom_algorithm.py": 120,
    "fastslow_dp.py": 60,
    "beamforming_cnn.py": 120,
    "mixup.py": 120,
    "nash_dqn_resco.py": 240,
}


def test_every_tutorial_is_tested():
    assert set(TUTORIALS) == {p.name for p in (ROOT / "docs" / "tutorials").glob("*.py")}


@pytest.mark.integration
@pytest.mark.parametrize("script", sorted(TUTORIALS))
def test_tutorial_runs_within_its_time_limit(script, tmp_path):
    if script == "mixup.py" and importlib.util.find_spec("sklearn") is None:
        pytest.skip("needs ctrlgym[mixup]")
    if script == "nash_dqn_resco.py" and (
        importlib.util.find_spec("sumo") is None or importlib.util.find_spec("sumo_rl") is None
    ):
        pytest.skip("needs ctrlgym[traffic,benchmarks]")
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "tutorials" / script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=TUTORIALS[script],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip()  # each prints what it found


@pytest.mark.integration
def test_the_site_builds_strictly(tmp_path):
    """`make docs`: generate the pages, then mkdocs build --strict (no broken link or reference)."""
    pytest.importorskip("mkdocs", reason="the docs need ctrlgym[docs]")
    subprocess.run([sys.executable, str(ROOT / "docs" / "generate.py")], check=True, timeout=300, cwd=ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for page in ("index.html", "environments/traffic/index.html", "api/index.html", "results/traffic/index.html"):
        assert (tmp_path / "site" / page).is_file(), page


def _demo_table(markdown: str) -> dict[str, list[str]]:
    """policy -> [IQM cell, mean cell] of a report's table."""
    rows = {}
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) >= 4 and cells[0] != "policy" and "[" in cells[2]:
            rows[cells[0]] = [cells[2], cells[3]]
    return rows


@pytest.mark.integration
def test_make_demo_writes_a_report_of_the_agent_against_every_baseline(tmp_path):
    """`make demo` (ctrlgym demo) from scratch: PPO and the six baselines, each IQM inside its CI."""
    subprocess.run(
        [sys.executable, "-m", "ctrlgym", "demo", "--output-dir", str(tmp_path / "demo"), "--no-progress"],
        check=True,
        timeout=900,
        cwd=tmp_path,
    )
    produced = _demo_table((tmp_path / "demo" / "report.md").read_text())
    assert set(produced) == {"ppo", "c_mu", "optimal", "frozen_state", "omit_slow_state", "longest_queue", "random"}
    for policy, (interval, _) in produced.items():
        iqm, low, high = (float(x) for x in re.findall(r"-?[\d.]+", interval))
        assert low <= iqm <= high, (policy, interval)
