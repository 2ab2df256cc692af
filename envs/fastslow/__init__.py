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

from ctrlgym.registry import Baseline, register_env

# every fast-slow env exports its exact model, so the solvers' policies are baselines of all of them
_SOLVER_BASELINES = {
    "optimal": Baseline(lambda env, seed: optimal_policy(env), description="the ε-optimal policy of the exact MDP (value iteration): the ceiling"),
    "frozen_state": Baseline(
        lambda env, seed: frozen_state_policy(env), description="frozen-state approximate DP, slow state frozen for T=10 steps (arXiv 2301.00922)"
    ),
    "omit_slow_state": Baseline(
        lambda env, seed: omit_slow_state_policy(env), description="DP on the fast state alone, the slow state averaged out"
    ),
}

# env, one-line summary, the heuristics of its problem
_MODELS = (
    (MultiClassQueue, "one server, K job classes, holding costs driven by a slowly switching state (c-mu scheduling)",
     {"c_mu": Baseline(lambda env, seed: CMuRule(env), description="c-mu rule: serve the class with the largest holding cost x service rate"),
      "longest_queue": Baseline(lambda env, seed: LongestQueue(env), description="serve the longest queue")}),
    (RestlessBandit, "restless bandit: N arms that move on their own, M played per step, payoffs set by a slow state",
     {"myopic": Baseline(lambda env, seed: MyopicArms(env), description="play the M arms with the largest immediate expected payoff")}),
    (EnergyStorage, "energy demand response: a battery traded against real-time (fast) and day-ahead (slow) prices",
     {"threshold": Baseline(lambda env, seed: PriceThreshold(env), description="charge below a price threshold, discharge above it")}),
    (InventoryControl, "inventory control with a fixed order cost while the wholesale cost drifts slowly",
     {"reorder_point": Baseline(lambda env, seed: ReorderPoint(env), description="(s, S) policy: order up to S when stock falls below s")}),
    (DynamicPricing, "dynamic pricing with loss-averse reference-price demand while the market size changes slowly",
     {"myopic": Baseline(lambda env, seed: MyopicPrice(env), description="the price that maximises this step's expected revenue")}),
    (TaskGridworld, "a robot on a grid serves spatial tasks; which site has the task changes slowly",
     {"go_to_task": Baseline(lambda env, seed: GoToTask(env), description="walk the shortest path to the current task")}),
)  # fmt: skip

_RANDOM = Baseline(lambda env, seed: RandomAction(env, seed), description="uniformly random actions: the floor")

for model, summary, heuristics in _MODELS:
    baselines = {**heuristics, "random": _RANDOM, **_SOLVER_BASELINES}
    register_env(model, family="fastslow", summary=summary, baselines=baselines)

__all__ = ["MultiClassQueue", "RestlessBandit", "EnergyStorage", "InventoryControl", "DynamicPricing", "TaskGridworld", "GoToTask", "MyopicPrice", "ReorderPoint", "PriceThreshold", "CMuRule", "LongestQueue", "MyopicArms", "RandomAction"]
