"""Exact DP on the same flat matrix: ctrlgym's solvers against quantecon and mdpsolver, one run.

Every solver gets the same transition matrices P^a (no factored model), the same rewards and the
same ε (an ε-optimal policy, 1e-4): random sparse MDPs by MDPSolver's recipe (5 actions, 20 next
states drawn uniformly per state-action pair, random probabilities and rewards in [0, 1),
γ = 0.9) at 10k, 100k and 1M states, and the multi-class queue's 119k-state matrix written out
flat (3 classes, buffers 30, 4 slow states, γ = 0.99). Each policy found is checked against the
exact optimum (its regret is printed), so a fast wrong answer cannot win. Times are medians over
``--rounds``, quiet and then beside a busy process (``competitor.py``), with ctrlgym and
mdpsolver at one thread and at two (mdpsolver's ``parallel=True``); quantecon runs single-threaded
numba. mdpsolver takes its model as Python lists, so it runs up to ``--mdpsolver-max-states``
(100k): at 1M states those lists hold 100M floats, and a run of the queue's 119k matrix with the
limit raised did not finish in 20 minutes on this machine (ctrlgym and quantecon take about 5 of
them). Model construction is not timed.

    pip install quantecon mdpsolver
    python benchmarks/bench_solvers_flat.py [--sizes 10000 100000 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from competitor import busy_machine
from provenance import header, provenance, write_results  # benchmarks/: run as scripts, their folder is on sys.path

import ctrlgym
from ctrlgym.envs.fastslow import MultiClassQueue
from ctrlgym.solvers import inexact_policy_iteration, modified_policy_iteration, policy_evaluation, value_iteration
from ctrlgym.solvers.mdp import FiniteMDP

QUEUE_COSTS = ((1.0, 2.0, 3.0), (3.0, 1.0, 0.5), (2.0, 3.0, 1.0), (0.5, 1.0, 4.0))


def random_mdp(num_states: int, num_actions: int = 5, successors: int = 20, seed: int = 0):
    """MDPSolver's random recipe: per (s, a), ``successors`` next states uniform (repeats merged),
    probabilities uniform then normalised; rewards uniform on [0, 1)."""
    rng = np.random.default_rng(seed)
    matrices = []
    for _ in range(num_actions):
        columns = rng.integers(0, num_states, (num_states, successors))
        probs = rng.random((num_states, successors))
        probs /= probs.sum(axis=1, keepdims=True)
        indptr = np.arange(0, num_states * successors + 1, successors)
        matrix = sp.csr_matrix((probs.ravel(), columns.ravel(), indptr), shape=(num_states, num_states))
        matrix.sum_duplicates()
        matrices.append(matrix)
    return matrices, rng.random((num_states, num_actions))


def queue_flat():
    env = MultiClassQueue(num_envs=1, buffer_size=30, holding_costs=QUEUE_COSTS, switch_prob=0.01, discount=0.99)
    factored = env.exact_model()
    return factored.scipy_transitions(), factored.rewards.numpy(), factored.discount


def quantecon_solver(matrices, rewards, discount, method, epsilon):
    import quantecon as qe

    num_states, num_actions = rewards.shape
    rows = (np.arange(num_states)[:, None] + num_states * np.arange(num_actions)[None, :]).ravel()  # (s, a) rows
    stacked = sp.vstack(matrices, format="csr")[rows]
    dp = qe.markov.DiscreteDP(
        rewards.ravel(),
        stacked,
        discount,
        np.repeat(np.arange(num_states), num_actions),
        np.tile(np.arange(num_actions), num_states),
    )
    return lambda: lambda: np.asarray(dp.solve(method=method, epsilon=epsilon, max_iter=10**6).sigma)


def mdpsolver_lists(matrices) -> tuple[list, list]:
    """mdpsolver's input, built once for all its contenders: per state, per action, the row's
    probabilities and columns as Python lists (about 8 GB at a million states, 100M entries)."""
    num_states = matrices[0].shape[0]
    probs = [[m.data[m.indptr[s] : m.indptr[s + 1]].tolist() for m in matrices] for s in range(num_states)]
    columns = [[m.indices[m.indptr[s] : m.indptr[s + 1]].tolist() for m in matrices] for s in range(num_states)]
    return probs, columns


def mdpsolver_solver(lists, rewards, discount, algorithm, epsilon, parallel):
    import mdpsolver

    probs, columns = lists

    def prepare():  # a fresh model each time: a solved one starts the next solve from its solution
        model = mdpsolver.model()
        model.mdp(discount=discount, rewards=rewards.tolist(), tranMatProbs=probs, tranMatColumns=columns)

        def solve():
            model.solve(algorithm=algorithm, tolerance=epsilon, update="standard", verbose=False, parallel=parallel)
            return np.asarray(model.getPolicy())

        return solve

    return prepare


def ctrlgym_solver(mdp, solver, epsilon, threads):
    """Each contender is ``prepare() -> solve``: ``prepare`` (untimed) builds what a solve starts from."""

    def solve():
        ctrlgym.set_num_threads(threads)
        try:
            return solver(mdp, epsilon).policy
        finally:
            ctrlgym.set_num_threads(1)

    return lambda: solve


def contenders(matrices, rewards, discount, epsilon, mdp, include_mdpsolver):
    entries = {}
    for threads in (1, 2):
        for name, solver in (
            ("value_iteration", value_iteration),
            ("modified_policy_iteration", modified_policy_iteration),
            ("inexact_policy_iteration", inexact_policy_iteration),
        ):
            entries[f"ctrlgym {name}, {threads} thread(s)"] = ctrlgym_solver(mdp, solver, epsilon, threads)
    for method in ("value_iteration", "modified_policy_iteration"):
        entries[f"quantecon DiscreteDP {method}"] = quantecon_solver(matrices, rewards, discount, method, epsilon)
    if include_mdpsolver:
        lists = mdpsolver_lists(matrices)
        for parallel in (False, True):
            for algorithm in ("vi", "mpi", "pi"):
                label = f"mdpsolver {algorithm}, {'parallel' if parallel else '1 thread'}"
                entries[label] = mdpsolver_solver(lists, rewards, discount, algorithm, epsilon, parallel)
    return entries


def measure(label, matrices, rewards, discount, args, busy):
    mdp = FiniteMDP.from_matrices(matrices, rewards, discount, name=label)
    reference = inexact_policy_iteration(mdp, epsilon=1e-8).values
    entries = contenders(matrices, rewards, discount, args.epsilon, mdp, rewards.shape[0] <= args.mdpsolver_max_states)
    if args.only:
        entries = {name: entry for name, entry in entries.items() if name.startswith(tuple(args.only))}
    times: dict[str, list[float]] = {name: [] for name in entries}
    regrets: dict[str, float] = {}
    for name, prepare in entries.items():  # one untimed call each: numba's JIT, first-touch allocations
        policy = torch.as_tensor(np.asarray(prepare()()), dtype=torch.long)
        regrets[name] = float((reference - policy_evaluation(mdp, policy)).max())
    with busy_machine(busy):
        for _ in range(args.rounds):
            for name, prepare in entries.items():
                solve = prepare()
                start = time.perf_counter()
                solve()
                times[name].append(time.perf_counter() - start)
    rows = [
        {
            "solver": name,
            "seconds": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "max_regret": regrets[name],
        }
        for name, values in times.items()
    ]
    best_peer = min((r["seconds"] for r in rows if not r["solver"].startswith("ctrlgym")), default=math.nan)
    best_ctrlgym = min((r["seconds"] for r in rows if r["solver"].startswith("ctrlgym")), default=math.nan)
    machine = "busy" if busy else "quiet"
    print(f"\n{label}: {mdp.num_states:,} states, {mdp.num_actions} actions, γ={discount}, ε={args.epsilon}, {machine}")
    print(f"{'solver':<50} {'median s':>9} {'[min, max]':>18} {'max regret':>11}")
    for r in rows:
        print(f"{r['solver']:<50} {r['seconds']:>9.3f} [{r['min']:.3f}, {r['max']:.3f}] {r['max_regret']:>11.2e}")
    print(f"fastest ctrlgym / fastest peer: {best_peer / best_ctrlgym:.2f}x")
    return {
        "model": label,
        "states": mdp.num_states,
        "actions": mdp.num_actions,
        "machine": machine,
        "best ctrlgym vs best peer": best_peer / best_ctrlgym,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--epsilon", type=float, default=1e-4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mdpsolver-max-states", type=int, default=100_000)
    parser.add_argument("--no-queue", action="store_true", help="skip the queue's flat matrix")
    parser.add_argument("--only", nargs="+", metavar="PREFIX", help="only the contenders whose label starts so")
    parser.add_argument("--no-busy", action="store_true", help="skip the rounds beside a busy process")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "bench_solvers_flat.json"))
    args = parser.parse_args()
    info = provenance("cpu")
    info["rounds"], info["mdpsolver_max_states"], info["only"] = args.rounds, args.mdpsolver_max_states, args.only
    print(header(info))
    models = [(f"random S={n:,}", *random_mdp(n), 0.9) for n in args.sizes]
    if not args.no_queue:
        models.append(("queue B=30 (flat)", *queue_flat()))
    results = []
    for busy in (False, True) if not args.no_busy else (False,):
        for label, matrices, rewards, discount in models:
            results.append(measure(label, matrices, rewards, discount, args, busy))
    print(f"results: {write_results(args.json, info, results)}")


if __name__ == "__main__":
    main()
