"""The interfaces shared by agents, baselines and solver policies.

A :class:`Policy` maps a batch of observations ``(num_envs, *obs_shape)`` to a batch of actions
``(num_envs, *action_shape)``, both torch tensors on the env's device. ``evaluate`` and the
reports treat every policy alike through it. An :class:`Agent` is a policy that learns: what
``ctrlgym train`` needs of ctrlgym's own algorithms (registered in :mod:`ctrlgym.experiment.algorithms`);
SB3's algorithms are trained through the SB3 adapter instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypedDict, runtime_checkable

import torch
from typing_extensions import Required  # typing.Required from Python 3.11

from ctrlgym.errors import SavedAgentError

__all__ = ["Policy", "Agent", "TrainingProgress", "CheckpointedAgent", "SB3Policy"]


@runtime_checkable
class Policy(Protocol):
    def __call__(self, observations: torch.Tensor) -> torch.Tensor: ...


class TrainingProgress(TypedDict, total=False):
    """What an :class:`Agent` hands its ``learn`` callback after every batch step.

    ``timesteps`` (transitions so far, summed over the batch) and ``episode_returns`` (returns of the
    episodes that ended at this step, summed over agents) are always there; the rest when the agent
    has them: ``loss`` (of the latest update, None before the first), ``epsilon`` (exploration rate),
    ``episode_metrics`` (the env's ``final_metrics`` of the episodes that ended, by name).
    """

    timesteps: Required[int]
    episode_returns: Required[list[float]]
    loss: float | None
    epsilon: float
    episode_metrics: dict[str, list[float]]


@runtime_checkable
class Agent(Protocol):
    """What ``ctrlgym train``, ``evaluate`` and the reports need of a learning agent on a native batch
    (``autoreset_mode="same_step"``); :class:`CheckpointedAgent` implements the saving half.

    - ``cls(env, seed=..., device=..., **hyperparameters)`` builds it; ``hyperparameters`` (the
      constructor's keywords) rebuild it from a checkpoint.
    - ``learn`` continues from where the agent stands (``num_timesteps``; after ``load`` of a
      training checkpoint, from its saved observations) until ``total_timesteps`` transitions,
      calling ``callback`` with a :class:`TrainingProgress` after every batch step.
    - ``save(path, with_replay=True)`` writes a training checkpoint, ``with_replay=False`` the final
      model; ``load`` restores either for an env with the same spaces.
    - ``set_last_observation(None)`` makes the next ``learn`` reset the env (a resumed run whose env
      restarted); agents that can be fine-tuned (``agent.init_from``) also have ``load_weights_from(path)``.
    """

    num_timesteps: int
    hyperparameters: dict[str, Any]

    def __call__(self, observations: torch.Tensor) -> torch.Tensor: ...

    def learn(
        self, env: Any, total_timesteps: int, callback: Callable[[TrainingProgress], None] | None = None, seed: int = 0
    ) -> Agent: ...

    def save(self, path: str | Path, with_replay: bool = True) -> None: ...

    def set_last_observation(self, observations: torch.Tensor | None) -> None: ...

    @classmethod
    def load(cls, path: str | Path, env: Any, device: str | torch.device | None = None, **overrides: Any) -> Agent: ...


class CheckpointedAgent:
    """``save`` and ``load`` of :class:`Agent`, written once for ctrlgym's own algorithms and plug-ins.

    A subclass has a class attribute ``algo`` (the name saved with its state), a ``hyperparameters``
    dict (its constructor's keywords), keeps where ``learn`` stands in ``_last_obs`` (saved as
    ``"last_obs"`` in a checkpoint), and implements ``state_dict(with_replay)`` (including ``"algo"``
    and ``"hyperparameters"``), ``load_state_dict(state)`` and, to refuse an env it cannot act in,
    ``check_compatible(state, env, path)``.
    """

    algo: str
    hyperparameters: dict[str, Any]
    num_timesteps: int = 0
    _last_obs: torch.Tensor | None = None

    def state_dict(self, with_replay: bool = True) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def check_compatible(self, state: dict[str, Any], env: Any, path: str | Path) -> None:
        """Raise ``ValueError`` if the agent saved as ``state`` cannot act in ``env``."""

    def set_last_observation(self, observations: torch.Tensor | None) -> None:
        """Where the next ``learn`` continues from: the env's current observations, or None to reset it."""
        self._last_obs = observations

    def save(self, path: str | Path, with_replay: bool = True) -> None:
        """Write the agent atomically to ``path``: a training checkpoint (``with_replay``: also where
        learn() stands, and the replay buffer) or the final model."""
        from ctrlgym.files import torch_save_atomic

        torch_save_atomic(self.state_dict(with_replay), path)

    @classmethod
    def read_state(cls, path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
        """The state saved at ``path``; ``ValueError`` naming the file if it is missing, unreadable,
        or holds another algorithm (:class:`~ctrlgym.errors.SavedAgentError`, a ``ValueError``)."""
        try:
            state = torch.load(path, map_location=device, weights_only=False)
        except FileNotFoundError:
            raise SavedAgentError(f"{path}: no saved agent there") from None
        except Exception as error:  # a truncated or foreign file
            raise SavedAgentError(f"{path}: not a saved ctrlgym agent ({type(error).__name__}: {error})") from None
        if not isinstance(state, dict) or state.get("algo") != cls.algo:
            held = state.get("algo") if isinstance(state, dict) else type(state).__name__
            raise SavedAgentError(f"{path} holds a {held} agent, not {cls.algo}")
        return state

    @classmethod
    def load(cls, path: str | Path, env: Any, device: str | torch.device | None = None, **overrides: Any) -> Any:
        """The agent saved at ``path`` (a checkpoint or a final model), for ``env``, whose spaces must
        match the ones it learned on; ``overrides`` replace saved hyperparameters."""
        state = cls.read_state(path)
        hyperparameters = {**state["hyperparameters"], **overrides}
        if device is not None:
            hyperparameters["device"] = device
        agent = cls(env, **hyperparameters)  # type: ignore[call-arg]
        agent.check_compatible(state, env, path)
        agent.load_state_dict(state)
        if state.get("last_obs") is not None:  # a training checkpoint: learn() continues from these observations
            agent.set_last_observation(state["last_obs"].to(env.device))
        return agent


class SB3Policy:
    """A trained Stable-Baselines3 model as a :class:`Policy` (deterministic actions by default)."""

    def __init__(self, model, deterministic: bool = True) -> None:
        self.model = model
        self.deterministic = deterministic

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        actions, _ = self.model.predict(observations.detach().cpu().numpy(), deterministic=self.deterministic)
        return torch.as_tensor(actions, device=observations.device)
