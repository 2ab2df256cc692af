"""Functions of tensors traced to an ATen graph and compiled by TorchInductor, called without
dynamo's per-call guards.

``torch.compile`` checks dozens of guards at every call (tens of µs on a CPU: a large share of an
env step at a few thousand envs); an env knows its inputs' shapes and dtypes, so :class:`Compiled`
traces once with ``make_fx`` (in-place ops on the inputs included), compiles the graph with
``torch._inductor.compile`` and keys the result by the inputs' shapes, strides, dtypes and devices and by
the caller's constants: a new key compiles again, and nothing else is checked per call.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.utils._pytree as pytree

__all__ = ["Compiled"]


class Compiled:
    """``function(constants, *tensors) -> pytree of tensors``, compiled once per key.

    ``constants`` (hashable: numbers, strings, classes, objects by identity) are fixed into the
    graph; ``tensors`` are its inputs, and may be mutated in place (the compiled graph writes the
    same results into them). The first call with a new key traces on clones of the inputs, so
    tracing never changes them.
    """

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.cache: dict[tuple, tuple[Callable, Callable]] = {}

    def __getstate__(self) -> dict:  # compiled code does not pickle: a restored object compiles again
        return {"function": self.function, "cache": {}}

    def __call__(self, constants: tuple, *tensors: torch.Tensor) -> Any:
        key = (constants, *((t.shape, t.stride(), t.dtype, t.device) for t in tensors))
        if key not in self.cache:
            self.cache[key] = self._compile(constants, tensors)
        compiled, rebuild = self.cache[key]
        return rebuild(iter(compiled(*tensors)))

    def _compile(self, constants: tuple, tensors: tuple[torch.Tensor, ...]) -> tuple[Callable, Callable]:
        with warnings.catch_warnings():  # importing inductor warns about torch.jit's own deprecations
            warnings.simplefilter("ignore", DeprecationWarning)
            from torch._inductor import compile as inductor_compile
            from torch.fx.experimental.proxy_tensor import make_fx
        out_spec: list[pytree.TreeSpec] = []

        def flat(*inputs: torch.Tensor) -> list[torch.Tensor]:
            leaves, spec = pytree.tree_flatten(self.function(constants, *inputs))
            out_spec[:] = [spec]
            return leaves

        graph = make_fx(flat)(*(t.clone() for t in tensors))
        return inductor_compile(graph, list(tensors)), _rebuilder(out_spec[0])


def _rebuilder(spec: pytree.TreeSpec) -> Callable[[Any], Any]:
    """A function that rebuilds the tuples and dicts of ``spec`` from an iterator over its leaves
    (``pytree.tree_unflatten`` does the same in ~15 µs, a tenth of a compiled step)."""
    if spec.is_leaf():
        return next
    children = [_rebuilder(child) for child in spec.children()]
    if spec.type is dict:
        keys = spec.context
        return lambda leaves: {key: child(leaves) for key, child in zip(keys, children, strict=True)}
    if spec.type in (tuple, list):
        kind = spec.type
        return lambda leaves: kind(child(leaves) for child in children)
    raise TypeError(f"a compiled function returned a {spec.type.__name__}; only tuples, lists and dicts are rebuilt")
