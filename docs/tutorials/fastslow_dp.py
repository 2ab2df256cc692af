"""Solve a fast-slow MDP exactly, then with frozen-state approximate DP, and compare regret and time.

The queue of MultiClassQueue with 4 slow states: exact value iteration gives V*; frozen-state DP
(Wang & Jiang, arXiv 2301.00922) freezes the slow state for T steps; omitting the slow state is the
naive alternative. Regret: mean over states of V* - V^pi, relative to mean |V*|.
Run: python docs/tutorials/fastslow_dp.py
"""

from __future__ import annotations

import time

from ctrlgym.envs.fastslow import MultiClassQueue
from ctrlgym.solvers import policy_evaluation, value_iteration
from ctrlgym.solvers.frozen_state import frozen_state_value_iteration, omit_slow_state

env = MultiClassQueue(num_envs=1, holding_costs=((1, 2, 3), (3, 1, 0.5), (2, 2, 2), (0.5, 3, 1)))
mdp = env.exact_model()
print(f"{mdp.num_states:,} states, {mdp.num_actions} actions")

started = time.perf_counter()
exact = value_iteration(mdp, epsilon=1e-4)
print(f"exact value iteration: {time.perf_counter() - started:.2f} s")
optimum = exact.values


def regret(policy) -> float:
    values = policy_evaluation(mdp, policy)
    return float((optimum - values).mean() / optimum.abs().mean())


for period in (5, 20):
    frozen = frozen_state_value_iteration(mdp, period=period, epsilon=1e-4)
    print(f"frozen-state T={period}: {frozen.seconds:.2f} s, regret {regret(frozen.first_step_policy):.4%}")
naive_policy, _ = omit_slow_state(mdp, epsilon=1e-4)
print(f"omit the slow state: regret {regret(naive_policy):.2%}")
