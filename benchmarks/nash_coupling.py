"""How much a trained Nash DQN's best green at a light depends on what its neighbours play.

The neighbourhood equilibrium (fictitious play over ``Q_i(s, a_i, a_N(i))``) can only choose
differently from an independent argmax where a light's best action changes with its neighbours'
actions; where one action is best whatever they do (a dominant action), both pick it. For each
trained run this counts the lights, those with neighbours (a light without any decides alone)
and the mean degree, then drives the map's twin with the run's greedy Nash DQN policy for one episode
(seed 0's model) and counts, over the decisions of lights that have neighbours and can switch:

- ``depends``: the share whose best green under the learned Q changes with the neighbours' greens
  (:func:`ctrlgym.agents.fictitious_play.depends_on_neighbours`);
- ``differs``: the share whose equilibrium green is not the best response to uniform beliefs about
  the neighbours (the first round of fictitious play: what ignoring them gives);
- ``worth``: what playing the equilibrium green instead of that independent one is worth, against
  the neighbours' equilibrium strategies, as a share of the spread of the light's action values
  (mean over the decisions; 0 where the two agree).

    python benchmarks/nash_coupling.py runs/benchmark/grid4x4/nash_dqn runs/benchmark/cologne8/nash_dqn
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from provenance import (
    header,
    provenance,
    write_results,
)  # benchmarks/provenance.py: run as scripts, their folder is on sys.path

from ctrlgym.agents.fictitious_play import depends_on_neighbours, expected_payoffs, fictitious_play
from ctrlgym.experiment.config import load_config
from ctrlgym.experiment.evaluation import agent_policy


@torch.no_grad()
def coupling(run_dir: Path, seed: int = 0, num_envs: int = 4) -> dict[str, float]:
    """The three shares above for one run's seed, over one twin episode of ``num_envs`` copies."""
    config = load_config(run_dir / "config.yaml")
    env = config.make_env(num_envs=num_envs, autoreset_mode="disabled")
    agent = agent_policy(run_dir, config, seed)(env)
    graph, kind = agent.graph, agent.payoffs
    degree = (graph.neighbours < graph.neighbours.shape[0]).sum(1)  # padded slots point past the last light
    has_neighbours = (degree > 0) & (graph.action_mask.sum(1) > 1)  # (n,)
    observations, _ = env.reset(seed=seed + config.evaluation.seed_offset)
    counted = depends = differs = worth = 0.0
    done = torch.zeros(env.num_envs, dtype=torch.bool)
    while not bool(done.all()):
        can_switch = env.green_time >= env.timing.min_green  # a decision that can change the green
        q_values = agent.q_network(agent._as_agents(observations))
        equilibrium = fictitious_play(q_values, graph, agent.rounds, kind, agent.prior)
        independent = fictitious_play(
            q_values, graph, 1, kind, prior=0
        ).actions  # round 1: the best response to uniform beliefs
        values = expected_payoffs(
            q_values, equilibrium.strategies, graph, kind
        )  # u_i(a_i) against the neighbours' equilibrium play
        spread = (
            values.masked_fill(~graph.action_mask, -torch.inf).amax(-1)
            - values.masked_fill(~graph.action_mask, torch.inf).amin(-1)
        ).clamp(min=1e-9)
        gain = (values.gather(-1, equilibrium.actions[..., None]) - values.gather(-1, independent[..., None]))[
            ..., 0
        ] / spread
        mask = can_switch & has_neighbours & ~done[:, None]
        counted += float(mask.sum())
        depends += float((depends_on_neighbours(q_values, graph, kind) & mask).sum())
        differs += float(((equilibrium.actions != independent) & mask).sum())
        worth += float((gain * mask).sum())
        observations, _, terminated, truncated, _ = env.step(equilibrium.actions)
        done |= terminated | truncated
    env.close()
    return {
        "lights": len(degree),
        "with_neighbours": int(has_neighbours.sum()),
        "mean_degree": float(degree.float().mean()),
        "decisions": counted,
        "depends": depends / counted,
        "differs": differs / counted,
        "worth": worth / counted,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+", help="Nash DQN runs (trained on a twin)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the results with provenance here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    info = provenance()
    print(header(info))
    print(
        f"{'run':<45} {'lights':>6} {'with neighbours':>15} {'mean degree':>11} {'decisions':>10} {'depends':>8} {'differs':>8} {'worth':>7}"
    )
    results = {}
    for run_dir in args.run_dirs:
        row = results[str(run_dir)] = coupling(run_dir, args.seed)
        print(
            f"{str(run_dir):<45} {row['lights']:>6} {row['with_neighbours']:>15} {row['mean_degree']:>11.2f} {row['decisions']:>10.0f} {row['depends']:>8.1%} {row['differs']:>8.1%} {row['worth']:>7.1%}",
            flush=True,
        )
    if args.json is not None:
        write_results(args.json, info, results)


if __name__ == "__main__":
    main()
