"""Baseline policies of the fast-slow envs: c-μ, longest queue and random for the queue; myopic
and random for the restless bandit; a price threshold for energy storage; an (s, S) reorder rule for
inventory; the revenue-maximising price of the moment for pricing; walking to the active task in the
gridworld; and, for any env with an exact model, the optimal,
frozen-state and omit-the-slow-state solver policies.

Each is a :class:`ctrlgym.policies.Policy`: a batch of observations in, a batch of actions out.
"""

from __future__ import annotations

import torch

from ctrlgym.envs.fastslow.multiclass_queue import MultiClassQueue
from ctrlgym.registry import Baseline

__all__ = [
    "CMuRule",
    "LongestQueue",
    "MyopicArms",
    "RandomAction",
    "PriceThreshold",
    "ReorderPoint",
    "MyopicPrice",
    "GoToTask",
    "optimal_policy",
    "frozen_state_policy",
    "omit_slow_state_policy",
]


def _split(observations: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    return observations[:, :num_classes], observations[:, num_classes].long()


class CMuRule:
    """Serve the non-empty class with the largest c_k(z)·μ_k under the current slow state z.

    The c-μ rule is optimal for the uncapped queue with linear holding costs and fixed costs
    (Cox & Smith 1961); here it is the myopic rule that reads the current z.
    """

    def __init__(self, env: MultiClassQueue) -> None:
        self.num_classes = env.num_classes
        self.index = env.holding_costs * env.service_probs  # (n_slow, K)

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        queues, slow_state = _split(observations, self.num_classes)
        index = self.index.to(observations.device)[slow_state]
        index = index.masked_fill(queues == 0, -torch.inf)
        return index.argmax(dim=1)


class LongestQueue:
    """Serve the class with the most waiting jobs (ties: lowest class index)."""

    def __init__(self, env: MultiClassQueue) -> None:
        self.num_classes = env.num_classes

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        queues, _ = _split(observations, self.num_classes)
        return queues.argmax(dim=1)


def optimal_policy(env, epsilon: float = 1e-4):
    """The ε-optimal policy of the exact model (value iteration), acting on observations."""
    from ctrlgym.solvers import value_iteration
    from ctrlgym.solvers.frozen_state import TabularPolicy

    return TabularPolicy(value_iteration(env.exact_model(device=env.device), epsilon).policy, env.state_index)


def frozen_state_policy(env, period: int = 10, epsilon: float = 1e-4):
    """Frozen-state ADP (Wang & Jiang) with freezing period ``period``: slow state re-read every period."""
    from ctrlgym.solvers.frozen_state import FrozenStatePolicy, frozen_state_value_iteration

    result = frozen_state_value_iteration(env.exact_model(device=env.device), period, epsilon)
    return FrozenStatePolicy(result.lower_policies, env.state_index, env.num_slow_states)


def omit_slow_state_policy(env, epsilon: float = 1e-4):
    """The heuristic that ignores the slow state (rewards and dynamics averaged over it)."""
    from ctrlgym.solvers.frozen_state import TabularPolicy, omit_slow_state

    return TabularPolicy(omit_slow_state(env.exact_model(device=env.device), epsilon)[0], env.state_index)


class MyopicArms:
    """Activate the M arms with the largest immediate payoff s_i · m_y[i] (ties: lowest index)."""

    def __init__(self, env) -> None:
        self.env = env
        self.num_arms = env.num_arms

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        arms, slow = observations[:, : self.num_arms].float(), observations[:, self.num_arms].long()
        payoff = arms * self.env.multipliers.to(observations.device)[slow]  # (num_envs, N)
        subsets = self.env.arm_subsets.to(observations.device).float()  # (n_actions, N)
        return (payoff @ subsets.T).argmax(dim=1)  # the subset with the largest total payoff


class RandomAction:
    """A uniformly random action of a Discrete action space (seeded): the class to serve, the arms
    to play, the trade to make."""

    def __init__(self, env, seed: int = 0) -> None:
        self.n = int(env.single_action_space.n)
        self.generator = torch.Generator(device=env.device).manual_seed(seed)

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        u = torch.rand(observations.shape[0], generator=self.generator, device=self.generator.device)
        return (u * self.n).long().clamp_max(self.n - 1).to(observations.device)


class PriceThreshold:
    """Buy below the mean effective price minus ``margin``, sell above it plus ``margin``."""

    def __init__(self, env, margin: float = 5.0) -> None:
        self.env = env
        w = env.realtime_weight
        self.mean_price = float(w * env.realtime_prices.mean() + (1 - w) * env.dayahead_prices.mean())
        self.margin = margin

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        env = self.env
        w = env.realtime_weight
        price = (
            w * env.realtime_prices.to(observations.device)[observations[:, 1]]
            + (1 - w) * env.dayahead_prices.to(observations.device)[observations[:, 2]]
        )
        idle = torch.ones_like(observations[:, 0])
        return torch.where(
            price < self.mean_price - self.margin, 0, torch.where(price > self.mean_price + self.margin, 2, idle)
        )


class ReorderPoint:
    """The (s, S) rule: when stock is at most s, order up to S (as far as ``max_order`` allows).

    Defaults from the demand and cost parameters, blind to the slow state: S − s is the economic
    order quantity √(2Kλ/h) and s covers one period's demand with a 95% normal safety margin,
    ``λ + 1.65 √λ``.
    """

    def __init__(self, env, reorder_point: int | None = None, order_up_to: int | None = None) -> None:
        import math

        lam = env.mean_demand
        s = math.ceil(lam + 1.65 * math.sqrt(lam)) if reorder_point is None else reorder_point
        big_s = (
            s + round(math.sqrt(2 * env.order_cost * lam / max(env.holding_cost, 1e-9)))
            if order_up_to is None
            else order_up_to
        )
        self.reorder_point, self.order_up_to = min(s, env.capacity), min(big_s, env.capacity)
        self.max_order = env.max_order

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        stock = observations[:, 0]
        order = (self.order_up_to - stock).clamp(0, self.max_order)
        return torch.where(stock <= self.reorder_point, order, torch.zeros_like(order))


class MyopicPrice:
    """The price with the largest expected revenue now, p · λ(p, r, z), blind to its effect on the
    reference price (a low price today lowers what buyers accept tomorrow)."""

    def __init__(self, env) -> None:
        self.env = env

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        env = self.env
        prices = env.prices.to(observations.device)
        reference = prices[observations[:, 0]][:, None]
        market = env.market_sizes.to(observations.device)[observations[:, 1]][:, None]
        return (prices[None, :] * env.demand_rate(prices[None, :], reference, market)).argmax(dim=1)


class GoToTask:
    """Walk toward the active site, rows first, and stay once there."""

    def __init__(self, env) -> None:
        self.sites = torch.tensor(env.sites, device=env.device)

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        target = self.sites.to(observations.device)[observations[:, 2]]
        d_row, d_column = target[:, 0] - observations[:, 0], target[:, 1] - observations[:, 1]
        horizontal = torch.where(d_column < 0, 3, torch.where(d_column > 0, 4, 0))
        return torch.where(d_row < 0, 1, torch.where(d_row > 0, 2, horizontal))


# every fast-slow env exports its exact model, so the solvers' policies are baselines of all of them
_SOLVER_BASELINES = {
    "optimal": Baseline(
        lambda env, seed: optimal_policy(env),
        description="the ε-optimal policy of the exact MDP (value iteration): the ceiling",
    ),
    "frozen_state": Baseline(
        lambda env, seed: frozen_state_policy(env),
        description="frozen-state approximate DP, slow state frozen for T=10 steps (arXiv 2301.00922)",
    ),
    "omit_slow_state": Baseline(
        lambda env, seed: omit_slow_state_policy(env),
        description="DP on the fast state alone, the slow state averaged out",
    ),
}
_RANDOM = Baseline(lambda env, seed: RandomAction(env, seed), description="uniformly random actions: the floor")


def _with_common(heuristics: dict[str, Baseline]) -> dict[str, Baseline]:
    return {**heuristics, "random": _RANDOM, **_SOLVER_BASELINES}


# the registry's baselines of each env: its problem's heuristics, random, and the solvers' policies
MULTICLASS_QUEUE_BASELINES = _with_common(
    {
        "c_mu": Baseline(
            lambda env, seed: CMuRule(env),
            description="c-mu rule: serve the class with the largest holding cost x service rate",
        ),
        "longest_queue": Baseline(lambda env, seed: LongestQueue(env), description="serve the longest queue"),
    }
)
RESTLESS_BANDIT_BASELINES = _with_common(
    {
        "myopic": Baseline(
            lambda env, seed: MyopicArms(env), description="play the M arms with the largest immediate expected payoff"
        )
    }
)
ENERGY_STORAGE_BASELINES = _with_common(
    {
        "threshold": Baseline(
            lambda env, seed: PriceThreshold(env), description="charge below a price threshold, discharge above it"
        )
    }
)
INVENTORY_CONTROL_BASELINES = _with_common(
    {
        "reorder_point": Baseline(
            lambda env, seed: ReorderPoint(env), description="(s, S) policy: order up to S when stock falls below s"
        )
    }
)
DYNAMIC_PRICING_BASELINES = _with_common(
    {
        "myopic": Baseline(
            lambda env, seed: MyopicPrice(env), description="the price that maximises this step's expected revenue"
        )
    }
)
TASK_GRIDWORLD_BASELINES = _with_common(
    {"go_to_task": Baseline(lambda env, seed: GoToTask(env), description="walk the shortest path to the current task")}
)
