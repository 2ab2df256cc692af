"""Independent DQN (IDQN) for batched multi-agent envs: each agent learns Q_i(s_i, a_i) alone.

Deep Q-learning (Mnih et al. 2015) per agent, the others treated as part of the environment
(Tan 1993): with a replay buffer D, an online network θ and a target network θ⁻,

    y_i = r_i + γ (1 − terminated) Q_i(s'_i, a*_i; θ⁻),   a*_i = argmax_a Q_i(s'_i, a; θ)  (double Q)
    L(θ) = E_{(s, a, r, s') ~ D} Σ_i Huber(Q_i(s_i, a_i; θ) − y_i).

Truncated episodes (time limits) bootstrap from the true next state. Actions are ε-greedy per
agent. :class:`ctrlgym.agents.nash_dqn.NashDQN` replaces ``argmax`` by the Nash equilibrium of
the neighbourhood stage game and keeps everything else, so the two differ only there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ctrlgym.agents.networks import AgentQNetwork
from ctrlgym.agents.replay import ReplayBuffer
from ctrlgym.policies import CheckpointedAgent
from ctrlgym.seeding import initialisation_seed
from ctrlgym.vector_env import AutoresetMode, TorchVectorEnv

__all__ = ["IndependentDQN"]


class IndependentDQN(CheckpointedAgent):
    """IDQN over all agents of a :class:`TorchVectorEnv` batch, on CPU or CUDA.

    Works with multi-agent envs (observations ``(num_envs, n_agents, obs_dim)``,
    ``MultiDiscrete`` actions) and single-agent ones (``Discrete``, one agent). ``shared=True``
    shares one network across agents with an agent-id embedding. ``total_timesteps`` and the
    schedules count transitions (env steps × ``num_envs``), as Stable-Baselines3 does.
    Calling the agent on observations gives its greedy actions (the :class:`Policy` interface).

    Args:
        env: the batch it learns on (``autoreset_mode="same_step"``); its spaces fix the networks' sizes.
        learning_rate: Adam's step size at the start.
        learning_rate_final: if set, the step size falls linearly to it over ``total_timesteps``
            (recomputed from the step count, so a resumed run follows the same schedule).
        buffer_size: transitions the replay buffer holds (the oldest are overwritten).
        batch_size: transitions per gradient step.
        gamma: discount factor γ of the TD target.
        learning_starts: transitions collected before the first gradient step.
        train_freq: batch steps between updates.
        gradient_steps: gradient steps per update.
        target_update_interval: updates between copies of the online network into the target network.
        exploration_fraction: share of ``total_timesteps`` over which ε falls linearly.
        exploration_initial_eps: ε at the start.
        exploration_final_eps: ε from the end of ``exploration_fraction`` on.
        double_q: pick the next action with the online network and value it with the target one
            (van Hasselt et al. 2016); False: the target network's max.
        shared: one network for all agents with a learned agent-id embedding, instead of one per agent.
        hidden: sizes of the hidden layers of each agent's MLP.
        max_grad_norm: gradient norm clipped to this before each step.
        seed: seeds the networks' initialisation and the agent's own generator (exploration, replay sampling).
        device: where the networks and the replay buffer live.
    """

    algo = "dqn"

    def __init__(
        self,
        env: TorchVectorEnv,
        *,
        learning_rate: float = 1e-3,
        learning_rate_final: float | None = None,
        buffer_size: int = 50_000,
        batch_size: int = 256,
        gamma: float = 0.99,
        learning_starts: int = 1_000,
        train_freq: int = 1,
        gradient_steps: int = 1,
        target_update_interval: int = 250,
        exploration_fraction: float = 0.3,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        double_q: bool = True,
        shared: bool = False,
        hidden: tuple[int, ...] | list[int] = (64, 64),
        max_grad_norm: float = 10.0,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        name = type(self).__name__
        space = env.single_action_space
        if hasattr(space, "nvec"):
            num_actions = torch.as_tensor(np.asarray(space.nvec).reshape(-1))
        elif hasattr(space, "n"):
            num_actions = torch.tensor([int(space.n)])
        else:
            raise ValueError(f"{name} needs Discrete or MultiDiscrete actions, {env.env_name} has {space}")
        if learning_rate <= 0 or (learning_rate_final is not None and not 0 <= learning_rate_final <= learning_rate):
            raise ValueError(
                f"{name}: need learning_rate > 0 and 0 <= learning_rate_final <= learning_rate, got {learning_rate} and {learning_rate_final}"
            )
        if not 0 <= exploration_final_eps <= exploration_initial_eps <= 1:
            raise ValueError(f"{name}: need 0 <= exploration_final_eps <= exploration_initial_eps <= 1")
        self.hyperparameters = {
            key: value
            for key, value in locals().items()
            if key not in ("self", "env", "name", "space", "num_actions", "__class__")
        }
        self.hyperparameters["hidden"] = list(hidden)
        self.device = torch.device(device)
        self.single_agent = not hasattr(space, "nvec")
        obs_shape = env.single_observation_space.shape or ()
        self.obs_shape = (1, *obs_shape) if self.single_agent else tuple(obs_shape)
        self.n_agents = self.obs_shape[0]
        self.num_actions = num_actions.to(self.device)  # (n_agents,)
        self.action_mask = torch.arange(int(num_actions.max()), device=self.device)[None, :] < self.num_actions[:, None]
        self.gamma, self.batch_size, self.double_q = gamma, batch_size, double_q
        self.learning_starts, self.train_freq, self.gradient_steps = learning_starts, train_freq, gradient_steps
        self.target_update_interval, self.max_grad_norm = target_update_interval, max_grad_norm
        self.exploration = (exploration_initial_eps, exploration_final_eps, exploration_fraction)
        self.learning_rates = (learning_rate, learning_rate if learning_rate_final is None else learning_rate_final)
        self._setup_game(env)
        with initialisation_seed(seed):  # the agent's own stream: the global RNG is left alone
            self.q_network = AgentQNetwork(self.n_agents, self.obs_shape[-1], self.num_outputs, tuple(hidden), shared)
            self.target_network = AgentQNetwork(
                self.n_agents, self.obs_shape[-1], self.num_outputs, tuple(hidden), shared
            )
        self.q_network.to(self.device)
        self.target_network.to(self.device)
        self.target_network.load_state_dict(self.q_network.state_dict())
        self.optimizer = torch.optim.Adam(self.q_network.parameters(), lr=learning_rate)
        self.replay = ReplayBuffer(buffer_size, self.obs_shape, self.n_agents, self.device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.num_timesteps, self.num_updates = 0, 0
        self._last_obs: torch.Tensor | None = None  # where learn() continues from (saved in training checkpoints)

    # ------------------------------------------------------------------ the per-agent game
    def _setup_game(self, env: TorchVectorEnv) -> None:
        """IDQN: each agent's Q depends on its own action only."""
        self.num_outputs = int(self.num_actions.max())

    def greedy(self, q_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy actions and their values ``(batch, n_agents)`` from Q-values ``(batch, n_agents, outputs)``."""
        values, actions = q_values.masked_fill(~self.action_mask, -torch.inf).max(-1)
        return actions, values

    def taken(self, q_values: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q of the actions taken ``(batch, n_agents)``."""
        return q_values.gather(-1, actions[..., None])[..., 0]

    def next_values(self, next_observations: torch.Tensor) -> torch.Tensor:
        """The bootstrap value of each agent at s' (double Q: argmax by θ, value by θ⁻)."""
        target_q = self.target_network(next_observations)
        if not self.double_q:
            return self.greedy(target_q)[1]
        actions, _ = self.greedy(self.q_network(next_observations))
        return self.taken(target_q, actions)

    # ------------------------------------------------------------------ acting
    def _as_agents(self, observations: torch.Tensor) -> torch.Tensor:
        observations = observations.to(self.device, torch.float32)
        return observations[:, None] if self.single_agent else observations

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        """Greedy actions for a batch of observations, on the observations' device."""
        return self.act(observations, epsilon=0.0)

    @torch.no_grad()
    def act(self, observations: torch.Tensor, epsilon: float) -> torch.Tensor:
        """ε-greedy actions: each agent independently takes a random valid action with probability ε."""
        actions, _ = self.greedy(self.q_network(self._as_agents(observations)))
        if epsilon > 0:
            shape = actions.shape
            explore = torch.rand(shape, generator=self.generator, device=self.device) < epsilon
            random = (torch.rand(shape, generator=self.generator, device=self.device) * self.num_actions).long()
            actions = torch.where(explore, random, actions)
        actions = actions[:, 0] if self.single_agent else actions
        return actions.to(observations.device)

    def learning_rate(self, progress: float) -> float:
        """Adam's step size at ``progress`` through the run: linear from ``learning_rate`` to
        ``learning_rate_final`` (constant without it), as SB3's linear schedules."""
        start, end = self.learning_rates
        return start + (end - start) * min(progress, 1.0)

    def epsilon(self, progress: float) -> float:
        start, end, fraction = self.exploration
        return end if fraction <= 0 else start + (end - start) * min(progress / fraction, 1.0)

    # ------------------------------------------------------------------ learning
    def train_step(self) -> float:
        """One gradient step on a replay minibatch; returns the loss."""
        batch = self.replay.sample(self.batch_size, self.generator)
        with torch.no_grad():
            bootstrap = self.next_values(batch["next_observations"])
            target = batch["rewards"] + self.gamma * (1.0 - batch["terminated"][:, None]) * bootstrap
        predicted = self.taken(self.q_network(batch["observations"]), batch["actions"])
        loss = nn.functional.smooth_l1_loss(predicted, target)
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.q_network.parameters(), self.max_grad_norm)
        self.optimizer.step()
        self.num_updates += 1
        if self.num_updates % self.target_update_interval == 0:
            self.target_network.load_state_dict(self.q_network.state_dict())
        return float(loss.detach())

    def learn(
        self,
        env: TorchVectorEnv,
        total_timesteps: int,
        callback: Callable[[dict[str, Any]], None] | None = None,
        seed: int = 0,
    ) -> IndependentDQN:
        """Collect transitions from ``env`` (``autoreset_mode="same_step"``) and learn until
        ``total_timesteps`` transitions in all; ``callback`` gets, after every batch step, the
        step count, ε, the last loss, the returns of the episodes that just ended and their
        end-of-episode metrics (the env's ``final_metrics``, e.g. traffic's delay)."""
        if env.autoreset_mode != AutoresetMode.SAME_STEP:
            raise ValueError(
                f"{type(self).__name__}.learn needs autoreset_mode='same_step' (it stores the true final observations)"
            )
        # a resumed agent continues from its last observations (the env restored with it); else a fresh reset
        observations = self._last_obs if self._last_obs is not None else env.reset(seed=seed + self.num_timesteps)[0]
        loss = float("nan")
        while self.num_timesteps < total_timesteps:
            epsilon = self.epsilon(self.num_timesteps / total_timesteps)
            actions = self.act(observations, epsilon)
            next_observations, rewards, terminated, truncated, info = env.step(actions)
            done = terminated | truncated
            final = torch.where(
                done.reshape(-1, *[1] * (next_observations.dim() - 1)), info["final_obs"], next_observations
            )
            rewards = rewards.reshape(env.num_envs, -1).expand(-1, self.n_agents)
            self.replay.add(
                self._as_agents(observations),
                actions.reshape(env.num_envs, -1),
                rewards,
                self._as_agents(final),
                terminated.float(),
            )
            observations = self._last_obs = next_observations
            self.num_timesteps += env.num_envs
            if len(self.replay) >= self.learning_starts and (self.num_timesteps // env.num_envs) % self.train_freq == 0:
                for group in self.optimizer.param_groups:
                    group["lr"] = self.learning_rate(self.num_timesteps / total_timesteps)
                for _ in range(self.gradient_steps):
                    loss = self.train_step()
            if callback is not None:
                ended = bool(done.any())
                returns = info["episode"]["r"].reshape(env.num_envs, -1).sum(-1)[done].tolist() if ended else []
                callback(
                    {
                        "timesteps": self.num_timesteps,
                        "epsilon": epsilon,
                        "loss": loss,
                        "episode_returns": returns,
                        "episode_metrics": _final_metrics(env, info) if ended else {},
                    }
                )
        return self

    # ------------------------------------------------------------------ saving
    def state_dict(self, with_replay: bool = True) -> dict[str, Any]:
        state = {
            "algo": self.algo,
            "hyperparameters": self.hyperparameters,
            "obs_shape": self.obs_shape,
            "num_actions": self.num_actions.cpu(),
            "q_network": self.q_network.state_dict(),
            "target_network": self.target_network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "num_timesteps": self.num_timesteps,
            "num_updates": self.num_updates,
            "generator": self.generator.get_state(),
        }
        if with_replay:  # a training checkpoint: also where learn() stands
            state["replay"] = self.replay.state_dict()
            state["last_obs"] = self._last_obs
        return state

    def load_weights_from(self, path: str | Path) -> None:
        """Start from the networks of an agent saved at ``path`` (fine-tuning: ``agent.init_from``);
        the optimizer, replay and counters stay fresh."""
        state = self.read_state(path, self.device)
        if tuple(state["obs_shape"]) != self.obs_shape:
            raise ValueError(
                f"{path} holds a {state['algo']} agent for observations {tuple(state['obs_shape'])}; this is {self.algo} for {self.obs_shape}"
            )
        self.q_network.load_state_dict(state["q_network"])
        self.target_network.load_state_dict(state["q_network"])

    def check_compatible(self, state: dict[str, Any], env: TorchVectorEnv, path: str | Path) -> None:
        if self.obs_shape != tuple(state["obs_shape"]) or not torch.equal(self.num_actions.cpu(), state["num_actions"]):
            raise ValueError(
                f"{path} was trained on observations {tuple(state['obs_shape'])} and actions {state['num_actions'].tolist()}; "
                f"{env.env_name} has {self.obs_shape} and {self.num_actions.tolist()}"
            )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.q_network.load_state_dict(state["q_network"])
        self.target_network.load_state_dict(state["target_network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.num_timesteps, self.num_updates = state["num_timesteps"], state["num_updates"]
        if self.generator.device.type == "cpu":
            self.generator.set_state(state["generator"])
        if "replay" in state:
            self.replay.load_state_dict(state["replay"])


def _final_metrics(env: TorchVectorEnv, info: dict[str, Any]) -> dict[str, list[float]]:
    """The env's end-of-episode metrics (``final_metrics``, masked by ``info["_<name>"]``) of the episodes that just ended."""
    values = {}
    for name in getattr(env, "final_metrics", ()):  # TorchVectorEnv declares it; other VectorEnvs may not
        if name in info and f"_{name}" in info:
            values[name] = info[name][info[f"_{name}"]].tolist()
    return values
