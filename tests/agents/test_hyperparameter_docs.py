"""Every hyperparameter of ctrlgym's own agents is documented where it is defined (the docs' tables read it)."""

import pytest

from ctrlgym.docstrings import parameter_docs, undocumented_parameters
from ctrlgym.experiment.algorithms import registered_algorithms

OWN = sorted(name for name, algorithm in registered_algorithms().items() if not algorithm.sb3 and ":" not in name)


def test_the_own_algorithms_are_found():
    assert {"dqn", "nash_dqn", "channel_predictor"} <= set(OWN)


@pytest.mark.parametrize("name", OWN)
def test_every_constructor_parameter_has_a_description(name):
    agent_class = registered_algorithms()[name].load()
    assert undocumented_parameters(agent_class) == []
    assert all(text.strip() for text in parameter_docs(agent_class).values())


def test_a_subclass_inherits_its_bases_descriptions_and_a_missing_one_is_found():
    from ctrlgym.agents import NashDQN

    docs = parameter_docs(NashDQN)
    assert docs["gamma"].startswith("discount factor") and "fictitious play" in docs["fictitious_play_rounds"]

    class Undocumented(NashDQN):
        """No Args section here."""

        def __init__(self, env, *, extra_knob: int = 1, **kwargs):
            super().__init__(env, **kwargs)

    assert undocumented_parameters(Undocumented) == ["extra_knob"]
