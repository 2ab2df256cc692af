"""``Compiled``: a function of tensors compiled once per key, with the eager function's results."""

import pickle

import torch

from ctrlgym.compiled import Compiled


def _step(constants, x, counts, flags):
    (scale,) = constants
    counts.add_(1)  # in place on an input
    above = x * scale > 0.5
    return {"y": torch.where(above, x, -x), "above": above, "pair": (flags & above, counts.sum())}


def test_compiled_results_equal_the_eager_function_with_bool_outputs_and_in_place_writes():
    x = torch.linspace(0, 1, 64)
    flags = torch.arange(64) % 3 == 0
    eager_counts, compiled_counts = torch.zeros(64, dtype=torch.long), torch.zeros(64, dtype=torch.long)
    function = Compiled(_step)
    for _ in range(2):
        expected = _step((2.0,), x, eager_counts, flags)
        got = function((2.0,), x, compiled_counts, flags)
        assert set(got) == {"y", "above", "pair"}
        assert torch.equal(got["y"], expected["y"])
        assert got["above"].dtype == torch.bool and torch.equal(got["above"], expected["above"])
        assert got["pair"][0].dtype == torch.bool and torch.equal(got["pair"][0], expected["pair"][0])
        assert torch.equal(got["pair"][1], expected["pair"][1])
    assert torch.equal(compiled_counts, torch.full((64,), 2))  # the in-place writes reached the caller's tensor
    assert len(function.cache) == 1


def test_a_new_shape_or_constant_compiles_again_and_pickling_drops_the_compiled_code():
    function = Compiled(_step)
    counts = torch.zeros(8, dtype=torch.long)
    function((2.0,), torch.rand(8), counts, torch.ones(8, dtype=torch.bool))
    function((3.0,), torch.rand(8), counts, torch.ones(8, dtype=torch.bool))
    counts = torch.zeros(16, dtype=torch.long)
    out = function((3.0,), torch.full((16,), 0.25), counts, torch.ones(16, dtype=torch.bool))
    assert len(function.cache) == 3
    assert bool(out["above"].all())  # 0.25 * 3 > 0.5: the constant 3.0 was used, not 2.0
    restored = pickle.loads(pickle.dumps(function))
    assert restored.cache == {} and restored.function is _step


def test_another_thread_count_compiles_again_with_the_same_results():
    function, x, flags = Compiled(_step), torch.linspace(0, 1, 4096), torch.ones(4096, dtype=torch.bool)
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(function((2.0,), x, torch.zeros(4096, dtype=torch.long), flags)["y"])
    finally:
        torch.set_num_threads(before)
    assert len(function.cache) == 2  # inductor writes its CPU code for the thread count it compiles under
    assert torch.equal(results[0], results[1])


def test_inductor_settings_apply_while_compiling_only_and_survive_pickling(monkeypatch):
    import torch._inductor as inductor
    import torch._inductor.config as config

    seen, compile_graph = [], inductor.compile

    def recording(graph, inputs):
        seen.append((config.realize_reads_threshold, config.size_asserts))
        return compile_graph(graph, inputs)

    monkeypatch.setattr(inductor, "compile", recording)
    default, asserts = config.realize_reads_threshold, config.size_asserts
    function = Compiled(_step, {"realize_reads_threshold": default + 5})
    x, flags = torch.linspace(0, 1, 8), torch.ones(8, dtype=torch.bool)
    out = function((2.0,), x, torch.zeros(8, dtype=torch.long), flags)
    # set for the compile, then restored; no per-call size asserts (the cache key fixes shapes and strides)
    assert (
        seen == [(default + 5, False)] and config.realize_reads_threshold == default and config.size_asserts == asserts
    )
    assert torch.equal(out["y"], _step((2.0,), x, torch.zeros(8, dtype=torch.long), flags)["y"])
    assert pickle.loads(pickle.dumps(function)).inductor_config == {"realize_reads_threshold": default + 5}
    older = Compiled.__new__(Compiled)  # pickled before the setting existed: compiles with inductor's defaults
    older.__setstate__({"function": _step, "cache": {}})
    assert older.inductor_config == {} and older.function is _step
