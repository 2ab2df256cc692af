"""ctrlgym agents for batched multi-agent envs: independent DQN and Nash DQN (family-specific
agents live with their family, e.g. ``ctrlgym.envs.beamforming.ChannelPredictor``)."""

from ctrlgym.agents.dqn import IndependentDQN
from ctrlgym.agents.fictitious_play import Equilibrium, NeighbourGraph, fictitious_play
from ctrlgym.agents.nash_dqn import NashDQN

__all__ = ["IndependentDQN", "NashDQN", "fictitious_play", "NeighbourGraph", "Equilibrium"]
