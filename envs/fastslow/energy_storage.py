"""Energy demand response with day-ahead and real-time prices."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from gymnasium import spaces

from ctrlgym.envs.fastslow.slow_chain import SlowChainMixin, switch_slow_state, uniform_levels
from ctrlgym.vector_env import AutoresetMode, PureSteps, TorchVectorEnv

__all__ = ["EnergyStorage"]

BUY, IDLE, SELL = 0, 1, 2


class EnergyStorage(SlowChainMixin, PureSteps, TorchVectorEnv):
    r"""A firm trades energy from a battery against a real-time and a day-ahead price.

    ## Description
    The third example of Wang & Jiang (arXiv `2301.00922 <https://arxiv.org/abs/2301.00922>`_):
    energy demand response, where revenue depends on a real-time price that moves every step
    (fast) and a day-ahead price that is set rarely (slow). Fast state: battery level b and
    real-time price level p; slow state: day-ahead price level d.

    ## Dynamics (one step from (b, p, d) under action a)
    1. a trade at the effective price :math:`\pi = w\,\text{rt}[p] + (1-w)\,\text{da}[d]`:
       ``SELL`` (2) one unit if b > 0: reward :math:`\pi - c`, b − 1; ``BUY`` (0) one unit if
       b < B: reward :math:`-\pi - c`, b + 1; ``IDLE`` (1), or a trade the battery cannot make:
       reward 0, b unchanged (c is the wear cost per cycle);
    2. p moves on its chain: stays w.p. 1 − 2q, one level up or down w.p. q each (reflecting);
    3. d stays w.p. 1 − ε, else moves uniformly to another level.
    The exact model factorises: :math:`P^a = (B^a \otimes R) \otimes Z`.

    ## Action Space
    ``Discrete(3)``: 0 buy, 1 idle, 2 sell.

    ## Observation Space
    ``MultiDiscrete([B+1, n_rt, n_da])``: battery level, real-time price level, day-ahead level.

    ## Rewards
    Trading revenue minus wear, as above.

    ## Starting State
    Battery half full, price levels uniform.

    ## Episode End
    Termination: never. Truncation: ``max_episode_steps`` (default 256).

    ## Arguments
    ``capacity`` B (10), ``realtime_prices`` (10, 20, 30, 40, 50), ``price_move_prob`` q (0.2),
    ``dayahead_prices`` (20, 30, 40), ``realtime_weight`` w (0.5), ``wear_cost`` c (2),
    ``switch_prob`` ε (0.01), ``discount`` (0.99). Default: 11 · 5 · 3 = 165 states;
    ``capacity=200`` with 20 real-time and 30 day-ahead levels has 120,600. ``compile=True`` fuses
    each step into one compiled kernel (``TorchVectorEnv``), with the eager step's results bit for bit.

    ## Version History
    * v0: initial version. Since ctrlgym 0.2 the slow chain takes one uniform per step (u < ε
      switches, u / ε picks the new state) and a step draws its uniforms as one block, so a
      seed's trajectories differ from 0.1's.
    """

    metric_descriptions = {
        "battery": "battery charge level (units of energy, per-step mean)",
        "price": "real-time price (per-step mean)",
    }

    def __init__(
        self,
        num_envs: int = 1,
        *,
        capacity: int = 10,
        realtime_prices: Sequence[float] = (10.0, 20.0, 30.0, 40.0, 50.0),
        price_move_prob: float = 0.2,
        dayahead_prices: Sequence[float] = (20.0, 30.0, 40.0),
        realtime_weight: float = 0.5,
        wear_cost: float = 2.0,
        switch_prob: float = 0.01,
        discount: float = 0.99,
        max_episode_steps: int | None = 256,
        device: str | torch.device = "cpu",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        validate_actions: bool = True,
        compile: bool = False,
    ) -> None:
        name = type(self).__name__
        realtime, dayahead = (
            np.asarray(realtime_prices, dtype=np.float64),
            np.asarray(dayahead_prices, dtype=np.float64),
        )
        if capacity < 1:
            raise ValueError(f"{name}: capacity must be >= 1, got {capacity}")
        if realtime.ndim != 1 or realtime.size < 1 or dayahead.ndim != 1 or dayahead.size < 1:
            raise ValueError(f"{name}: realtime_prices and dayahead_prices must be non-empty 1-d sequences")
        if not (np.isfinite(realtime).all() and np.isfinite(dayahead).all()):
            raise ValueError(f"{name}: prices must be finite")
        if not 0 <= price_move_prob <= 0.5:
            raise ValueError(f"{name}: price_move_prob must be in [0, 0.5], got {price_move_prob}")
        if not 0 <= realtime_weight <= 1 or not 0 <= switch_prob <= 1 or not 0 <= discount < 1:
            raise ValueError(f"{name}: realtime_weight and switch_prob must be in [0, 1], discount in [0, 1)")
        self.capacity, self.realtime_weight, self.wear_cost = int(capacity), float(realtime_weight), float(wear_cost)
        self.price_move_prob, self.switch_prob, self.discount = (
            float(price_move_prob),
            float(switch_prob),
            float(discount),
        )
        self.num_realtime, self.num_slow_states = realtime.size, dayahead.size
        self._realtime_np, self._dayahead_np = realtime, dayahead
        super().__init__(
            num_envs,
            spaces.MultiDiscrete([self.capacity + 1, self.num_realtime, self.num_slow_states]),
            spaces.Discrete(3),
            device=device,
            max_episode_steps=max_episode_steps,
            autoreset_mode=autoreset_mode,
            validate_actions=validate_actions,
            compile=compile,
        )
        self.realtime_prices = torch.as_tensor(realtime, dtype=torch.float32, device=self.device)
        self.dayahead_prices = torch.as_tensor(dayahead, dtype=torch.float32, device=self.device)
        self._realtime_cdf = torch.as_tensor(
            self.realtime_transition_matrix().cumsum(-1), dtype=torch.float32, device=self.device
        )  # (n_rt, n_rt)
        self.battery = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.realtime_level = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.slow_state = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)

    def effective_price(self) -> torch.Tensor:
        """π = w rt[p] + (1 − w) da[d] of each env, ``(num_envs,)``."""
        return self._effective_price(self._params(), self.realtime_level, self.slow_state)

    # ------------------------------------------------------------------ the step, as pure functions
    state_names = ("battery", "realtime_level", "slow_state")
    num_step_draws = 2  # the real-time price's move, the slow chain's
    num_reset_draws = 2  # the first real-time level and slow state

    def _params(self) -> dict:
        return {
            "realtime_prices": self.realtime_prices,
            "dayahead_prices": self.dayahead_prices,
            "realtime_cdf": self._realtime_cdf,
            "realtime_weight": self.realtime_weight,
            "wear_cost": self.wear_cost,
            "capacity": self.capacity,
            "num_realtime": self.num_realtime,
            "switch_prob": self.switch_prob,
            "num_slow_states": self.num_slow_states,
        }

    @staticmethod
    def _effective_price(params, realtime_level, slow):
        w = params["realtime_weight"]
        return w * params["realtime_prices"][realtime_level] + (1 - w) * params["dayahead_prices"][slow]

    @staticmethod
    def _transition(params, state, actions, draws):
        """Steps 1–3 of the dynamics; ``draws`` rows: the real-time price's move, the slow chain."""
        battery, realtime_level, slow = state
        sell = (actions == SELL) & (battery > 0)
        buy = (actions == BUY) & (battery < params["capacity"])
        price = EnergyStorage._effective_price(params, realtime_level, slow)
        wear = params["wear_cost"]
        rewards = torch.where(sell, price - wear, torch.where(buy, -price - wear, torch.zeros_like(price)))
        battery = battery - sell.long() + buy.long()
        # inverse-CDF draw from the same chain the exact model uses: first level whose cdf >= u
        cdf = params["realtime_cdf"][realtime_level]
        realtime_level = (draws[0][:, None] > cdf).sum(-1).clamp_max(params["num_realtime"] - 1)
        slow = switch_slow_state(slow, draws[1], params["switch_prob"], params["num_slow_states"])
        info = {"battery": battery.float(), "price": price}
        return (battery, realtime_level, slow), rewards, torch.zeros_like(rewards, dtype=torch.bool), info

    @staticmethod
    def _reset_state(params, state, mask, draws):
        """A half-full battery, p and d uniform; ``draws`` rows: p's, d's."""
        battery, realtime_level, slow = state
        return (
            battery.masked_fill(mask, params["capacity"] // 2),
            torch.where(mask, uniform_levels(draws[0], params["num_realtime"]), realtime_level),
            torch.where(mask, uniform_levels(draws[1], params["num_slow_states"]), slow),
        )

    @staticmethod
    def _observe_state(params, state):
        return torch.stack(state, dim=1)

    # ------------------------------------------------------------------ exact model
    def realtime_transition_matrix(self) -> np.ndarray:
        """The real-time price chain: down / up one level w.p. q each, reflecting at the ends."""
        n, q = self.num_realtime, self.price_move_prob
        matrix = np.zeros((n, n))
        for level in range(n):
            for target, p in ((level - 1, q), (level + 1, q), (level, 1 - 2 * q)):
                if n > 1 and not 0 <= target < n:
                    target = 2 * level - target  # reflect: a step off the end bounces back
                matrix[level, min(max(target, 0), n - 1)] += p
        return matrix

    def exact_model(self, device: str | torch.device = "cpu"):
        """The exact MDP: ``P^a = (B^a ⊗ R) ⊗ Z``, state s = (b * n_rt + p) * n_da + d."""
        import scipy.sparse as sp

        levels = self.capacity + 1
        realtime = sp.csr_matrix(self.realtime_transition_matrix())
        battery = np.arange(levels)
        price = (
            self.realtime_weight * self._realtime_np[None, :] + (1 - self.realtime_weight) * self._dayahead_np[:, None]
        )  # (n_da, n_rt)
        fast_transitions, rewards = [], []
        for action in (BUY, IDLE, SELL):
            can = (
                battery < self.capacity
                if action == BUY
                else (battery > 0 if action == SELL else np.zeros(levels, bool))
            )
            target = battery + np.where(can, 1 if action == BUY else -1, 0)
            moves = sp.csr_matrix((np.ones(levels), (battery, target)), shape=(levels, levels))
            fast_transitions.append(sp.kron(moves, realtime, format="csr"))
            sign = {BUY: -1.0, IDLE: 0.0, SELL: 1.0}[action]
            reward = can[:, None, None] * (sign * price.T[None, :, :] - self.wear_cost)  # (b, p, d)
            rewards.append(np.where(can[:, None, None], reward, 0.0).reshape(-1))
        return self.factored_model(fast_transitions, rewards, device, f"B={self.capacity}")

    def state_index(self, observations: torch.Tensor) -> torch.Tensor:
        return (observations[:, 0] * self.num_realtime + observations[:, 1]) * self.num_slow_states + observations[:, 2]
