"""Channel ageing and the classic precoders checked against their textbook properties."""

import math

import pytest
import torch

from ctrlgym.envs.beamforming import BeamformingEnv, ChannelProcess, DelayProfile, doppler_frequency, jakes_correlation
from ctrlgym.envs.beamforming.precoding import (
    mrt,
    normalise_power,
    optimal_regularisation,
    regularised_zero_forcing,
    user_rates,
    wiener_weights,
    zero_forcing,
)


def channel_trace(
    fading: str, slots: int, cells: int = 512, speed_kmh: float = 60.0, seed: int = 0
) -> tuple[torch.Tensor, float]:
    """Flat Rayleigh channels of many cells over ``slots`` slots: ``(slots, entries)`` and f_D."""
    generator = torch.Generator().manual_seed(seed)
    process = ChannelProcess(
        cells,
        2,
        4,
        1,
        DelayProfile.named("rayleigh"),
        subcarrier_spacing=30e3,
        slot_duration=0.5e-3,
        fading=fading,
        generator=generator,
        device=torch.device("cpu"),
    )
    doppler = doppler_frequency(speed_kmh, 3.5e9)
    process.reset(torch.ones(cells, dtype=torch.bool), torch.full((cells,), doppler))
    trace = []
    for _ in range(slots):
        trace.append(process.response().flatten())
        process.advance()
    return torch.stack(trace), doppler


def empirical_correlation(trace: torch.Tensor, lag: int) -> float:
    return float((trace[lag:] * trace[: len(trace) - lag].conj()).real.mean())


@pytest.mark.parametrize("lag", [0, 2, 5, 10, 20])
def test_sum_of_sinusoids_autocorrelation_is_the_jakes_bessel_function(lag):
    trace, doppler = channel_trace("sum_of_sinusoids", slots=40)
    expected = float(jakes_correlation(torch.tensor(doppler), torch.tensor(lag * 0.5e-3)))
    # 4096 links x (40 - lag) products: the ensemble mean is within 0.04 of J0
    assert empirical_correlation(trace, lag) == pytest.approx(expected, abs=0.04)


def test_ar1_matches_jakes_at_one_slot_and_decays_geometrically():
    trace, doppler = channel_trace("ar1", slots=40)
    rho = float(jakes_correlation(torch.tensor(doppler), torch.tensor(0.5e-3)))
    assert empirical_correlation(trace, 0) == pytest.approx(1.0, abs=0.03)
    assert empirical_correlation(trace, 1) == pytest.approx(rho, abs=0.03)
    assert empirical_correlation(trace, 8) == pytest.approx(rho**8, abs=0.04)


def test_slower_users_keep_their_channel_longer():
    slow, _ = channel_trace("sum_of_sinusoids", slots=12, speed_kmh=3.0)
    fast, _ = channel_trace("sum_of_sinusoids", slots=12, speed_kmh=120.0)
    assert empirical_correlation(slow, 10) > 0.95 > 0.5 > empirical_correlation(fast, 10)


@pytest.mark.parametrize("name", ["tdl_a", "tdl_b", "tdl_c"])
def test_tdl_profiles_have_unit_power_and_the_frequency_correlation_of_their_taps(name):
    profile = DelayProfile.named(name, delay_spread=300e-9)
    assert sum(profile.powers) == pytest.approx(1.0)
    generator = torch.Generator().manual_seed(1)
    process = ChannelProcess(
        256,
        2,
        4,
        24,
        profile,
        subcarrier_spacing=30e3,
        slot_duration=0.5e-3,
        generator=generator,
        device=torch.device("cpu"),
    )
    process.reset(torch.ones(256, dtype=torch.bool), torch.full((256,), 50.0))
    response = process.response()  # (cells, users, antennas, subcarriers)
    assert response.abs().square().mean() == pytest.approx(1.0, abs=0.05)
    gap = 8  # subcarriers apart: correlation = Σ p_l exp(-j 2π gap Δf τ_l)
    empirical = (response[..., gap:] * response[..., :-gap].conj()).mean()
    delays, powers = torch.tensor(profile.delays), torch.tensor(profile.powers)
    expected = (powers * torch.exp(-2j * math.pi * gap * 30e3 * delays)).sum()
    assert abs(complex(empirical) - complex(expected)) < 0.06


def random_channel(batch=64, users=4, antennas=8, seed=0) -> torch.Tensor:
    return torch.randn((batch, users, antennas), dtype=torch.complex64, generator=torch.Generator().manual_seed(seed))


def test_zero_forcing_on_perfect_csi_leaves_no_inter_user_interference():
    channel = random_channel()
    effective = channel @ zero_forcing(channel)  # (batch, K, K)
    off_diagonal = effective - torch.diag_embed(effective.diagonal(dim1=-2, dim2=-1))
    assert off_diagonal.abs().max() < 1e-4
    assert effective.diagonal(dim1=-2, dim2=-1).abs().min() > 1e-2
    assert torch.linalg.matrix_norm(zero_forcing(channel)) == pytest.approx(torch.ones(64), abs=1e-5)


def direction_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    """1 − |<a, b>| for power-normalised precoders: 0 when they point the same way."""
    inner = (normalise_power(a).conj() * normalise_power(b)).sum((-2, -1)).abs()
    return float((1 - inner).max())


def test_rzf_tends_to_mrt_at_low_snr_and_to_zf_at_high_snr():
    channel, users = random_channel(), 4
    low_snr = regularised_zero_forcing(channel, optimal_regularisation(users, noise_power=10 ** (30 / 10)))  # -30 dB
    high_snr = regularised_zero_forcing(channel, optimal_regularisation(users, noise_power=10 ** (-50 / 10)))  # 50 dB
    assert direction_gap(low_snr, mrt(channel)) < 1e-3
    assert direction_gap(high_snr, zero_forcing(channel)) < 1e-3
    assert direction_gap(low_snr, zero_forcing(channel)) > 0.05  # the two limits differ


def test_rzf_beats_mrt_and_zf_at_moderate_snr_on_average():
    channel, noise = random_channel(batch=512), 10 ** (-10 / 10)
    rate = {
        name: float(user_rates(channel, precoder, noise).sum(-1).mean())
        for name, precoder in (
            ("mrt", mrt(channel)),
            ("zf", zero_forcing(channel)),
            ("rzf", regularised_zero_forcing(channel, optimal_regularisation(4, noise))),
        )
    }
    assert rate["rzf"] > max(rate["mrt"], rate["zf"])


def test_user_rates_of_a_single_user_is_the_beamforming_gain():
    channel = random_channel(batch=8, users=1)
    noise = 0.1
    rates = user_rates(channel, mrt(channel), noise)[:, 0]
    expected = torch.log2(1 + torch.linalg.vector_norm(channel[:, 0], dim=-1) ** 2 / noise)
    torch.testing.assert_close(rates, expected, rtol=1e-5, atol=1e-5)


def test_wiener_weights_reduce_to_shrinkage_for_one_noisy_sample():
    ages = torch.tensor([[3]])
    rho = 0.8
    weights = wiener_weights(lambda lags: rho ** lags.abs().float(), ages, noise_variance=0.25)
    assert float(weights) == pytest.approx(rho**3 / 1.25, rel=1e-5)


def test_usable_estimates_are_noisy_copies_of_the_channel_uplink_delay_slots_or_more_ago():
    env = BeamformingEnv(4, srs_snr_db=200.0, srs_period=3, uplink_delay=2, history=3, fading="sum_of_sinusoids")
    env.reset(seed=0)
    past = {}
    actions = torch.zeros(4, env.single_action_space.shape[0])
    for _ in range(12):
        past[int(env.time[0])] = env.true_channel().clone()
        estimates, ages = env.usable_estimates()
        assert bool(((ages >= 2) & (ages <= 2 + 3 - 1 + 3 * 2)).all())
        assert torch.equal(ages[:, 1:] - ages[:, :-1], torch.full((4, 2), 3))
        newest_time = int(env.time[0] - ages[0, 0])
        if newest_time in past:
            torch.testing.assert_close(estimates[:, 0], past[newest_time], atol=1e-4, rtol=0)
        env.step(actions)


@pytest.mark.parametrize("snr_db", [20, 30])
def test_float32_rates_match_float64_with_interference_summed_directly(snr_db):
    """RZF/ZF through linear solves (no inverse, no pinv) and interference summed over the other beams:
    float32 sum rates within 1e-5 of float64 at M=16, K=4; at K=M=8 for 95% of channels (ill-conditioned
    channels reach ~6e-5: float32 precoders of a badly conditioned H)."""
    import math

    from ctrlgym.envs.beamforming.precoding import (
        optimal_regularisation,
        regularised_zero_forcing,
        user_rates,
        zero_forcing,
    )

    generator = torch.Generator().manual_seed(0)
    noise = 10 ** (-snr_db / 10)
    for users, antennas, quantile in ((4, 16, 1.0), (8, 8, 0.95)):
        shape = (2000, users, antennas)
        channel = torch.complex(
            torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)
        ) / math.sqrt(2)
        for precoder in (
            lambda h, users=users: regularised_zero_forcing(h, optimal_regularisation(users, noise)),
            zero_forcing,
        ):
            low = user_rates(channel, precoder(channel), noise).sum(-1).double()
            high = user_rates(channel.to(torch.complex128), precoder(channel.to(torch.complex128)), noise).sum(-1)
            assert torch.quantile(((low - high) / high).abs(), quantile) < 1e-5
        gains = (channel @ zero_forcing(channel)).abs().square()
        off_diagonal = (gains * (1 - torch.eye(users))).sum(-1)
        assert torch.quantile(off_diagonal / gains.diagonal(dim1=-2, dim2=-1), 0.99) < 1e-5  # ZF leaves no interference


def test_the_default_env_ages_its_channel_as_jakes_at_the_csi_ages_it_uses():
    """BeamformingEnv()'s autocorrelation E[h(t) h*(t+k)] / E|h|² matches J0(2π f_D k Δt) within 0.02
    at every CSI age the env uses (uplink_delay .. uplink_delay + srs_period·history)."""
    import torch

    from ctrlgym.envs.beamforming import BeamformingEnv, doppler_frequency, jakes_correlation

    env = BeamformingEnv(num_envs=4096)  # 30 km/h, 3.5 GHz, 0.5 ms slots
    env.reset(seed=0)
    ages = range(env.uplink_delay, env.uplink_delay + env.srs_period * env.history + 1)
    start = env.true_channel().clone()
    correlations = {}
    for lag in range(1, max(ages) + 1):
        env.channel.advance()
        if lag in ages:
            now = env.true_channel()
            correlations[lag] = float((now * start.conj()).mean().real / start.abs().square().mean())
    doppler = doppler_frequency(30.0, env.carrier_frequency)
    for lag, measured in correlations.items():
        expected = float(jakes_correlation(torch.tensor(doppler), torch.tensor(lag * env.slot_duration)))
        assert abs(measured - expected) < 0.02, (lag, measured, expected)
    assert env.channel.fading == "sum_of_sinusoids"
