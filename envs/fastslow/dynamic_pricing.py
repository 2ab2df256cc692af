"""Dynamic pricing with reference-price effects while the market size changes slowly."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from gymnasium import spaces

from ctrlgym.envs.fastslow.slow_chain import SlowChainMixin
from ctrlgym.vector_env import AutoresetMode, TorchVectorEnv

__all__ = ["DynamicPricing"]


class DynamicPricing(SlowChainMixin, TorchVectorEnv):
    r"""A seller posts a price each period; buyers judge it against a reference price formed by
    past prices (loss-averse), and the market size moves slowly.

    ## Description
    One of the benchmarks of the later version of Wang & Jiang ("Frozen-State Value Iteration",
    arXiv 2301.00922): dynamic pricing with reference-price effects (Kalyanaram & Winer's
    reference-price demand; loss aversion as in Popescu & Wu, Oper. Res. 2007). Fast state: the
    reference price r (a level of the price grid); slow state: the market size level z.

    ## Dynamics (one step from (r, z) under price p = prices[a])
    1. demand rate :math:`\lambda = \max(0,\ m_z - b\,p + \eta^+ (r - p)^+ - \eta^- (p - r)^+)`:
       a price below the reference is a gain to buyers, one above it a loss (η⁻ > η⁺);
    2. sales :math:`\sim \text{Poisson}(\lambda)`, reward :math:`p \cdot \text{sales}`;
    3. the reference moves to :math:`\theta r + (1 - \theta) p`, rounded to one of its two
       neighbouring grid prices at random with the probabilities that keep its mean (so the
       chain stays on the grid without drift);
    4. z stays w.p. 1 − ε, else moves uniformly to another level.
    The exact model factorises: :math:`P^a = F^a \otimes Z`; it holds the expected reward p λ.

    ## Action Space
    ``Discrete(len(prices))``: the price level.

    ## Observation Space
    ``MultiDiscrete([len(prices), len(market_sizes)])``: reference price level, market size level.

    ## Rewards
    Revenue ``p · sales``.

    ## Starting State
    Reference level and market level uniform.

    ## Episode End
    Termination: never. Truncation: ``max_episode_steps`` (default 256).

    ## Arguments
    ``prices`` (default: ``num_prices`` = 10 levels evenly over ``price_range`` = (5, 14)), ``market_sizes`` m_z (20, 35, 50), ``price_sensitivity`` b (2),
    ``gain_sensitivity`` η⁺ (1), ``loss_sensitivity`` η⁻ (2), ``memory`` θ (0.7), ``switch_prob``
    ε (0.01), ``discount`` (0.99). Default: 10 · 3 = 30 states; 1,000 price levels and 100 market
    levels give 100,000.

    ## Version History
    * v0: initial version. Since ctrlgym 0.2 the slow chain takes one uniform per step (u < ε
      switches, u / ε picks the new state), so a seed's trajectories differ from 0.1's.
    """

    metric_descriptions = {
        "price": "price charged (per-step mean)",
        "sales": "units sold per step",
        "demand_rate": "expected demand per step",
    }

    def __init__(
        self,
        num_envs: int = 1,
        *,
        prices: Sequence[float] | None = None,
        num_prices: int = 10,
        price_range: Sequence[float] = (5.0, 14.0),
        market_sizes: Sequence[float] = (20.0, 35.0, 50.0),
        price_sensitivity: float = 2.0,
        gain_sensitivity: float = 1.0,
        loss_sensitivity: float = 2.0,
        memory: float = 0.7,
        switch_prob: float = 0.01,
        discount: float = 0.99,
        max_episode_steps: int | None = 256,
        device: str | torch.device = "cpu",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        validate_actions: bool = True,
    ) -> None:
        name = type(self).__name__
        if prices is None:
            if int(num_prices) < 2 or len(price_range) != 2:
                raise ValueError(
                    f"{name}: need num_prices >= 2 and price_range = [low, high], got {num_prices}, {price_range}"
                )
            grid = np.linspace(float(price_range[0]), float(price_range[1]), int(num_prices))
        else:
            grid = np.asarray(prices, dtype=np.float64)
        markets = np.asarray(market_sizes, dtype=np.float64)
        if grid.ndim != 1 or grid.size < 2 or not np.isfinite(grid).all() or (np.diff(grid) <= 0).any():
            raise ValueError(f"{name}: prices must be at least 2 finite, strictly increasing levels, got {prices}")
        if markets.ndim != 1 or markets.size < 1 or not np.isfinite(markets).all():
            raise ValueError(
                f"{name}: market_sizes must be a non-empty 1-d sequence of finite sizes, got {market_sizes}"
            )
        if min(price_sensitivity, gain_sensitivity, loss_sensitivity) < 0:
            raise ValueError(f"{name}: price_sensitivity, gain_sensitivity and loss_sensitivity must be >= 0")
        if not 0 <= memory <= 1 or not 0 <= switch_prob <= 1 or not 0 <= discount < 1:
            raise ValueError(f"{name}: memory and switch_prob must be in [0, 1], discount in [0, 1)")
        self._grid_np, self._markets_np = grid, markets
        self.price_sensitivity, self.gain_sensitivity, self.loss_sensitivity = (
            float(price_sensitivity),
            float(gain_sensitivity),
            float(loss_sensitivity),
        )
        self.memory, self.switch_prob, self.discount = float(memory), float(switch_prob), float(discount)
        self.num_prices, self.num_slow_states = grid.size, markets.size
        super().__init__(
            num_envs,
            spaces.MultiDiscrete([self.num_prices, self.num_slow_states]),
            spaces.Discrete(self.num_prices),
            device=device,
            max_episode_steps=max_episode_steps,
            autoreset_mode=autoreset_mode,
            validate_actions=validate_actions,
        )
        self.prices = torch.as_tensor(grid, dtype=torch.float32, device=self.device)
        self.market_sizes = torch.as_tensor(markets, dtype=torch.float32, device=self.device)
        lower, upper, up_prob = self._reference_moves()
        self._lower, self._upper = (
            torch.as_tensor(lower, device=self.device),
            torch.as_tensor(upper, device=self.device),
        )
        self._up_prob = torch.as_tensor(up_prob, dtype=torch.float32, device=self.device)
        self.reference = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.slow_state = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)

    def demand_rate(
        self, price: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor, market: np.ndarray | torch.Tensor
    ):
        """λ = max(0, m − b p + η⁺ (r − p)⁺ − η⁻ (p − r)⁺), for numpy arrays or tensors alike."""
        gain, loss = reference - price, price - reference
        rate = (
            market
            - self.price_sensitivity * price
            + self.gain_sensitivity * gain.clip(0)
            - self.loss_sensitivity * loss.clip(0)
        )
        return rate.clip(0)

    def _reference_moves(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For every (reference level, price level): the grid levels below and above θ r + (1 − θ) p,
        and the probability of the upper one that keeps the mean, each ``(n, n)``."""
        grid = self._grid_np
        target = self.memory * grid[:, None] + (1 - self.memory) * grid[None, :]
        upper = np.searchsorted(grid, target - 1e-12).clip(0, grid.size - 1)
        lower = np.maximum(upper - 1, 0)
        exact = np.isclose(grid[upper], target)
        lower = np.where(exact, upper, lower)
        gap = grid[upper] - grid[lower]
        up_prob = np.where(gap > 0, (target - grid[lower]) / np.where(gap > 0, gap, 1), 1.0)
        return lower, upper, up_prob

    def _reset_envs(self, mask: torch.Tensor) -> None:
        self.reference = torch.where(mask, self._random_levels(self.num_prices), self.reference)
        self.slow_state = torch.where(mask, self._random_levels(self.num_slow_states), self.slow_state)

    def _step_envs(self, actions: torch.Tensor):
        level = actions.long()
        price = self.prices[level]
        rate = self.demand_rate(price, self.prices[self.reference], self.market_sizes[self.slow_state])
        sales = torch.poisson(rate, generator=self.generator)
        up = self._uniform(self.num_envs) < self._up_prob[self.reference, level]
        self.reference = torch.where(up, self._upper[self.reference, level], self._lower[self.reference, level])
        self._switch_slow_state()
        terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return price * sales, terminated, {"price": price, "sales": sales, "demand_rate": rate}

    def _observe(self) -> torch.Tensor:
        return torch.stack([self.reference, self.slow_state], dim=1)

    def state_index(self, observations: torch.Tensor) -> torch.Tensor:
        return observations[:, 0] * self.num_slow_states + observations[:, 1]

    # ------------------------------------------------------------------ exact model
    def exact_model(self, device: str | torch.device = "cpu"):
        """The exact MDP: ``P^a = F^a ⊗ Z``, state s = r · n_z + z, expected revenue p λ."""
        import scipy.sparse as sp

        n, grid = self.num_prices, self._grid_np
        lower, upper, up_prob = self._reference_moves()
        rows = np.arange(n)
        fast_transitions, rewards = [], []
        for action in range(n):
            data = np.concatenate([1 - up_prob[:, action], up_prob[:, action]])
            columns = np.concatenate([lower[:, action], upper[:, action]])
            fast_transitions.append(sp.csr_matrix((data, (np.tile(rows, 2), columns)), shape=(n, n)))
            rate = self.demand_rate(grid[action], grid[:, None], self._markets_np[None, :])  # (r, z)
            rewards.append((grid[action] * rate).reshape(-1))
        return self.factored_model(fast_transitions, rewards, device, f"prices={n}")
