"""The batched environment contract every ctrlgym family builds on.

A family subclasses :class:`TorchVectorEnv` and writes three template methods (the pgx pattern):

* ``_reset_envs(mask)`` – re-initialise the state of the envs where ``mask`` is true, vectorised
  (``torch.where``, never a Python loop over envs);
* ``_step_envs(actions)`` – advance every env one step, returning ``(rewards, terminated, info)``;
* ``_observe()`` – a fresh observation tensor ``(num_envs, *single_observation_space.shape)``.

The base class owns everything else once: the Gymnasium 1.x autoreset modes, truncation at
``max_episode_steps``, episode statistics, masked resets, seeding and action validation.

A family may instead write its step as **pure functions** of tensors (:class:`PureSteps`); the base
class then runs them eagerly, or fuses the whole step (the family's transition, autoreset, time
limit, episode statistics) into one compiled kernel with ``compile=True`` (``torch.compile``,
inductor): a few kernels per step instead of dozens of small ops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ctrlgym.compiled import Compiled
from ctrlgym.errors import UsageError
from ctrlgym.spaces import SUPPORTED_ACTION_SPACES, sample_actions, validate_actions
from ctrlgym.threads import adopt_thread_policy, call_with_threads, limited_threads

__all__ = ["TorchVectorEnv", "PureSteps", "AutoresetMode", "parse_autoreset_mode", "resolve_device"]


def resolve_device(device: str | torch.device) -> torch.device:
    """A torch device with its index filled in (``"cuda"`` -> ``cuda:0``), as tensors report it;
    ``ValueError`` naming the device if this torch cannot use it."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        build = (
            "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, but no GPU is visible"
        )
        raise UsageError(
            f"device {str(device)!r} is not available: torch {torch.__version__} is {build}; use device='cpu'"
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"device {str(device)!r} is not available: {torch.cuda.device_count()} CUDA device(s) visible")
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def parse_autoreset_mode(mode: AutoresetMode | str) -> AutoresetMode:
    """Accept an ``AutoresetMode``, its value (``"NextStep"``) or its name (``"next_step"``)."""
    if isinstance(mode, AutoresetMode):
        return mode
    for candidate in AutoresetMode:
        if str(mode).lower() in (candidate.value.lower(), candidate.name.lower()):
            return candidate
    raise UsageError(f"unknown autoreset_mode {mode!r}; choose one of {[m.name for m in AutoresetMode]}")


State = tuple[torch.Tensor, ...]


class PureSteps:
    """A family's step written as pure functions of tensors, so that it can be fused and compiled.

    Mix in before :class:`TorchVectorEnv` and write three static methods, ``_params``,
    ``state_names`` and the two draw counts instead of the three template methods; ``params`` is :meth:`_params`, ``state`` the tuple of the
    attributes named in ``state_names`` (each ``(num_envs, ...)``), ``draws`` rows of uniforms on
    [0, 1), ``(rows, num_envs)``, from the batch's generator:

    * ``_transition(params, state, actions, draws) -> (state, rewards, terminated, info)`` with
      ``draws`` the ``num_step_draws`` rows of the step;
    * ``_reset_state(params, state, mask, draws) -> state``: the envs in ``mask`` restart, with
      ``draws`` the ``num_reset_draws`` rows of a reset;
    * ``_observe_state(params, state) -> obs``;
    * ``_params() -> dict``: the constants (tensors and numbers) the functions read.

    Every step draws ``num_step_draws + num_reset_draws`` rows in one call, whether or not an
    env restarts, so a seed gives the same trajectories eagerly and compiled. The call draws
    random bits (:func:`uniforms_from_bits` makes them uniforms inside the step, fused when
    compiled): torch's CPU generator fills int32 a third faster than float32.
    """

    state_names: tuple[str, ...] = ()
    num_step_draws: int = 0
    num_reset_draws: int = 0

    @staticmethod
    def _transition(params: dict, state: State, actions: torch.Tensor, draws: torch.Tensor):
        raise NotImplementedError

    @staticmethod
    def _reset_state(params: dict, state: State, mask: torch.Tensor, draws: torch.Tensor) -> State:
        raise NotImplementedError

    @staticmethod
    def _observe_state(params: dict, state: State) -> torch.Tensor:
        raise NotImplementedError

    def _params(self) -> dict:
        raise NotImplementedError

    # the template methods of TorchVectorEnv, from the pure functions
    def _get_state(self) -> State:
        return tuple(getattr(self, name) for name in self.state_names)

    def _set_state(self, state: State) -> None:
        for name, value in zip(self.state_names, state, strict=True):
            setattr(self, name, value)

    def _draw(self, rows: int) -> torch.Tensor:
        """``rows`` rows of random bits, ``(rows, num_envs)`` int32, from the batch's generator."""
        env: Any = self
        bits = torch.empty((rows, env.num_envs), dtype=torch.int32, device=env.device)
        return bits.random_(generator=env.generator)

    def _reset_envs(self, mask: torch.Tensor) -> None:
        uniforms = uniforms_from_bits(self._draw(self.num_reset_draws))
        self._set_state(self._reset_state(self._params(), self._get_state(), mask, uniforms))

    def _observe(self) -> torch.Tensor:
        return self._observe_state(self._params(), self._get_state())


def uniforms_from_bits(bits: torch.Tensor) -> torch.Tensor:
    """Uniforms on [0, 1) with 24 random bits each (float32's resolution, as ``torch.rand``) from
    non-negative int32 random bits: ``(bits mod 2^24) · 2^-24``."""
    return (bits & 0xFFFFFF).float() * 2.0**-24


def episode_bookkeeping(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    step_info: dict,
    elapsed: torch.Tensor,
    returns: torch.Tensor,
    pending: torch.Tensor,
    mode: str,
    max_episode_steps: int | None,
    restart: Callable[[torch.Tensor], bool],
    observe: Callable[[], torch.Tensor],
):
    """What every step does after the transition, for both kinds of family: the autoreset of
    ``mode`` (an ``AutoresetMode`` value: Gymnasium 1.x's next-step, same-step or disabled), the
    time limit and the episode statistics (``info["episode"]``, as ``RecordEpisodeStatistics``).
    ``restart(mask)`` restarts the envs in ``mask`` (returning False if it skipped an empty mask),
    ``observe()`` reads the observation of the current state. Returns ``(obs, rewards, terminated,
    truncated, info, elapsed, returns, pending)``."""
    per_reward = (1,) * (rewards.dim() - 1)
    elapsed = elapsed + 1
    returns = returns + rewards
    if mode == AutoresetMode.NEXT_STEP.value and restart(pending):
        # envs that finished on the previous step restart now; what they just did is discarded
        pending_reward = pending.reshape(pending.shape + per_reward)
        rewards = rewards.masked_fill(pending_reward, 0.0)
        terminated = terminated & ~pending
        elapsed = elapsed.masked_fill(pending, 0)
        returns = returns.masked_fill(pending_reward, 0.0)
    truncated = torch.zeros_like(terminated) if max_episode_steps is None else elapsed >= max_episode_steps
    done = terminated | truncated
    done_reward = done.reshape(done.shape + per_reward)
    info: dict[str, Any] = dict(step_info)
    info["episode"] = {
        "r": torch.where(done_reward, returns, torch.zeros_like(returns)),
        "l": torch.where(done, elapsed, torch.zeros_like(elapsed)),
    }
    info["_episode"] = done
    obs = observe()
    if mode == AutoresetMode.SAME_STEP.value:
        info["final_obs"], info["_final_obs"] = obs, done
        info["final_info"], info["_final_info"] = dict(step_info), done
        if restart(done):
            obs = observe()
        elapsed = elapsed.masked_fill(done, 0)
        returns = returns.masked_fill(done_reward, 0.0)
        pending = torch.zeros_like(done)
    elif mode == AutoresetMode.NEXT_STEP.value:
        pending = done
    return obs, rewards, terminated, truncated, info, elapsed, returns, pending


def fused_step(
    family: Any,
    params: dict,
    state: State,
    elapsed: torch.Tensor,
    returns: torch.Tensor,
    pending: torch.Tensor,
    actions: torch.Tensor,
    draws: torch.Tensor,
    num_step_draws: int,
    mode: str,
    max_episode_steps: int | None,
    skip_idle_resets: bool,
):
    """One whole step of a :class:`PureSteps` family as a pure function: the transition, then
    :func:`episode_bookkeeping` with the family's pure reset and observation. ``draws``: random
    bits (``PureSteps._draw``), the step's rows, then the reset's, ``num_step_draws`` of the
    first. ``skip_idle_resets`` (eager CPU only) asks whether any env restarts before computing
    the restart; compiled, it is always computed (masked), with the same result. Returns
    ``(state, elapsed, returns, pending, obs, rewards, terminated, truncated, info)``."""
    draws = uniforms_from_bits(draws)
    step_draws, reset_draws = draws[:num_step_draws], draws[num_step_draws:]
    state, rewards, terminated, step_info = family._transition(params, state, actions, step_draws)
    current = [state]

    def restart(mask: torch.Tensor) -> bool:
        if skip_idle_resets and not bool(mask.any()):
            return False
        current[0] = family._reset_state(params, current[0], mask, reset_draws)
        return True

    obs, rewards, terminated, truncated, info, elapsed, returns, pending = episode_bookkeeping(
        rewards,
        terminated,
        step_info,
        elapsed,
        returns,
        pending,
        mode,
        max_episode_steps,
        restart,
        lambda: family._observe_state(params, current[0]),
    )
    return current[0], elapsed, returns, pending, obs, rewards, terminated, truncated, info


def _fused_step_of_flat_inputs(constants: tuple, *tensors: torch.Tensor):
    """``fused_step`` with its parameters split into ``constants`` and tensors, for :class:`Compiled`."""
    family, names, fixed_params, num_state, fixed = constants
    fixed_params = dict(fixed_params)
    tensor_params = iter(tensors)
    params = {name: fixed_params[name] if name in fixed_params else next(tensor_params) for name in names}
    num_params = len(names) - len(fixed_params)
    state = tuple(tensors[num_params : num_params + num_state])
    elapsed, returns, pending, actions, draws = tensors[num_params + num_state :]
    num_step_draws, mode, max_episode_steps = fixed
    return fused_step(
        family, params, state, elapsed, returns, pending, actions, draws, num_step_draws, mode, max_episode_steps, False
    )


class CompiledStep:
    """``fused_step`` of one family compiled by TorchInductor (:class:`~ctrlgym.compiled.Compiled`):
    its number parameters, draw count, autoreset mode and time limit fixed in the graph."""

    def __init__(self, family: Any, num_step_draws: int, mode: str, max_episode_steps: int | None) -> None:
        self.family, self.fixed = family, (num_step_draws, mode, max_episode_steps)
        self.compiled = Compiled(_fused_step_of_flat_inputs)

    def __call__(self, params: dict, state: State, *tensors: torch.Tensor):
        tensor_params, fixed_params = [], []
        for name, value in params.items():
            if isinstance(value, torch.Tensor):
                tensor_params.append(value)
            else:
                fixed_params.append((name, value))
        constants = (self.family, tuple(params), tuple(fixed_params), len(state), self.fixed)
        return self.compiled(constants, *tensor_params, *state, *tensors)


class TorchVectorEnv(VectorEnv):
    """A batch of ``num_envs`` copies of one environment, stepped together as torch tensors.

    Observations, rewards, terminations and truncations are tensors on ``device`` with the batch
    as first dimension; actions may be tensors or arrays of shape ``(num_envs, *action_shape)``.

    Autoreset modes (Gymnasium 1.x semantics, chosen at construction):

    * ``NEXT_STEP`` (default): the step after an episode ends resets that env; its action is
      ignored and it returns the first observation of the next episode with reward 0.
    * ``SAME_STEP``: a finished env is reset within the same step; ``info["final_obs"]`` and
      ``info["final_info"]`` hold its last observation and info, masked by ``info["_final_obs"]``.
    * ``DISABLED``: nothing resets by itself; call ``reset(options={"reset_mask": mask})``.

    At the end of an episode ``info["episode"] = {"r": return, "l": length}`` with the mask
    ``info["_episode"]``, as ``gymnasium.wrappers.vector.RecordEpisodeStatistics`` reports it.

    Randomness comes from one ``torch.Generator`` per batch (``self.generator``), seeded by
    ``reset(seed=...)``: the same seed gives the same trajectories on the same device.

    ``validate_actions=False`` skips the value checks of actions (range, NaN), which need a
    host-device sync; with it off, ``step`` never syncs on the GPU.

    ``compile=True`` (families written as :class:`PureSteps`) fuses each step into compiled
    kernels with ``torch.compile``: the first step compiles (seconds; inductor caches the result
    on disk for later processes), later steps run the same maths, bit for bit, in a few kernels.
    On a CPU it pays from a few hundred envs up (see the speed results page).
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}
    #: Shape of one env's reward: ``()`` for one agent, ``(n_agents,)`` for multi-agent envs.
    reward_shape: tuple[int, ...] = ()
    #: True for envs with an agent axis (observations ``(num_envs, n_agents, ...)``); these have
    #: no single-env Gymnasium view (use the PettingZoo adapter).
    multi_agent: bool = False
    #: True when the whole env (tensors and generator) pickles, so a training checkpoint can hold
    #: it and a resumed run continues bit for bit; False for envs whose state lives elsewhere (SUMO).
    resumable: bool = True
    #: what each info metric measures and in which unit, for reports: ``{"holding_cost": "..."}``
    metric_descriptions: dict[str, str] = {}
    # What evaluation, training progress and reports read of an env class (each has a default, so a
    # family declares only what applies to it):
    #: info metrics reported as their value at each episode's last step instead of their mean over
    #: the episode's steps (traffic: ``delay``; mixup: ``test_accuracy``)
    final_metrics: tuple[str, ...] = ()
    #: metrics reported as the ratio of two info metrics' episode sums, ``{name: (numerator, denominator)}``
    #: (traffic: ``{"travel_time": ("trip_time", "throughput")}``)
    ratio_metrics: dict[str, tuple[str, str]] = {}
    #: ``(metric, higher_is_better)`` that reports rank policies by and the training bar shows;
    #: None: the episode return
    headline_metric: tuple[str, bool] | None = None
    #: metrics reports show first, in this order (the rest follow, sorted)
    report_metrics: tuple[str, ...] = ()
    #: ``(floor, ceiling)`` baselines of the normalised score ``100 (x - floor) / (ceiling - floor)``
    #: in sweep reports (beamforming: stale to perfect CSI); None: no normalised table
    normalised_score: tuple[str, str] | None = None
    #: option dataclasses whose fields the constructor takes as ``**options`` (configs validate keys against them)
    option_types: tuple[type, ...] = ()
    #: a field's published results that benchmark reports put beside each task
    #: (:class:`~ctrlgym.published.PublishedResults`; traffic: RESCO's); None: none
    published_results: Any = None

    def __init__(
        self,
        num_envs: int,
        single_observation_space: spaces.Space,
        single_action_space: spaces.Space,
        *,
        device: str | torch.device = "cpu",
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        validate_actions: bool = True,
        compile: bool = False,
    ) -> None:
        if compile and not isinstance(self, PureSteps):
            raise UsageError(
                f"{type(self).__name__}: compile=True needs a family whose step is written as pure functions "
                "(ctrlgym.vector_env.PureSteps); this one is not"
            )
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise UsageError(f"{type(self).__name__}: num_envs must be a positive integer, got {num_envs!r}")
        if max_episode_steps is not None and max_episode_steps < 1:
            raise UsageError(f"{type(self).__name__}: max_episode_steps must be >= 1 or None, got {max_episode_steps}")
        if not isinstance(single_action_space, SUPPORTED_ACTION_SPACES):
            raise TypeError(f"{type(self).__name__}: unsupported action space {single_action_space}")
        self.num_envs = int(num_envs)
        self.device = resolve_device(device)
        if self.device.type == "cpu":
            adopt_thread_policy()  # once per process: the loop around the env runs with ctrlgym's threads too
        self.single_observation_space = single_observation_space
        self.single_action_space = single_action_space
        self.observation_space = batch_space(single_observation_space, self.num_envs)
        self.action_space = batch_space(single_action_space, self.num_envs)
        self.autoreset_mode = parse_autoreset_mode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = None
        self.max_episode_steps = max_episode_steps
        self.validate_actions = validate_actions
        self.compile = bool(compile)
        self._compiled_step: CompiledStep | None = None
        self.generator = torch.Generator(device=self.device)
        self.generator.seed()

        n = self.num_envs
        self._elapsed_steps = torch.zeros(n, dtype=torch.long, device=self.device)
        self._episode_returns = torch.zeros((n, *self.reward_shape), dtype=torch.float32, device=self.device)
        self._autoreset_pending = torch.zeros(n, dtype=torch.bool, device=self.device)
        self._has_reset = False

    # ----------------------------------------------------------------- template methods
    def _reset_envs(self, mask: torch.Tensor) -> None:
        """Re-initialise the state of the envs where ``mask`` (bool, ``(num_envs,)``) is true."""
        raise NotImplementedError

    def _step_envs(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Advance every env one step; return ``(rewards, terminated, info)``, each batched."""
        raise NotImplementedError

    def _observe(self) -> torch.Tensor:
        """A new tensor ``(num_envs, *obs_shape)`` with the current observations."""
        raise NotImplementedError

    # ----------------------------------------------------------------- Gymnasium API
    @property
    def env_name(self) -> str:
        return type(self).__name__

    @property
    def elapsed_steps(self) -> torch.Tensor:
        """Steps taken in the current episode of each env, ``(num_envs,)``."""
        return self._elapsed_steps.clone()

    #: intra-op threads for this env's reset/step on CPU (None: ``ctrlgym.set_num_threads``, default 1; 0: torch's own)
    num_threads: int | None = None

    def _threads(self):
        return limited_threads(self._thread_count())

    def _thread_count(self) -> int | None:
        return self.num_threads if self.device.type == "cpu" else 0  # 0: leave torch's count alone

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Reset all envs, or those in ``options["reset_mask"]``; ``seed`` reseeds the generator."""
        with self._threads():
            return self._reset(seed=seed, options=options)

    def step(self, actions):
        """Step every env; returns ``(obs, rewards, terminations, truncations, info)`` as tensors."""
        return call_with_threads(self._thread_count(), self._step, actions)

    def _reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            if isinstance(seed, (list, tuple, np.ndarray)):
                raise UsageError(
                    f"{self.env_name}: reset takes one int seed for the whole batch (one torch.Generator "
                    f"per batch), got {type(seed).__name__}"
                )
            self.generator.manual_seed(int(seed))
            self._np_random, self._np_random_seed = seeding.np_random(int(seed))
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if options:
            raise UsageError(f"{self.env_name}: unknown reset options {sorted(options)}; only 'reset_mask' is known")
        if mask is None:
            mask = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        else:
            mask = torch.as_tensor(mask, device=self.device)
            if mask.shape != (self.num_envs,) or mask.dtype != torch.bool:
                raise UsageError(
                    f"{self.env_name}: reset_mask must be a bool tensor of shape ({self.num_envs},), "
                    f"got shape {tuple(mask.shape)} dtype {mask.dtype}"
                )
            if not self._has_reset and not bool(mask.all()):
                raise UsageError(f"{self.env_name}: the first reset must reset every env (no reset_mask)")
        self._reset_envs(mask)
        self._elapsed_steps.masked_fill_(mask, 0)
        self._episode_returns.masked_fill_(self._per_reward(mask), 0.0)
        self._autoreset_pending &= ~mask
        self._has_reset = True
        return self._observe(), {}

    def _reset_some(self, mask: torch.Tensor) -> bool:
        """``_reset_envs(mask)`` during a step; on the CPU skipped when no env is in ``mask`` (most
        steps: an env's random draws for a reset it would discard cost a tenth of a step), on a GPU
        always called, as asking would sync with the host. Returns whether it was called."""
        if self.device.type == "cpu" and not bool(mask.any()):
            return False
        self._reset_envs(mask)
        return True

    def _step(self, actions):
        if not self._has_reset:
            raise RuntimeError(f"{self.env_name}: call reset() before step()")
        actions = validate_actions(
            actions, self.single_action_space, self.num_envs, self.device, self.env_name, self.validate_actions
        )
        if isinstance(self, PureSteps):
            return self._pure_step(actions)
        rewards, terminated, step_info = self._step_envs(actions)
        obs, rewards, terminated, truncated, info, elapsed, returns, pending = episode_bookkeeping(
            rewards,
            terminated,
            step_info,
            self._elapsed_steps,
            self._episode_returns,
            self._autoreset_pending,
            self.autoreset_mode.value,
            self.max_episode_steps,
            self._reset_some,  # on the CPU, most steps restart no env and skip the reset
            self._observe,
        )
        self._elapsed_steps, self._episode_returns, self._autoreset_pending = elapsed, returns, pending
        return obs, rewards, terminated, truncated, info

    def _pure_step(self, actions: torch.Tensor):
        """The step of a :class:`PureSteps` family: ``fused_step``, eager or compiled."""
        family: Any = type(self)
        pure: Any = self
        draws = pure._draw(pure.num_step_draws + pure.num_reset_draws)
        tensors = (self._elapsed_steps, self._episode_returns, self._autoreset_pending, actions, draws)
        fixed = (pure.num_step_draws, self.autoreset_mode.value, self.max_episode_steps)
        if self.compile:
            if self._compiled_step is None:
                self._compiled_step = CompiledStep(family, *fixed)
            out = self._compiled_step(pure._params(), pure._get_state(), *tensors)
        else:
            out = fused_step(family, pure._params(), pure._get_state(), *tensors, *fixed, self.device.type == "cpu")
        state, elapsed, returns, pending, obs, rewards, terminated, truncated, info = out
        pure._set_state(state)
        self._elapsed_steps, self._episode_returns, self._autoreset_pending = elapsed, returns, pending
        return obs, rewards, terminated, truncated, info

    def _per_reward(self, mask: torch.Tensor) -> torch.Tensor:
        """A per-env mask shaped to broadcast over one env's reward (per-agent rewards)."""
        return mask.reshape(mask.shape + (1,) * len(self.reward_shape))

    def random_actions(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Uniform random actions for the whole batch, as a tensor on ``device``."""
        if generator is None:
            generator = torch.Generator(device=self.device)
            generator.seed()
        return sample_actions(self.single_action_space, self.num_envs, generator, self.device)

    def close(self, **kwargs: Any) -> None:
        self.closed = True

    def __repr__(self) -> str:
        return (
            f"{self.env_name}(num_envs={self.num_envs}, device={self.device}, "
            f"autoreset_mode={self.autoreset_mode.name}, max_episode_steps={self.max_episode_steps})"
        )
