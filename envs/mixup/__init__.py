"""Mixup-policy selection: an agent chooses how to mix samples while classifiers train on real data
(``pip install 'ctrlgym[mixup]'`` for the data sets)."""

from ctrlgym.envs.mixup.baselines import BASELINES, FixedOperation, MixupThenPlain, RandomOperation
from ctrlgym.envs.mixup.data import DATASETS, ImageData, load_dataset
from ctrlgym.envs.mixup.env import MixupPolicyEnv
from ctrlgym.envs.mixup.mixing import OPERATIONS

__all__ = [
    "MixupPolicyEnv",
    "BASELINES",
    "ImageData",
    "load_dataset",
    "DATASETS",
    "OPERATIONS",
    "FixedOperation",
    "RandomOperation",
    "MixupThenPlain",
]
