"""Time to an ε-optimal policy: ctrlgym's solvers vs quantecon and pymdptoolbox, same MDP, one run.

The multi-class queue with 3 classes and 4 slow states (buffers 10, 20 and 30: 5,324, 37,044
and 119,164 states), discount 0.99, ε = 1e-4. Every policy found is checked against the exact
optimum (its regret is printed), so a fast wrong answer cannot win. The peers run to their own
ε-stopping rule (quantecon's ``max_iter`` default of 250 would stop its VI early, so it is
lifted); their policy iteration and pymdptoolbox, which hold dense or factorised systems, run
only up to ``--peer-pi-max-states``.

    pip install quantecon pymdptoolbox
    python benchmarks/bench_solvers.py [--buffers 10 20 30] [--device cuda] [--peer-pi-max-states 6000]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from provenance import (
    header,
    provenance,
    write_results,
)  # benchmarks/provenance.py: run as scripts, their folder is on sys.path

from ctrlgym.envs.fastslow import MultiClassQueue
from ctrlgym.solvers import inexact_policy_iteration, modified_policy_iteration, policy_evaluation, value_iteration
from ctrlgym.solvers.frozen_state import frozen_state_value_iteration

COSTS = ((1.0, 2.0, 3.0), (3.0, 1.0, 0.5), (2.0, 3.0, 1.0), (0.5, 1.0, 4.0))


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buffers", type=int, nargs="+", default=[10, 20, 30])
    parser.add_argument("--epsilon", type=float, default=1e-4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--peer-pi-max-states", type=int, default=6000, help="largest model given to the peers' PI and to pymdptoolbox"
    )
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "bench_solvers.json"))
    args = parser.parse_args()
    info = provenance(args.device)
    print(header(info))
    results = []
    try:  # compile quantecon's numba kernels once, so its times below exclude the JIT
        import quantecon as qe

        for method in ("value_iteration", "modified_policy_iteration", "policy_iteration"):
            qe.markov.DiscreteDP(np.zeros((2, 2)), np.full((2, 2, 2), 0.5), 0.9).solve(method=method)
    except ImportError:
        pass
    for buffer_size in args.buffers:
        env = MultiClassQueue(num_envs=1, buffer_size=buffer_size, holding_costs=COSTS, switch_prob=0.01, discount=0.99)
        mdp = env.exact_model(device=args.device)
        reference = inexact_policy_iteration(mdp, epsilon=1e-8).values
        regret = lambda policy: float((reference - policy_evaluation(mdp, policy)).max())  # noqa: E731
        rows = []
        for name, solve in [
            ("ctrlgym value_iteration", lambda: value_iteration(mdp, args.epsilon).policy),
            ("ctrlgym modified_policy_iteration", lambda: modified_policy_iteration(mdp, args.epsilon).policy),
            ("ctrlgym inexact_policy_iteration", lambda: inexact_policy_iteration(mdp, args.epsilon).policy),
            (
                "ctrlgym frozen_state T=10",
                lambda: frozen_state_value_iteration(mdp, 10, args.epsilon).first_step_policy,
            ),
        ]:
            policy, seconds = timed(solve)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            rows.append((name, seconds, regret(policy)))
        transitions, rewards = mdp.scipy_transitions(), mdp.rewards.cpu().numpy()
        try:
            import quantecon as qe

            def quantecon(method):
                # state-action pair formulation keeps it sparse: rows (s, a)
                s_indices = np.repeat(np.arange(mdp.num_states), mdp.num_actions)
                a_indices = np.tile(np.arange(mdp.num_actions), mdp.num_states)
                q = sp.vstack([sp.csr_matrix(t) for t in transitions], format="csr")  # (A*S, S), action-major
                order = (
                    np.arange(mdp.num_states)[:, None] + mdp.num_states * np.arange(mdp.num_actions)[None, :]
                ).ravel()
                dp = qe.markov.DiscreteDP(rewards.ravel(), q[order], mdp.discount, s_indices, a_indices)
                return torch.as_tensor(dp.solve(method=method, epsilon=args.epsilon, max_iter=10**6).sigma)

            small = mdp.num_states <= args.peer_pi_max_states
            for method in ("value_iteration", "modified_policy_iteration") + (("policy_iteration",) if small else ()):
                policy, seconds = timed(lambda: quantecon(method))
                rows.append((f"quantecon DiscreteDP {method}", seconds, regret(policy.to(mdp.device))))
        except ImportError:
            rows.append(("quantecon (not installed)", float("nan"), float("nan")))
        if mdp.num_states <= args.peer_pi_max_states:
            try:
                import mdptoolbox.mdp

                def toolbox(solver_class, **kwargs):
                    solver = solver_class(transitions, rewards, mdp.discount, **kwargs)
                    solver.run()
                    return torch.as_tensor(np.array(solver.policy))

                for name, solver_class, kwargs in [
                    ("ValueIteration", mdptoolbox.mdp.ValueIteration, {"epsilon": args.epsilon, "max_iter": 100_000}),
                    (
                        "PolicyIterationModified",
                        mdptoolbox.mdp.PolicyIterationModified,
                        {"epsilon": args.epsilon, "max_iter": 100_000},
                    ),
                ]:
                    policy, seconds = timed(lambda: toolbox(solver_class, **kwargs))
                    rows.append((f"pymdptoolbox {name}", seconds, regret(policy.to(mdp.device))))
            except ImportError:
                rows.append(("pymdptoolbox (not installed)", float("nan"), float("nan")))
        best_peer = min((s for n, s, _ in rows if not n.startswith("ctrlgym") and s == s), default=float("nan"))
        print(
            f"\nqueue B={buffer_size}: {mdp.num_states:,} states, {mdp.num_actions} actions, γ={mdp.discount}, ε={args.epsilon}, {args.device}"
        )
        print(f"{'solver':<45} {'seconds':>9} {'max regret':>11} {'speed-up vs best peer':>22}")
        for name, seconds, loss in rows:
            ratio = best_peer / seconds if name.startswith("ctrlgym") and seconds == seconds else float("nan")
            print(f"{name:<45} {seconds:>9.3f} {loss:>11.2e} {ratio:>21.1f}x")
        results.append(
            {
                "states": mdp.num_states,
                "actions": mdp.num_actions,
                "rows": [{"solver": n, "seconds": t, "max_regret": r} for n, t, r in rows],
            }
        )
    print(f"results: {write_results(args.json, info, results)}")


if __name__ == "__main__":
    main()
