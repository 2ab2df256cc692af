"""Sionna's 3GPP TR 38.901 TDL channels as the env's fading process (``fading="sionna"``).

Sionna (``pip install 'ctrlgym[sionna]'``: ``sionna-no-rt``, PyTorch) generates each link's taps
with its own sum-of-sinusoids TDL model (``sionna.phy.channel.tr38901.TDL``); this module turns
them into the same frequency responses as :class:`.channels.ChannelProcess`, with the same
interface, so every baseline and agent runs on Sionna's channels unchanged.

A reset draws, for every cell, one trajectory of ``past_slots + future_slots + 1`` slots (the SRS
history before slot 0 and the episode after it) at the cell's speed; ``advance`` moves along it. Sionna's generator is
seeded from the env's, so the same seed gives the same channels. A reset whose cells have
different speeds calls Sionna once per speed (a host sync at reset, never in a plain step).
"""

from __future__ import annotations

import math

import torch

from ctrlgym.envs.beamforming.channels import SPEED_OF_LIGHT, jakes_correlation

__all__ = ["SionnaTDLProcess", "SIONNA_MODELS"]

#: ctrlgym's profile names -> Sionna's TDL models (TR 38.901 Tables 7.7.2-1 to -3)
SIONNA_MODELS = {"tdl_a": "A", "tdl_b": "B", "tdl_c": "C"}


def _sionna():
    try:
        from sionna.phy import config
        from sionna.phy.channel.tr38901 import TDL
    except ImportError:
        raise ImportError(
            "fading='sionna' needs Sionna: pip install 'ctrlgym[sionna]' (sionna-no-rt, Python >= 3.11)"
        ) from None
    return config, TDL


class SionnaTDLProcess:
    """The channels of ``num_envs`` cells (``users`` single-antenna users, ``antennas`` at the base
    station) from Sionna's TDL model ``profile`` (``tdl_a``, ``tdl_b``, ``tdl_c``), stepped a slot at a time.

    The interface of :class:`.channels.ChannelProcess`: ``reset(mask, doppler)``, ``advance()``,
    ``history(count, spacing)``, ``response()``, ``correlation(lags)`` (Jakes' J0, which Sionna's
    TDL follows, ``sionna.phy.ofdm.tdl_time_cov_mat``) and ``doppler``.
    """

    fading = "sionna"

    def __init__(
        self,
        num_envs: int,
        users: int,
        antennas: int,
        subcarriers: int,
        profile: str,
        *,
        delay_spread: float,
        carrier_frequency: float,
        subcarrier_spacing: float,
        slot_duration: float,
        past_slots: int,
        future_slots: int,
        sinusoids: int = 20,
        generator: torch.Generator,
        device: torch.device,
    ) -> None:
        if profile not in SIONNA_MODELS:
            raise ValueError(
                f"fading='sionna' needs one of the TDL profiles {tuple(SIONNA_MODELS)}, got channel={profile!r}"
            )
        _sionna()  # fails early, naming the extra, where Sionna is missing (not kept: Sionna's global config must not be pickled with the env)
        self.model, self.delay_spread, self.carrier_frequency = (
            SIONNA_MODELS[profile],
            float(delay_spread),
            float(carrier_frequency),
        )
        self.num_envs, self.users, self.antennas, self.subcarriers = num_envs, users, antennas, subcarriers
        self.subcarrier_spacing, self.slot_duration, self.sinusoids = (
            float(subcarrier_spacing),
            float(slot_duration),
            int(sinusoids),
        )
        self.start, self.horizon = (
            int(past_slots),
            int(past_slots) + int(future_slots) + 1,
        )  # slot `start` is "now" at a reset
        self.generator, self.device = generator, device
        self.doppler = torch.zeros(num_envs, device=device)
        self.trajectory = torch.zeros(
            (num_envs, self.horizon, users, antennas, subcarriers), dtype=torch.complex64, device=device
        )
        self.now = torch.zeros(num_envs, dtype=torch.long, device=device)

    def one_slot_correlation(self) -> torch.Tensor:
        return jakes_correlation(self.doppler, torch.tensor(self.slot_duration, device=self.device))

    def correlation(self, lag_slots: torch.Tensor) -> torch.Tensor:
        """Jakes' ``J0(2π f_D n Δt)`` per cell at integer lags ``(num_envs, ...)``: the time
        correlation of Sionna's TDL (non-line-of-sight models)."""
        doppler = self.doppler.reshape(-1, *[1] * (lag_slots.dim() - 1))
        return jakes_correlation(doppler, lag_slots.float() * self.slot_duration)

    def _generate(self, cells: int, speed: float) -> torch.Tensor:
        """``cells`` trajectories at ``speed`` m/s from Sionna: ``(cells, horizon, K, M, S)``."""
        model = _sionna()[1](
            self.model,
            delay_spread=self.delay_spread,
            carrier_frequency=self.carrier_frequency,
            num_sinusoids=self.sinusoids,
            min_speed=speed,
            max_speed=speed,
            num_rx_ant=1,
            num_tx_ant=self.antennas,
            device=str(self.device),
        )
        taps, delays = model(
            cells * self.users, self.horizon, 1.0 / self.slot_duration
        )  # (links, 1, 1, 1, M, L, T), (links, 1, 1, L)
        frequencies = torch.arange(self.subcarriers, device=self.device, dtype=torch.float64) * self.subcarrier_spacing
        to_subcarrier = torch.exp(-2j * math.pi * delays[:, 0, 0, :, None].double() * frequencies).to(
            torch.complex64
        )  # (links, L, S)
        response = torch.einsum("nmlt,nls->ntms", taps[:, 0, 0, 0], to_subcarrier)  # (links, T, M, S)
        return response.reshape(cells, self.users, self.horizon, self.antennas, self.subcarriers).transpose(1, 2)

    def reset(self, mask: torch.Tensor, doppler: torch.Tensor) -> None:
        """Fresh trajectories in the cells of ``mask``: ``past_slots`` of history, then the episode."""
        self.doppler = torch.where(mask, doppler, self.doppler)
        seed = int(torch.randint(0, 2**62, (1,), generator=self.generator, device=self.device).item())
        _sionna()[0].torch_rng(str(self.device)).manual_seed(seed)  # Sionna's draws follow the env's seed
        cells = torch.nonzero(mask).flatten()
        speeds = (self.doppler[cells] * SPEED_OF_LIGHT / self.carrier_frequency).tolist()
        for speed in sorted(set(speeds)):
            chosen = cells[torch.tensor([s == speed for s in speeds], device=self.device)]
            self.trajectory[chosen] = self._generate(len(chosen), speed)
        self.now = torch.where(mask, torch.full_like(self.now, self.start), self.now)

    def advance(self) -> None:
        """Move every cell one slot forward (the trajectory covers ``future_slots``: the env's episode)."""
        self.now = self.now + 1

    def _at(self, slots: torch.Tensor) -> torch.Tensor:
        index = (
            slots.clamp(0, self.horizon - 1)
            .reshape(-1, 1, 1, 1, 1)
            .expand(-1, 1, self.users, self.antennas, self.subcarriers)
        )
        return self.trajectory.gather(1, index)[:, 0]

    def history(self, count: int, spacing: int) -> torch.Tensor:
        """The responses now and ``spacing, 2·spacing, …`` slots ago, newest first ``(num_envs, count, K, M, S)``."""
        return torch.stack([self._at(self.now - i * spacing) for i in range(count)], 1)

    def response(self) -> torch.Tensor:
        """Frequency response ``H`` ``(num_envs, users, antennas, subcarriers)`` at the current slot."""
        return self._at(self.now)
