"""What a user would write instead of ctrlgym: hand-vectorised numpy batches of the same dynamics.

Each peer keeps everything a batched env must do, not only the arithmetic: the time limit,
next-step autoreset, the episode statistics and the info dict, so a ratio against ctrlgym
compares like with like. Written from each env's docstring, not from ctrlgym's code.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NumpyMultiClassQueue"]


class NumpyMultiClassQueue:
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
        self.n, self.buffer = num_envs, buffer_size
        self.arrival, self.service = np.asarray(arrival_probs), np.asarray(service_probs)
        self.costs = np.asarray(holding_costs, dtype=np.float64)
        self.switch, self.limit = switch_prob, max_episode_steps
        self.k, self.n_slow = len(arrival_probs), len(holding_costs)
        self.rng = np.random.default_rng(seed)
        self.classes = np.arange(self.k)
        self.queues = np.zeros((num_envs, self.k), dtype=np.int64)
        self.slow = self.rng.integers(0, self.n_slow, num_envs)
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self.returns = np.zeros(num_envs)
        self.pending_reset = np.zeros(num_envs, dtype=bool)

    def observe(self) -> np.ndarray:
        return np.concatenate([self.queues, self.slow[:, None]], axis=1)

    def step(self, actions: np.ndarray):
        reset = self.pending_reset
        rewards = -(self.costs[self.slow] * self.queues).sum(axis=1)
        draws = self.rng.random((self.n, 2 * self.k + 2))  # every random number of the step in one call
        completes = (actions[:, None] == self.classes) & (self.queues > 0) & (draws[:, : self.k] < self.service)
        arrives = draws[:, self.k : 2 * self.k] < self.arrival
        self.queues = np.minimum(self.queues - completes + arrives, self.buffer)
        switches = draws[:, -2] < self.switch
        shift = 1 + np.minimum((draws[:, -1] * (self.n_slow - 1)).astype(np.int64), self.n_slow - 2)
        self.slow = np.where(switches, (self.slow + shift) % self.n_slow, self.slow)
        if reset.any():  # next-step autoreset: those envs start afresh and earn nothing this step
            self.queues[reset] = 0
            self.slow[reset] = self.rng.integers(0, self.n_slow, int(reset.sum()))
            rewards = np.where(reset, 0.0, rewards)
            self.steps[reset], self.returns[reset] = 0, 0.0
        self.steps += ~reset
        self.returns += rewards
        truncated = (self.steps >= self.limit) & ~reset
        info = {"queue_lengths": self.queues.sum(axis=1), "holding_cost": -rewards}
        if truncated.any():
            info["episode"] = {"r": np.where(truncated, self.returns, 0.0), "l": np.where(truncated, self.steps, 0)}
            info["_episode"] = truncated
        self.pending_reset = truncated
        return self.observe(), rewards, np.zeros(self.n, dtype=bool), truncated, info
