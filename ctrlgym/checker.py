"""``check_vector_env``: a conformance checker for batched torch environments.

Gymnasium ships ``check_env`` for single envs; nothing checks a ``VectorEnv``. This one checks a
:class:`~ctrlgym.vector_env.TorchVectorEnv` (or any env following the same contract): spaces,
dtypes, output device and shapes, seed determinism, that bad actions raise ``ValueError``,
masked resets, and the semantics of the env's autoreset mode, episode statistics included.
"""

from __future__ import annotations

import pickle
import warnings
from typing import Any

import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ctrlgym.errors import CtrlgymError
from ctrlgym.spaces import sample_actions, torch_dtype

__all__ = ["check_vector_env", "VectorEnvCheckError"]


class VectorEnvCheckError(CtrlgymError, AssertionError):
    """Raised when an environment breaks the batched-env contract; the message says how."""


def _require(condition, message: str) -> None:
    if not bool(condition):
        raise VectorEnvCheckError(message)


def _check_batch(env, name: str, value, shape: tuple, dtype: torch.dtype | None = None) -> None:
    _require(isinstance(value, torch.Tensor), f"{name} must be a torch.Tensor, got {type(value).__name__}")
    _require(tuple(value.shape) == shape, f"{name} must have shape {shape}, got {tuple(value.shape)}")
    _require(value.device == env.device, f"{name} is on {value.device}, the env's device is {env.device}")
    if dtype is not None:
        _require(value.dtype == dtype, f"{name} must have dtype {dtype}, got {value.dtype}")


def _check_observations(env, obs: torch.Tensor, where: str) -> None:
    space = env.single_observation_space
    _check_batch(env, f"observations from {where}", obs, (env.num_envs, *space.shape), torch_dtype(space))
    host = obs.detach().cpu().numpy()
    for i in range(env.num_envs):
        _require(space.contains(host[i]), f"observation of env {i} from {where} is outside {space}: {host[i]}")


def _check_step_outputs(env, outputs) -> None:
    _require(len(outputs) == 5, "step must return (obs, rewards, terminations, truncations, info)")
    obs, rewards, terminations, truncations, info = outputs
    n = env.num_envs
    _check_observations(env, obs, "step")
    _check_batch(env, "rewards", rewards, (n, *getattr(env, "reward_shape", ())))
    _require(rewards.is_floating_point(), f"rewards must be floating point, got {rewards.dtype}")
    _require(torch.isfinite(rewards).all(), "rewards must be finite")
    _check_batch(env, "terminations", terminations, (n,), torch.bool)
    _check_batch(env, "truncations", truncations, (n,), torch.bool)
    _require(isinstance(info, dict), f"info must be a dict, got {type(info).__name__}")
    _require("episode" in info and "_episode" in info, "info must carry 'episode' and '_episode' statistics")


def _bad_actions(env) -> list[tuple[str, torch.Tensor]]:
    space, n, device = env.single_action_space, env.num_envs, env.device
    good = sample_actions(space, n, torch.Generator(device=device).manual_seed(0), device)
    cases = [("wrong shape", torch.cat([good, good[:1]]))]
    if not env.validate_actions:
        return cases
    if isinstance(space, spaces.Discrete):
        cases.append(("out of range", torch.full_like(good, int(space.start) + int(space.n))))
        cases.append(("float dtype / NaN", torch.full(good.shape, float("nan"), device=device)))
    elif isinstance(space, spaces.MultiDiscrete):
        cases.append(("out of range", good + torch.as_tensor(space.nvec, device=device)))
        cases.append(("float dtype / NaN", torch.full(good.shape, float("nan"), device=device)))
    elif isinstance(space, spaces.Box):
        cases.append(("NaN", torch.full_like(good, float("nan"))))
        high = torch.as_tensor(space.high, dtype=torch.float32, device=device)
        if torch.isfinite(high).all():
            cases.append(("out of range", (high + 1).expand_as(good).clone()))
    return cases


def _rollout(env, seed: int, steps: int):
    generator = torch.Generator(device=env.device).manual_seed(seed)
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    for _ in range(steps):
        obs, rewards, terminations, truncations, _ = env.step(
            sample_actions(env.single_action_space, env.num_envs, generator, env.device)
        )
        trace += [obs, rewards, terminations, truncations]
    return trace


def _check_autoreset(env, seed: int, max_steps: int) -> bool:
    """Run until some episode ends and check the mode's semantics; False if none ended."""
    mode = env.autoreset_mode
    n = env.num_envs
    generator = torch.Generator(device=env.device).manual_seed(seed + 1)
    env.reset(seed=seed)
    lengths = torch.zeros(n, dtype=torch.long, device=env.device)
    reward_shape = tuple(getattr(env, "reward_shape", ()))
    returns = torch.zeros((n, *reward_shape), dtype=torch.float64, device=env.device)
    per_reward = lambda mask: mask.reshape(mask.shape + (1,) * len(reward_shape))  # noqa: E731
    pending = torch.zeros(n, dtype=torch.bool, device=env.device)  # NEXT_STEP: reset on this step
    finished_any = False
    for _ in range(max_steps):
        obs, rewards, terminations, truncations, info = env.step(
            sample_actions(env.single_action_space, n, generator, env.device)
        )
        done = terminations | truncations
        if mode == AutoresetMode.NEXT_STEP:
            _require((rewards[pending] == 0).all(), "NEXT_STEP: the autoreset step must return reward 0")
            _require(not done[pending].any(), "NEXT_STEP: the autoreset step must not be terminal")
            _require((env.elapsed_steps[pending] == 0).all(), "NEXT_STEP: the autoreset step must start a new episode")
            lengths = torch.where(pending, 0, lengths + 1)
            returns = torch.where(per_reward(pending), 0.0, returns + rewards.double())
        else:
            lengths += 1
            returns += rewards.double()
        _require(torch.equal(info["_episode"], done), "info['_episode'] must equal terminations | truncations")
        if done.any():
            finished_any = True
            _require(
                torch.equal(info["episode"]["l"][done].long(), lengths[done]),
                f"info['episode']['l'] {info['episode']['l'][done].tolist()} != steps counted {lengths[done].tolist()}",
            )
            _require(
                torch.allclose(info["episode"]["r"][done].double(), returns[done], rtol=1e-4, atol=1e-3),
                "info['episode']['r'] must equal the sum of the episode's rewards",
            )
        if mode == AutoresetMode.SAME_STEP:
            _require(
                "final_obs" in info and torch.equal(info["_final_obs"], done),
                "SAME_STEP: info needs final_obs masked by _final_obs == done",
            )
            _check_batch(env, "info['final_obs']", info["final_obs"], tuple(obs.shape))
            _require((env.elapsed_steps[done] == 0).all(), "SAME_STEP: a finished env must be reset in the same step")
            lengths, returns = lengths.masked_fill(done, 0), returns.masked_fill(per_reward(done), 0.0)
        elif mode == AutoresetMode.NEXT_STEP:
            pending = done
        else:  # DISABLED: nothing resets until asked
            _require(torch.equal(env.elapsed_steps[done], lengths[done]), "DISABLED: an env must not reset by itself")
            if done.any():
                env.reset(options={"reset_mask": done})
                _require((env.elapsed_steps[done] == 0).all(), "DISABLED: reset_mask must reset the masked envs")
                lengths, returns = lengths.masked_fill(done, 0), returns.masked_fill(per_reward(done), 0.0)
        if finished_any and not pending.any():
            return True
    return finished_any


def _check_resumable(env: Any, seed: int, generator: torch.Generator, steps: int = 5) -> None:
    """A ``resumable`` env pickled mid-episode (as a training checkpoint holds it) must step on exactly as the original."""
    env.reset(seed=seed)
    for _ in range(2):
        env.step(sample_actions(env.single_action_space, env.num_envs, generator, env.device))
    try:
        restored = pickle.loads(pickle.dumps(env))
    except Exception as error:
        raise VectorEnvCheckError(
            f"{type(env).__name__} says it is resumable but does not pickle ({type(error).__name__}: {error}); "
            "set resumable = False on the class if its state lives outside Python"
        ) from None
    try:
        for step in range(steps):
            actions = sample_actions(env.single_action_space, env.num_envs, generator, env.device)
            original, copy = env.step(actions), restored.step(actions.clone())
            for what, a, b in zip(
                ("observations", "rewards", "terminations", "truncations"), original, copy, strict=False
            ):
                _require(
                    torch.equal(a, b),
                    f"a resumable env restored from a pickle must step as the original: {what} differ at step {step + 1}",
                )
    finally:
        restored.close()


def check_vector_env(env: Any, seed: int = 0, rollout_steps: int = 20, max_autoreset_steps: int = 2000) -> None:
    """Check that ``env`` keeps the ctrlgym batched-env contract; raise ``VectorEnvCheckError`` if not.

    Checks, in order: declared spaces and autoreset mode; reset and step outputs (types, shapes,
    dtypes, device, observations inside the space); same seed gives the same trajectory; wrong
    shape, out-of-range and NaN actions raise a ``ValueError`` naming the env; a masked reset
    resets exactly the masked envs; an env that says it is ``resumable`` pickles mid-episode and the
    restored copy steps exactly as the original; the autoreset mode's semantics and the episode
    statistics, on a rollout of up to ``max_autoreset_steps`` steps (a warning if no episode ends in it).
    The env is left in an arbitrary state; reset it afterwards.
    """
    name = type(env).__name__
    _require(isinstance(env, VectorEnv), f"{name} must subclass gymnasium.vector.VectorEnv")
    n = env.num_envs
    _require(isinstance(n, int) and n >= 1, f"num_envs must be a positive int, got {n!r}")
    _require(isinstance(getattr(env, "device", None), torch.device), "env.device must be a torch.device")
    mode = env.metadata.get("autoreset_mode")
    _require(isinstance(mode, AutoresetMode), f"metadata['autoreset_mode'] must be an AutoresetMode, got {mode!r}")
    _require(getattr(env, "autoreset_mode", None) == mode, "env.autoreset_mode must equal metadata['autoreset_mode']")
    _require(
        env.observation_space == batch_space(env.single_observation_space, n),
        "observation_space must be the batched single_observation_space",
    )
    _require(
        env.action_space == batch_space(env.single_action_space, n),
        "action_space must be the batched single_action_space",
    )

    obs, info = env.reset(seed=seed)
    _check_observations(env, obs, "reset")
    _require(isinstance(info, dict), "reset must return (obs, info) with info a dict")
    generator = torch.Generator(device=env.device).manual_seed(seed)
    _check_step_outputs(env, env.step(sample_actions(env.single_action_space, n, generator, env.device)))

    first, second = _rollout(env, seed, rollout_steps), _rollout(env, seed, rollout_steps)
    _require(
        all(torch.equal(a, b) for a, b in zip(first, second, strict=False)),
        "the same seed must give the same trajectory",
    )
    other = _rollout(env, seed + 1, rollout_steps)
    if all(torch.equal(a, b) for a, b in zip(first, other, strict=False)):
        warnings.warn(
            f"{name}: seeds {seed} and {seed + 1} gave the same trajectory; is the env deterministic?", stacklevel=2
        )

    env.reset(seed=seed)
    for problem, actions in _bad_actions(env):
        try:
            env.step(actions)
        except ValueError as err:
            _require(name in str(err), f"the ValueError for a {problem} action must name the env {name}: {err}")
        else:
            raise VectorEnvCheckError(f"a {problem} action must raise ValueError, it was accepted")

    if n > 1:
        env.reset(seed=seed)
        for _ in range(3):
            env.step(sample_actions(env.single_action_space, n, generator, env.device))
        mask = torch.arange(n, device=env.device) % 2 == 0
        kept_obs = env.step(sample_actions(env.single_action_space, n, generator, env.device))[0]
        if hasattr(env, "elapsed_steps"):
            before = env.elapsed_steps
        obs, _ = env.reset(options={"reset_mask": mask})
        _check_observations(env, obs, "a masked reset")
        _require(torch.equal(obs[~mask], kept_obs[~mask]), "a masked reset must leave unmasked envs unchanged")
        if hasattr(env, "elapsed_steps"):
            after = env.elapsed_steps
            _require(
                (after[mask] == 0).all() and torch.equal(after[~mask], before[~mask]),
                "a masked reset must restart exactly the masked episodes",
            )

    if getattr(env, "resumable", False):
        _check_resumable(env, seed, generator)

    if not _check_autoreset(env, seed, max_autoreset_steps):
        warnings.warn(
            f"{name}: no episode ended within {max_autoreset_steps} steps; autoreset semantics not checked",
            stacklevel=2,
        )
