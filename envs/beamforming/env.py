"""Downlink beamforming from a stale uplink channel estimate while the channel ages."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from gymnasium import spaces

from ctrlgym.envs.beamforming.channels import FADING, PROFILES, ChannelProcess, DelayProfile, doppler_frequency
from ctrlgym.envs.beamforming.precoding import (
    dft_codebook,
    normalise_power,
    optimal_regularisation,
    regularised_zero_forcing,
    squared_magnitude,
    user_rates,
)
from ctrlgym.vector_env import AutoresetMode, TorchVectorEnv

if TYPE_CHECKING:
    from ctrlgym.envs.beamforming.sionna_channels import SionnaTDLProcess

__all__ = ["BeamformingEnv", "ACTION_MODES", "REWARDS"]

ACTION_MODES = ("precoder", "codebook", "rzf")
REWARDS = ("sum_rate", "min_rate", "proportional_fair")
_OBS_CLIP = 10.0


class BeamformingEnv(TorchVectorEnv):
    r"""A base station with ``antennas`` antennas serves ``users`` single-antenna users; each env
    is one cell, and the agent picks the downlink precoders of every slot.

    ## Description
    In TDD the base station learns the downlink channel from uplink sounding reference signals
    (SRS): every ``srs_period`` slots it measures ``Ĥ = H + E`` (``E ~ CN(0, 10^(−srs_snr_db/10))``),
    and a measurement can be used ``uplink_delay`` slots later. Meanwhile the users move at
    ``speed_kmh`` and the channel ages (Clarke/Jakes Doppler, :mod:`.channels`), so the newest
    usable estimate is ``uplink_delay`` to ``uplink_delay + srs_period − 1`` slots old when the
    precoder is applied. One env step is one downlink slot. The setting of arXiv 2202.07998
    (a CNN at the transmitter predicts the downlink channel from the uplink estimate).
    A reset draws the channel and its SRS history from the fading process's past
    (:meth:`.ChannelProcess.history`), so ``history`` estimates are usable from the first slot.
    On CUDA the masked resets and soundings run for every cell each step (no host sync); on the
    CPU they are skipped when no cell needs them.

    ## Action Space
    ``action_mode`` chooses it:

    * ``precoder`` (default): ``Box(-1, 1, (subbands·M·K·2,))``, the real and imaginary parts of
      one ``M × K`` precoder per subband, scaled to total power 1 (``‖W‖_F = 1``);
    * ``codebook``: ``MultiDiscrete([M] * K)``, a DFT beam per user, power split equally;
    * ``rzf``: ``Box(-1, 1, (1 + K,))``, regularised ZF on the newest estimate with
      regularisation ``α = (K σ²) · 100^{a_0}`` (a_0 = 0: the optimal α) and user powers
      ``softmax(2 a_{1..K})``, each beam of unit norm scaled by its power.

    ## Observation Space
    ``Box(-10, 10, (history·K·M·S·2 + 1 + history,))``: the ``history`` newest usable estimates
    (newest first; real and imaginary parts of ``(K, M, subcarriers)``, clipped to ±10), the SNR
    in dB / 10, and each estimate's age in slots divided by ``uplink_delay + srs_period·history``.
    :meth:`split_observation` unpacks it.

    ## Rewards
    On the true channel at transmission, per subcarrier ``log2(1 + SINR_k)`` averaged over
    subcarriers (:func:`.precoding.user_rates`): ``sum_rate`` (default, bit/s/Hz) ``Σ_k r_k``,
    ``min_rate`` ``min_k r_k``, or ``proportional_fair`` ``Σ_k ln(r_k + 0.01)``.
    ``info`` holds ``sum_rate``, ``min_rate``, ``csi_age_ms`` and ``user_rates`` ``(num_envs, K)``.

    ## Episode End
    No terminal state; truncation after ``max_episode_steps`` slots (100 by default).
    A reset draws fresh channels (and a speed per env when ``speed_kmh`` is a ``[low, high]`` range).

    ## Arguments
    ``antennas`` (M, 8), ``users`` (K, 4), ``channel`` (``rayleigh`` or ``tdl_a``/``tdl_b``/``tdl_c``),
    ``fading`` (``sum_of_sinusoids``, the default, with ``sinusoids``: autocorrelation J0 at every lag; ``ar1``: ρⁿ, exact only at one slot; ``sionna``: Sionna's TR 38.901 TDL generator, TDL profiles only, ``ctrlgym[sionna]``), ``subcarriers`` (1),
    ``subbands`` (precoder granularity, 1), ``subcarrier_spacing`` (30 kHz), ``delay_spread``
    (100 ns), ``carrier_frequency`` (3.5 GHz), ``speed_kmh`` (30, or a range), ``slot_duration``
    (0.5 ms), ``snr_db`` (10), ``srs_snr_db`` (20), ``srs_period`` (5 slots), ``uplink_delay``
    (2 slots), ``history`` (4 estimates), ``action_mode``, ``reward``.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    metric_descriptions = {
        "sum_rate": "sum over users of log2(1 + SINR), bit/s/Hz (per-step mean)",
        "min_rate": "the worst user's rate, bit/s/Hz (per-step mean)",
        "csi_age_ms": "age of the channel estimate at transmission, ms",
    }
    #: reports also show each policy's score as % of the gap from RZF on stale CSI to RZF on perfect CSI
    normalised_score = ("rzf_stale", "rzf_perfect")

    def __init__(
        self,
        num_envs: int = 1,
        *,
        antennas: int = 8,
        users: int = 4,
        channel: str = "rayleigh",
        fading: str = "sum_of_sinusoids",
        sinusoids: int = 16,
        subcarriers: int = 1,
        subbands: int = 1,
        subcarrier_spacing: float = 30e3,
        delay_spread: float = 100e-9,
        carrier_frequency: float = 3.5e9,
        speed_kmh: float | Sequence[float] = 30.0,
        slot_duration: float = 0.5e-3,
        snr_db: float = 10.0,
        srs_snr_db: float = 20.0,
        srs_period: int = 5,
        uplink_delay: int = 2,
        history: int = 4,
        action_mode: str = "precoder",
        reward: str = "sum_rate",
        max_episode_steps: int | None = 100,
        device: str | torch.device = "cpu",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        validate_actions: bool = True,
    ) -> None:
        name = type(self).__name__
        for label, value, choices in (
            ("channel", channel, PROFILES),
            ("fading", fading, (*FADING, "sionna")),
            ("action_mode", action_mode, ACTION_MODES),
            ("reward", reward, REWARDS),
        ):
            if value not in choices:
                raise ValueError(f"{name}: unknown {label} {value!r}; choose one of {choices}")
        for label, count in (
            ("antennas", antennas),
            ("users", users),
            ("subcarriers", subcarriers),
            ("subbands", subbands),
            ("srs_period", srs_period),
            ("history", history),
            ("sinusoids", sinusoids),
        ):
            if int(count) != count or count < 1:
                raise ValueError(f"{name}: {label} must be an integer >= 1, got {count!r}")
        if users > antennas:
            raise ValueError(f"{name}: users ({users}) must not exceed antennas ({antennas}) for multi-user precoding")
        if subbands > subcarriers:
            raise ValueError(f"{name}: subbands ({subbands}) must not exceed subcarriers ({subcarriers})")
        if int(uplink_delay) != uplink_delay or uplink_delay < 0:
            raise ValueError(f"{name}: uplink_delay must be an integer >= 0 slots, got {uplink_delay!r}")
        speeds = [float(speed_kmh)] * 2 if isinstance(speed_kmh, (int, float)) else [float(v) for v in speed_kmh]
        if len(speeds) != 2 or not all(math.isfinite(v) and v >= 0 for v in speeds) or speeds[0] > speeds[1]:
            raise ValueError(f"{name}: speed_kmh must be a speed >= 0 or a [low, high] range, got {speed_kmh!r}")
        for label, real in (
            ("snr_db", snr_db),
            ("srs_snr_db", srs_snr_db),
            ("slot_duration", slot_duration),
            ("carrier_frequency", carrier_frequency),
        ):
            if not math.isfinite(real) or (label in ("slot_duration", "carrier_frequency") and real <= 0):
                raise ValueError(
                    f"{name}: {label} must be finite (and positive for durations and frequencies), got {real!r}"
                )

        self.antennas, self.users, self.subcarriers, self.subbands = (
            int(antennas),
            int(users),
            int(subcarriers),
            int(subbands),
        )
        self.srs_period, self.uplink_delay, self.history = int(srs_period), int(uplink_delay), int(history)
        self.speed_range, self.carrier_frequency, self.slot_duration = (
            tuple(speeds),
            float(carrier_frequency),
            float(slot_duration),
        )
        self.snr_db, self.noise_power = float(snr_db), 10 ** (-float(snr_db) / 10)
        self.estimation_noise = 10 ** (-float(srs_snr_db) / 10)
        self.action_mode, self.reward_name = action_mode, reward
        self.channel_name, self.fading = channel, fading
        M, K, S, H = self.antennas, self.users, self.subcarriers, self.history
        self._estimate_size = H * K * M * S * 2
        observation_space = spaces.Box(-_OBS_CLIP, _OBS_CLIP, (self._estimate_size + 1 + H,), np.float32)
        if action_mode == "precoder":
            action_space: spaces.Space = spaces.Box(-1.0, 1.0, (self.subbands * M * K * 2,), np.float32)
        elif action_mode == "codebook":
            action_space = spaces.MultiDiscrete([M] * K)
        else:
            action_space = spaces.Box(-1.0, 1.0, (1 + K,), np.float32)
        super().__init__(
            num_envs,
            observation_space,
            action_space,
            device=device,
            max_episode_steps=max_episode_steps,
            autoreset_mode=autoreset_mode,
            validate_actions=validate_actions,
        )
        ring = H + -(-self.uplink_delay // self.srs_period)  # history + the SRS not yet usable (at most ⌈D/P⌉)
        if fading == "sionna":  # Sionna's TDL generator: one trajectory per episode
            from ctrlgym.envs.beamforming.sionna_channels import SionnaTDLProcess

            if max_episode_steps is None:
                raise ValueError(f"{name}: fading='sionna' draws whole episodes; give max_episode_steps")
            self.channel: ChannelProcess | SionnaTDLProcess = SionnaTDLProcess(
                num_envs,
                K,
                M,
                S,
                channel,
                delay_spread=delay_spread,
                carrier_frequency=carrier_frequency,
                subcarrier_spacing=subcarrier_spacing,
                slot_duration=slot_duration,
                past_slots=(ring - 1) * self.srs_period,
                future_slots=int(max_episode_steps),
                sinusoids=sinusoids,
                generator=self.generator,
                device=self.device,
            )
        else:
            self.channel = ChannelProcess(
                num_envs,
                K,
                M,
                S,
                DelayProfile.named(channel, delay_spread),
                subcarrier_spacing=subcarrier_spacing,
                slot_duration=slot_duration,
                fading=fading,
                sinusoids=sinusoids,
                generator=self.generator,
                device=self.device,
            )
        self.codebook = dft_codebook(M, device=self.device)
        # subcarrier -> its subband, and each subband's centre subcarrier
        self.subband_of = torch.arange(S, device=self.device) * self.subbands // S
        self.subband_centres = torch.tensor(
            [int(np.flatnonzero(self.subband_of.cpu().numpy() == b).mean()) for b in range(self.subbands)],
            device=self.device,
        )
        # SRS bookkeeping: a ring of the newest estimates (newest first) with their slot times
        self.estimates = torch.zeros((num_envs, ring, K, M, S), dtype=torch.complex64, device=self.device)
        self.estimate_times = torch.zeros((num_envs, ring), dtype=torch.long, device=self.device)
        self.time = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.age_scale = float(self.uplink_delay + self.srs_period * H)

    # ------------------------------------------------------------------ channel state
    def true_channel(self) -> torch.Tensor:
        """The channel the next action is transmitted on, ``(num_envs, K, M, subcarriers)`` (a genie's view)."""
        return self.channel.response()

    def usable_estimates(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``history`` newest estimates at least ``uplink_delay`` slots old, ``(num_envs, history, K, M, S)``,
        and their ages in slots ``(num_envs, history)``."""
        rows, index = self._usable_slots()
        return self.estimates[rows, index], self.time[:, None] - self.estimate_times[rows, index]

    def _usable_slots(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Row and ring indices ``(num_envs, 1)``, ``(num_envs, history)`` of the usable estimates."""
        pending = (self.estimate_times > (self.time - self.uplink_delay)[:, None]).sum(1)
        index = pending[:, None] + torch.arange(self.history, device=self.device)
        return torch.arange(self.num_envs, device=self.device)[:, None], index

    def _newest_usable_age(self) -> torch.Tensor:
        """The age in slots of each cell's newest usable estimate, ``(num_envs,)``."""
        rows, index = self._usable_slots()
        return self.time - self.estimate_times[rows[:, 0], index[:, 0]]

    def _sound(self, mask: torch.Tensor) -> None:
        """An uplink SRS estimate of the current channel for the cells in ``mask``."""
        if self.device.type == "cpu" and not bool(mask.any()):
            return  # no cell sounds in this slot (the check is free on the CPU)
        noise = torch.randn(
            self.estimates.shape[:1] + self.estimates.shape[2:],
            dtype=torch.complex64,
            generator=self.generator,
            device=self.device,
        )
        estimate = self.channel.response() + math.sqrt(self.estimation_noise) * noise
        shifted = torch.cat([estimate[:, None], self.estimates[:, :-1]], 1)
        shifted_times = torch.cat([self.time[:, None], self.estimate_times[:, :-1]], 1)
        self.estimates = torch.where(mask.reshape(-1, 1, 1, 1, 1), shifted, self.estimates)
        self.estimate_times = torch.where(mask[:, None], shifted_times, self.estimate_times)

    def _advance(self) -> None:
        self.channel.advance()
        self.time = self.time + 1
        self._sound(self.time.remainder(self.srs_period) == 0)

    # ------------------------------------------------------------------ actions -> precoders
    def precoders(self, actions: torch.Tensor) -> torch.Tensor:
        """The precoders an action means, per subcarrier: ``(num_envs, subcarriers, M, K)``."""
        B, M, K, S = self.num_envs, self.antennas, self.users, self.subcarriers
        if self.action_mode == "precoder":
            parts = actions.float().reshape(B, self.subbands, M, K, 2)
            per_subband = normalise_power(torch.complex(parts[..., 0], parts[..., 1]))
            if self.subbands == 1:
                return per_subband.expand(B, S, M, K)
            return per_subband[:, self.subband_of]
        if self.action_mode == "codebook":
            beams = self.codebook[:, actions.long().reshape(B, K)]  # (M, B, K)
            return (beams.permute(1, 0, 2) / math.sqrt(K))[:, None].expand(B, S, M, K)
        actions = actions.float().reshape(B, 1 + K)
        alpha = optimal_regularisation(K, self.noise_power) * 100.0 ** actions[:, 0]
        powers = torch.softmax(2 * actions[:, 1:], -1)
        newest = self.usable_estimates()[0][:, 0].permute(0, 3, 1, 2)  # (B, S, K, M)
        beams = regularised_zero_forcing(newest, alpha[:, None])
        beams = beams / squared_magnitude(beams).sum(-2, keepdim=True).sqrt().clamp(min=1e-12)
        return beams * powers.sqrt()[:, None, None, :]

    def precoder_action(self, precoders: torch.Tensor) -> torch.Tensor:
        """The ``precoder``-mode action for precoders ``(num_envs, subcarriers, M, K)``: the
        subband centres' precoders, power-normalised, as real and imaginary parts."""
        chosen = normalise_power(precoders[:, self.subband_centres])
        return torch.stack([chosen.real, chosen.imag], -1).reshape(len(chosen), -1).clamp(-1.0, 1.0)

    # ------------------------------------------------------------------ observation
    def split_observation(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Unpack observations into estimates ``(B, history, K, M, S)`` (complex), SNR in dB ``(B,)``
        and ages in slots ``(B, history)``."""
        B, (H, K, M, S) = observations.shape[0], (self.history, self.users, self.antennas, self.subcarriers)
        parts = observations[:, : self._estimate_size].float().reshape(B, H, K, M, S, 2)
        snr_db = observations[:, self._estimate_size].float() * 10
        ages = observations[:, self._estimate_size + 1 :].float() * self.age_scale
        return torch.complex(parts[..., 0], parts[..., 1]), snr_db, ages

    def _observe(self) -> torch.Tensor:
        estimates, ages = self.usable_estimates()
        size = self._estimate_size
        obs = torch.empty((self.num_envs, size + 1 + self.history), device=self.device)
        # each part written into its columns (a cat of the parts costs one more copy of the estimates)
        torch.clamp(torch.view_as_real(estimates).reshape(self.num_envs, -1), -_OBS_CLIP, _OBS_CLIP, out=obs[:, :size])
        obs[:, size] = min(max(self.snr_db / 10, -_OBS_CLIP), _OBS_CLIP)
        torch.div(ages.float(), self.age_scale, out=obs[:, size + 1 :])
        return obs

    # ------------------------------------------------------------------ TorchVectorEnv
    def _reset_envs(self, mask: torch.Tensor) -> None:
        if self.device.type == "cpu" and not bool(mask.any()):
            return  # the base class calls this every step; on the CPU the check costs nothing
        low, high = self.speed_range
        speeds = low + (high - low) * torch.rand(self.num_envs, generator=self.generator, device=self.device)
        self.channel.reset(mask, doppler_frequency(speeds, self.carrier_frequency))
        # the SRS estimates taken before slot 0, at slots 0, -P, -2P, ...: `history` are usable at once
        ring = self.estimates.shape[1]
        past = self.channel.history(ring, self.srs_period)
        noise = torch.randn(past.shape, dtype=torch.complex64, generator=self.generator, device=self.device)
        self.estimates = torch.where(
            mask.reshape(-1, 1, 1, 1, 1), past + math.sqrt(self.estimation_noise) * noise, self.estimates
        )
        times = -self.srs_period * torch.arange(ring, device=self.device)
        self.estimate_times = torch.where(mask[:, None], times, self.estimate_times)
        self.time = self.time.masked_fill(mask, 0)

    def _step_envs(self, actions: torch.Tensor):
        precoders = self.precoders(actions)
        channel = self.channel.response().permute(0, 3, 1, 2)  # (B, S, K, M)
        rates = user_rates(channel, precoders, self.noise_power).mean(1)  # (B, K)
        age = self._newest_usable_age().float() * self.slot_duration * 1e3
        if self.reward_name == "sum_rate":
            rewards = rates.sum(-1)
        elif self.reward_name == "min_rate":
            rewards = rates.min(-1).values
        else:
            rewards = torch.log(rates + 0.01).sum(-1)
        info = {"sum_rate": rates.sum(-1), "min_rate": rates.min(-1).values, "csi_age_ms": age, "user_rates": rates}
        self._advance()
        return rewards, torch.zeros(self.num_envs, dtype=torch.bool, device=self.device), info
