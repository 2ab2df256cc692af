"""Fast-slow MDPs (Wang & Jiang, arXiv 2301.00922): models whose state has a fast and a slow part."""

from ctrlgym.envs.fastslow.baselines import (
    CMuRule,
    GoToTask,
    LongestQueue,
    MyopicArms,
    MyopicPrice,
    PriceThreshold,
    RandomAction,
    ReorderPoint,
    frozen_state_policy,
    omit_slow_state_policy,
    optimal_policy,
)
from ctrlgym.envs.fastslow.dynamic_pricing import DynamicPricing
from ctrlgym.envs.fastslow.energy_storage import EnergyStorage
from ctrlgym.envs.fastslow.inventory_control import InventoryControl
from ctrlgym.envs.fastslow.multiclass_queue import MultiClassQueue
from ctrlgym.envs.fastslow.restless_bandit import RestlessBandit
from ctrlgym.envs.fastslow.task_gridworld import TaskGridworld

__all__ = [
    "frozen_state_policy",
    "omit_slow_state_policy",
    "optimal_policy",
    "MultiClassQueue",
    "RestlessBandit",
    "EnergyStorage",
    "InventoryControl",
    "DynamicPricing",
    "TaskGridworld",
    "GoToTask",
    "MyopicPrice",
    "ReorderPoint",
    "PriceThreshold",
    "CMuRule",
    "LongestQueue",
    "MyopicArms",
    "RandomAction",
]
