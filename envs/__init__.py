"""ctrlgym environments, one sub-package per family; importing registers them."""

from ctrlgym.envs import fastslow

__all__ = ["fastslow"]
