"""The batched environment contract every ctrlgym family builds on.

A family subclasses :class:`TorchVectorEnv` and writes three template methods (the pgx pattern):

* ``_reset_envs(mask)`` – re-initialise the state of the envs where ``mask`` is true, vectorised
  (``torch.where``, never a Python loop over envs);
* ``_step_envs(actions)`` – advance every env one step, returning ``(rewards, terminated, info)``;
* ``_observe()`` – a fresh observation tensor ``(num_envs, *single_observation_space.shape)``.

The base class owns everything else once: the Gymnasium 1.x autoreset modes, truncation at
``max_episode_steps``, episode statistics, masked resets, seeding and action validation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ctrlgym.errors import UsageError
from ctrlgym.spaces import SUPPORTED_ACTION_SPACES, sample_actions, validate_actions
from ctrlgym.threads import adopt_thread_policy, limited_threads

__all__ = ["TorchVectorEnv", "AutoresetMode", "parse_autoreset_mode", "resolve_device"]


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
    ) -> None:
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
        return limited_threads(self.num_threads) if self.device.type == "cpu" else limited_threads(0)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Reset all envs, or those in ``options["reset_mask"]``; ``seed`` reseeds the generator."""
        with self._threads():
            return self._reset(seed=seed, options=options)

    def step(self, actions):
        """Step every env; returns ``(obs, rewards, terminations, truncations, info)`` as tensors."""
        with self._threads():
            return self._step(actions)

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
        rewards, terminated, step_info = self._step_envs(actions)
        elapsed = self._elapsed_steps + 1
        returns = self._episode_returns + rewards

        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            # Envs that finished on the previous step restart now; what they just did is discarded.
            pending = self._autoreset_pending
            if self._reset_some(pending):  # on the CPU, most steps restart no env and skip this
                rewards = rewards.masked_fill(self._per_reward(pending), 0.0)
                terminated = terminated & ~pending
                elapsed = elapsed.masked_fill(pending, 0)
                returns = returns.masked_fill(self._per_reward(pending), 0.0)

        if self.max_episode_steps is None:
            truncated = torch.zeros_like(terminated)
        else:
            truncated = elapsed >= self.max_episode_steps
        done = terminated | truncated
        info: dict[str, Any] = dict(step_info)
        info["episode"] = {
            "r": torch.where(self._per_reward(done), returns, torch.zeros_like(returns)),
            "l": torch.where(done, elapsed, torch.zeros_like(elapsed)),
        }
        info["_episode"] = done
        obs = self._observe()

        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            info["final_obs"], info["_final_obs"] = obs, done
            info["final_info"], info["_final_info"] = dict(step_info), done
            if self._reset_some(done):
                obs = self._observe()
            elapsed = elapsed.masked_fill(done, 0)
            returns = returns.masked_fill(self._per_reward(done), 0.0)
        elif self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._autoreset_pending = done

        self._elapsed_steps, self._episode_returns = elapsed, returns
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
