"""What a user would write instead of ctrlgym: hand-vectorised numpy batches of the same dynamics.

Each peer keeps everything a batched env must do, not only the arithmetic: the time limit,
next-step autoreset, the episode statistics and the info dict, so a ratio against ctrlgym
compares like with like. Written from each env's docstring, not from ctrlgym's code.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "FAMILY_PEERS",
    "NumpyDynamicPricing",
    "NumpyEnergyStorage",
    "NumpyInventoryControl",
    "NumpyMultiClassQueue",
    "NumpyRestlessBandit",
    "NumpyTaskGridworld",
]


class NumpyBatch:
    """What every peer below shares: next-step autoreset, the time limit and the episode
    statistics, around a family's ``transition(actions) -> (rewards, info)`` and
    ``restart(mask)``, each drawing its random numbers in one call."""

    def __init__(self, num_envs: int, max_episode_steps: int, seed: int, reward_shape: tuple[int, ...] = ()) -> None:
        self.n, self.limit = num_envs, max_episode_steps
        self.rng = np.random.default_rng(seed)
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self.returns = np.zeros((num_envs, *reward_shape))  # per agent where rewards are
        self._per_reward = (slice(None),) + (None,) * len(reward_shape)  # an env mask broadcast over the agents
        self.pending_reset = np.zeros(num_envs, dtype=bool)

    def step(self, actions: np.ndarray):
        reset = self.pending_reset
        rewards, info = self.transition(actions)
        if reset.any():  # next-step autoreset: those envs start afresh and earn nothing this step
            self.restart(reset)
            rewards = np.where(reset[self._per_reward], 0.0, rewards)
            self.steps[reset], self.returns[reset] = 0, 0.0
        self.steps += ~reset
        self.returns += rewards
        truncated = (self.steps >= self.limit) & ~reset
        if truncated.any():
            returns = np.where(truncated[self._per_reward], self.returns, 0.0)
            info["episode"] = {"r": returns, "l": np.where(truncated, self.steps, 0)}
            info["_episode"] = truncated
        self.pending_reset = truncated
        return self.observe(), rewards, np.zeros(self.n, dtype=bool), truncated, info

    def transition(self, actions: np.ndarray) -> tuple[np.ndarray, dict]:
        raise NotImplementedError

    def restart(self, mask: np.ndarray) -> None:
        raise NotImplementedError

    def observe(self) -> np.ndarray:
        raise NotImplementedError


def switch_slow(slow: np.ndarray, count: int, switch_prob: float, draws: np.ndarray) -> np.ndarray:
    """y moves w.p. ε to one of the other ``count − 1`` values, uniformly, from one uniform u per
    env: it moves if u < ε, and u / ε (uniform given u < ε) picks where."""
    moved = (slow + 1 + np.minimum((draws / switch_prob * (count - 1)).astype(np.int64), count - 2)) % count
    return np.where(draws < switch_prob, moved, slow)


def first_level_at_or_above(cdf_rows: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Inverse-CDF sampling: per row, the first level whose cumulative probability reaches u."""
    return np.minimum((uniforms[..., None] > cdf_rows).sum(-1), cdf_rows.shape[-1] - 1)


class NumpyMultiClassQueue(NumpyBatch):
    """MultiClassQueue (Wang & Jiang, arXiv 2301.00922, example 1) for ``num_envs`` copies in numpy.

    One fast step from (q, z) under action a: reward −Σ_k c_k(z) q_k; class a completes one job
    w.p. μ_a if its queue is not empty; each class receives a job w.p. λ_k (lost when the queue
    holds B); z switches w.p. ε to another slow state, uniformly. Episodes end after
    ``max_episode_steps`` steps; the step after an episode's end resets that env (Gymnasium's
    next-step autoreset), with reward 0.
    """

    def __init__(
        self,
        num_envs: int,
        buffer_size: int = 10,
        arrival_probs=(0.2, 0.15, 0.1),
        service_probs=(0.6, 0.5, 0.4),
        holding_costs=((1, 2, 3), (3, 1, 0.5)),
        switch_prob: float = 0.01,
        max_episode_steps: int = 256,
        seed: int = 0,
    ) -> None:
        super().__init__(num_envs, max_episode_steps, seed)
        self.buffer = buffer_size
        self.arrival, self.service = np.asarray(arrival_probs), np.asarray(service_probs)
        self.costs = np.asarray(holding_costs, dtype=np.float64)
        self.switch = switch_prob
        self.k, self.n_slow = len(arrival_probs), len(holding_costs)
        self.classes = np.arange(self.k)
        self.queues = np.zeros((num_envs, self.k), dtype=np.int64)
        self.slow = self.rng.integers(0, self.n_slow, num_envs)

    def transition(self, actions):
        rewards = -(self.costs[self.slow] * self.queues).sum(axis=1)
        draws = self.rng.random((self.n, self.k + 2))  # every random number of the step in one call
        served = actions[:, None] == self.classes  # one class is served: one service draw
        completes = served & (self.queues > 0) & (draws[:, :1] < self.service)
        arrives = draws[:, 1 : self.k + 1] < self.arrival
        self.queues = np.minimum(self.queues - completes + arrives, self.buffer)
        self.slow = switch_slow(self.slow, self.n_slow, self.switch, draws[:, -1])
        return rewards, {"queue_lengths": self.queues.sum(axis=1), "holding_cost": -rewards}

    def restart(self, mask):
        self.queues[mask] = 0
        self.slow[mask] = self.rng.integers(0, self.n_slow, int(mask.sum()))

    def observe(self):
        return np.concatenate([self.queues, self.slow[:, None]], axis=1)


class NumpyRestlessBandit(NumpyBatch):
    """RestlessBandit's default instance (4 arms, 1 played, 3 states per arm, 2 environmental
    states): an active arm pays its state times m_y[i] and wears down one level w.p. 0.6, a
    resting arm recovers one level w.p. 0.3; y switches w.p. 0.01."""

    def __init__(self, num_envs: int, max_episode_steps: int = 256, seed: int = 0) -> None:
        super().__init__(num_envs, max_episode_steps, seed)
        self.arms, self.levels, self.n_slow, self.eps = 4, 3, 2, 0.01
        down, up = np.zeros((3, 3)), np.zeros((3, 3))
        for s in range(3):
            down[s, max(s - 1, 0)] += 0.6
            down[s, s] += 0.4
            up[s, min(s + 1, 2)] += 0.3
            up[s, s] += 0.7
        self.active_cdf, self.passive_cdf = down.cumsum(-1), up.cumsum(-1)
        self.multipliers = np.array([[1.0, 1.0, 0.2, 0.2], [0.2, 0.2, 1.0, 1.0]])
        self.subsets = np.eye(self.arms, dtype=bool)  # one arm played: action i plays arm i
        self.state = self.rng.integers(0, self.levels, (num_envs, self.arms))
        self.slow = self.rng.integers(0, self.n_slow, num_envs)

    def transition(self, actions):
        draws = self.rng.random((self.n, self.arms + 1))
        active = self.subsets[actions]
        rewards = (self.state * self.multipliers[self.slow] * active).sum(axis=1)
        cdf = np.where(active[..., None], self.active_cdf[self.state], self.passive_cdf[self.state])
        self.state = first_level_at_or_above(cdf, draws[:, : self.arms])
        self.slow = switch_slow(self.slow, self.n_slow, self.eps, draws[:, -1])
        return rewards, {}

    def restart(self, mask):
        count = int(mask.sum())
        self.state[mask] = self.rng.integers(0, self.levels, (count, self.arms))
        self.slow[mask] = self.rng.integers(0, self.n_slow, count)

    def observe(self):
        return np.concatenate([self.state, self.slow[:, None]], axis=1)


class NumpyEnergyStorage(NumpyBatch):
    """EnergyStorage's default instance: a battery of 10 units trades one unit (buy 0, idle 1,
    sell 2) at π = ½ rt[p] + ½ da[d] with a wear cost of 2 per trade; p (5 levels) moves one level
    down or up w.p. 0.2 each, reflecting at the ends; d (3 levels) switches w.p. 0.01."""

    def __init__(self, num_envs: int, max_episode_steps: int = 256, seed: int = 0) -> None:
        super().__init__(num_envs, max_episode_steps, seed)
        self.capacity, self.wear, self.n_slow, self.eps = 10, 2.0, 3, 0.01
        self.realtime, self.dayahead = np.array([10.0, 20.0, 30.0, 40.0, 50.0]), np.array([20.0, 30.0, 40.0])
        n, q = 5, 0.2
        chain = np.zeros((n, n))
        for level in range(n):
            for target, p in ((level - 1, q), (level + 1, q), (level, 1 - 2 * q)):
                chain[level, 2 * level - target if not 0 <= target < n else target] += p
        self.realtime_cdf = chain.cumsum(-1)
        self.battery = np.full(num_envs, self.capacity // 2)
        self.level = self.rng.integers(0, n, num_envs)
        self.slow = self.rng.integers(0, self.n_slow, num_envs)

    def transition(self, actions):
        draws = self.rng.random((self.n, 2))
        price = 0.5 * self.realtime[self.level] + 0.5 * self.dayahead[self.slow]
        sell = (actions == 2) & (self.battery > 0)
        buy = (actions == 0) & (self.battery < self.capacity)
        rewards = np.where(sell, price - self.wear, np.where(buy, -price - self.wear, 0.0))
        self.battery = self.battery - sell + buy
        self.level = first_level_at_or_above(self.realtime_cdf[self.level], draws[:, 0])
        self.slow = switch_slow(self.slow, self.n_slow, self.eps, draws[:, 1])
        return rewards, {"battery": self.battery.astype(np.float32), "price": price}

    def restart(self, mask):
        count = int(mask.sum())
        self.battery[mask] = self.capacity // 2
        self.level[mask] = self.rng.integers(0, len(self.realtime), count)
        self.slow[mask] = self.rng.integers(0, self.n_slow, count)

    def observe(self):
        return np.stack([self.battery, self.level, self.slow], axis=1)


class NumpyInventoryControl(NumpyBatch):
    """InventoryControl's default instance: stock x ≤ 20, order a ≤ 10 (capped by the room left),
    Poisson(4) demand truncated at 12, price 10, fixed order cost 20, unit cost c[z] ∈ {2, 6, 10},
    holding cost 0.5 per unit left; z switches w.p. 0.01."""

    def __init__(self, num_envs: int, max_episode_steps: int = 256, seed: int = 0) -> None:
        super().__init__(num_envs, max_episode_steps, seed)
        self.capacity, self.n_slow, self.eps = 20, 3, 0.01
        self.unit_costs = np.array([2.0, 6.0, 10.0])
        k = np.arange(13)
        pmf = np.exp(k * np.log(4.0) - 4.0 - np.array([math.lgamma(i + 1.0) for i in k]))
        pmf[-1] = 1.0 - pmf[:-1].sum()
        self.demand_cdf = pmf.cumsum()
        self.stock = self.rng.integers(0, self.capacity + 1, num_envs)
        self.slow = self.rng.integers(0, self.n_slow, num_envs)

    def transition(self, actions):
        draws = self.rng.random((self.n, 2))
        ordered = np.minimum(actions, self.capacity - self.stock)
        available = self.stock + ordered
        demand = first_level_at_or_above(self.demand_cdf, draws[:, 0])
        sales = np.minimum(demand, available)
        self.stock = available - sales
        rewards = 10.0 * sales - 20.0 * (ordered > 0) - self.unit_costs[self.slow] * ordered - 0.5 * self.stock
        self.slow = switch_slow(self.slow, self.n_slow, self.eps, draws[:, 1])
        return rewards, {"stock": self.stock.astype(np.float32), "lost_sales": demand - sales, "ordered": ordered}

    def restart(self, mask):
        count = int(mask.sum())
        self.stock[mask] = self.rng.integers(0, self.capacity + 1, count)
        self.slow[mask] = self.rng.integers(0, self.n_slow, count)

    def observe(self):
        return np.stack([self.stock, self.slow], axis=1)


class NumpyDynamicPricing(NumpyBatch):
    """DynamicPricing's default instance: 10 prices on [5, 14], demand rate
    λ = max(0, m_z − 2p + (r − p)⁺ − 2(p − r)⁺), Poisson sales, the reference moving to
    0.7 r + 0.3 p rounded at random to a neighbouring grid price (keeping its mean); market size
    m_z ∈ {20, 35, 50} switching w.p. 0.01."""

    def __init__(self, num_envs: int, max_episode_steps: int = 256, seed: int = 0) -> None:
        super().__init__(num_envs, max_episode_steps, seed)
        self.grid, self.markets, self.n_slow, self.eps = (
            np.linspace(5.0, 14.0, 10),
            np.array([20.0, 35.0, 50.0]),
            3,
            0.01,
        )
        target = 0.7 * self.grid[:, None] + 0.3 * self.grid[None, :]  # (reference, price)
        upper = np.searchsorted(self.grid, target - 1e-12).clip(0, 9)
        lower = np.where(np.isclose(self.grid[upper], target), upper, np.maximum(upper - 1, 0))
        gap = self.grid[upper] - self.grid[lower]
        self.upper, self.lower = upper, lower
        self.up_prob = np.where(gap > 0, (target - self.grid[lower]) / np.where(gap > 0, gap, 1), 1.0)
        self.reference = self.rng.integers(0, 10, num_envs)
        self.slow = self.rng.integers(0, self.n_slow, num_envs)

    def transition(self, actions):
        draws = self.rng.random((self.n, 2))
        price, reference = self.grid[actions], self.grid[self.reference]
        rate = self.markets[self.slow] - 2.0 * price + np.clip(reference - price, 0, None)
        rate = np.clip(rate - 2.0 * np.clip(price - reference, 0, None), 0, None)
        sales = self.rng.poisson(rate)
        up = draws[:, 0] < self.up_prob[self.reference, actions]
        self.reference = np.where(up, self.upper[self.reference, actions], self.lower[self.reference, actions])
        self.slow = switch_slow(self.slow, self.n_slow, self.eps, draws[:, 1])
        return price * sales, {"price": price, "sales": sales, "demand_rate": rate}

    def restart(self, mask):
        count = int(mask.sum())
        self.reference[mask] = self.rng.integers(0, 10, count)
        self.slow[mask] = self.rng.integers(0, self.n_slow, count)

    def observe(self):
        return np.stack([self.reference, self.slow], axis=1)


class NumpyTaskGridworld(NumpyBatch):
    """TaskGridworld's default instance: a robot on a 5 × 5 grid earns 1 on the active task site
    (before moving) and pays 0.05 per move; a move (stay, up, down, left, right) slips to a random
    direction w.p. 0.1; walls stop it; the task moves among 3 sites w.p. 0.02."""

    def __init__(self, num_envs: int, max_episode_steps: int = 256, seed: int = 0) -> None:
        super().__init__(num_envs, max_episode_steps, seed)
        self.size, self.n_slow, self.eps = 5, 3, 0.02
        self.sites = np.array([0 * 5 + 0, 0 * 5 + 4, 4 * 5 + 2])
        self.moves = np.array([(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)])
        self.cell = self.rng.integers(0, 25, num_envs)
        self.slow = self.rng.integers(0, self.n_slow, num_envs)

    def transition(self, actions):
        draws = self.rng.random((self.n, 3))
        on_task = self.cell == self.sites[self.slow]
        rewards = on_task - 0.05 * (actions != 0)
        direction = np.where(draws[:, 0] < 0.1, np.minimum((draws[:, 1] * 5).astype(np.int64), 4), actions)
        step = self.moves[direction]
        row = np.clip(self.cell // 5 + step[:, 0], 0, 4)
        column = np.clip(self.cell % 5 + step[:, 1], 0, 4)
        self.cell = row * 5 + column
        self.slow = switch_slow(self.slow, self.n_slow, self.eps, draws[:, 2])
        return rewards, {"on_task": on_task.astype(np.float32)}

    def restart(self, mask):
        count = int(mask.sum())
        self.cell[mask] = self.rng.integers(0, 25, count)
        self.slow[mask] = self.rng.integers(0, self.n_slow, count)

    def observe(self):
        return np.stack([self.cell // 5, self.cell % 5, self.slow], axis=1)


#: each fast-slow family (its class name in ``ctrlgym.envs.fastslow``) → its numpy peer
FAMILY_PEERS = {
    "MultiClassQueue": NumpyMultiClassQueue,
    "RestlessBandit": NumpyRestlessBandit,
    "EnergyStorage": NumpyEnergyStorage,
    "InventoryControl": NumpyInventoryControl,
    "DynamicPricing": NumpyDynamicPricing,
    "TaskGridworld": NumpyTaskGridworld,
}
