"""Beamforming channels: a base station picks downlink precoders from a stale uplink channel
estimate while the channel ages (torch only, no extra dependencies)."""

from ctrlgym.envs.beamforming.baselines import (
    BASELINES,
    CSI_SOURCES,
    PRECODERS,
    BeamSweep,
    ClassicPrecoder,
    RandomPrecoder,
    predict_channel,
)
from ctrlgym.envs.beamforming.channel_predictor import ChannelPredictor
from ctrlgym.envs.beamforming.channels import (
    PROFILES,
    ChannelProcess,
    DelayProfile,
    doppler_frequency,
    jakes_correlation,
)
from ctrlgym.envs.beamforming.env import ACTION_MODES, REWARDS, BeamformingEnv

__all__ = [
    "BeamformingEnv",
    "BASELINES",
    "ACTION_MODES",
    "REWARDS",
    "ChannelProcess",
    "DelayProfile",
    "PROFILES",
    "doppler_frequency",
    "jakes_correlation",
    "ChannelPredictor",
    "ClassicPrecoder",
    "BeamSweep",
    "RandomPrecoder",
    "predict_channel",
    "PRECODERS",
    "CSI_SOURCES",
]
