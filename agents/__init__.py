"""ctrlgym agents: independent DQN and Nash DQN for batched multi-agent envs; the CNN channel predictor for beamforming."""

from ctrlgym.agents.channel_predictor import ChannelPredictor
from ctrlgym.agents.dqn import IndependentDQN
from ctrlgym.agents.fictitious_play import Equilibrium, NeighbourGraph, fictitious_play
from ctrlgym.agents.nash_dqn import NashDQN

AGENTS = {IndependentDQN.algo: IndependentDQN, NashDQN.algo: NashDQN, ChannelPredictor.algo: ChannelPredictor}

__all__ = ["ChannelPredictor", "IndependentDQN", "NashDQN", "AGENTS", "fictitious_play", "NeighbourGraph", "Equilibrium"]
