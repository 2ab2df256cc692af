"""Independent DQN and Nash DQN: learning on a tiny twin network, saving, resuming, configs."""

import functools
import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

pytest.importorskip("sumo", reason="the traffic envs need ctrlgym[traffic]")

from ctrlgym.agents import IndependentDQN, NashDQN
from ctrlgym.envs.traffic import TrafficTwinEnv
from ctrlgym.experiment.config import ConfigError, parse_config
from ctrlgym.experiment.evaluation import evaluate_policy

TINY = {"scenario": "arterial", "cols": 2, "demand": 1500, "num_seconds": 300}
FAST = {"learning_starts": 300, "batch_size": 64, "target_update_interval": 100, "hidden": [32, 32]}


def tiny_env(num_envs=16, **kwargs):
    return TrafficTwinEnv(num_envs=num_envs, autoreset_mode="same_step", **TINY, **kwargs)


def greedy_return(agent) -> float:
    return evaluate_policy(lambda env: agent, "ctrlgym/TrafficTwinEnv-v0", episodes=8, seed=123, **TINY)["mean_return"]


@pytest.mark.parametrize(
    "agent_class",
    [IndependentDQN, NashDQN, functools.partial(NashDQN, payoffs="pairwise")],
    ids=["idqn", "nash_joint", "nash_pairwise"],
)
def test_short_training_on_a_tiny_network_beats_the_initial_policy(agent_class):
    env = tiny_env()
    agent = agent_class(env, seed=0, **FAST)
    before = greedy_return(agent)
    agent.learn(env, 4_000)
    after = greedy_return(agent)
    assert after > before + 0.5, f"return {before:.2f} -> {after:.2f}"


def test_learning_reports_the_delay_of_ended_episodes_and_the_bar_shows_simulated_hours():
    """Each episode's delay reaches the callback when it ends; the training bar shows simulated
    hours (decisions × delta_time, summed over the batch) and the latest delay."""
    from tqdm.auto import tqdm

    from ctrlgym.experiment.progress import TrainingStatus

    env = tiny_env(num_envs=4)
    agent = IndependentDQN(env, seed=0, **FAST)
    seen = []
    agent.learn(env, 4 * env.clock.max_episode_steps, callback=seen.append)
    ended = [p for p in seen if p["episode_returns"]]
    assert len(ended) == 1 and len(ended[0]["episode_metrics"]["delay"]) == 4  # all four twins end together
    assert all(d > 0 for d in ended[0]["episode_metrics"]["delay"]) and not seen[0]["episode_metrics"]
    with tqdm(total=10, disable=False, file=open(os.devnull, "w")) as bar:
        status = TrainingStatus(env, seed=3)
        for progress in seen:
            status.show(bar, progress)
        hours = seen[-1]["timesteps"] * env.clock.delta_time / 3600
        delay = sum(ended[0]["episode_metrics"]["delay"]) / 4
        assert status.postfix == {"seed": 3, "last_delay": f"{delay:.4g}", "sim_h": f"{hours:,.1f}"}
        assert "last_delay" in bar.postfix and "sim_h" in bar.postfix  # shown on the bar


def test_nash_dqn_scores_joint_actions_of_each_light_and_its_neighbours():
    env = TrafficTwinEnv(num_envs=2, scenario="arterial", cols=3)  # a row of three lights: degrees 1, 2, 1
    agent = NashDQN(env, seed=0)
    assert agent.graph.neighbours.tolist() == [[1, 3], [0, 2], [1, 3]]  # 3 pads the end lights
    assert agent.num_outputs == 2**3 and IndependentDQN(env).num_outputs == 2
    obs, _ = env.reset(seed=0)
    q = agent.q_network(obs)
    actions = agent(obs)
    assert q.shape == (2, 3, 8) and actions.shape == (2, 3) and ((actions >= 0) & (actions < 2)).all()


def test_same_seed_same_agent_and_actions_respect_exploration():
    weights = []
    for _ in range(2):
        env = tiny_env(num_envs=4)
        agent = NashDQN(env, seed=3, **FAST).learn(env, 600, seed=3)
        weights.append(torch.cat([p.flatten() for p in agent.q_network.parameters()]))
    assert torch.equal(weights[0], weights[1])
    obs, _ = env.reset(seed=0)
    greedy = agent.act(obs, epsilon=0.0)
    assert torch.equal(greedy, agent.act(obs, epsilon=0.0))
    explored = torch.stack([agent.act(obs, epsilon=1.0) for _ in range(50)])
    assert (explored != greedy).any() and explored.max() <= 1 and explored.min() >= 0


def test_save_and_load_keep_actions_and_reject_other_networks(tmp_path):
    env = tiny_env(num_envs=4)
    agent = NashDQN(env, seed=0, shared=True, **FAST).learn(env, 800)
    agent.save(tmp_path / "agent.pt")
    loaded = NashDQN.load(tmp_path / "agent.pt", env)
    obs, _ = env.reset(seed=5)
    assert torch.equal(agent(obs), loaded(obs)) and loaded.num_timesteps == agent.num_timesteps
    assert len(loaded.replay) == len(agent.replay)
    with pytest.raises(ValueError, match="trained on observations"):
        NashDQN.load(
            tmp_path / "agent.pt", TrafficTwinEnv(num_envs=1, scenario="arterial", cols=3, autoreset_mode="same_step")
        )
    with pytest.raises(ValueError, match="holds a nash_dqn agent"):
        IndependentDQN.load(tmp_path / "agent.pt", env)
    with pytest.raises(ValueError, match="missing.pt: no saved agent there"):
        NashDQN.load(tmp_path / "missing.pt", env)
    (tmp_path / "cut.pt").write_bytes((tmp_path / "agent.pt").read_bytes()[:500])  # a half-written file
    with pytest.raises(ValueError, match="cut.pt: not a saved ctrlgym agent"):
        NashDQN.load(tmp_path / "cut.pt", env)


def test_learning_rate_falls_linearly_to_its_final_value_and_bad_schedules_are_errors():
    env = tiny_env(num_envs=4)
    agent = IndependentDQN(env, seed=0, learning_rate=1e-3, learning_rate_final=1e-5, **FAST)
    assert (
        agent.learning_rate(0.0) == 1e-3
        and agent.learning_rate(0.5) == pytest.approx(5.05e-4)
        and agent.learning_rate(2.0) == pytest.approx(1e-5)
    )
    agent.learn(env, 400)
    assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(1e-5)  # the last update ran at the final rate
    constant = IndependentDQN(env, seed=0, learning_rate=1e-3)
    assert constant.learning_rate(0.7) == 1e-3
    for bad in (
        {"learning_rate": 0.0},
        {"learning_rate": 1e-3, "learning_rate_final": 1e-2},
        {"learning_rate_final": -1.0},
    ):
        with pytest.raises(ValueError, match="learning_rate_final <= learning_rate"):
            IndependentDQN(env, **bad)


def test_nash_dqn_without_neighbours_and_prior_learns_exactly_as_dqn():
    """One light has no neighbours: with fictitious_play_prior=0 the equilibrium is its argmax and its
    value the max, so Nash DQN takes DQN's actions and targets and ends with the same weights; with
    the default prior (1) its targets are softened and the weights differ."""
    weights = []
    for agent_class, extra in ((NashDQN, {"fictitious_play_prior": 0}), (IndependentDQN, {}), (NashDQN, {})):
        env = TrafficTwinEnv(
            num_envs=4, scenario="single", demand=1200, num_seconds=300, single_agent=True, autoreset_mode="same_step"
        )
        agent = agent_class(env, seed=0, **FAST, **extra).learn(env, 600, seed=0)
        weights.append(torch.cat([p.flatten() for p in agent.q_network.parameters()]))
    assert agent.num_updates > 0 and torch.equal(weights[0], weights[1]) and not torch.equal(weights[2], weights[1])
    with pytest.raises(ValueError, match="fictitious_play_prior must be >= 0"):
        NashDQN(env, fictitious_play_prior=-0.5)


def test_learn_needs_same_step_autoreset():
    env = TrafficTwinEnv(num_envs=2, **TINY)
    with pytest.raises(ValueError, match="same_step"):
        IndependentDQN(env).learn(env, 100)


def test_runs_on_the_device(device):
    env = TrafficTwinEnv(num_envs=4, autoreset_mode="same_step", device=device, **TINY)
    agent = NashDQN(env, seed=0, device=device, learning_starts=64, batch_size=32).learn(env, 200)
    obs, _ = env.reset(seed=0)
    assert agent(obs).device.type == torch.device(device).type and agent.num_updates > 0


def config(tmp_path, algo, **agent):
    return {
        "name": f"{algo}_tiny",
        "env": {"id": "ctrlgym/TrafficTwinEnv-v0", "num_envs": 8, "kwargs": TINY},
        "agent": {
            "algo": algo,
            "total_timesteps": 3_000,
            "checkpoint_every": 500,
            "hyperparameters": dict(FAST),
            **agent,
        },
        "evaluation": {"episodes": 1, "baselines": ["max_pressure"]},
        "seeds": [0],
        "output_dir": str(tmp_path / "run"),
    }


def test_configs_check_the_agent_keywords(tmp_path):
    parsed = parse_config(config(tmp_path, "nash_dqn", hyperparameters={"fictitious_play_rounds": 5, "gamma": 0.9}))
    assert parsed.agent.hyperparameters == {"fictitious_play_rounds": 5, "gamma": 0.9}
    with pytest.raises(ConfigError, match="agent.*unknown key 'fictitious_play_rounds' for agent dqn"):
        parse_config(config(tmp_path, "dqn", hyperparameters={"fictitious_play_rounds": 5}))
    with pytest.raises(
        ConfigError, match=r"init_from is for agents that start from saved weights \(dqn, nash_dqn\), not ppo"
    ):
        parse_config(config(tmp_path, "ppo", hyperparameters=None, init_from="runs/x"))


@pytest.mark.integration
def test_killed_training_resumes_exactly_and_fine_tunes(tmp_path, kill_at_a_random_step):
    """Kill Nash DQN at a random step, resume: the same networks, curve and steps as an uninterrupted run;
    then fine-tune it on SUMO (the twin-pretrain, SUMO-fine-tune recipe)."""
    from ctrlgym.experiment.training import train

    path, whole = tmp_path / "nash.yaml", tmp_path / "whole.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path, "nash_dqn", total_timesteps=4_000, checkpoint_every=1_000)))
    shorter = yaml.safe_load(path.read_text())
    whole.write_text(yaml.safe_dump({**shorter, "output_dir": str(tmp_path / "whole")}))
    seed_dir = tmp_path / "run" / "seed_0"
    saved = kill_at_a_random_step(
        [sys.executable, "-m", "ctrlgym", "train", str(path), "--no-progress"], seed_dir, 4_000
    )
    curve_at_kill = json.loads((seed_dir / "checkpoints" / f"learning_curve_{saved}.json").read_text())
    assert curve_at_kill  # 8-env episodes of 300 s ended before the first checkpoint
    subprocess.run(
        [sys.executable, "-m", "ctrlgym", "train", str(path), "--resume", "--no-progress"], check=True, timeout=600
    )
    train(whole, progress=False)
    resumed, uninterrupted = (
        json.loads((tmp_path / run / "metrics.json").read_text())["training"]["0"] for run in ("run", "whole")
    )
    assert resumed["timesteps"] == uninterrupted["timesteps"] == 4_000
    assert resumed["learning_curve"] == uninterrupted["learning_curve"]
    networks = [
        torch.load(tmp_path / run / "seed_0" / "final_model.pt", weights_only=False)["q_network"]
        for run in ("run", "whole")
    ]
    assert all(torch.equal(networks[0][key], networks[1][key]) for key in networks[1])
    # fine-tune on SUMO itself (2 SUMO processes): a second run starts from the first run's final networks
    shorter.update(
        output_dir=str(tmp_path / "tuned"), env={**shorter["env"], "id": "ctrlgym/TrafficSignalEnv-v0", "num_envs": 2}
    )
    shorter["agent"].update(total_timesteps=512, init_from=str(tmp_path / "run"))
    (tmp_path / "tuned.yaml").write_text(yaml.safe_dump(shorter))
    subprocess.run(
        [sys.executable, "-m", "ctrlgym", "train", str(tmp_path / "tuned.yaml"), "--no-progress"],
        check=True,
        timeout=600,
    )
    first = torch.load(tmp_path / "run" / "seed_0" / "final_model.pt", weights_only=False)["q_network"]
    tuned = torch.load(tmp_path / "tuned" / "seed_0" / "final_model.pt", weights_only=False)["q_network"]
    fresh = NashDQN(tiny_env(num_envs=1), seed=0, **FAST).q_network.state_dict()
    distance = lambda a, b: sum(float((a[k] - b[k]).abs().sum()) for k in a)  # noqa: E731
    assert distance(tuned, first) < distance(tuned, fresh)


def test_building_an_agent_leaves_the_global_random_state_alone():
    env = TrafficTwinEnv(num_envs=2, scenario="arterial", cols=2, autoreset_mode="same_step")
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = IndependentDQN(env, seed=5, hidden=[8])
    assert torch.equal(torch.get_rng_state(), before)
    second = IndependentDQN(env, seed=5, hidden=[8])
    other = IndependentDQN(env, seed=6, hidden=[8])
    weights = [next(agent.q_network.parameters()) for agent in (first, second, other)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])
