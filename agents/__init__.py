"""ctrlgym agents: independent DQN and Nash DQN for batched multi-agent envs."""

from ctrlgym.agents.dqn import IndependentDQN
from ctrlgym.agents.fictitious_play import Equilibrium, NeighbourGraph, fictitious_play
from ctrlgym.agents.nash_dqn import NashDQN

AGENTS = {IndependentDQN.algo: IndependentDQN, NashDQN.algo: NashDQN}

__all__ = ["IndependentDQN", "NashDQN", "AGENTS", "fictitious_play", "NeighbourGraph", "Equilibrium"]
