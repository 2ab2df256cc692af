"""Functions of tensors traced to an ATen graph and compiled by TorchInductor, called without
dynamo's per-call guards.

``torch.compile`` checks dozens of guards at every call (tens of µs on a CPU: a large share of an
env step at a few thousand envs); an env knows its inputs' shapes and dtypes, so :class:`Compiled`
traces once with ``make_fx`` (in-place ops on the inputs included), compiles the graph with
``torch._inductor.compile`` and keys the result by the inputs' shapes, strides, dtypes and devices, by
the caller's constants and by torch's intra-op thread count (inductor writes its CPU code for that many
OpenMP threads; one thread gives serial code): a new key compiles again, and nothing else is checked per call.

``inductor_config`` patches ``torch._inductor.config`` while compiling, for a function whose best code
needs other heuristics than inductor's defaults (the traffic twin: ``realize_reads_threshold``). Every
graph compiles without inductor's per-call size asserts (``size_asserts=False``): the key already fixes
each input's shape and strides, and the asserts, one per input, cost a tenth of a small step (the compiled
twin at one env, paired runs: 3,560–3,680 → 3,920–4,110 steps/s).

Bool outputs leave the graph as int32 and become bool outside it: inductor's CPU code stores a
bool tensor one element at a time (measured on 16,384 elements: a bool output 150 µs, an int32
one 8 µs, the conversion outside 2 µs). Bool inputs stay bool (converting them gained nothing).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.utils._pytree as pytree

__all__ = ["Compiled"]

#: inductor settings for every graph: the cache key fixes each input's shape and strides, so the
#: wrapper's per-call asserts of them check nothing the key has not
COMPILE_CONFIG: dict[str, Any] = {"size_asserts": False}


class Compiled:
    """``function(constants, *tensors) -> pytree of tensors``, compiled once per key.

    ``constants`` (hashable: numbers, strings, classes, objects by identity) are fixed into the
    graph; ``tensors`` are its inputs, and may be mutated in place (the compiled graph writes the
    same results into them). The first call with a new key traces on clones of the inputs, so
    tracing never changes them. ``inductor_config``: ``torch._inductor.config`` settings to compile with.
    """

    def __init__(self, function: Callable[..., Any], inductor_config: dict[str, Any] | None = None) -> None:
        self.function = function
        self.inductor_config = dict(inductor_config or {})
        self.cache: dict[tuple, tuple[Callable, Callable]] = {}

    def __getstate__(self) -> dict:  # compiled code does not pickle: a restored object compiles again
        return {"function": self.function, "inductor_config": self.inductor_config, "cache": {}}

    def __setstate__(self, state: dict) -> None:  # one pickled before inductor_config existed compiles with none
        self.__dict__.update({"inductor_config": {}, **state})

    def __call__(self, constants: tuple, *tensors: torch.Tensor) -> Any:
        key = (constants, torch.get_num_threads(), *((t.shape, t.stride(), t.dtype, t.device) for t in tensors))
        entry = self.cache.get(key)
        if entry is None:
            entry = self.cache[key] = self._compile(constants, tensors)
        compiled, rebuild = entry
        return rebuild(compiled(*tensors))

    def _compile(self, constants: tuple, tensors: tuple[torch.Tensor, ...]) -> tuple[Callable, Callable]:
        """``(compiled, rebuild)``: the compiled graph and the function making its flat outputs the
        function's own structure again (with the bool outputs, int32 in the graph, made bool)."""
        with warnings.catch_warnings():  # inductor's imports warn about torch.jit's own deprecations
            warnings.simplefilter("ignore", DeprecationWarning)
            from torch._inductor import compile as inductor_compile
            from torch._inductor import config as inductor_config
            from torch.fx.experimental.proxy_tensor import make_fx

            out_spec: list[pytree.TreeSpec] = []
            bool_outputs: list[int] = []

            def flat(*inputs: torch.Tensor) -> list[torch.Tensor]:
                leaves, spec = pytree.tree_flatten(self.function(constants, *inputs))
                out_spec[:] = [spec]
                bool_outputs[:] = [i for i, leaf in enumerate(leaves) if leaf.dtype == torch.bool]
                return [leaf.int() if leaf.dtype == torch.bool else leaf for leaf in leaves]

            graph = make_fx(flat)(*(t.clone() for t in tensors))
            with inductor_config.patch({**COMPILE_CONFIG, **self.inductor_config}):
                compiled = inductor_compile(graph, list(tensors))
            return compiled, _rebuilder(out_spec[0], set(bool_outputs))


def _rebuilder(spec: pytree.TreeSpec, bool_leaves: set[int]) -> Callable[[Any], Any]:
    """A function of the flat outputs that rebuilds the tuples, lists and dicts of ``spec`` (and
    makes the leaves in ``bool_leaves`` bool), generated as one expression: ``pytree.tree_unflatten``
    does the same in ~15 µs, a tenth of a compiled step; this in ~1 µs."""
    counter = iter(range(spec.num_leaves))

    def expression(node: pytree.TreeSpec) -> str:
        if node.is_leaf():
            index = next(counter)
            return f"leaves[{index}].bool()" if index in bool_leaves else f"leaves[{index}]"
        children = [expression(child) for child in node.children()]
        if node.type is dict:
            if not all(isinstance(key, str) for key in node.context):
                raise TypeError("a compiled function's dicts must have string keys")
            return "{" + ", ".join(f"{key!r}: {child}" for key, child in zip(node.context, children, strict=True)) + "}"
        if node.type is tuple:
            return "(" + "".join(f"{child}, " for child in children) + ")"
        if node.type is list:
            return "[" + ", ".join(children) + "]"
        raise TypeError(
            f"a compiled function returned a {node.type.__name__}; only tuples, lists and dicts are rebuilt"
        )

    namespace: dict[str, Any] = {}
    exec(f"def rebuild(leaves):\n    return {expression(spec)}\n", namespace)  # an expression built above
    return namespace["rebuild"]
