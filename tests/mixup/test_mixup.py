"""Mix operations, the data sets, and the population of classifiers behind MixupPolicyEnv."""

import pytest
import torch
from torch import nn

pytest.importorskip("sklearn", reason="the mixup family needs ctrlgym[mixup]")

from ctrlgym.envs.mixup import ImageData, MixupPolicyEnv, load_dataset
from ctrlgym.envs.mixup.mixing import MIXERS, OPERATIONS
from ctrlgym.experiment.evaluation import evaluate_policy


def batch(P=3, B=16, K=10, H=8, W=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(P, B, 1, H, W, generator=g)
    y = nn.functional.one_hot(torch.randint(0, K, (P, B), generator=g), K).float()
    perm = torch.rand(P, B, generator=g).argsort(-1)
    saliency = torch.rand(P, B, H, W, generator=g)
    return x, y, perm, saliency


@pytest.mark.parametrize("op", OPERATIONS)
def test_mixed_labels_keep_their_mass_and_shapes(op):
    x, y, perm, saliency = batch()
    mixed_x, mixed_y = MIXERS[op](
        x, y, perm, alpha=1.0, quantile=0.5, saliency=saliency, generator=torch.Generator().manual_seed(1)
    )
    assert mixed_x.shape == x.shape and mixed_y.shape == y.shape
    assert torch.allclose(mixed_y.sum(-1), torch.ones(3, 16))
    assert (mixed_y >= 0).all() and (mixed_y.max(-1).values >= 0.5 - 1e-6).all()  # the kept sample dominates
    if op != "none":
        assert not torch.equal(mixed_x, x)


@pytest.mark.parametrize("op", ["mixup", "cutmix", "saliency_mix"])
def test_alpha_to_zero_gives_the_identity(op):
    x, y, perm, saliency = batch()
    mixed_x, mixed_y = MIXERS[op](x, y, perm, alpha=0.0, saliency=saliency, generator=torch.Generator().manual_seed(1))
    assert torch.equal(mixed_x, x) and torch.equal(mixed_y, y)


def test_random_saliency_mix_pastes_the_salient_share_and_quantile_one_is_identity():
    x, y, perm, saliency = batch()
    mixed_x, mixed_y = MIXERS["random_saliency_mix"](
        x, y, perm, saliency=saliency, quantile=0.0, generator=torch.Generator().manual_seed(2)
    )
    pasted = (mixed_x != x).flatten(2).float().mean(-1)  # share of pixels taken from the partner
    kept = (mixed_y * y).sum(-1)  # label weight left on the kept sample (partners with other labels)
    other = y.argmax(-1) != y.gather(1, perm[..., None].expand_as(y)).argmax(-1)
    assert torch.allclose(kept[other], 1 - pasted[other], atol=1e-6)
    same_x, same_y = MIXERS["random_saliency_mix"](
        x, y, perm, saliency=saliency, quantile=0.999999, generator=torch.Generator().manual_seed(2)
    )
    assert torch.allclose(same_x, x) and torch.allclose(same_y, y)


def test_cutmix_label_weight_is_the_clipped_box_area():
    x, y, perm, _ = batch(P=2, B=64)
    mixed_x, mixed_y = MIXERS["cutmix"](x, y, perm, alpha=1.0, generator=torch.Generator().manual_seed(3))
    pasted = (mixed_x != x).flatten(2).float().mean(-1)
    other = y.argmax(-1) != y.gather(1, perm[..., None].expand_as(y)).argmax(-1)
    assert torch.allclose((mixed_y * y).sum(-1)[other], 1 - pasted[other], atol=1e-6)


def test_built_in_data_have_fixed_splits_and_custom_data_is_checked():
    digits = load_dataset("digits")
    assert digits.image_shape == (1, 8, 8) and digits.num_classes == 10
    assert len(digits.train_x) + len(digits.val_x) + len(digits.test_x) == 1797
    assert 0 <= digits.train_x.min() and digits.train_x.max() <= 1
    again = ImageData.from_tensors(
        torch.cat([digits.train_x, digits.val_x, digits.test_x]),
        torch.cat([digits.train_y, digits.val_y, digits.test_y]),
    )
    assert len(again.test_x) == len(digits.test_x)
    with pytest.raises(ValueError, match="NaN"):
        ImageData.from_tensors(torch.full((10, 4, 4), float("nan")), torch.zeros(10))
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("cifar")
    mnist = load_dataset("mnist")
    assert mnist.image_shape == (1, 28, 28) and len(mnist.train_x) == 3000


def test_a_regime_shrinks_and_corrupts_only_the_training_labels():
    """``regime(train_size, label_noise)``: that many training images, that share of their labels moved
    to another class (never the same one), validation and test untouched; same seed, same regime."""
    digits = load_dataset("digits")
    noisy = digits.regime(train_size=500, label_noise=0.3, seed=0)
    assert (
        len(noisy.train_x) == 500
        and torch.equal(noisy.val_y, digits.val_y)
        and torch.equal(noisy.test_x, digits.test_x)
    )
    rows = (
        (noisy.train_x.flatten(1)[:, None] == digits.train_x.flatten(1)[None]).all(-1).float().argmax(1)
    )  # where each image came from
    wrong = noisy.train_y != digits.train_y[rows]
    assert 0.25 < float(wrong.float().mean()) < 0.35  # 30% flipped, each to another class
    assert torch.equal(noisy.train_y, digits.regime(train_size=500, label_noise=0.3, seed=0).train_y)
    assert digits.regime() is digits
    with pytest.raises(ValueError, match="label_noise must be in"):
        digits.regime(label_noise=1.0)
    with pytest.raises(ValueError, match="train_size must be in"):
        digits.regime(train_size=5000)


def test_with_noisy_labels_mixing_beats_plain_training():
    """The regime of configs/mixup/ppo_noisy_digits.yaml, shortened: plain training memorises the wrong
    labels, a mix-up operation does not (test accuracy over 8 classifiers)."""
    accuracy = {}
    for op in ("none", "cutmix"):
        env = MixupPolicyEnv(num_envs=8, train_size=300, label_noise=0.3, budget=10, steps_per_action=20)
        env.reset(seed=0)
        for _ in range(env.budget):
            *_, info = env.step(torch.full((8,), env.operations.index(op)))
        accuracy[op] = float(info["test_accuracy"].mean())
    assert accuracy["cutmix"] > accuracy["none"] + 0.03


def test_a_list_of_label_noise_levels_alternates_them_over_the_classifiers():
    """``label_noise=[0.0, 0.3]``: even classifiers train on the clean labels, odd ones on the noisy
    ones, each exactly as in an env of that one level (same seed: same images, same draws)."""
    kwargs = dict(num_envs=4, train_size=300, budget=3, steps_per_action=5, hidden=16)
    mixed, clean, noisy = (MixupPolicyEnv(label_noise=level, **kwargs) for level in ([0.0, 0.3], 0.0, 0.3))
    assert (
        mixed.label_noise == (0.0, 0.3) and mixed.observation_space == clean.observation_space
    )  # the level is not observed
    assert torch.equal(mixed.classifier_labels[2], clean.classifier_labels[0]) and torch.equal(
        mixed.classifier_labels[3], noisy.classifier_labels[1]
    )
    assert 0.2 < float((mixed.classifier_labels[0] != mixed.classifier_labels[1]).float().mean()) < 0.4
    for env in (mixed, clean, noisy):
        env.reset(seed=0)
        for _ in range(env.budget):
            env.step(torch.full((4,), env.operations.index("cutmix")))
    for p in range(4):
        same_level = clean if p % 2 == 0 else noisy
        assert all(torch.equal(a[p], b[p]) for a, b in zip(mixed.parameters, same_level.parameters, strict=False))
    assert not torch.equal(mixed.weights[0][1], clean.weights[0][1])
    with pytest.raises(ValueError, match="label_noise must be a share or a non-empty list"):
        MixupPolicyEnv(label_noise=[])


def test_the_unknown_noise_level_shows_in_the_training_loss():
    """configs/mixup/ppo_unknown_noise_digits.yaml's regime: after three CutMix stages every clean
    classifier's training loss (observation 0) is below every noisy one's, so a policy can tell them apart."""
    env = MixupPolicyEnv(num_envs=16, train_size=500, label_noise=[0.0, 0.3], budget=40)
    observations, _ = env.reset(seed=5)
    for _ in range(3):
        observations, *_ = env.step(torch.full((16,), env.operations.index("cutmix")))
    train_loss = observations[:, 0]
    assert float(train_loss[0::2].max()) + 0.2 < float(train_loss[1::2].min())


def test_a_two_phase_schedule_switches_at_its_share_of_the_budget():
    from ctrlgym.envs.mixup.baselines import BASELINES

    env = MixupPolicyEnv(num_envs=2, budget=4, steps_per_action=1, batch_size=8, hidden=8)
    policy = BASELINES["none_then_mixup"].make(env, 0)
    observations, _ = env.reset(seed=0)
    chosen = []
    for _ in range(env.budget):
        action = policy(observations)
        chosen.append(env.operations[int(action[0])])
        observations, *_ = env.step(action)
    assert chosen == ["none", "none", "mixup", "mixup"]


def test_population_trains_exactly_like_separate_classifiers():
    env = MixupPolicyEnv(num_envs=64, hidden=16, batch_size=32, learning_rate=0.1)
    env.reset(seed=0)
    models = []
    for p in range(64):
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
        with torch.no_grad():
            model[1].weight.copy_(env.weights[0][p].T), model[1].bias.copy_(env.biases[0][p])
            model[3].weight.copy_(env.weights[1][p].T), model[3].bias.copy_(env.biases[1][p])
        models.append((model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)))
    operations = torch.arange(64) % len(OPERATIONS)  # every operation, including the saliency ones
    for _ in range(5):
        x, y = env.mixed_batch(operations)
        env.sgd_step(x, y)
        for p, (model, optimiser) in enumerate(models):
            optimiser.zero_grad()
            loss = -(y[p] * torch.log_softmax(model(x[p]), -1)).sum(-1).mean()
            loss.backward()
            optimiser.step()
    for p, (model, _) in enumerate(models):
        assert torch.allclose(env.weights[0][p], model[1].weight.T, atol=1e-4)
        assert torch.allclose(env.biases[1][p], model[3].bias, atol=1e-4)


def test_episode_ends_after_the_budget_with_the_test_accuracy():
    result = evaluate_policy(
        lambda env: lambda obs: torch.zeros(env.num_envs, dtype=torch.long),
        "ctrlgym/MixupPolicyEnv-v0",
        episodes=3,
        seed=0,
        budget=5,
        steps_per_action=20,
    )
    assert 0.8 < result["metrics"]["test_accuracy"] <= 1.0  # the final classifier, not a mean over stages
    env = MixupPolicyEnv(num_envs=2, budget=3, steps_per_action=2)
    env.reset(seed=0)
    for stage in range(3):
        obs, rewards, terminated, truncated, info = env.step(torch.tensor([1, 3]))
        assert terminated.tolist() == [stage == 2] * 2
    assert (info["test_accuracy"] > 0).all() and torch.allclose(obs[:, 6], torch.ones(2))


def test_training_lowers_validation_loss_and_bad_options_raise():
    env = MixupPolicyEnv(num_envs=2, budget=4)
    obs, _ = env.reset(seed=0)
    start = obs[:, 1].clone()
    for _ in range(4):
        obs, *_ = env.step(torch.zeros(2, dtype=torch.long))
    assert (obs[:, 1] < start / 3).all()  # validation loss
    with pytest.raises(ValueError, match="unknown operations"):
        MixupPolicyEnv(operations=("mixup", "blend"))
    with pytest.raises(ValueError, match="unknown reward"):
        MixupPolicyEnv(reward="accuracy")


def test_runs_on_the_device(device):
    env = MixupPolicyEnv(num_envs=2, budget=2, steps_per_action=2, device=device)
    obs, _ = env.reset(seed=0)
    obs, rewards, *_ = env.step(torch.tensor([3, 4], device=device))
    assert obs.device.type == rewards.device.type == torch.device(device).type


def test_cnn_population_trains_exactly_like_separate_conv_classifiers():
    env = MixupPolicyEnv(num_envs=8, architecture="cnn", channels=4, hidden=16, batch_size=16, learning_rate=0.1)
    env.reset(seed=0)
    conv_weight, conv_bias = env.conv
    models = []
    for p in range(8):
        model = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64, 16),
            nn.ReLU(),
            nn.Linear(16, 10),
        )
        with torch.no_grad():
            model[0].weight.copy_(conv_weight[p]), model[0].bias.copy_(conv_bias[p])
            model[4].weight.copy_(env.weights[0][p].T), model[4].bias.copy_(env.biases[0][p])
            model[6].weight.copy_(env.weights[1][p].T), model[6].bias.copy_(env.biases[1][p])
        models.append((model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)))
    operations = torch.arange(8) % len(OPERATIONS)
    for _ in range(4):
        x, y = env.mixed_batch(operations)
        env.sgd_step(x, y)
        for p, (model, optimiser) in enumerate(models):
            optimiser.zero_grad()
            (-(y[p] * torch.log_softmax(model(x[p]), -1)).sum(-1).mean()).backward()
            optimiser.step()
    for p, (model, _) in enumerate(models):
        assert torch.allclose(env.conv[0][p], model[0].weight, atol=1e-4)
        assert torch.allclose(env.weights[1][p], model[6].weight.T, atol=1e-4)


def test_strength_is_a_second_action_component():
    env = MixupPolicyEnv(
        num_envs=4,
        operations=("none", "mixup", "random_saliency_mix"),
        strengths=(0.0, 0.9),
        budget=2,
        steps_per_action=2,
    )
    assert env.single_action_space.nvec.tolist() == [3, 2]
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 7 + 3 + 1)
    operations = torch.tensor([1, 1, 2, 2])
    x, y = env.mixed_batch(operations, torch.tensor([0.0, 0.9, 0.0, 0.9]))
    # strength 0: Beta(0, 0) keeps each sample whole; quantile 0 for R-Mix pastes most of the partner
    assert torch.allclose(y[0].max(-1).values, torch.ones(env.batch_size))
    assert (y[1].max(-1).values < 1).any()
    assert y[2].max(-1).values.mean() < y[3].max(-1).values.mean()
    obs, *_ = env.step(torch.tensor([[1, 1], [0, 0], [2, 1], [2, 0]]))
    assert obs[:, -1].tolist() == [1.0, 0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="must be < 1"):
        MixupPolicyEnv(strengths=(0.5, 1.5))


def test_gradient_similarity_reward_is_a_cosine_and_clean_data_scores_higher_than_heavy_mixing():
    env = MixupPolicyEnv(num_envs=16, reward="gradient_similarity", operations=("none", "cutmix"), alpha=8.0, budget=3)
    env.reset(seed=0)
    _, rewards, *_ = env.step(torch.tensor([0] * 8 + [1] * 8))
    assert bool(((rewards >= -1) & (rewards <= 1)).all())
    assert rewards[:8].mean() > rewards[8:].mean()


def test_a_torchvision_style_dataset_becomes_image_data():
    digits = load_dataset("digits")
    items = [(digits.train_x[i], int(digits.train_y[i])) for i in range(100)]  # (C, H, W) tensor, int label
    data = ImageData.from_dataset(items, name="digits-100", limit=80)
    assert len(data.train_x) + len(data.val_x) + len(data.test_x) == 80
    assert data.image_shape == (1, 8, 8)
    with pytest.raises(ValueError, match="not an \\(image, label\\) pair"):
        ImageData.from_dataset([digits.train_x[0]])


def test_dqn_learns_on_the_population_and_stores_each_episode_end():
    """ctrlgym's double DQN (experiments/mixup/dqn_unknown_noise_digits_10_stages.yaml) on a short run:
    one transition per classifier and stage, an episode end flagged once per training run, and a
    greedy policy of valid operations afterwards."""
    from ctrlgym.agents.dqn import IndependentDQN

    env = MixupPolicyEnv(
        num_envs=4, train_size=200, label_noise=[0.0, 0.3], budget=3, steps_per_action=5, autoreset_mode="same_step"
    )
    agent = IndependentDQN(env, learning_starts=8, batch_size=8, gamma=1.0, seed=0)
    agent.learn(env, total_timesteps=24, seed=0)  # 6 batch steps: 2 training runs per classifier
    assert len(agent.replay) == 24 and agent.num_updates > 0
    assert float(agent.replay.terminated[:24].sum()) == 8  # 4 classifiers x 2 runs of 3 stages
    obs, _ = env.reset(seed=1)
    actions = agent(obs)
    assert actions.shape == (4,) and ((actions >= 0) & (actions < len(env.operations))).all()


def test_the_validation_loss_reward_is_the_fall_of_the_validation_loss():
    env = MixupPolicyEnv(num_envs=3, train_size=200, budget=3, steps_per_action=5, reward="val_loss_drop")
    obs, _ = env.reset(seed=0)
    before = obs[:, 1].clone()  # the observation's validation loss at the start
    rewards = []
    for _ in range(2):
        obs, reward, _, _, info = env.step(torch.tensor([0, 1, 2]))
        assert torch.allclose(reward, before - info["val_loss"], atol=1e-6)
        before = info["val_loss"]
        rewards.append(reward)
    assert (rewards[0] > 0).all()  # the first stage of SGD lowers the loss of a fresh classifier


def test_loss_weight_adds_the_fall_of_the_validation_loss_to_the_reward():
    env = MixupPolicyEnv(num_envs=2, train_size=200, budget=2, steps_per_action=5, loss_weight=0.5)
    obs, _ = env.reset(seed=0)
    _, reward, _, _, info = env.step(torch.tensor([0, 1]))
    expected = (info["val_accuracy"] - obs[:, 2]) + 0.5 * (obs[:, 1] - info["val_loss"])
    assert torch.allclose(reward, expected, atol=1e-6)
    with pytest.raises(ValueError, match="loss_weight"):
        MixupPolicyEnv(num_envs=2, loss_weight=-1.0)
