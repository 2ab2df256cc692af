"""Torch views of Gymnasium spaces: action validation, dtypes and uniform sampling.

The batched environments keep Gymnasium spaces (numpy) as their declared spaces, since that is
what every RL library reads, and exchange torch tensors at run time. This module is the bridge.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from gymnasium import spaces

from ctrlgym.errors import ActionError

__all__ = ["torch_dtype", "validate_actions", "sample_actions", "SUPPORTED_ACTION_SPACES"]

SUPPORTED_ACTION_SPACES = (spaces.Discrete, spaces.MultiDiscrete, spaces.Box)


def torch_dtype(space: spaces.Space) -> torch.dtype:
    """The torch dtype matching a space's numpy dtype."""
    return _torch_dtype(np.dtype(space.dtype))


@functools.cache
def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.zeros((), dtype=dtype)).dtype


def _first_values(actions: torch.Tensor, bad: torch.Tensor, shown: int = 3) -> str:
    """``env i: value`` of the first ``shown`` bad entries (index into the batch first), for error messages."""
    where = bad.nonzero()[:shown].tolist()
    cells = [f"[{', '.join(map(str, index))}] = {actions[tuple(index)].item():g}" for index in where]
    more = int(bad.sum()) - len(where)
    return ", ".join(cells) + (f" (and {more} more)" if more > 0 else "")


def _describe(actions) -> str:
    if isinstance(actions, torch.Tensor):
        return f"tensor of shape {tuple(actions.shape)}, dtype {actions.dtype}, device {actions.device}"
    if isinstance(actions, np.ndarray):
        return f"array of shape {actions.shape}, dtype {actions.dtype}"
    return f"{type(actions).__name__} {actions!r:.80}"


def validate_actions(
    actions, space: spaces.Space, num_envs: int, device: torch.device, env_name: str, check_values: bool = True
) -> torch.Tensor:
    """Return ``actions`` as a tensor on ``device`` of shape ``(num_envs, *space.shape)``.

    Raises :class:`~ctrlgym.errors.ActionError` (a ``ValueError``) naming the env, the expected space and what was received, for a wrong
    shape, a wrong dtype kind (float for a discrete space), NaN, or values outside the space.
    ``check_values=False`` keeps the cheap shape/dtype checks and skips the value checks, which
    need a host-device sync on the GPU.
    """
    expected_shape = (num_envs, *(space.shape or ()))

    def fail(problem: str) -> ActionError:
        return ActionError(
            f"{env_name}: invalid actions ({problem}); expected a batch of shape {expected_shape} "
            f"from {space}, got {_describe(actions)}"
        )

    if not isinstance(actions, torch.Tensor):
        try:
            actions = torch.as_tensor(np.asarray(actions))
        except (TypeError, ValueError) as err:
            raise fail(f"not convertible to a tensor: {err}") from None
    if tuple(actions.shape) != expected_shape:
        raise fail("wrong shape")
    if actions.device.type == "meta":
        raise fail("a meta tensor holds no values")
    discrete = isinstance(space, (spaces.Discrete, spaces.MultiDiscrete))
    if discrete and (actions.is_floating_point() or actions.is_complex() or actions.dtype == torch.bool):
        raise fail("a discrete space needs integer actions")
    if not discrete and not (actions.is_floating_point() or actions.dtype in (torch.int32, torch.int64)):
        raise fail("a Box space needs real-valued actions")
    dtype = torch_dtype(space) if discrete else torch.float32
    if actions.dtype != dtype or actions.device != device:
        actions = actions.to(device=device, dtype=dtype)
    if not check_values:
        return actions
    if isinstance(space, spaces.Discrete):
        first, last = int(space.start), int(space.start) + int(space.n) - 1
        outside = (actions < first) | (actions > last)
        if bool(outside.any()):
            raise fail(f"values outside [{first}, {last}]: {_first_values(actions, outside)}")
    elif isinstance(space, spaces.MultiDiscrete):
        starts = torch.as_tensor(space.start, device=device)
        ends = starts + torch.as_tensor(space.nvec, device=device) - 1
        outside = (actions < starts) | (actions > ends)
        if bool(outside.any()):
            raise fail(f"values outside the MultiDiscrete range: {_first_values(actions, outside)}")
    elif isinstance(space, spaces.Box):
        nan = torch.isnan(actions)
        if bool(nan.any()):
            raise fail(f"NaN: {_first_values(actions, nan)}")
        lows = torch.as_tensor(space.low, device=device, dtype=torch.float32)
        highs = torch.as_tensor(space.high, device=device, dtype=torch.float32)
        outside = (actions < lows) | (actions > highs)
        if bool(outside.any()):
            raise fail(f"values outside the Box bounds: {_first_values(actions, outside)}")
    return actions


def sample_actions(
    space: spaces.Space, num_envs: int, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Uniform random actions for a batch, drawn from a torch generator (reproducible, on device)."""
    if isinstance(space, spaces.Discrete):
        u = torch.rand(num_envs, generator=generator, device=device)
        n = int(space.n)
        return (u * n).long().clamp_max(n - 1) + int(space.start)
    if isinstance(space, spaces.MultiDiscrete):
        nvec = torch.as_tensor(space.nvec, device=device)
        u = torch.rand((num_envs, *space.shape), generator=generator, device=device)
        return torch.minimum((u * nvec).long(), nvec - 1) + torch.as_tensor(space.start, device=device)
    if isinstance(space, spaces.Box):
        low = torch.as_tensor(space.low, device=device, dtype=torch.float32)
        high = torch.as_tensor(space.high, device=device, dtype=torch.float32)
        u = torch.rand((num_envs, *space.shape), generator=generator, device=device)
        return low + u * (high - low)
    raise TypeError(f"no torch sampler for {space}")
