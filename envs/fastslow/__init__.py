"""Fast-slow MDPs (Wang & Jiang, arXiv 2301.00922): models whose state has a fast and a slow part."""

from ctrlgym.envs.fastslow.baselines import CMuRule, LongestQueue, RandomClass
from ctrlgym.envs.fastslow.multiclass_queue import MultiClassQueue

from ctrlgym.registry import register_env

register_env(
    MultiClassQueue,
    family="fastslow",
    summary="one server, K job classes, holding costs driven by a slowly switching state (c-mu scheduling)",
    baselines={
        "c_mu": lambda env, seed: CMuRule(env),
        "longest_queue": lambda env, seed: LongestQueue(env),
        "random": lambda env, seed: RandomClass(env, seed),
    },
)

__all__ = ["MultiClassQueue", "CMuRule", "LongestQueue", "RandomClass"]
