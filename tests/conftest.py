import pytest
import torch

# the CUDA cases carry the `cuda` marker, so `pytest -m cuda` (make gpu-check) selects exactly them
DEVICES = ["cpu"] + ([pytest.param("cuda", marks=pytest.mark.cuda)] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Every device test runs on CPU, and on CUDA where a GPU exists."""
    return request.param
