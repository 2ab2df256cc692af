"""Choosing the mix-up operation while a population of classifiers trains on real data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from ctrlgym.envs.mixup.data import ImageData, load_dataset
from ctrlgym.envs.mixup.mixing import MIXERS, OPERATIONS
from ctrlgym.vector_env import AutoresetMode, TorchVectorEnv

__all__ = ["MixupPolicyEnv", "REWARDS", "ARCHITECTURES", "OBSERVATION_NAMES"]

REWARDS = ("val_acc_gain", "val_loss_drop", "final_val_acc", "gradient_similarity")
ARCHITECTURES = ("mlp", "cnn")
OBSERVATION_NAMES = (
    "train_loss",
    "val_loss",
    "val_accuracy",
    "val_loss_change",
    "val_accuracy_change",
    "log_grad_norm",
    "progress",
)


class MixupPolicyEnv(TorchVectorEnv):
    r"""Each env is one classifier in training; the agent picks the mix-up operation per stage.

    ## Description
    ``num_envs`` small classifiers train at once on a real data set (``digits`` by default,
    ``mnist``, or your :class:`ImageData`): ``architecture="mlp"`` (one hidden layer of ``hidden``
    ReLU units) or ``"cnn"`` (a 3x3 convolution with ``channels`` filters, ReLU, 2x2 max-pooling,
    then that MLP). The population is one set of stacked weights (``(num_envs, in, out)``; the
    convolutions run as one grouped convolution): a training step is one batched forward and
    backward for all of them, and each classifier's update equals training it alone (a test
    checks this against separate ``nn.Linear`` / ``nn.Conv2d`` models). One env step is
    ``steps_per_action`` SGD steps (momentum 0.9, minibatch ``batch_size``) on minibatches mixed
    by the operation chosen; an episode is one training run of ``budget`` env steps. The setting
    of R-Mix (arXiv 2212.04875), where an RL agent chooses the mix-up policy.

    ## Action Space
    ``Discrete(len(operations))``: the operation for the next stage, from
    :data:`~ctrlgym.envs.mixup.mixing.OPERATIONS` (none, mixup, cutmix, saliency_mix,
    random_saliency_mix) or the subset given, at strengths ``alpha`` (Beta(α, α) of mixup,
    cutmix, saliency_mix) and ``quantile`` (random_saliency_mix). With ``strengths`` (a list of
    levels), ``MultiDiscrete([len(operations), len(strengths)])``: the second component picks the
    strength, used as α by the Beta mixes and as the quantile by random_saliency_mix.

    ## Observation Space
    ``Box(-10, 10, (7 + len(operations),))``: training loss of the last stage, validation loss
    and accuracy, their change over the stage, log10 of the gradient norm, progress through the
    budget (clamped to the box), a one-hot of the last operation and, with ``strengths``, the
    last strength's index / (levels − 1).

    ## Rewards
    ``val_acc_gain`` (default): the change of validation accuracy over the stage; ``val_loss_drop``:
    the fall of the validation cross-entropy over the stage (continuous, so less noisy than an
    accuracy counted on a few hundred images; it also rewards calibration); ``final_val_acc``:
    the validation accuracy at the end of the budget, 0 before; ``gradient_similarity``: the
    cosine similarity between the gradient of the loss on the mixed training minibatch and on a
    clean validation minibatch, averaged over the stage's SGD steps (does the mixed data push the
    classifier where the held-out data would?; our reading of R-Mix's reward from the similarity
    of gradients, taken on the weights).

    With ``loss_weight`` w > 0, w × the fall of the validation loss is added to the reward chosen.

    ## Episode End
    Termination after ``budget`` stages; ``info["test_accuracy"]`` is the final classifier's
    test accuracy at that step (evaluation reports its final value, not a mean).

    ## Arguments
    ``dataset``, ``train_size`` (train on the first ``train_size`` images of the training split: a
    small-data regime), ``label_noise`` (that share of training labels replaced by another class;
    :meth:`ImageData.regime`; a list of shares: classifier ``i`` trains on the labels of share
    ``i mod len(list)``, which its observation does not show: the agent must tell clean data from
    noisy data by how training goes), ``operations``, ``reward``, ``budget``, ``steps_per_action``, ``batch_size``,
    ``architecture``, ``hidden``, ``channels``, ``learning_rate``, ``alpha``, ``quantile``, ``strengths``, ``loss_weight``.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}
    #: reported by evaluation at the episode's last step, not averaged over steps
    final_metrics = ("test_accuracy",)
    #: what reports rank policies by beside the return: the final classifiers' test accuracy
    headline_metric = ("test_accuracy", True)

    metric_descriptions = {
        "train_loss": "classifier training loss (cross-entropy, per-stage mean)",
        "val_loss": "validation loss (cross-entropy, per-stage mean)",
        "val_accuracy": "validation accuracy, share correct (per-stage mean)",
        "test_accuracy": "the final classifiers' test accuracy, share correct",
    }

    def __init__(
        self,
        num_envs: int = 1,
        *,
        dataset: str | ImageData = "digits",
        train_size: int | None = None,
        label_noise: float | Sequence[float] = 0.0,
        operations: Sequence[str] = OPERATIONS,
        reward: str = "val_acc_gain",
        budget: int = 20,
        steps_per_action: int = 20,
        batch_size: int = 64,
        hidden: int = 64,
        architecture: str = "mlp",
        channels: int = 8,
        learning_rate: float = 0.05,
        alpha: float = 1.0,
        quantile: float = 0.5,
        strengths: Sequence[float] | None = None,
        loss_weight: float = 0.0,
        max_episode_steps: int | None = None,
        device: str | torch.device = "cpu",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        validate_actions: bool = True,
    ) -> None:
        name = type(self).__name__
        unknown = [op for op in operations if op not in OPERATIONS]
        if unknown or not operations:
            raise ValueError(f"{name}: unknown operations {unknown}; choose from {OPERATIONS}")
        if reward not in REWARDS:
            raise ValueError(f"{name}: unknown reward {reward!r}; choose one of {REWARDS}")
        if architecture not in ARCHITECTURES:
            raise ValueError(f"{name}: unknown architecture {architecture!r}; choose one of {ARCHITECTURES}")
        if strengths is not None and (len(strengths) == 0 or min(strengths) < 0):
            raise ValueError(f"{name}: strengths must be a non-empty list of levels >= 0, got {strengths}")
        if strengths is not None and "random_saliency_mix" in operations and max(strengths) >= 1:
            raise ValueError(
                f"{name}: strengths are random_saliency_mix's quantiles too and must be < 1, got {strengths}"
            )
        for label, value in (
            ("budget", budget),
            ("steps_per_action", steps_per_action),
            ("batch_size", batch_size),
            ("hidden", hidden),
            ("channels", channels),
        ):
            if int(value) < 1:
                raise ValueError(f"{name}: {label} must be >= 1, got {value}")
        if loss_weight < 0:
            raise ValueError(f"{name}: loss_weight must be >= 0, got {loss_weight}")
        if not 0 <= quantile < 1 or alpha < 0 or learning_rate <= 0:
            raise ValueError(f"{name}: need 0 <= quantile < 1, alpha >= 0 and learning_rate > 0")
        levels = (
            (float(label_noise),) if isinstance(label_noise, (int, float)) else tuple(float(v) for v in label_noise)
        )
        if not levels:
            raise ValueError(f"{name}: label_noise must be a share or a non-empty list of shares, got {label_noise}")
        full = dataset if isinstance(dataset, ImageData) else load_dataset(dataset)
        regimes = [
            full.regime(train_size, level) for level in levels
        ]  # the same images: only the flipped labels differ
        self.data, self.label_noise = regimes[0], levels
        self.operations, self.reward_name = tuple(operations), reward
        self.budget, self.steps_per_action, self.batch_size = int(budget), int(steps_per_action), int(batch_size)
        self.hidden, self.learning_rate, self.alpha, self.quantile = (
            int(hidden),
            float(learning_rate),
            float(alpha),
            float(quantile),
        )
        self.architecture, self.channels = architecture, int(channels)
        self.strengths = None if strengths is None else tuple(float(v) for v in strengths)
        self.loss_weight = float(loss_weight)
        extra = 0 if self.strengths is None else 1
        observation_space = spaces.Box(
            -10.0, 10.0, (len(OBSERVATION_NAMES) + len(self.operations) + extra,), np.float32
        )
        if self.strengths is None:
            action_space: spaces.Space = spaces.Discrete(len(self.operations))
        else:
            action_space = spaces.MultiDiscrete([len(self.operations), len(self.strengths)])
        super().__init__(
            num_envs,
            observation_space,
            action_space,
            device=device,
            max_episode_steps=max_episode_steps,
            autoreset_mode=autoreset_mode,
            validate_actions=validate_actions,
        )
        move = lambda t: t.to(self.device)  # noqa: E731
        data = self.data
        self.train_x, self.train_y, self.val_x, self.val_y = map(
            move, (data.train_x, data.train_y, data.val_x, data.val_y)
        )
        self.test_x, self.test_y = move(data.test_x), move(data.test_y)
        #: each classifier's index into ``label_noise`` ``(P,)``: classifier i trains on level i mod len
        self.classifier_level = torch.arange(num_envs, device=self.device) % len(levels)
        #: each classifier's training labels ``(P, N)``: those of its noise level
        self.classifier_labels = move(torch.stack([regime.train_y for regime in regimes]))[self.classifier_level]
        C, H, W = data.image_shape
        if architecture == "cnn":
            self.conv = [
                torch.zeros(num_envs, self.channels, C, 3, 3, device=self.device),
                torch.zeros(num_envs, self.channels, device=self.device),
            ]
            features = self.channels * (H // 2) * (W // 2)
        else:
            self.conv, features = [], C * H * W
        sizes = (features, self.hidden, data.num_classes)
        self.weights = [
            torch.zeros(num_envs, a, b, device=self.device) for a, b in zip(sizes[:-1], sizes[1:], strict=False)
        ]
        self.biases = [torch.zeros(num_envs, b, device=self.device) for b in sizes[1:]]
        self.velocity = [torch.zeros_like(p) for p in self.parameters]
        self.stage = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.last_strength = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.stats = torch.zeros(num_envs, len(OBSERVATION_NAMES), device=self.device)
        self.last_operation = torch.zeros(num_envs, dtype=torch.long, device=self.device)

    @property
    def parameters(self) -> list[torch.Tensor]:
        return [*self.conv, *self.weights, *self.biases]

    def compose(self, operations: torch.Tensor, strength: int | None = None) -> torch.Tensor:
        """An action from operation indices ``(P,)``: themselves, or with ``strengths`` paired
        with the strength index ``strength`` (default: the middle level)."""
        if self.strengths is None:
            return operations
        level = len(self.strengths) // 2 if strength is None else strength
        return torch.stack([operations, torch.full_like(operations, level)], -1)

    # ------------------------------------------------------------------ the population of classifiers
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The population's outputs for inputs ``(P, B, C, H, W)`` -> ``(P, B, classes)``."""
        if self.conv:  # P convolutions as one grouped convolution over (B, P·C, H, W)
            P, B, C, H, W = x.shape
            weight, bias = self.conv
            h = torch.nn.functional.conv2d(
                x.transpose(0, 1).reshape(B, P * C, H, W), weight.flatten(0, 1), bias.flatten(), padding=1, groups=P
            )
            h = torch.nn.functional.max_pool2d(torch.relu(h), 2)
            h = h.reshape(B, P, -1).transpose(0, 1)
        else:
            h = x.flatten(2)
        for layer, (w, b) in enumerate(zip(self.weights, self.biases, strict=False)):
            h = torch.baddbmm(b[:, None], h, w)
            if layer < len(self.weights) - 1:
                h = torch.relu(h)
        return h

    def _initialise(self, mask: torch.Tensor) -> None:
        """``nn.Linear``'s and ``nn.Conv2d``'s initialisation, U(±1/√fan_in), for the classifiers in ``mask``."""
        keep = (~mask).float()
        layers = [(self.conv[0], self.conv[1], int(np.prod(self.conv[0].shape[2:])))] if self.conv else []
        layers += [(w, b, w.shape[1]) for w, b in zip(self.weights, self.biases, strict=False)]
        for w, b, fan_in in layers:
            bound = 1.0 / np.sqrt(fan_in)
            fresh_w = (torch.rand(w.shape, generator=self.generator, device=self.device) * 2 - 1) * bound
            fresh_b = (torch.rand(b.shape, generator=self.generator, device=self.device) * 2 - 1) * bound
            w_keep = keep.reshape(-1, *[1] * (w.dim() - 1))
            w.mul_(w_keep).add_(fresh_w * (1 - w_keep))
            b.mul_(keep[:, None]).add_(fresh_b * (1 - keep)[:, None])
        for v in self.velocity:
            v.mul_(keep.reshape(-1, *[1] * (v.dim() - 1)))

    def saliency(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """|∂ loss / ∂ x| summed over channels, per image: ``(P, B, H, W)``."""
        x = x.detach().requires_grad_(True)
        loss = self._loss(self.logits(x), y).sum()
        (grad,) = torch.autograd.grad(loss, x)
        return grad.abs().sum(2)

    @staticmethod
    def _loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy with (mixed) soft targets, mean over each classifier's batch: ``(P,)``."""
        return -(targets * torch.log_softmax(logits, -1)).sum(-1).mean(-1)

    def mixed_batch(
        self, operations: torch.Tensor, strengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A training minibatch per classifier, mixed by its operation (at its strength ``(P,)``
        if given): ``(P, B, C, H, W)``, ``(P, B, K)``."""
        P, B = self.num_envs, self.batch_size
        index = torch.randint(0, len(self.train_x), (P, B), generator=self.generator, device=self.device)
        x, y = (
            self.train_x[index],
            torch.nn.functional.one_hot(self.classifier_labels.gather(1, index), self.data.num_classes).float(),
        )
        perm = torch.rand((P, B), generator=self.generator, device=self.device).argsort(-1)
        needs_saliency = any("saliency" in op for op in self.operations)
        saliency = self.saliency(x, y) if needs_saliency else None
        alpha, quantile = (self.alpha, self.quantile) if strengths is None else (strengths[:, None], strengths[:, None])
        kwargs: dict[str, Any] = {
            "alpha": alpha,
            "quantile": quantile,
            "generator": self.generator,
            "saliency": saliency,
        }
        mixed_x, mixed_y = x.clone(), y.clone()
        for k, op in enumerate(self.operations):  # every operation for all, kept where chosen: no host sync
            op_x, op_y = MIXERS[op](x, y, perm, **kwargs)
            chosen = operations == k
            mixed_x = torch.where(chosen[:, None, None, None, None], op_x, mixed_x)
            mixed_y = torch.where(chosen[:, None, None], op_y, mixed_y)
        return mixed_x, mixed_y

    def sgd_step(self, x: torch.Tensor, y: torch.Tensor, reference: tuple[torch.Tensor, torch.Tensor] | None = None):
        """One SGD step with momentum 0.9 (as ``torch.optim.SGD``) for every classifier; returns
        the losses ``(P,)``, the gradient norms ``(P,)`` and, given a clean ``reference`` batch,
        the cosine similarity of its gradient with the step's ``(P,)`` (else None)."""
        parameters = [p.requires_grad_(True) for p in self.parameters]
        losses = self._loss(self.logits(x), y)
        grads = torch.autograd.grad(losses.sum(), parameters)
        similarity = None
        if reference is not None:
            reference_grads = torch.autograd.grad(self._loss(self.logits(reference[0]), reference[1]).sum(), parameters)
            dot = sum((g * r).flatten(1).sum(1) for g, r in zip(grads, reference_grads, strict=False))
            reference_norm = torch.stack([r.flatten(1).pow(2).sum(1) for r in reference_grads]).sum(0).sqrt()
        with torch.no_grad():
            norm = torch.stack([g.flatten(1).pow(2).sum(1) for g in grads]).sum(0).sqrt()
            if reference is not None:
                similarity = dot / (norm * reference_norm).clamp(min=1e-12)
            for p, g, v in zip(parameters, grads, self.velocity, strict=False):
                v.mul_(0.9).add_(g)
                p.sub_(self.learning_rate * v)
        for p in parameters:
            p.requires_grad_(False)
        return losses.detach(), norm, similarity

    def _validation_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(
            0, len(self.val_x), (self.num_envs, self.batch_size), generator=self.generator, device=self.device
        )
        return self.val_x[index], torch.nn.functional.one_hot(self.val_y[index], self.data.num_classes).float()

    @torch.no_grad()
    def _evaluate(self, x: torch.Tensor, y: torch.Tensor, chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean loss and accuracy of every classifier on ``(x, y)``, in chunks of samples."""
        loss = torch.zeros(self.num_envs, device=self.device)
        correct = torch.zeros(self.num_envs, device=self.device)
        for start in range(0, len(x), chunk):
            xs, ys = x[start : start + chunk], y[start : start + chunk]
            logits = self.logits(xs.expand(self.num_envs, *xs.shape))
            targets = torch.nn.functional.one_hot(ys, self.data.num_classes).float().expand(self.num_envs, -1, -1)
            loss += self._loss(logits, targets) * len(xs)
            correct += (logits.argmax(-1) == ys).float().sum(-1)
        return loss / len(x), correct / len(x)

    # ------------------------------------------------------------------ TorchVectorEnv
    def _reset_envs(self, mask: torch.Tensor) -> None:
        self._initialise(mask)
        val_loss, val_acc = self._evaluate(self.val_x, self.val_y)
        fresh = torch.stack(
            [
                val_loss,
                val_loss,
                val_acc,
                torch.zeros_like(val_loss),
                torch.zeros_like(val_loss),
                torch.zeros_like(val_loss),
                torch.zeros_like(val_loss),
            ],
            -1,
        )
        self.stats = torch.where(mask[:, None], fresh, self.stats)
        self.stage = self.stage.masked_fill(mask, 0)
        self.last_operation = self.last_operation.masked_fill(mask, 0)
        self.last_strength = self.last_strength.masked_fill(mask, 0)

    def _step_envs(self, actions: torch.Tensor):
        actions = actions.long().reshape(self.num_envs, -1)
        operations, strengths = actions[:, 0], None
        if self.strengths is not None:
            self.last_strength = actions[:, 1]
            strengths = torch.tensor(self.strengths, device=self.device)[self.last_strength]
        train_loss = torch.zeros(self.num_envs, device=self.device)
        grad_norm = torch.zeros(self.num_envs, device=self.device)
        similarity = torch.zeros(self.num_envs, device=self.device)
        for _ in range(self.steps_per_action):
            reference = self._validation_batch() if self.reward_name == "gradient_similarity" else None
            loss, norm, cosine = self.sgd_step(*self.mixed_batch(operations, strengths), reference)
            train_loss += loss / self.steps_per_action
            grad_norm += norm / self.steps_per_action
            if cosine is not None:
                similarity += cosine / self.steps_per_action
        val_loss, val_acc = self._evaluate(self.val_x, self.val_y)
        loss_change, acc_change = val_loss - self.stats[:, 1], val_acc - self.stats[:, 2]  # over the stage
        self.stage += 1
        progress = self.stage.float() / self.budget
        self.stats = torch.stack(
            [train_loss, val_loss, val_acc, loss_change, acc_change, grad_norm.clamp(min=1e-12).log10(), progress], -1
        )
        self.last_operation = operations
        done = self.stage >= self.budget
        if self.reward_name == "val_acc_gain":
            rewards = acc_change
        elif self.reward_name == "val_loss_drop":
            rewards = -loss_change
        elif self.reward_name == "gradient_similarity":
            rewards = similarity
        else:
            rewards = torch.where(done, val_acc, 0.0)
        if self.loss_weight:
            rewards = rewards - self.loss_weight * loss_change
        test_accuracy = torch.where(done, self._evaluate(self.test_x, self.test_y)[1], 0.0)
        info = {"train_loss": train_loss, "val_loss": val_loss, "val_accuracy": val_acc, "test_accuracy": test_accuracy}
        return rewards, done, info

    def _observe(self) -> torch.Tensor:
        last = torch.nn.functional.one_hot(self.last_operation, len(self.operations)).float()
        parts = [self.stats.clamp(-10.0, 10.0), last]
        if self.strengths is not None:
            parts.append((self.last_strength.float() / max(len(self.strengths) - 1, 1))[:, None])
        return torch.cat(parts, -1)
