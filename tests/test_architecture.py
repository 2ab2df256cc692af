"""The package's import graph, read from the source with ``ast``: no cycles, a core that never
imports the experiment application, and no module that imports another module's private names."""

from __future__ import annotations

import ast
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = "ctrlgym.experiment"


def _modules() -> dict[str, Path]:
    """Every module of the package by its ``ctrlgym.`` name (``package-dir`` maps envs/ to ctrlgym.envs, ...)."""
    package_dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    modules = {}
    for package, folder in package_dirs.items():
        for path in (ROOT / folder).rglob("*.py"):
            relative = path.relative_to(ROOT / folder).with_suffix("")
            parts = [part for part in relative.parts if part != "__init__"]
            name = ".".join([package, *parts])
            if package == "ctrlgym" and parts and parts[0] in ("envs", "agents", "solvers", "configs"):
                continue  # never: those names are their own folders
            modules[name] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import in the module, at any depth
    (an import inside a function is still a dependency); relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:  # `from package import module`
                    found.append((submodule, None, node.lineno))
                else:
                    found.append((base, alias.name, node.lineno))
    return [
        (module, attr, line) for module, attr, line in found if module == "ctrlgym" or module.startswith("ctrlgym.")
    ]


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for module, _, _ in _imports(name, path, modules):
            while module not in modules and "." in module:
                module = module.rpartition(".")[0]
            if module in modules and module != name:
                graph[name].add(module)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_the_import_graph_is_read_from_every_module():
    graph = _graph()
    assert {"ctrlgym.vector_env", "ctrlgym.envs.traffic.env", "ctrlgym.experiment.runs", "ctrlgym.agents.dqn"} <= set(
        graph
    )
    assert "ctrlgym.experiment.config" in graph["ctrlgym.experiment.runs"]
    assert "ctrlgym.vector_env" in graph["ctrlgym.envs.traffic.env"]


def test_the_package_has_no_import_cycles():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_library_core_never_imports_the_experiment_application():
    graph = _graph()
    # ctrlgym.__main__ is the CLI's entry point; the package facade ctrlgym/__init__ exposes ctrlgym.load
    # lazily (PEP 562 __getattr__): every other module of the core stays free of the application
    entry_points = {"ctrlgym.__main__", "ctrlgym"}
    core = [name for name in graph if not name.startswith(EXPERIMENT) and name not in entry_points]
    offenders = {name: sorted(m for m in graph[name] if m.startswith(EXPERIMENT)) for name in core}
    assert {name: found for name, found in offenders.items() if found} == {}
    assert {m for m in graph["ctrlgym"] if m.startswith(EXPERIMENT)} == {"ctrlgym.experiment.loading"}
    assert {m for m in graph["ctrlgym"] if m.startswith(EXPERIMENT)} == {"ctrlgym.experiment.loading"}


def test_no_module_imports_another_modules_private_names():
    modules = _modules()
    offenders = []
    for name, path in modules.items():
        for module, attr, line in _imports(name, path, modules):
            if attr and attr.startswith("_") and not attr.startswith("__") and module != name:
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}.{attr}")
    assert offenders == []
