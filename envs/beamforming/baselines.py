"""Classic beamforming policies: MRT, ZF and RZF on stale, predicted or perfect CSI, the
DFT-codebook beam sweep, and random precoders."""

from __future__ import annotations

import functools

import torch

from ctrlgym.envs.beamforming.env import BeamformingEnv
from ctrlgym.envs.beamforming.precoding import (
    LINEAR_PRECODERS,
    blind_wiener_prediction,
    linear_precoder,
    regularised_zero_forcing,
    robust_regularisation,
    squared_magnitude,
    wiener_prediction,
)
from ctrlgym.errors import UsageError
from ctrlgym.registry import Baseline

__all__ = ["BASELINES", "PRECODERS", "CSI_SOURCES", "ClassicPrecoder", "BeamSweep", "RandomPrecoder", "predict_channel"]

PRECODERS = LINEAR_PRECODERS
CSI_SOURCES = ("stale", "estimated", "predicted", "perfect")


def predict_channel(
    env: BeamformingEnv, observations: torch.Tensor, doppler: str = "genie"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Wiener (LMMSE) prediction of the channel at transmission from the observed estimates,
    ``(B, K, M, S)``, and its error variance per entry ``(B,)`` (:func:`.precoding.wiener_prediction`).
    ``doppler="genie"`` uses the env's true Doppler frequencies and fading correlation;
    ``"estimated"`` estimates each cell's Doppler from its SRS history and assumes Jakes' J0
    (:func:`.precoding.blind_wiener_prediction`): no genie."""
    estimates, _, ages = env.split_observation(observations)
    lags = ages.round().long()
    if doppler == "estimated":
        return blind_wiener_prediction(estimates, lags, env.estimation_noise, env.slot_duration)
    if doppler != "genie":
        raise UsageError(f"predict_channel: doppler must be 'genie' or 'estimated', got {doppler!r}")
    return wiener_prediction(estimates, lags, env.channel.correlation, env.estimation_noise)


class ClassicPrecoder:
    """MRT, ZF or RZF (``α = K σ²/P``) per subcarrier, on ``stale`` CSI (the newest estimate),
    ``estimated`` CSI (the Wiener prediction with the Doppler estimated from the SRS history),
    ``predicted`` CSI (the Wiener prediction told the true Doppler: :func:`predict_channel`) or
    ``perfect`` CSI (the true channel at transmission, a genie). Acts in ``precoder`` mode.

    ``rzf_robust`` (with ``estimated`` or ``predicted`` CSI) is RZF with the prediction's error
    variance added to the noise in its regularisation (:func:`.precoding.robust_regularisation`)."""

    def __init__(self, env: BeamformingEnv, precoder: str, csi: str) -> None:
        if precoder not in (*PRECODERS, "rzf_robust") or csi not in CSI_SOURCES:
            raise UsageError(
                f"ClassicPrecoder: precoder must be one of {PRECODERS} and csi one of {CSI_SOURCES}, got {precoder!r}, {csi!r}"
            )
        if precoder == "rzf_robust" and csi not in ("estimated", "predicted"):
            raise UsageError(
                f"ClassicPrecoder: rzf_robust needs a prediction's error variance: csi 'estimated' or 'predicted', got {csi!r}"
            )
        if env.action_mode != "precoder":
            raise UsageError(f"ClassicPrecoder acts in action_mode='precoder'; the env has {env.action_mode!r}")
        self.env, self.precoder, self.csi = env, precoder, csi

    def channel_state(self, observations: torch.Tensor) -> torch.Tensor:
        """The CSI this policy precodes on, ``(B, K, M, S)``."""
        return self._channel_and_error(observations)[0]

    def _channel_and_error(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.csi == "perfect":
            return self.env.true_channel(), None
        if self.csi in ("predicted", "estimated"):
            return predict_channel(self.env, observations, "genie" if self.csi == "predicted" else "estimated")
        return self.env.split_observation(observations)[0][:, 0], None

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        channel, error = self._channel_and_error(observations)
        channel = channel.permute(0, 3, 1, 2)  # (B, S, K, M)
        if self.precoder == "rzf_robust":
            assert error is not None  # rzf_robust reads the predicted CSI's error
            alpha = robust_regularisation(self.env.users, self.env.noise_power, error)[:, None].expand(
                -1, channel.shape[1]
            )
            return self.env.precoder_action(regularised_zero_forcing(channel, alpha))
        return self.env.precoder_action(linear_precoder(channel, self.precoder, self.env.noise_power))


class BeamSweep:
    """Each user gets the DFT beam with the most power on its newest estimate, summed over
    subcarriers (an exhaustive sweep of the codebook per user). Acts in ``codebook`` mode."""

    def __init__(self, env: BeamformingEnv) -> None:
        if env.action_mode != "codebook":
            raise UsageError(f"BeamSweep acts in action_mode='codebook'; the env has {env.action_mode!r}")
        self.env = env

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        newest = self.env.split_observation(observations)[0][:, 0]  # (B, K, M, S)
        gains = squared_magnitude(torch.einsum("bkms,mi->bkis", newest, self.env.codebook)).sum(-1)  # (B, K, beams)
        return gains.argmax(-1)


class RandomPrecoder:
    """Uniformly random actions of the env's action space (seeded)."""

    def __init__(self, env: BeamformingEnv, seed: int = 0) -> None:
        self.env = env
        self.generator = torch.Generator(device=env.device).manual_seed(seed)

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        from ctrlgym.spaces import sample_actions

        return sample_actions(self.env.single_action_space, self.env.num_envs, self.generator, self.env.device)


_PRECODER_NAMES = {"mrt": "maximum-ratio transmission", "zf": "zero-forcing", "rzf": "regularised zero-forcing (MMSE)"}
_CSI_NAMES = {
    "stale": "the stale channel estimate",
    "estimated": "the Wiener prediction with the Doppler estimated from the SRS history (no genie)",
    "predicted": "the Wiener prediction told the true Doppler (a genie)",
    "perfect": "the true channel (a genie: the ceiling)",
}


def _classic(precoder: str, csi: str, env: BeamformingEnv, seed: int) -> ClassicPrecoder:
    return ClassicPrecoder(env, precoder, csi)


BASELINES = {  # the registry's baselines of BeamformingEnv
    **{
        f"{precoder}_{csi}": Baseline(
            functools.partial(_classic, precoder, csi),
            {"action_mode": "precoder"},
            f"{_PRECODER_NAMES.get(precoder, precoder)} from {_CSI_NAMES[csi]}",
        )
        for precoder in PRECODERS
        for csi in CSI_SOURCES
    },
    **{
        f"rzf_robust_{csi}": Baseline(
            functools.partial(_classic, "rzf_robust", csi),
            {"action_mode": "precoder"},
            f"RZF with the prediction error added to its regularisation, from {_CSI_NAMES[csi]}",
        )
        for csi in ("estimated", "predicted")
    },
    "beam_sweep": Baseline(
        lambda env, seed: BeamSweep(env), {"action_mode": "codebook"}, "the best beam of a DFT codebook for each user"
    ),
    "random": Baseline(
        lambda env, seed: RandomPrecoder(env, seed), description="random unit-power precoders: the floor"
    ),
}
