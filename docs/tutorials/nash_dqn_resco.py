"""Nash DQN from the torch twin to SUMO on a RESCO map, on a small budget.

Train Nash DQN on 16 copies of the twin of RESCO's cologne8 (lights within 400 m of road are
neighbours), evaluate the greedy equilibrium policy on SUMO itself beside RESCO's MaxWave, and print
both delays. The budget here is a tutorial's (about a minute); `make report-benchmark` runs the
real one. Needs ctrlgym[traffic,benchmarks]. Run: python docs/tutorials/nash_dqn_resco.py
"""

from __future__ import annotations

import torch

from ctrlgym.agents import NashDQN
from ctrlgym.envs.traffic import RescoMaxWave, TrafficSignalEnv, TrafficTwinEnv

PROBLEM = {  # the same signal-control problem for the twin and for SUMO
    "scenario": "resco:cologne8",
    "neighbour_reach": 400,
    "reward": "delay",
    "observation": ["phase", "min_green", "density", "queue", "neighbours"],
    "num_seconds": 900,  # the first 15 minutes of the map's hour, to keep the tutorial short
}


def delay_on_sumo(policy_for, seed: int = 0) -> float:
    """Run one episode on SUMO with ``policy_for(env)``; return RESCO's headline metric, the delay."""
    env = TrafficSignalEnv(**PROBLEM, workers="inline", resco_detectors=True)
    try:
        policy = policy_for(env)
        obs, _ = env.reset(seed=seed)
        while True:
            obs, _, _, truncated, info = env.step(policy(obs))
            if bool(truncated.all()):
                return float(info["delay"][0])
    finally:
        env.close()


if __name__ == "__main__":
    torch.manual_seed(0)
    twin = TrafficTwinEnv(num_envs=16, **PROBLEM, autoreset_mode="same_step")
    agent = NashDQN(twin, seed=0, learning_starts=500, exploration_fraction=0.5, batch_size=128)
    agent.learn(twin, total_timesteps=16 * 90 * 16)  # sixteen 15-minute episodes in each of 16 twins
    print(f"Nash DQN (trained on the twin only) on SUMO: delay {delay_on_sumo(lambda env: agent):.1f} s")
    print(f"RESCO's MaxWave on SUMO:                      delay {delay_on_sumo(RescoMaxWave):.1f} s")
