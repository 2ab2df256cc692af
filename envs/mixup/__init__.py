"""Mixup-policy selection: an agent chooses how to mix samples while classifiers train on real data
(``pip install 'ctrlgym[mixup]'`` for the data sets)."""

from ctrlgym.envs.mixup.baselines import FixedOperation, MixupThenPlain, RandomOperation
from ctrlgym.envs.mixup.data import DATASETS, ImageData, load_dataset
from ctrlgym.envs.mixup.env import MixupPolicyEnv
from ctrlgym.envs.mixup.mixing import OPERATIONS

from ctrlgym.registry import Baseline, register_env

_BASELINES = {
    **{
        op: Baseline(lambda env, seed, op=op: FixedOperation(env, op), description="plain training, no mixing" if op == "none" else f"{op} at every stage")
        for op in OPERATIONS
    },
    "random": Baseline(lambda env, seed: RandomOperation(env, seed), description="a uniformly random operation at each stage"),
    "mixup_then_none": Baseline(lambda env, seed: MixupThenPlain(env), description="mixup for the first half of the stages, then plain training"),
}

register_env(
    MixupPolicyEnv,
    family="mixup",
    summary="choose the mix-up operation while a population of classifiers trains on real digits",
    baselines=_BASELINES,
    check_kwargs={"num_envs": 3, "budget": 3, "steps_per_action": 2, "batch_size": 16, "hidden": 16},
)

__all__ = ["MixupPolicyEnv", "ImageData", "load_dataset", "DATASETS", "OPERATIONS", "FixedOperation", "RandomOperation", "MixupThenPlain"]
