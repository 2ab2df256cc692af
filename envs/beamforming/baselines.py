"""Classic beamforming policies: MRT, ZF and RZF on stale, predicted or perfect CSI, the
DFT-codebook beam sweep, and random precoders."""

from __future__ import annotations

import torch
from ctrlgym.envs.beamforming.env import BeamformingEnv
from ctrlgym.envs.beamforming.precoding import LINEAR_PRECODERS, linear_precoder, wiener_weights

__all__ = ["PRECODERS", "CSI_SOURCES", "ClassicPrecoder", "BeamSweep", "RandomPrecoder", "predict_channel"]

PRECODERS = LINEAR_PRECODERS
CSI_SOURCES = ("stale", "predicted", "perfect")


def predict_channel(env: BeamformingEnv, observations: torch.Tensor) -> torch.Tensor:
    """The Wiener (LMMSE) prediction of the channel at transmission from the observed estimates,
    using the env's Doppler frequencies and fading correlation (:func:`.precoding.wiener_weights`):
    ``(B, K, M, S)``."""
    estimates, _, ages = env.split_observation(observations)
    weights = wiener_weights(env.channel.correlation, ages.round().long(), env.estimation_noise)
    return torch.einsum("bh,bhkms->bkms", weights.to(estimates.dtype), estimates)


class ClassicPrecoder:
    """MRT, ZF or RZF (``α = K σ²/P``) per subcarrier, on ``stale`` CSI (the newest estimate),
    ``predicted`` CSI (:func:`predict_channel`) or ``perfect`` CSI (the true channel at
    transmission, a genie). Acts in ``precoder`` mode."""

    def __init__(self, env: BeamformingEnv, precoder: str, csi: str) -> None:
        if precoder not in PRECODERS or csi not in CSI_SOURCES:
            raise ValueError(f"ClassicPrecoder: precoder must be one of {PRECODERS} and csi one of {CSI_SOURCES}, got {precoder!r}, {csi!r}")
        if env.action_mode != "precoder":
            raise ValueError(f"ClassicPrecoder acts in action_mode='precoder'; the env has {env.action_mode!r}")
        self.env, self.precoder, self.csi = env, precoder, csi

    def channel_state(self, observations: torch.Tensor) -> torch.Tensor:
        """The CSI this policy precodes on, ``(B, K, M, S)``."""
        if self.csi == "perfect":
            return self.env.true_channel()
        if self.csi == "predicted":
            return predict_channel(self.env, observations)
        return self.env.split_observation(observations)[0][:, 0]

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        channel = self.channel_state(observations).permute(0, 3, 1, 2)  # (B, S, K, M)
        return self.env.precoder_action(linear_precoder(channel, self.precoder, self.env.noise_power))


class BeamSweep:
    """Each user gets the DFT beam with the most power on its newest estimate, summed over
    subcarriers (an exhaustive sweep of the codebook per user). Acts in ``codebook`` mode."""

    def __init__(self, env: BeamformingEnv) -> None:
        if env.action_mode != "codebook":
            raise ValueError(f"BeamSweep acts in action_mode='codebook'; the env has {env.action_mode!r}")
        self.env = env

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        newest = self.env.split_observation(observations)[0][:, 0]  # (B, K, M, S)
        gains = torch.einsum("bkms,mi->bkis", newest, self.env.codebook).abs().square().sum(-1)  # (B, K, beams)
        return gains.argmax(-1)


class RandomPrecoder:
    """Uniformly random actions of the env's action space (seeded)."""

    def __init__(self, env: BeamformingEnv, seed: int = 0) -> None:
        self.env = env
        self.generator = torch.Generator(device=env.device).manual_seed(seed)

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        from ctrlgym.spaces import sample_actions

        return sample_actions(self.env.single_action_space, self.env.num_envs, self.generator, self.env.device)
