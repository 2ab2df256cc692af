"""ctrlgym solvers: exact and frozen-state dynamic programming on finite MDPs (torch, CPU or CUDA)."""

from ctrlgym.solvers.dynamic_programming import (
    SolverResult,
    backward_induction,
    greedy_policy,
    inexact_policy_iteration,
    modified_policy_iteration,
    policy_evaluation,
    policy_iteration,
    value_iteration,
)
from ctrlgym.solvers.mdp import FiniteMDP

__all__ = [
    "FiniteMDP",
    "SolverResult",
    "value_iteration",
    "policy_iteration",
    "modified_policy_iteration",
    "inexact_policy_iteration",
    "backward_induction",
    "policy_evaluation",
    "greedy_policy",
]
