"""Mix-up operations on batches of images, batched over a population of classifiers.

Every operation takes images ``x`` ``(P, B, C, H, W)`` (P classifiers, B samples each) with
one-hot labels ``y`` ``(P, B, K)``, pairs sample i with a partner ``j = perm[i]`` of the same
batch, and returns mixed images and labels whose label weights are the share of each sample
in the mixed image, so every mixed label sums to 1. The weight ``λ`` of the kept sample is
drawn from Beta(α, α) and taken as ``max(λ, 1 − λ)``: the kept sample dominates, and α → 0
gives the identity.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["OPERATIONS", "MIXERS", "no_mix", "mixup", "cutmix", "saliency_mix", "random_saliency_mix", "kept_share"]

OPERATIONS = ("none", "mixup", "cutmix", "saliency_mix", "random_saliency_mix")


def kept_share(shape: tuple[int, ...], alpha, generator: torch.Generator, device) -> torch.Tensor:
    """``max(λ, 1 − λ)`` with ``λ ~ Beta(α, α)``, sampled by inverse transform of two gammas.

    ``alpha`` is a float, or a tensor broadcastable to ``shape`` (a strength per classifier,
    ``(P, 1)``); α ≤ 0 gives 1 (no mixing)."""
    if not isinstance(alpha, torch.Tensor):
        if alpha <= 0:
            return torch.ones(shape, device=device)
        alpha = torch.full(shape, float(alpha), device=device)  # a fill: torch.tensor would copy from the host
    alpha = alpha.to(device=device, dtype=torch.float32).expand(shape)
    safe = alpha.clamp(min=1e-3)
    a = torch._standard_gamma(safe.contiguous(), generator=generator)
    b = torch._standard_gamma(safe.contiguous(), generator=generator)
    lam = a / (a + b).clamp(min=1e-12)
    return torch.where(alpha > 0, torch.maximum(lam, 1 - lam), torch.ones_like(lam))


def _partners(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    return x.gather(1, perm.reshape(*perm.shape, *[1] * (x.dim() - 2)).expand_as(x))


def _mix_labels(y: torch.Tensor, perm: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    return kept[..., None] * y + (1 - kept[..., None]) * _partners(y, perm)


def no_mix(x, y, perm, **_):
    """The batch as it is."""
    return x, y


def mixup(x, y, perm, *, alpha: float, generator: torch.Generator, **_):
    """Mixup (Zhang et al. 2018): ``x̃ = λ x_i + (1 − λ) x_j``, ``ỹ = λ y_i + (1 − λ) y_j``."""
    kept = kept_share(perm.shape, alpha, generator, x.device)
    mixed = kept.reshape(*kept.shape, 1, 1, 1) * x + (1 - kept.reshape(*kept.shape, 1, 1, 1)) * _partners(x, perm)
    return mixed, _mix_labels(y, perm, kept)


def _box_mask(centre_r, centre_c, area, height: int, width: int) -> torch.Tensor:
    """Boolean masks ``(P, B, H, W)`` of boxes of side ``√area · (H, W)`` around the centres, clipped."""
    half_h = (area.sqrt() * height / 2)[..., None, None]
    half_w = (area.sqrt() * width / 2)[..., None, None]
    rows = torch.arange(height, device=area.device).reshape(1, 1, height, 1) + 0.5
    cols = torch.arange(width, device=area.device).reshape(1, 1, 1, width) + 0.5
    inside_r = (rows >= centre_r[..., None, None] - half_h) & (rows < centre_r[..., None, None] + half_h)
    inside_c = (cols >= centre_c[..., None, None] - half_w) & (cols < centre_c[..., None, None] + half_w)
    return inside_r & inside_c


def _paste(x, y, perm, mask):
    """Paste the partner's pixels where ``mask`` holds; labels weighted by the pasted area."""
    pasted = mask[:, :, None].to(x.dtype)
    mixed = (1 - pasted) * x + pasted * _partners(x, perm)
    kept = 1 - mask.flatten(2).to(x.dtype).mean(-1)
    return mixed, _mix_labels(y, perm, kept)


def cutmix(x, y, perm, *, alpha: float, generator: torch.Generator, **_):
    """CutMix (Yun et al. 2019): a box of area ``1 − λ`` at a uniform centre, from the partner;
    labels by the box's area after clipping to the image."""
    P, B, _, H, W = x.shape
    kept = kept_share((P, B), alpha, generator, x.device)
    centre_r = torch.rand((P, B), generator=generator, device=x.device) * H
    centre_c = torch.rand((P, B), generator=generator, device=x.device) * W
    return _paste(x, y, perm, _box_mask(centre_r, centre_c, 1 - kept, H, W))


def saliency_mix(x, y, perm, *, saliency: torch.Tensor, alpha: float, generator: torch.Generator, **_):
    """SaliencyMix (Uddin et al. 2021): CutMix's box centred on the partner's most salient pixel.

    ``saliency`` ``(P, B, H, W)``: e.g. |∂loss/∂x| summed over channels (see the env).
    """
    P, B, _, H, W = x.shape
    kept = kept_share((P, B), alpha, generator, x.device)
    peak = _partners(saliency, perm).flatten(2).argmax(-1)
    centre_r, centre_c = (peak // W).to(x.dtype) + 0.5, (peak % W).to(x.dtype) + 0.5
    return _paste(x, y, perm, _box_mask(centre_r, centre_c, 1 - kept, H, W))


def random_saliency_mix(x, y, perm, *, saliency: torch.Tensor, quantile, generator: torch.Generator, **_):
    """R-Mix's random saliency mix (arXiv 2212.04875): paste the partner's pixels whose saliency
    is above a quantile ``q`` drawn uniformly from [``quantile``, 1) per sample, so the most
    salient ``1 − q`` share of the partner is pasted; ``quantile`` → 1 gives the identity.
    ``quantile`` is a float or a tensor ``(P, 1)`` (one per classifier)."""
    P, B = perm.shape
    q = quantile + (1 - quantile) * torch.rand((P, B), generator=generator, device=x.device)
    partner = _partners(saliency, perm).flatten(2)
    threshold = _row_quantile(partner, q)
    mask = (partner > threshold[..., None]).reshape(saliency.shape)
    return _paste(x, y, perm, mask)


def _row_quantile(values: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """The value at rank ⌈qN⌉ − 1 of each row of ``values`` ``(P, B, N)``, q ``(P, B)``: at most a
    share 1 − q of a row lies above it, none once q > (N − 1)/N."""
    ordered = values.sort(-1).values
    index = ((q * values.shape[-1]).ceil().long() - 1).clamp(0, values.shape[-1] - 1)
    return ordered.gather(-1, index[..., None])[..., 0]


MIXERS: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {
    "none": no_mix,
    "mixup": mixup,
    "cutmix": cutmix,
    "saliency_mix": saliency_mix,
    "random_saliency_mix": random_saliency_mix,
}
