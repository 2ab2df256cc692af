"""Time-varying multi-user MIMO-OFDM channels, batched in torch.

Every link (user k, base-station antenna m) is a tapped delay line with taps ``g_l(t)``, each an
independent zero-mean complex Gaussian process of power ``p_l`` whose time correlation follows
Clarke/Jakes: ``E[g_l(t) g_l*(t − τ)] = p_l J0(2π f_D τ)`` with the maximum Doppler frequency
``f_D = v f_c / c``. The frequency response on subcarrier ``s`` is
``H_s = Σ_l g_l exp(−j 2π s Δf τ_l)``; the tap powers sum to 1, so every entry of ``H`` has
unit variance. Antennas are uncorrelated (rich scattering).

Two fading processes:

* ``ar1`` – the first-order Gauss–Markov model ``g(t+Δt) = ρ g(t) + √(1 − ρ²) √p w``,
  ``w ~ CN(0, 1)``, with ``ρ = J0(2π f_D Δt)`` (Baddour & Beaulieu, IEEE TWC 2005): exact at
  lag one slot, ``ρ^n`` at lag ``n``.
* ``sum_of_sinusoids`` – ``g(t) = √(p/N) Σ_n exp(j(2π f_D cos(θ_n) t + φ_n))`` with ``θ_n, φ_n``
  uniform (Zheng & Xiao, IEEE Commun. Lett. 2002): its ensemble autocorrelation is
  ``J0(2π f_D τ)`` at every lag.

Power-delay profiles: ``rayleigh`` (one tap, flat fading) and the NLOS tapped-delay-line models
TDL-A, TDL-B and TDL-C of 3GPP TR 38.901 (Table 7.7.2-1 to -3), whose normalised delays are
scaled by the RMS ``delay_spread`` (Section 7.7.3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import torch

__all__ = ["PROFILES", "FADING", "DelayProfile", "ChannelProcess", "doppler_frequency", "jakes_correlation"]

SPEED_OF_LIGHT = 299_792_458.0
FADING = ("ar1", "sum_of_sinusoids")

# 3GPP TR 38.901 V17, Table 7.7.2-1 (TDL-A), 7.7.2-2 (TDL-B), 7.7.2-3 (TDL-C): normalised delay, power (dB)
_TDL_TABLES = {
    "tdl_a": (
        [
            0.0,
            0.3819,
            0.4025,
            0.5868,
            0.4610,
            0.5375,
            0.6708,
            0.5750,
            0.7618,
            1.5375,
            1.8978,
            2.2242,
            2.1718,
            2.4942,
            2.5119,
            3.0582,
            4.0810,
            4.4579,
            4.5695,
            4.7966,
            5.0066,
            5.3043,
            9.6586,
        ],
        [
            -13.4,
            0.0,
            -2.2,
            -4.0,
            -6.0,
            -8.2,
            -9.9,
            -10.5,
            -7.5,
            -15.9,
            -6.6,
            -16.7,
            -12.4,
            -15.2,
            -10.8,
            -11.3,
            -12.7,
            -16.2,
            -18.3,
            -18.9,
            -16.6,
            -19.9,
            -29.7,
        ],
    ),
    "tdl_b": (
        [
            0.0,
            0.1072,
            0.2155,
            0.2095,
            0.2870,
            0.2986,
            0.3752,
            0.5055,
            0.3681,
            0.3697,
            0.5700,
            0.5283,
            1.1021,
            1.2756,
            1.5474,
            1.7842,
            2.0169,
            2.8294,
            3.0219,
            3.6187,
            4.1067,
            4.2790,
            4.7834,
        ],
        [
            0.0,
            -2.2,
            -4.0,
            -3.2,
            -9.8,
            -1.2,
            -3.4,
            -5.2,
            -7.6,
            -3.0,
            -8.9,
            -9.0,
            -4.8,
            -5.7,
            -7.5,
            -1.9,
            -7.6,
            -12.2,
            -9.8,
            -11.4,
            -14.9,
            -9.2,
            -11.3,
        ],
    ),
    "tdl_c": (
        [
            0.0,
            0.2099,
            0.2219,
            0.2329,
            0.2176,
            0.6366,
            0.6448,
            0.6560,
            0.6584,
            0.7935,
            0.8213,
            0.9336,
            1.2285,
            1.3083,
            2.1704,
            2.7105,
            4.2589,
            4.6003,
            5.4902,
            5.6077,
            6.3065,
            6.6374,
            7.0427,
            8.6523,
        ],
        [
            -4.4,
            -1.2,
            -3.5,
            -5.2,
            -2.5,
            0.0,
            -2.2,
            -3.9,
            -7.4,
            -7.1,
            -10.7,
            -11.1,
            -5.1,
            -6.8,
            -8.7,
            -13.2,
            -13.9,
            -13.9,
            -15.8,
            -17.1,
            -16.0,
            -15.7,
            -21.6,
            -22.8,
        ],
    ),
}
PROFILES = ("rayleigh", *_TDL_TABLES)


Speed = TypeVar("Speed", float, torch.Tensor)


def doppler_frequency(speed_kmh: Speed, carrier_frequency: float) -> Speed:
    """Maximum Doppler shift ``f_D = v f_c / c`` in Hz for a speed in km/h."""
    return speed_kmh / 3.6 * carrier_frequency / SPEED_OF_LIGHT


def jakes_correlation(doppler_hz: torch.Tensor, lag_seconds: torch.Tensor) -> torch.Tensor:
    """Clarke/Jakes autocorrelation ``J0(2π f_D τ)`` of a unit-power fading process."""
    return torch.special.bessel_j0(2 * math.pi * doppler_hz * lag_seconds)


@dataclass(frozen=True)
class DelayProfile:
    """Tap delays (seconds) and linear powers summing to 1."""

    delays: tuple[float, ...]
    powers: tuple[float, ...]

    @classmethod
    def named(cls, name: str, delay_spread: float = 100e-9) -> DelayProfile:
        """``rayleigh`` (one tap) or a TR 38.901 TDL model with RMS delay spread ``delay_spread``."""
        if name == "rayleigh":
            return cls((0.0,), (1.0,))
        if name not in _TDL_TABLES:
            raise ValueError(f"unknown channel profile {name!r}; choose one of {PROFILES}")
        delays, powers_db = _TDL_TABLES[name]
        linear = [10 ** (p / 10) for p in powers_db]
        total = sum(linear)
        return cls(tuple(d * delay_spread for d in delays), tuple(p / total for p in linear))


class ChannelProcess:
    """The channels of ``num_envs`` cells, each with ``users`` single-antenna users and an
    ``antennas``-element base station, stepped one slot at a time.

    ``response()`` is the current frequency response ``(num_envs, users, antennas, subcarriers)``
    (complex64). ``doppler`` holds each cell's maximum Doppler frequency (Hz), redrawn on reset.
    """

    def __init__(
        self,
        num_envs: int,
        users: int,
        antennas: int,
        subcarriers: int,
        profile: DelayProfile,
        *,
        subcarrier_spacing: float,
        slot_duration: float,
        fading: str = "ar1",
        sinusoids: int = 16,
        generator: torch.Generator,
        device: torch.device,
    ) -> None:
        if fading not in FADING:
            raise ValueError(f"unknown fading process {fading!r}; choose one of {FADING}")
        self.shape = (num_envs, users, antennas, len(profile.delays))
        self.fading, self.sinusoids, self.slot_duration = fading, int(sinusoids), float(slot_duration)
        self.generator, self.device = generator, device
        self.tap_std = torch.tensor(profile.powers, device=device).sqrt()
        delays = torch.tensor(profile.delays, dtype=torch.float64, device=device)
        frequencies = torch.arange(subcarriers, dtype=torch.float64, device=device) * subcarrier_spacing
        self.tap_to_subcarrier = torch.exp(-2j * math.pi * delays[:, None] * frequencies[None, :]).to(
            torch.complex64
        )  # (L, S)
        self.doppler = torch.zeros(num_envs, device=device)
        self.taps = torch.zeros(self.shape, dtype=torch.complex64, device=device)
        if (
            fading == "sum_of_sinusoids"
        ):  # per sinusoid: its phasor e^{j(ω_n t + φ_n)} and its turn per slot e^{jω_n Δt}
            self.phasors = torch.zeros((*self.shape, self.sinusoids), dtype=torch.complex64, device=device)
            self.turns = torch.zeros((*self.shape, self.sinusoids), dtype=torch.complex64, device=device)

    def one_slot_correlation(self) -> torch.Tensor:
        """``ρ = J0(2π f_D Δt)`` per cell, ``(num_envs,)``."""
        return jakes_correlation(self.doppler, torch.tensor(self.slot_duration, device=self.device))

    def correlation(self, lag_slots: torch.Tensor) -> torch.Tensor:
        """The process's time correlation at integer lags ``(num_envs, ...)`` slots: ``ρ^|n|``
        for ``ar1``, ``J0(2π f_D n Δt)`` for ``sum_of_sinusoids``."""
        doppler = self.doppler.reshape(-1, *[1] * (lag_slots.dim() - 1))
        if self.fading == "ar1":
            return self.one_slot_correlation().reshape_as(doppler) ** lag_slots.abs().float()
        return jakes_correlation(doppler, lag_slots.float() * self.slot_duration)

    def _gaussian(self, shape) -> torch.Tensor:
        return torch.randn(shape, dtype=torch.complex64, generator=self.generator, device=self.device)

    def _uniform(self, shape) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator, device=self.device)

    def reset(self, mask: torch.Tensor, doppler: torch.Tensor) -> None:
        """Fresh channels (drawn from the stationary distribution) in the cells of ``mask``."""
        self.doppler = torch.where(mask, doppler, self.doppler)
        cell = mask.reshape(-1, 1, 1, 1)
        if self.fading == "ar1":
            self.taps = torch.where(cell, self._gaussian(self.shape) * self.tap_std, self.taps)
            return
        shape, cell = self.phasors.shape, cell[..., None]
        phases = 2 * math.pi * self._uniform(shape)
        omega_slot = (
            2
            * math.pi
            * self.doppler.reshape(-1, 1, 1, 1, 1)
            * self.slot_duration
            * torch.cos(2 * math.pi * self._uniform(shape))
        )
        self.phasors = torch.where(cell, torch.polar(torch.ones_like(phases), phases), self.phasors)
        self.turns = torch.where(cell, torch.polar(torch.ones_like(omega_slot), omega_slot), self.turns)
        self.taps = torch.where(cell[..., 0], self._sinusoid_taps(), self.taps)

    def _sinusoid_taps(self) -> torch.Tensor:
        return self.phasors.sum(-1) * (self.tap_std / math.sqrt(self.sinusoids))

    def advance(self) -> None:
        """Move every cell one slot forward."""
        if self.fading == "ar1":
            rho = self.one_slot_correlation().reshape(-1, 1, 1, 1)
            self.taps = rho * self.taps + (1 - rho**2).clamp(min=0).sqrt() * self._gaussian(self.shape) * self.tap_std
        else:
            self.phasors.mul_(
                self.turns
            )  # in place: a fresh (cells, users, antennas, taps, sinusoids) tensor per slot cost 6x the product
            self.taps = self._sinusoid_taps()

    def history(self, count: int, spacing: int) -> torch.Tensor:
        """The frequency responses now and ``spacing, 2·spacing, …`` slots ago, newest first:
        ``(num_envs, count, users, antennas, subcarriers)``, drawn from the process's past given
        its present (``ar1`` run backwards, which has the same law: the process is reversible;
        ``sum_of_sinusoids`` turned back exactly). The state is left as it is."""
        taps, past = self.taps, [self.taps]
        if self.fading == "ar1":
            rho = self.one_slot_correlation().reshape(-1, 1, 1, 1) ** spacing
            for _ in range(count - 1):
                taps = rho * taps + (1 - rho**2).clamp(min=0).sqrt() * self._gaussian(self.shape) * self.tap_std
                past.append(taps)
        else:
            back = self.turns.conj() ** spacing
            phasors = self.phasors
            for _ in range(count - 1):
                phasors = phasors * back
                past.append(phasors.sum(-1) * (self.tap_std / math.sqrt(self.sinusoids)))
        return torch.stack(past, 1) @ self.tap_to_subcarrier

    def response(self) -> torch.Tensor:
        """Frequency response ``H`` ``(num_envs, users, antennas, subcarriers)``."""
        if self.tap_to_subcarrier.shape[0] == 1:  # one tap (flat fading): a product, 5x faster than a matmul
            return self.taps * self.tap_to_subcarrier[0]
        return self.taps @ self.tap_to_subcarrier
