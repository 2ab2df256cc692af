import pytest

pytest.importorskip("sumo", reason="the traffic family needs ctrlgym[traffic]")
