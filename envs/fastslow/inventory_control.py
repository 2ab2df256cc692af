"""Inventory control with a fixed order cost while the wholesale cost drifts slowly."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from gymnasium import spaces

from ctrlgym.envs.fastslow.slow_chain import SlowChainMixin, switch_slow_state, uniform_levels
from ctrlgym.vector_env import AutoresetMode, PureSteps, TorchVectorEnv

__all__ = ["InventoryControl"]


class InventoryControl(SlowChainMixin, PureSteps, TorchVectorEnv):
    r"""A store orders stock against random demand; ordering has a fixed cost, and the wholesale
    cost per unit changes slowly.

    ## Description
    One of the benchmarks of the later version of Wang & Jiang ("Frozen-State Value Iteration",
    arXiv 2301.00922): inventory control with fixed order costs. Fast state: the stock x; slow
    state: the wholesale cost level z.

    ## Dynamics (one step from (x, z) under action a)
    1. an order of :math:`q = \min(a, X - x)` units arrives at once (stock is capped at X);
    2. demand :math:`D` is drawn from a Poisson(λ) law truncated at ``max_demand`` (the tail's
       mass on ``max_demand``); sales :math:`\min(D, x + q)`, unmet demand is lost;
    3. :math:`x' = x + q - \text{sales}`; z stays w.p. 1 − ε, else moves uniformly to another level.
    The exact model factorises: :math:`P^a = F^a \otimes Z`.

    ## Action Space
    ``Discrete(max_order + 1)``: units to order.

    ## Observation Space
    ``MultiDiscrete([X + 1, n_cost_levels])``: stock, wholesale cost level.

    ## Rewards
    :math:`p\,\text{sales} - K\,[q > 0] - c_z\,q - h\,x'` (price p, fixed order cost K, unit cost
    c_z, holding cost h per unit left). The exact model holds its expectation over D.

    ## Starting State
    Stock uniform on {0, …, X}, cost level uniform.

    ## Episode End
    Termination: never. Truncation: ``max_episode_steps`` (default 256).

    ## Arguments
    ``capacity`` X (20), ``max_order`` (10), ``mean_demand`` λ (4), ``max_demand`` (12),
    ``price`` p (10), ``order_cost`` K (20), ``unit_costs`` c_z (2, 6, 10), ``holding_cost`` h (0.5),
    ``switch_prob`` ε (0.01), ``discount`` (0.99). Default: 21 · 3 = 63 states;
    ``capacity=20000`` with 5 cost levels has 100,005. ``compile=True`` fuses each step into one
    compiled kernel (``TorchVectorEnv``), with the eager step's results bit for bit.

    ## Version History
    * v0: initial version. Since ctrlgym 0.2 the slow chain takes one uniform per step (u < ε
      switches, u / ε picks the new state) and a step draws its uniforms as one block, so a
      seed's trajectories differ from 0.1's.
    """

    metric_descriptions = {
        "stock": "units in stock (per-step mean)",
        "lost_sales": "demand not served, units per step",
        "ordered": "units ordered per step",
    }

    def __init__(
        self,
        num_envs: int = 1,
        *,
        capacity: int = 20,
        max_order: int = 10,
        mean_demand: float = 4.0,
        max_demand: int = 12,
        price: float = 10.0,
        order_cost: float = 20.0,
        unit_costs: Sequence[float] = (2.0, 6.0, 10.0),
        holding_cost: float = 0.5,
        switch_prob: float = 0.01,
        discount: float = 0.99,
        max_episode_steps: int | None = 256,
        device: str | torch.device = "cpu",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        validate_actions: bool = True,
        compile: bool = False,
    ) -> None:
        name = type(self).__name__
        costs = np.asarray(unit_costs, dtype=np.float64)
        if capacity < 1 or max_order < 1 or max_demand < 1:
            raise ValueError(
                f"{name}: capacity, max_order and max_demand must be >= 1, got {capacity}, {max_order}, {max_demand}"
            )
        if costs.ndim != 1 or costs.size < 1 or not np.isfinite(costs).all():
            raise ValueError(f"{name}: unit_costs must be a non-empty 1-d sequence of finite costs, got {unit_costs}")
        if not mean_demand > 0:
            raise ValueError(f"{name}: mean_demand must be > 0, got {mean_demand}")
        if not all(np.isfinite(v) for v in (price, order_cost, holding_cost)):
            raise ValueError(f"{name}: price, order_cost and holding_cost must be finite")
        if not 0 <= switch_prob <= 1 or not 0 <= discount < 1:
            raise ValueError(f"{name}: switch_prob must be in [0, 1] and discount in [0, 1)")
        self.capacity, self.max_order, self.max_demand = int(capacity), int(max_order), int(max_demand)
        self.mean_demand, self.price, self.order_cost, self.holding_cost = (
            float(mean_demand),
            float(price),
            float(order_cost),
            float(holding_cost),
        )
        self.switch_prob, self.discount = float(switch_prob), float(discount)
        self.num_slow_states, self._costs_np = costs.size, costs
        super().__init__(
            num_envs,
            spaces.MultiDiscrete([self.capacity + 1, self.num_slow_states]),
            spaces.Discrete(self.max_order + 1),
            device=device,
            max_episode_steps=max_episode_steps,
            autoreset_mode=autoreset_mode,
            validate_actions=validate_actions,
            compile=compile,
        )
        self.unit_costs = torch.as_tensor(costs, dtype=torch.float32, device=self.device)
        self._demand_cdf = torch.as_tensor(self.demand_pmf().cumsum(), dtype=torch.float32, device=self.device)
        self.stock = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.slow_state = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)

    def demand_pmf(self) -> np.ndarray:
        """P(D = d), d = 0 … max_demand: Poisson(λ) with the tail's mass on max_demand."""
        # Poisson pmf e^-λ λ^k / k! in logs; the last entry takes the tail P(D >= max_demand)
        k = np.arange(self.max_demand + 1)
        log_factorial = np.array([math.lgamma(i + 1.0) for i in k])
        pmf = (
            np.exp(k * math.log(self.mean_demand) - self.mean_demand - log_factorial)
            if self.mean_demand > 0
            else (k == 0).astype(float)
        )
        pmf[-1] = max(0.0, 1.0 - pmf[:-1].sum())
        return pmf

    # ------------------------------------------------------------------ the step, as pure functions
    state_names = ("stock", "slow_state")
    num_step_draws = 2  # the demand, the slow chain's
    num_reset_draws = 2  # the first stock and slow state

    def _params(self) -> dict:
        return {
            "demand_cdf": self._demand_cdf,
            "unit_costs": self.unit_costs,
            "capacity": self.capacity,
            "max_demand": self.max_demand,
            "price": self.price,
            "order_cost": self.order_cost,
            "holding_cost": self.holding_cost,
            "switch_prob": self.switch_prob,
            "num_slow_states": self.num_slow_states,
        }

    @staticmethod
    def _transition(params, state, actions, draws):
        """Steps 1–3 of the dynamics; ``draws`` rows: the demand, the slow chain."""
        stock, slow = state
        ordered = torch.minimum(actions.long(), params["capacity"] - stock)
        available = stock + ordered
        # inverse CDF, the same law as the exact model: the number of cdf levels below u
        demand = torch.bucketize(draws[0], params["demand_cdf"]).clamp_max(params["max_demand"])
        sales = torch.minimum(demand, available)
        stock = available - sales
        rewards = (
            params["price"] * sales
            - params["order_cost"] * (ordered > 0).float()
            - params["unit_costs"][slow] * ordered
            - params["holding_cost"] * stock
        ).float()
        slow = switch_slow_state(slow, draws[1], params["switch_prob"], params["num_slow_states"])
        info = {"stock": stock.float(), "lost_sales": (demand - sales).float(), "ordered": ordered.float()}
        return (stock, slow), rewards, torch.zeros_like(rewards, dtype=torch.bool), info

    @staticmethod
    def _reset_state(params, state, mask, draws):
        """Stock and z uniform; ``draws`` rows: the stock's, z's."""
        stock, slow = state
        return (
            torch.where(mask, uniform_levels(draws[0], params["capacity"] + 1), stock),
            torch.where(mask, uniform_levels(draws[1], params["num_slow_states"]), slow),
        )

    @staticmethod
    def _observe_state(params, state):
        return torch.stack(state, dim=1)

    def state_index(self, observations: torch.Tensor) -> torch.Tensor:
        return observations[:, 0] * self.num_slow_states + observations[:, 1]

    # ------------------------------------------------------------------ exact model
    def exact_model(self, device: str | torch.device = "cpu"):
        """The exact MDP: ``P^a = F^a ⊗ Z``, state s = x · n_z + z, rewards in expectation over D."""
        import scipy.sparse as sp

        levels, pmf = self.capacity + 1, self.demand_pmf()
        stock = np.arange(levels)
        demand = np.arange(self.max_demand + 1)
        fast_transitions, rewards = [], []
        for action in range(self.max_order + 1):
            available = stock + np.minimum(action, self.capacity - stock)  # (X+1,)
            left = np.maximum(available[:, None] - demand[None, :], 0)  # (X+1, D+1)
            rows = np.repeat(stock, demand.size)
            fast_transitions.append(sp.csr_matrix((np.tile(pmf, levels), (rows, left.ravel())), shape=(levels, levels)))
            sales = available[:, None] - left
            expected = ((self.price * sales - self.holding_cost * left) * pmf).sum(1)  # (X+1,)
            ordered = available - stock
            per_cost = (
                expected[:, None]
                - self.order_cost * (ordered > 0)[:, None]
                - self._costs_np[None, :] * ordered[:, None]
            )
            rewards.append(per_cost.reshape(-1))
        return self.factored_model(fast_transitions, rewards, device, f"X={self.capacity}")
