"""Multi-class queue service allocation with slowly varying stochastic costs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from gymnasium import spaces

from ctrlgym.envs.fastslow.slow_chain import SlowChainMixin, switch_slow_state, uniform_levels
from ctrlgym.vector_env import AutoresetMode, PureSteps, TorchVectorEnv

__all__ = ["MultiClassQueue"]


class MultiClassQueue(SlowChainMixin, PureSteps, TorchVectorEnv):
    r"""One server, K job classes, holding costs that drift with a slow environmental state.

    ## Description
    The first example of Wang & Jiang, "Faster Approximate Dynamic Programming by Freezing Slow
    States" (arXiv `2301.00922 <https://arxiv.org/abs/2301.00922>`_). A single server chooses,
    every fast step, which of K job classes to serve. Class k has a queue capped at ``B`` jobs.
    Holding a job of class k costs :math:`c_k(z)`, where the slow state :math:`z` (e.g. the
    market or the staffing regime) moves on a Markov chain that rarely switches. The fast state
    is the queue-length vector :math:`x = (q_1, \dots, q_K)`; the slow state is :math:`z`.

    ## Dynamics (one fast step from state (q, z) under action a)
    1. reward :math:`r = -\sum_k c_k(z)\, q_k` (cost of the jobs held at the start of the step);
    2. service: if :math:`q_a > 0`, one job of class a completes with probability :math:`\mu_a`;
    3. arrivals: independently for each k, one job arrives with probability :math:`\lambda_k`
       and joins its queue unless the queue is full (``B`` jobs): then it is lost;
    4. slow state: :math:`z' = z` with probability :math:`1-\varepsilon`, otherwise :math:`z'`
       is uniform over the other slow states.

    Every factor is independent given (q, z, a), so the exact transition model is a product of
    these four pieces (the fast-slow solvers read it from the same parameters).

    ## Action Space
    ``Discrete(K)``: the class to serve. Serving an empty queue is allowed and does nothing.

    ## Observation Space
    ``MultiDiscrete([B+1] * K + [n_slow])``, integers:

    | index | observation | min | max |
    |-------|-------------|-----|-----|
    | 0..K-1 | queue length of class k | 0 | B |
    | K | slow state z | 0 | n_slow - 1 |

    ## Rewards
    :math:`-\sum_k c_k(z)\, q_k` per step (a cost, so rewards are ≤ 0).

    ## Starting State
    Empty queues; z uniform over the slow states.

    ## Episode End
    * Termination: never (the paper's problem is an infinite-horizon discounted MDP).
    * Truncation: after ``max_episode_steps`` steps (default 256).

    ## Arguments
    * ``num_envs`` – copies in the batch; ``device`` – torch device.
    * ``buffer_size`` – B, the queue capacity of each class (default 10).
    * ``arrival_probs`` – λ_k, Bernoulli arrival probability per step (default (0.2, 0.15, 0.1)).
    * ``service_probs`` – μ_k, completion probability when served (default (0.6, 0.5, 0.4)).
    * ``holding_costs`` – table ``c[z][k]`` (default ((1, 2, 3), (3, 1, 0.5)): the c-μ priority
      order reverses when z switches).
    * ``switch_prob`` – ε, the slow chain's switching probability per fast step (default 0.01).
    * ``discount`` – γ of the infinite-horizon problem, used by solvers and agents (default 0.99).
    * ``max_episode_steps``, ``autoreset_mode``, ``validate_actions``, ``compile`` – see
      ``TorchVectorEnv`` (``compile=True`` fuses each step into compiled kernels: the step is
      written as pure functions, ``PureSteps``).

    The default instance has 11³ · 2 = 2,662 states, small enough for exact value iteration.

    ## Examples
    >>> import ctrlgym, gymnasium as gym
    >>> env = gym.make("ctrlgym/MultiClassQueue-v0")            # one env, numpy in/out
    >>> obs, info = env.reset(seed=0)
    >>> obs.tolist()
    [0, 0, 0, 0]
    >>> envs = ctrlgym.envs.fastslow.MultiClassQueue(num_envs=1024)   # the native batch
    >>> obs, info = envs.reset(seed=0)
    >>> tuple(obs.shape)
    (1024, 4)

    ## Vectorized environment
    This class *is* the batch (a ``gymnasium.vector.VectorEnv``); the single env returned by
    ``gymnasium.make`` is a view of a batch of one.

    ## Version History
    * v0: initial version. Since ctrlgym 0.2 a step draws its uniforms as one ``(K + 3,
      num_envs)`` block (the served class's service, K arrivals, the slow chain, the reset's), so a
      seed's trajectories differ from 0.1's.
    """

    metric_descriptions = {
        "queue_lengths": "jobs waiting, all classes (per-step mean)",
        "holding_cost": "holding cost per step, sum over classes of cost x jobs (cost units; reward = minus this)",
    }

    def __init__(
        self,
        num_envs: int = 1,
        *,
        buffer_size: int = 10,
        arrival_probs: Sequence[float] = (0.2, 0.15, 0.1),
        service_probs: Sequence[float] = (0.6, 0.5, 0.4),
        holding_costs: Sequence[Sequence[float]] = ((1.0, 2.0, 3.0), (3.0, 1.0, 0.5)),
        switch_prob: float = 0.01,
        discount: float = 0.99,
        max_episode_steps: int | None = 256,
        device: str | torch.device = "cpu",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        validate_actions: bool = True,
        compile: bool = False,
    ) -> None:
        name = type(self).__name__
        arrival = np.asarray(arrival_probs, dtype=np.float64)
        service = np.asarray(service_probs, dtype=np.float64)
        costs = np.asarray(holding_costs, dtype=np.float64)
        if arrival.ndim != 1 or arrival.size < 1:
            raise ValueError(f"{name}: arrival_probs must be a non-empty 1-d sequence, got shape {arrival.shape}")
        num_classes = arrival.size
        if service.shape != (num_classes,):
            raise ValueError(
                f"{name}: arrival_probs has {num_classes} entries but service_probs {service.size}: give both one entry per class"
            )
        if costs.ndim != 2 or costs.shape[1] != num_classes:
            raise ValueError(
                f"{name}: holding_costs must be a table (n_slow, {num_classes}): one column per class of arrival_probs, got shape {costs.shape}"
            )
        for label, values in (("arrival_probs", arrival), ("service_probs", service)):
            if not np.all(np.isfinite(values)) or np.any(values < 0) or np.any(values > 1):
                raise ValueError(f"{name}: {label} must be probabilities in [0, 1], got {values.tolist()}")
        if not np.all(np.isfinite(costs)):
            raise ValueError(f"{name}: holding_costs must be finite, got {costs.tolist()}")
        if not 0 <= switch_prob <= 1:
            raise ValueError(f"{name}: switch_prob must be in [0, 1], got {switch_prob}")
        if not 0 <= discount < 1:
            raise ValueError(f"{name}: discount must be in [0, 1), got {discount}")
        if int(buffer_size) < 1:
            raise ValueError(f"{name}: buffer_size must be >= 1, got {buffer_size}")

        self.num_classes = num_classes
        self.num_slow_states = costs.shape[0]
        self.buffer_size = int(buffer_size)
        self.switch_prob = float(switch_prob)
        self.discount = float(discount)
        observation_space = spaces.MultiDiscrete([self.buffer_size + 1] * num_classes + [self.num_slow_states])
        super().__init__(
            num_envs,
            observation_space,
            spaces.Discrete(num_classes),
            device=device,
            max_episode_steps=max_episode_steps,
            autoreset_mode=autoreset_mode,
            validate_actions=validate_actions,
            compile=compile,
        )
        self.arrival_probs = torch.as_tensor(arrival, dtype=torch.float32, device=self.device)  # (K,)
        self.service_probs = torch.as_tensor(service, dtype=torch.float32, device=self.device)  # (K,)
        self.holding_costs = torch.as_tensor(costs, dtype=torch.float32, device=self.device)  # (n_slow, K)
        self._classes = torch.arange(num_classes, device=self.device)
        self.num_step_draws = num_classes + 2  # the served class's service, an arrival per class, the slow chain's
        self.num_reset_draws = 1  # the first slow state
        # jobs waiting per class, stored class-major (K, num_envs) so a compiled step runs contiguous
        # vector loops over the envs; ``queue_lengths`` is the (num_envs, K) view
        self.queues_by_class = torch.zeros(num_classes, self.num_envs, dtype=torch.long, device=self.device)
        self.slow_state = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)

    # ------------------------------------------------------------------ exact model
    def exact_model(self, device: str | torch.device = "cpu"):
        """The exact MDP of these parameters, for the solvers (same dynamics as ``step``).

        State index ``s = x * n_slow + z`` with the fast index ``x`` the queue lengths read as a
        base-(B+1) number (class 0 most significant). Per action, the transition factorises:
        ``P^a = (T_0^a ⊗ … ⊗ T_{K-1}^a) ⊗ Z``, with ``T_k^a`` the (B+1)x(B+1) service-then-arrival
        matrix of class k and ``Z`` the slow chain; so ``P^a`` is built by Kronecker products.
        """
        import scipy.sparse as sp

        levels = self.buffer_size + 1
        arrival = self.arrival_probs.double().cpu().numpy()
        service = self.service_probs.double().cpu().numpy()
        fast_transitions = []
        for action in range(self.num_classes):
            matrix = sp.identity(1, format="csr")
            for k in range(self.num_classes):
                matrix = sp.kron(
                    matrix,
                    sp.csr_matrix(self._class_transition(levels, arrival[k], service[k] if k == action else 0.0)),
                    format="csr",
                )
            fast_transitions.append(matrix)
        queues = np.stack(
            np.unravel_index(np.arange(levels**self.num_classes), (levels,) * self.num_classes), axis=1
        )  # (n_fast, K)
        costs = self.holding_costs.double().cpu().numpy()  # (n_slow, K)
        reward = -(queues[:, None, :] * costs[None, :, :]).sum(-1).reshape(-1)  # (n_fast * n_slow,)
        rewards = np.repeat(reward[:, None], self.num_classes, axis=1)
        return self.factored_model(fast_transitions, rewards, device, f"B={self.buffer_size}, K={self.num_classes}")

    @staticmethod
    def _class_transition(levels: int, arrival: float, service: float) -> np.ndarray:
        """One class's queue: a served job leaves w.p. μ (if any), then one arrives w.p. λ (unless full)."""
        matrix = np.zeros((levels, levels))
        for q in range(levels):
            leave = service if q > 0 else 0.0
            for served, p_served in ((1, leave), (0, 1 - leave)):
                for arrived, p_arrived in ((1, arrival), (0, 1 - arrival)):
                    matrix[q, min(q - served + arrived, levels - 1)] += p_served * p_arrived
        return matrix

    def state_index(self, observations: torch.Tensor) -> torch.Tensor:
        """Exact-model state indices ``(num_envs,)`` of a batch of observations."""
        levels = self.buffer_size + 1
        weights = levels ** torch.arange(self.num_classes - 1, -1, -1, device=observations.device)
        return (observations[:, : self.num_classes] * weights).sum(dim=1) * self.num_slow_states + observations[
            :, self.num_classes
        ]

    @property
    def queue_lengths(self) -> torch.Tensor:
        """Jobs waiting in each class, ``(num_envs, K)``."""
        return self.queues_by_class.T

    @queue_lengths.setter
    def queue_lengths(self, value: torch.Tensor) -> None:
        self.queues_by_class = torch.as_tensor(value, dtype=torch.long, device=self.device).T.contiguous()

    # ------------------------------------------------------------------ the step, as pure functions
    state_names = ("queues_by_class", "slow_state")

    def _params(self) -> dict:
        return {
            "holding_costs": self.holding_costs,
            "service_probs": self.service_probs,
            "arrival_probs": self.arrival_probs,
            "classes": self._classes,
            "buffer_size": self.buffer_size,
            "switch_prob": self.switch_prob,
            "num_slow_states": self.num_slow_states,
        }

    @staticmethod
    def _transition(params, state, actions, draws):
        """Steps 1–4 of the dynamics; ``draws`` rows: the served class's service, arrivals (K), the slow chain."""
        queues, slow = state  # (K, num_envs), (num_envs,)
        k = queues.shape[0]
        rewards = -(params["holding_costs"].T[:, slow] * queues).sum(dim=0)
        served = actions == params["classes"][:, None]  # (K, num_envs); one_hot would sync to check its range
        completes = served & (queues > 0) & (draws[0] < params["service_probs"][:, None])  # one class is served
        arrives = draws[1 : k + 1] < params["arrival_probs"][:, None]
        queues = (queues - completes.long() + arrives.long()).clamp_max(params["buffer_size"])
        slow = switch_slow_state(slow, draws[k + 1], params["switch_prob"], params["num_slow_states"])
        info = {"queue_lengths": queues.sum(dim=0), "holding_cost": -rewards}
        return (queues, slow), rewards, torch.zeros_like(rewards, dtype=torch.bool), info

    @staticmethod
    def _reset_state(params, state, mask, draws):
        """Empty queues, z uniform; ``draws`` row 0 picks z."""
        queues, slow = state
        first_slow = uniform_levels(draws[0], params["num_slow_states"])
        return queues.masked_fill(mask, 0), torch.where(mask, first_slow, slow)

    @staticmethod
    def _observe_state(params, state):
        queues, slow = state
        return torch.cat([queues.T, slow[:, None]], dim=1)
