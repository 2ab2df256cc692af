"""Per-parameter documentation read from the ``Args:`` sections of docstrings (Google style, as
mkdocstrings renders them): the single source of the hyperparameter tables in the docs."""

from __future__ import annotations

import inspect
import re

__all__ = ["parameter_docs", "undocumented_parameters"]

_ENTRY = re.compile(r"^(\*{0,2}\w+)(?: \(.*?\))?:\s*(.*)$")


def _args_section(docstring: str) -> dict[str, str]:
    lines = inspect.cleandoc(docstring).splitlines()
    found: dict[str, str] = {}
    inside, name = False, None
    for line in lines:
        if line.strip() in ("Args:", "Arguments:", "Parameters:"):
            inside = True
            continue
        if not inside:
            continue
        if line and not line.startswith(" "):  # the next section
            break
        entry = _ENTRY.match(line.strip()) if line.startswith("    ") and not line.startswith("        ") else None
        if entry:
            name = entry.group(1)
            found[name] = entry.group(2)
        elif name and line.strip():
            found[name] += " " + line.strip()
    return found


def parameter_docs(cls: type) -> dict[str, str]:
    """``{parameter: description}`` of a class's constructor, from the ``Args:`` sections of it and its bases
    (a subclass that passes ``**kwargs`` on documents only its own parameters)."""
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        if base.__doc__ and base is not object:
            docs.update(_args_section(base.__doc__))
    docs.pop("**kwargs", None)
    return docs


def undocumented_parameters(cls: type) -> list[str]:
    """The constructor's named parameters (through its bases' ``**kwargs``) that no ``Args:`` entry describes."""
    documented = parameter_docs(cls)
    missing = []
    for base in cls.__mro__:
        init = base.__dict__.get("__init__")
        if init is None or base is object:
            continue
        parameters = inspect.signature(init).parameters.values()
        missing += [
            p.name
            for p in parameters
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in documented
        ]
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return sorted(set(missing))
