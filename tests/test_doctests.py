"""The examples in the public modules' docstrings run, each module imported once under its
``ctrlgym.`` name (pytest's --doctest-modules would import envs/ a second time as ``envs``)."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest


def _modules_with_examples() -> list[str]:
    """Modules under ctrlgym, ctrlgym.envs, ctrlgym.agents and ctrlgym.solvers (separate folders) with a ``>>>``."""
    import ctrlgym.agents
    import ctrlgym.solvers

    infos = [
        info
        for package in (ctrlgym, ctrlgym.envs, ctrlgym.agents, ctrlgym.solvers)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    ]
    names = []
    for info in infos:
        if info.name.split(".")[-1].startswith("_") or info.name in _DEPRECATED:
            continue
        spec = importlib.util.find_spec(info.name)
        if spec and spec.origin and spec.origin.endswith(".py") and ">>>" in Path(spec.origin).read_text():
            names.append(info.name)
    return names


_DEPRECATED = {
    f"ctrlgym.{m}"
    for m in (
        "config",
        "algorithms",
        "training",
        "evaluation",
        "runs",
        "executors",
        "solving",
        "cli",
        "report",
        "benchmark",
    )
}
MODULES = _modules_with_examples()


def test_the_docstring_examples_are_found():
    assert {"ctrlgym.envs.fastslow.multiclass_queue", "ctrlgym.envs.traffic.env"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    if name.startswith("ctrlgym.envs.traffic"):
        pytest.importorskip("sumo", reason="the traffic examples need ctrlgym[traffic]")
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [test for test in finder.find(module, name) if test.examples]
    assert tests, f"{name} has no docstring examples"
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) of {name} failed (output above)"
