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

from ctrlgym.registry import register_env

# every fast-slow env exports its exact model, so the solvers' policies are baselines of all of them
_SOLVER_BASELINES = {
    "optimal": lambda env, seed: optimal_policy(env),
    "frozen_state": lambda env, seed: frozen_state_policy(env),
    "omit_slow_state": lambda env, seed: omit_slow_state_policy(env),
}

# env, one-line summary, the heuristics of its problem
_MODELS = (
    (MultiClassQueue, "one server, K job classes, holding costs driven by a slowly switching state (c-mu scheduling)",
     {"c_mu": lambda env, seed: CMuRule(env), "longest_queue": lambda env, seed: LongestQueue(env)}),
    (RestlessBandit, "restless bandit: N arms that move on their own, M played per step, payoffs set by a slow state",
     {"myopic": lambda env, seed: MyopicArms(env)}),
    (EnergyStorage, "energy demand response: a battery traded against real-time (fast) and day-ahead (slow) prices",
     {"threshold": lambda env, seed: PriceThreshold(env)}),
    (InventoryControl, "inventory control with a fixed order cost while the wholesale cost drifts slowly",
     {"reorder_point": lambda env, seed: ReorderPoint(env)}),
    (DynamicPricing, "dynamic pricing with loss-averse reference-price demand while the market size changes slowly",
     {"myopic": lambda env, seed: MyopicPrice(env)}),
    (TaskGridworld, "a robot on a grid serves spatial tasks; which site has the task changes slowly",
     {"go_to_task": lambda env, seed: GoToTask(env)}),
)  # fmt: skip

for model, summary, heuristics in _MODELS:
    baselines = {**heuristics, "random": lambda env, seed: RandomAction(env, seed), **_SOLVER_BASELINES}
    register_env(model, family="fastslow", summary=summary, baselines=baselines)

__all__ = ["MultiClassQueue", "RestlessBandit", "EnergyStorage", "InventoryControl", "DynamicPricing", "TaskGridworld", "GoToTask", "MyopicPrice", "ReorderPoint", "PriceThreshold", "CMuRule", "LongestQueue", "MyopicArms", "RandomAction"]
