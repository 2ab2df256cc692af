"""Baselines for choosing mix-up operations: every fixed operation, a random choice per stage
(R-Mix's "random" arm), and a simple schedule (with ``strengths``, at the middle strength)."""

from __future__ import annotations

import functools

import torch

from ctrlgym.envs.mixup.env import OBSERVATION_NAMES, MixupPolicyEnv
from ctrlgym.envs.mixup.mixing import OPERATIONS
from ctrlgym.errors import UsageError
from ctrlgym.registry import Baseline

__all__ = ["BASELINES", "TwoPhaseSchedule", "FixedOperation", "RandomOperation", "MixupThenPlain"]


class FixedOperation:
    """The same operation at every stage."""

    def __init__(self, env: MixupPolicyEnv, operation: str) -> None:
        if operation not in env.operations:
            raise UsageError(f"operation {operation!r} is not among the env's {env.operations}")
        self.env, self.index = env, env.operations.index(operation)

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        return self.env.compose(torch.full((self.env.num_envs,), self.index, dtype=torch.long, device=self.env.device))


class RandomOperation:
    """A uniformly random operation per stage and classifier (seeded)."""

    def __init__(self, env: MixupPolicyEnv, seed: int = 0) -> None:
        self.env = env
        self.generator = torch.Generator(device=env.device).manual_seed(seed)

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        operations = torch.randint(
            0, len(self.env.operations), (self.env.num_envs,), generator=self.generator, device=self.env.device
        )
        return self.env.compose(operations)


class TwoPhaseSchedule:
    """One operation for the first ``switch`` share of the budget, another after it (a hand-made
    schedule: e.g. mixup then plain fine-tuning on clean data, or plain first, mixing late)."""

    def __init__(self, env: MixupPolicyEnv, first: str = "mixup", then: str = "none", switch: float = 0.5) -> None:
        for op in (first, then):
            if op not in env.operations:
                raise UsageError(f"{type(self).__name__} needs the operation {op!r}; the env has {env.operations}")
        self.env, self.switch = env, switch
        self.first, self.then = env.operations.index(first), env.operations.index(then)
        self.progress = OBSERVATION_NAMES.index("progress")

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        early = observations[:, self.progress] < self.switch
        return self.env.compose(torch.where(early, self.first, self.then).long())


class MixupThenPlain(TwoPhaseSchedule):
    """Mixup for the first ``switch`` share of the budget, then no mixing (fine-tune on clean data)."""

    def __init__(self, env: MixupPolicyEnv, switch: float = 0.5) -> None:
        super().__init__(env, "mixup", "none", switch)


def _fixed(operation: str, env: MixupPolicyEnv, seed: int) -> FixedOperation:
    return FixedOperation(env, operation)


BASELINES = {  # the registry's baselines of MixupPolicyEnv
    **{
        op: Baseline(
            functools.partial(_fixed, op),
            description="plain training, no mixing" if op == "none" else f"{op} at every stage",
        )
        for op in OPERATIONS
    },
    "random": Baseline(
        lambda env, seed: RandomOperation(env, seed), description="a uniformly random operation at each stage"
    ),
    "mixup_then_none": Baseline(
        lambda env, seed: MixupThenPlain(env), description="mixup for the first half of the stages, then plain training"
    ),
    "none_then_mixup": Baseline(
        lambda env, seed: TwoPhaseSchedule(env, "none", "mixup"),
        description="plain training for the first half of the stages, then mixup",
    ),
}
