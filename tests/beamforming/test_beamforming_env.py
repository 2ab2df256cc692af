"""BeamformingEnv: actions, ageing CSI, baselines, the CNN predictor and a run end to end."""

import pytest
import torch
import yaml

from ctrlgym.envs.beamforming import BeamformingEnv, BeamSweep, ChannelPredictor, ClassicPrecoder, RandomPrecoder
from ctrlgym.experiment.config import ConfigError, load_config
from ctrlgym.experiment.evaluation import evaluate_policy, evaluate_run
from ctrlgym.experiment.reports.run_report import write_report
from ctrlgym.experiment.training import train

ENV_ID = "ctrlgym/BeamformingEnv-v0"


def mean_sum_rate(make_policy, episodes=16, seed=3, **kwargs) -> float:
    return evaluate_policy(make_policy, ENV_ID, episodes=episodes, seed=seed, max_episode_steps=40, **kwargs)[
        "metrics"
    ]["sum_rate"]


@pytest.mark.parametrize("speed", [10.0, 60.0])
def test_perfect_csi_beats_stale_csi_and_prediction_sits_between(speed):
    kwargs = {"speed_kmh": speed, "fading": "sum_of_sinusoids"}
    rate = {
        csi: mean_sum_rate(lambda env, c=csi: ClassicPrecoder(env, "rzf", c), **kwargs)
        for csi in ("stale", "estimated", "predicted", "perfect")
    }
    assert rate["perfect"] > rate["predicted"] > rate["stale"]
    assert (
        rate["stale"] < rate["estimated"] <= rate["predicted"] + 0.02
    )  # the blind predictor: no better than the genie
    robust = mean_sum_rate(lambda env: ClassicPrecoder(env, "rzf_robust", "predicted"), **kwargs)
    assert robust > rate["predicted"]  # the prediction error as extra noise in RZF's regularisation pays


@pytest.mark.parametrize("speed", [3.0, 30.0, 120.0])
def test_the_doppler_is_estimated_from_the_srs_history(speed):
    """Correlation matching over 4 estimates of 4 users x 8 antennas: the median cell within 5% of the true Doppler."""
    from ctrlgym.envs.beamforming.precoding import estimate_doppler

    env = BeamformingEnv(256, antennas=8, users=4, speed_kmh=speed)
    estimates, _, ages = env.split_observation(env.reset(seed=0)[0])
    estimated = estimate_doppler(
        estimates, ages.round().long(), env.estimation_noise, env.slot_duration, max_doppler=500.0
    )
    error = (estimated / env.channel.doppler - 1).abs()
    assert float(error.median()) < 0.05


def test_csi_ages_hurt_more_at_higher_speed():
    stale = {
        speed: mean_sum_rate(lambda env: ClassicPrecoder(env, "zf", "stale"), speed_kmh=speed) for speed in (3.0, 120.0)
    }
    assert stale[3.0] > 2 * stale[120.0]


def test_every_action_mode_steps_and_beats_random(device):
    for mode, make in (("codebook", BeamSweep), ("precoder", lambda env: ClassicPrecoder(env, "mrt", "stale"))):
        chosen = mean_sum_rate(make, action_mode=mode, device=device, speed_kmh=3.0)
        random = mean_sum_rate(lambda env: RandomPrecoder(env, 0), action_mode=mode, device=device, speed_kmh=3.0)
        assert chosen > random + 0.5, mode


def test_rzf_action_mode_sets_regularisation_and_power_split():
    env = BeamformingEnv(8, action_mode="rzf", users=3, antennas=6)
    env.reset(seed=0)
    equal = env.precoders(torch.zeros(8, 4))  # (B, S, M, K)
    torch.testing.assert_close(equal.abs().square().sum(-2), torch.full((8, 1, 3), 1 / 3), atol=1e-5, rtol=0)
    skewed = env.precoders(torch.tensor([[0.0, 1.0, -1.0, -1.0]]).expand(8, 4))
    powers = skewed.abs().square().sum(-2)[:, 0]
    assert bool((powers[:, 0] > 10 * powers[:, 1]).all())
    assert powers.sum(-1) == pytest.approx(torch.ones(8), abs=1e-5)


def test_precoder_actions_round_trip_per_subband():
    env = BeamformingEnv(2, channel="tdl_a", subcarriers=12, subbands=3, antennas=4, users=2)
    env.reset(seed=0)
    assert env.single_action_space.shape == (3 * 4 * 2 * 2,)
    action = ClassicPrecoder(env, "zf", "perfect")(env.reset(seed=0)[0])
    precoders = env.precoders(action)
    assert precoders.shape == (2, 12, 4, 2)
    torch.testing.assert_close(env.precoder_action(precoders), action)
    assert torch.equal(precoders[:, 0], precoders[:, 3]) and not torch.equal(precoders[:, 3], precoders[:, 4])


def test_same_seed_same_channels_and_speeds_drawn_from_the_range():
    first, second = (
        BeamformingEnv(6, speed_kmh=[3.0, 120.0], fading=f) for f in ("sum_of_sinusoids", "sum_of_sinusoids")
    )
    obs_a, _ = first.reset(seed=7)
    obs_b, _ = second.reset(seed=7)
    assert torch.equal(obs_a, obs_b)
    speeds = first.channel.doppler * 3.6 * 299_792_458.0 / 3.5e9
    assert bool(((speeds >= 3.0 - 1e-3) & (speeds <= 120.0 + 1e-3)).all()) and speeds.std() > 1.0
    action = first.action_space.sample()
    assert torch.equal(first.step(action)[1], second.step(action)[1])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"channel": "tdl_z"}, "unknown channel"),
        ({"users": 9, "antennas": 8}, "must not exceed antennas"),
        ({"speed_kmh": [50, 10]}, "speed_kmh"),
        ({"subbands": 4, "subcarriers": 2}, "subbands"),
        ({"uplink_delay": -1}, "uplink_delay"),
    ],
)
def test_bad_arguments_name_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BeamformingEnv(2, **kwargs)


def test_nan_or_out_of_range_actions_are_refused():
    env = BeamformingEnv(2, antennas=4, users=2)
    env.reset(seed=0)
    bad = torch.zeros(2, env.single_action_space.shape[0])
    bad[0, 3] = float("nan")
    with pytest.raises(ValueError, match="BeamformingEnv"):
        env.step(bad)
    codebook = BeamformingEnv(2, antennas=4, users=2, action_mode="codebook")
    codebook.reset(seed=0)
    with pytest.raises(ValueError, match="BeamformingEnv"):
        codebook.step(torch.tensor([[0, 4], [1, 1]]))


def test_baselines_refuse_the_wrong_action_mode():
    with pytest.raises(ValueError, match="action_mode='precoder'"):
        ClassicPrecoder(BeamformingEnv(1, action_mode="rzf"), "zf", "stale")
    with pytest.raises(ValueError, match="action_mode='codebook'"):
        BeamSweep(BeamformingEnv(1))


def test_an_untrained_predictor_is_the_blind_wiener_predictor():
    """``start_from="wiener"``: before training, the net's prediction is the blind Wiener prediction
    (Doppler estimated from the estimates), so it precodes as the ``rzf_estimated`` baseline does."""
    env = BeamformingEnv(32, antennas=4, users=2, speed_kmh=30.0)
    observations, _ = env.reset(seed=3)
    agent = ChannelPredictor(env, seed=0)
    classic = ClassicPrecoder(env, "rzf", "estimated")
    assert torch.allclose(agent.predict(observations), classic.channel_state(observations), atol=1e-6)
    stale = ClassicPrecoder(env, "rzf", "stale").channel_state(observations)
    assert (agent.predict(observations) - stale).abs().max() > 0.1  # and not the stale estimate


def test_channel_predictor_training_beats_the_stale_estimate_it_starts_from(tmp_path):
    env = BeamformingEnv(64, antennas=4, users=2, fading="sum_of_sinusoids", speed_kmh=30.0, autoreset_mode="same_step")
    agent = ChannelPredictor(env, loss="rate", learning_rate=3e-3, start_from="stale", seed=0)
    probe = BeamformingEnv(128, antennas=4, users=2, fading="sum_of_sinusoids", speed_kmh=30.0)
    observations, _ = probe.reset(seed=99)
    with torch.no_grad():
        stale = float(agent.loss(observations, probe.true_channel()))  # zero-initialised head: the stale estimate
    agent.learn(env, 64 * 150, seed=0)
    with torch.no_grad():
        trained = float(agent.loss(observations, probe.true_channel()))
    assert trained < stale - 0.2  # loss = -sum rate (bit/s/Hz)
    agent.save(tmp_path / "predictor.pt")
    restored = ChannelPredictor.load(tmp_path / "predictor.pt", probe)
    assert torch.equal(restored(observations), agent(observations))
    with pytest.raises(ValueError, match="history"):
        ChannelPredictor.load(tmp_path / "predictor.pt", BeamformingEnv(1, antennas=4, users=2, history=2))


def test_channel_predictor_needs_the_precoder_action_mode():
    with pytest.raises(ValueError, match="action_mode='precoder'"):
        ChannelPredictor(BeamformingEnv(1, action_mode="codebook"))


def write_config(tmp_path, **overrides):
    config = {
        "name": "tiny_cnn",
        "env": {
            "id": ENV_ID,
            "num_envs": 16,
            "kwargs": {"antennas": 4, "users": 2, "fading": "sum_of_sinusoids", "speed_kmh": [3, 60]},
        },
        "agent": {
            "algo": "channel_predictor",
            "total_timesteps": 320,
            "checkpoint_every": 160,
            "hyperparameters": {"loss": "mse"},
        },
        "evaluation": {
            "episodes": 2,
            "baselines": ["zf_stale", "beam_sweep"],
            "sweep": {"speed_kmh": [3, 90]},
            "sweep_metric": "sum_rate",
        },
        "seeds": [0, 1],
        "output_dir": str(tmp_path / "run"),
        **overrides,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_beamforming_run_trains_evaluates_over_the_speed_sweep_and_reports(tmp_path):
    config = write_config(tmp_path)
    run_dir = train(config, progress=False)
    assert (run_dir / "seed_1" / "final_model.pt").is_file()
    evaluate_run(config, progress=False)
    html_path, markdown_path = write_report([run_dir], tmp_path / "report")
    markdown = markdown_path.read_text()
    assert "## sum_rate vs speed_kmh" in markdown
    sweep_rows = markdown.split("## sum_rate vs speed_kmh")[1]
    for policy in ("tiny_cnn", "zf_stale", "beam_sweep"):
        assert f"| {policy} |" in sweep_rows
    assert "alt='sweep'" in html_path.read_text()


def test_a_sweep_over_an_unknown_env_argument_is_a_config_error(tmp_path):
    config = write_config(tmp_path, evaluation={"sweep": {"speed_mph": [3]}})
    with pytest.raises(ConfigError, match="speed_mph"):
        load_config(config)


def test_sac_trains_on_the_rzf_parameter_mode_and_evaluates(tmp_path):
    config = write_config(
        tmp_path,
        name="tiny_sac",
        env={"id": ENV_ID, "num_envs": 4, "kwargs": {"antennas": 4, "users": 2, "action_mode": "rzf"}},
        agent={
            "algo": "sac",
            "total_timesteps": 200,
            "checkpoint_every": 100,
            "hyperparameters": {"learning_starts": 40, "batch_size": 32, "gamma": 0.0},
        },
        evaluation={"episodes": 2, "baselines": ["rzf_stale", "random"]},
        seeds=[0],
    )
    run_dir = train(config, progress=False)
    assert (run_dir / "seed_0" / "final_model.zip").is_file()
    evaluation = evaluate_run(config, progress=False)
    assert set(evaluation["policies"]) == {"sac", "rzf_stale", "random"}
    rate = {name: per_seed["0"]["metrics"]["sum_rate"] for name, per_seed in evaluation["policies"].items()}
    assert rate["sac"] > rate["random"]  # on the same evaluation seeds
