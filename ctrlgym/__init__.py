"""ctrlgym: batched torch reinforcement-learning control environments, agents and solvers."""

from ctrlgym import envs
from ctrlgym.checker import VectorEnvCheckError, check_vector_env
from ctrlgym.registry import get_entry, make_vector_env, register_env, registered_envs
from ctrlgym.threads import get_num_threads, set_num_threads
from ctrlgym.vector_env import AutoresetMode, TorchVectorEnv

__version__ = "0.1.0"
__all__ = [
    "AutoresetMode",
    "TorchVectorEnv",
    "check_vector_env",
    "VectorEnvCheckError",
    "register_env",
    "registered_envs",
    "get_entry",
    "make_vector_env",
    "set_num_threads",
    "get_num_threads",
    "envs",
    "load",
]


def __getattr__(name: str):
    """``ctrlgym.load(run_dir)``: the experiment application's loader, imported on first use (PEP 562),
    so ``import ctrlgym`` loads neither it nor SB3."""
    if name == "load":
        from ctrlgym.experiment.loading import load

        return load
    raise AttributeError(f"module 'ctrlgym' has no attribute {name!r}")
