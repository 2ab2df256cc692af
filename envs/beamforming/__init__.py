"""Beamforming channels: a base station picks downlink precoders from a stale uplink channel
estimate while the channel ages (torch only, no extra dependencies)."""

from ctrlgym.envs.beamforming.baselines import CSI_SOURCES, PRECODERS, BeamSweep, ClassicPrecoder, RandomPrecoder, predict_channel
from ctrlgym.envs.beamforming.channel_predictor import ChannelPredictor
from ctrlgym.envs.beamforming.channels import PROFILES, ChannelProcess, DelayProfile, doppler_frequency, jakes_correlation
from ctrlgym.envs.beamforming.env import ACTION_MODES, REWARDS, BeamformingEnv

from ctrlgym.registry import Baseline, register_env

_PRECODER_NAMES = {"mrt": "maximum-ratio transmission", "zf": "zero-forcing", "rzf": "regularised zero-forcing (MMSE)"}
_CSI_NAMES = {"stale": "the stale channel estimate", "predicted": "the Wiener-predicted channel", "perfect": "the true channel (a genie: the ceiling)"}

_BASELINES = {
    **{
        f"{precoder}_{csi}": Baseline(
            lambda env, seed, p=precoder, c=csi: ClassicPrecoder(env, p, c), {"action_mode": "precoder"},
            f"{_PRECODER_NAMES.get(precoder, precoder)} from {_CSI_NAMES[csi]}",
        )  # fmt: skip
        for precoder in PRECODERS
        for csi in CSI_SOURCES
    },
    "beam_sweep": Baseline(lambda env, seed: BeamSweep(env), {"action_mode": "codebook"}, "the best beam of a DFT codebook for each user"),
    "random": Baseline(lambda env, seed: RandomPrecoder(env, seed), description="random unit-power precoders: the floor"),
}

register_env(
    BeamformingEnv,
    family="beamforming",
    summary="multi-user downlink precoding from a stale uplink channel estimate while the channel ages (Doppler)",
    baselines=_BASELINES,
    check_kwargs={"num_envs": 4, "antennas": 4, "users": 2, "history": 2},
)

__all__ = [
    "BeamformingEnv", "ACTION_MODES", "REWARDS", "ChannelProcess", "DelayProfile", "PROFILES", "doppler_frequency", "jakes_correlation",
    "ChannelPredictor", "ClassicPrecoder", "BeamSweep", "RandomPrecoder", "predict_channel", "PRECODERS", "CSI_SOURCES",
]  # fmt: skip
