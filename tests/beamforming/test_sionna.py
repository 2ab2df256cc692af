"""Our channel models against Sionna's (the field's reference library), for the same parameters.

Needs the ``[sionna]`` extra (``sionna-no-rt``); skipped where it is not installed. Tolerances:
the tables and analytic correlations agree to float32 precision (1e-5); Monte Carlo estimates
from ``n`` independent links have a standard error of about ``1/√n`` and are held to 0.03.
"""

import math

import numpy as np
import pytest
import torch

sionna_channel = pytest.importorskip(
    "sionna.phy.channel.tr38901", reason="the [sionna] extra (sionna-no-rt) is not installed"
)
from sionna.phy import config as sionna_config  # noqa: E402
from sionna.phy.ofdm import tdl_freq_cov_mat, tdl_time_cov_mat  # noqa: E402

from ctrlgym.envs.beamforming import BeamformingEnv, ClassicPrecoder  # noqa: E402
from ctrlgym.envs.beamforming.channels import ChannelProcess, DelayProfile, doppler_frequency  # noqa: E402
from ctrlgym.envs.beamforming.sionna_channels import SIONNA_MODELS  # noqa: E402

CARRIER, SPACING, SLOT = 3.5e9, 30e3, 0.5e-3


pytestmark = pytest.mark.integration  # subprocesses, clusters or a wheel build: `make test`, not `make test-fast`


@pytest.mark.parametrize("profile", list(SIONNA_MODELS))
@pytest.mark.parametrize("delay_spread", [30e-9, 100e-9, 300e-9])
def test_power_delay_profiles_match_sionna(profile, delay_spread):
    """TR 38.901 Tables 7.7.2-1 to -3: the same tap delays (scaled by the delay spread) and normalised powers."""
    ours = DelayProfile.named(profile, delay_spread)
    theirs = sionna_channel.TDL(
        SIONNA_MODELS[profile], delay_spread=delay_spread, carrier_frequency=CARRIER, device="cpu"
    )
    np.testing.assert_allclose(ours.delays, theirs.delays.double().numpy(), rtol=1e-6, atol=1e-15)
    np.testing.assert_allclose(ours.powers, theirs.mean_powers.double().numpy(), rtol=1e-5)


def _channels(
    profile: str, fading: str, speed_kmh: float, cells: int, subcarriers: int, seed: int = 0
) -> ChannelProcess:
    generator = torch.Generator().manual_seed(seed)
    process = ChannelProcess(
        cells,
        1,
        1,
        subcarriers,
        DelayProfile.named(profile, 100e-9),
        subcarrier_spacing=SPACING,
        slot_duration=SLOT,
        fading=fading,
        generator=generator,
        device=torch.device("cpu"),
    )
    process.reset(torch.ones(cells, dtype=torch.bool), torch.full((cells,), doppler_frequency(speed_kmh, CARRIER)))
    return process


@pytest.mark.parametrize("profile", list(SIONNA_MODELS))
def test_frequency_correlation_matches_sionna(profile):
    """``E[H_u H_v*] = Σ_l p_l e^{−j2π Δf (u−v) τ_l}``: Sionna's ``tdl_freq_cov_mat``, analytically and
    in our sampled channels (20,000 links)."""
    subcarriers = 64
    reference = tdl_freq_cov_mat(
        SIONNA_MODELS[profile], SPACING, subcarriers, 100e-9, precision="double", device="cpu"
    ).numpy()
    ours = DelayProfile.named(profile, 100e-9)
    tau, power = np.array(ours.delays), np.array(ours.powers)
    lags = np.arange(subcarriers)[:, None] - np.arange(subcarriers)[None, :]
    analytic = (power[:, None, None] * np.exp(-2j * np.pi * SPACING * lags[None] * tau[:, None, None])).sum(0)
    np.testing.assert_allclose(analytic, reference, atol=1e-5)
    response = (
        _channels(profile, "sum_of_sinusoids", 30, 20_000, subcarriers).response()[:, 0, 0].to(torch.complex128).numpy()
    )  # (links, S)
    sampled = response.T @ response.conj() / len(response)
    assert np.abs(sampled - reference).max() < 0.03


@pytest.mark.parametrize("speed_kmh", [10, 30, 120])
def test_time_autocorrelation_matches_sionna(speed_kmh):
    """Sionna's TDL time covariance ``tdl_time_cov_mat`` (Jakes' J0) at lags of 0–12 slots: met by our
    default fading and by Sionna's own generator, sampled (8,000 links each)."""
    lags = 13
    reference = (
        tdl_time_cov_mat("A", speed_kmh / 3.6, CARRIER, SLOT, lags, precision="double", device="cpu").numpy()[0].real
    )
    process = _channels("tdl_a", "sum_of_sinusoids", speed_kmh, 8_000, 1)
    path = [process.response()[:, 0, 0, 0]]
    for _ in range(lags - 1):
        process.advance()
        path.append(process.response()[:, 0, 0, 0])
    ours = torch.stack(path, 1).to(torch.complex128)  # (links, lags)
    ours_correlation = (ours[:, :1].conj() * ours).mean(0).real.numpy()
    sionna_config.seed = 0  # Sionna's own sampling, seeded: same test, same draws
    model = sionna_channel.TDL(
        "A", delay_spread=100e-9, carrier_frequency=CARRIER, min_speed=speed_kmh / 3.6, device="cpu"
    )
    taps, _ = model(8_000, lags, 1 / SLOT)  # (links, 1, 1, 1, 1, L, T)
    theirs = taps[:, 0, 0, 0, 0].sum(1).to(torch.complex128)  # the response at subcarrier 0: Σ_l g_l
    theirs_correlation = (theirs[:, :1].conj() * theirs).mean(0).real.numpy()
    assert np.abs(ours_correlation - reference).max() < 0.03
    assert np.abs(theirs_correlation - reference).max() < 0.03


def test_the_env_runs_on_sionna_channels_with_our_rates():
    """``fading="sionna"``: the env on Sionna's TDL-A gives the baselines the rates it gives them on ours
    (RZF at 30 km/h on 128 cells × 60 slots, within 0.25 bit/s/Hz), and the same seed the same channels."""

    def mean_rate(fading: str, csi: str) -> float:
        env = BeamformingEnv(num_envs=128, channel="tdl_a", fading=fading, speed_kmh=30, max_episode_steps=60)
        policy, (observations, _) = ClassicPrecoder(env, "rzf", csi), env.reset(seed=1)
        total = 0.0
        for _ in range(60):
            observations, reward, *_ = env.step(policy(observations))
            total += float(reward.mean())
        return total / 60

    for csi in ("stale", "estimated", "perfect"):
        ours, theirs = mean_rate("sum_of_sinusoids", csi), mean_rate("sionna", csi)
        assert math.isclose(ours, theirs, abs_tol=0.25), (csi, ours, theirs)
    first = BeamformingEnv(num_envs=3, channel="tdl_a", fading="sionna", speed_kmh=[3, 120]).reset(seed=7)[0]
    again = BeamformingEnv(num_envs=3, channel="tdl_a", fading="sionna", speed_kmh=[3, 120]).reset(seed=7)[0]
    other = BeamformingEnv(num_envs=3, channel="tdl_a", fading="sionna", speed_kmh=[3, 120]).reset(seed=8)[0]
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_sionna_fading_needs_a_tdl_profile_and_an_episode_length():
    with pytest.raises(ValueError, match="fading='sionna' needs one of the TDL profiles"):
        BeamformingEnv(num_envs=1, channel="rayleigh", fading="sionna")
    with pytest.raises(ValueError, match="give max_episode_steps"):
        BeamformingEnv(num_envs=1, channel="tdl_a", fading="sionna", max_episode_steps=None)


def test_a_pickled_sionna_env_continues_as_the_original_across_a_reset():
    """Exact resume pickles the env: the copy must draw the same Sionna channels at its next reset
    (Sionna's generator is seeded from the env's at every reset, not kept with the env)."""
    import pickle

    env = BeamformingEnv(num_envs=4, channel="tdl_a", fading="sionna", speed_kmh=30, max_episode_steps=3)
    env.reset(seed=0)
    copy = pickle.loads(pickle.dumps(env))
    action = torch.zeros(4, env.single_action_space.shape[0])
    paths = [torch.stack([e.step(action)[0] for _ in range(5)]) for e in (env, copy)]  # an autoreset at the 4th step
    assert torch.equal(paths[0], paths[1])
