"""Public names of the experiment application keep their old import paths for one release, with a warning."""

import pytest


@pytest.mark.parametrize(
    ("old", "name", "new"),
    [
        ("ctrlgym.config", "load_config", "ctrlgym.experiment.config"),
        ("ctrlgym.training", "train", "ctrlgym.experiment.training"),
        ("ctrlgym.runs", "read_metrics", "ctrlgym.experiment.runs"),
        ("ctrlgym.report", "write_report", "ctrlgym.experiment.reports.run_report"),
        ("ctrlgym.report", "mean_ci", "ctrlgym.statistics"),
        ("ctrlgym.benchmark", "write_benchmark_report", "ctrlgym.experiment.reports.benchmark"),
        ("ctrlgym.cli", "main", "ctrlgym.experiment.cli"),
    ],
)
def test_an_old_import_path_warns_and_gives_the_moved_object(old, name, new):
    import importlib

    with pytest.warns(DeprecationWarning, match=f"{old}.{name} moved to {new}.{name}"):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(importlib.import_module(new), name)


def test_an_unknown_name_on_an_old_path_is_an_attribute_error():
    import ctrlgym.config

    with pytest.raises(AttributeError):
        ctrlgym.config.no_such_name  # noqa: B018
