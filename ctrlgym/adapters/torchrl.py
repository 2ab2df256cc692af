"""TorchRL ``EnvBase`` over a native ctrlgym batch (install ``ctrlgym[torchrl]``)."""

from __future__ import annotations

import torch
from gymnasium import spaces

try:
    from tensordict import TensorDict, TensorDictBase
    from torchrl.data import Bounded, Categorical, Composite, MultiCategorical, Unbounded
    from torchrl.envs import EnvBase
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError("ctrlgym.adapters.torchrl needs TorchRL: pip install 'ctrlgym[torchrl]'") from err

from ctrlgym.vector_env import AutoresetMode, TorchVectorEnv

__all__ = ["TorchRLEnv", "space_to_spec"]


def space_to_spec(space: spaces.Space, num_envs: int, device: torch.device):
    """The TorchRL spec of a batch of ``num_envs`` elements of a Gymnasium space."""
    shape = torch.Size([num_envs, *(space.shape or ())])
    if isinstance(space, spaces.Discrete):
        if space.start != 0:
            raise ValueError(f"TorchRLEnv: Discrete spaces must start at 0, got {space}")
        return Categorical(int(space.n), shape=shape, device=device, dtype=torch.int64)
    if isinstance(space, spaces.MultiDiscrete):
        if (space.start != 0).any():
            raise ValueError(f"TorchRLEnv: MultiDiscrete spaces must start at 0, got {space}")
        return MultiCategorical(torch.as_tensor(space.nvec), shape=shape, device=device, dtype=torch.int64)
    if isinstance(space, spaces.Box):
        low = torch.as_tensor(space.low, dtype=torch.float32).expand(shape)
        high = torch.as_tensor(space.high, dtype=torch.float32).expand(shape)
        if torch.isfinite(low).all() and torch.isfinite(high).all():
            return Bounded(low, high, shape=shape, device=device, dtype=torch.float32)
        return Unbounded(shape=shape, device=device, dtype=torch.float32)
    raise TypeError(f"TorchRLEnv: no TorchRL spec for {space}")


def _agent_action_spec(space: spaces.MultiDiscrete, num_envs: int, device: torch.device) -> Categorical:
    """One categorical action per agent ``(num_envs, n_agents)``; agents with fewer actions than
    the largest get a mask, so ``rand_action`` and masked policies pick only valid ones."""
    counts = torch.as_tensor(space.nvec, dtype=torch.int64).reshape(-1)
    largest = int(counts.max())
    spec = Categorical(largest, shape=(num_envs, counts.numel()), device=device, dtype=torch.int64)
    if (counts != largest).any():
        mask = (torch.arange(largest)[None, :] < counts[:, None]).expand(num_envs, -1, -1).to(device)
        spec.update_mask(mask)
    return spec


class TorchRLEnv(EnvBase):
    """Present a :class:`TorchVectorEnv` to TorchRL as an ``EnvBase`` with ``batch_size=[num_envs]``.

    TorchRL resets finished envs itself (partial resets through the ``"_reset"`` entry), so the
    batch must be built with ``autoreset_mode="disabled"``. Keys of a single-agent env:
    ``observation``, ``action``, ``reward`` ``(num_envs, 1)``, ``done`` / ``terminated`` /
    ``truncated`` ``(num_envs, 1)``. A multi-agent env (one agent per traffic light) uses
    TorchRL's grouped keys, as its multi-agent envs and BenchMARL do: ``("agents", "observation")``
    ``(num_envs, n_agents, obs_dim)``, ``("agents", "action")`` ``(num_envs, n_agents)`` (with
    ``("agents", "action_mask")`` where agents have different action counts),
    ``("agents", "reward")`` ``(num_envs, n_agents, 1)``; the done flags stay per env.

    Example::

        env = TorchRLEnv(MultiClassQueue(num_envs=64, autoreset_mode="disabled"))
        rollout = env.rollout(100)            # TensorDict of batch size (64, 100)
        marl = TorchRLEnv(TrafficTwinEnv(num_envs=64, autoreset_mode="disabled"))
        marl.rollout(10)["next", "agents", "reward"].shape   # (64, 10, 16, 1)
    """

    def __init__(self, env: TorchVectorEnv) -> None:
        if env.autoreset_mode != AutoresetMode.DISABLED:
            raise ValueError(
                f"TorchRLEnv: {env.env_name} uses autoreset_mode={env.autoreset_mode.name}; TorchRL resets "
                "envs itself, so build the env with autoreset_mode='disabled'"
            )
        super().__init__(device=env.device, batch_size=torch.Size([env.num_envs]))
        self.vector_env = env
        self.multi_agent = bool(env.multi_agent)
        n, device = env.num_envs, env.device
        if self.multi_agent:
            agents = (env.single_observation_space.shape or (0,))[0]
            self.n_agents = agents
            group = (n, agents)
            observation = Composite(
                observation=space_to_spec(env.single_observation_space, n, device), shape=group, device=device
            )
            assert isinstance(env.single_action_space, spaces.MultiDiscrete)  # one Discrete per agent
            action = _agent_action_spec(env.single_action_space, n, device)
            if action.mask is not None:
                observation["action_mask"] = Categorical(2, shape=action.mask.shape, device=device, dtype=torch.bool)
            self.observation_spec = Composite(agents=observation, shape=(n,), device=device)
            self.action_spec = Composite(
                agents=Composite(action=action, shape=group, device=device), shape=(n,), device=device
            )
            reward = Unbounded(shape=(n, agents, 1), device=device, dtype=torch.float32)
            self.reward_spec = Composite(
                agents=Composite(reward=reward, shape=group, device=device), shape=(n,), device=device
            )
        else:
            self.observation_spec = Composite(
                observation=space_to_spec(env.single_observation_space, n, device), shape=(n,), device=device
            )
            self.action_spec = space_to_spec(env.single_action_space, n, device)
            self.reward_spec = Unbounded(shape=(n, 1), device=device, dtype=torch.float32)
        flag = Categorical(2, shape=(n, 1), device=device, dtype=torch.bool)
        self.done_spec = Composite(
            done=flag, terminated=flag.clone(), truncated=flag.clone(), shape=(n,), device=device
        )

    def _flags(self, terminated: torch.Tensor, truncated: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "done": (terminated | truncated)[:, None],
            "terminated": terminated[:, None],
            "truncated": truncated[:, None],
        }

    def _observation(self, obs: torch.Tensor) -> dict:
        if not self.multi_agent:
            return {"observation": obs}
        agents = {"observation": obs}
        mask = self.action_spec["agents", "action"].mask
        if mask is not None:
            agents["action_mask"] = mask
        return {"agents": TensorDict(agents, batch_size=(self.vector_env.num_envs, self.n_agents), device=self.device)}

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        env = self.vector_env
        mask = None
        if tensordict is not None and "_reset" in tensordict.keys() and env._has_reset:
            mask = tensordict.get("_reset").reshape(env.num_envs).to(torch.bool)
        obs, _ = env.reset(options=None if mask is None else {"reset_mask": mask})
        no = torch.zeros(env.num_envs, dtype=torch.bool, device=env.device)
        return TensorDict(
            {**self._observation(obs), **self._flags(no, no)}, batch_size=self.batch_size, device=self.device
        )

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        action = tensordict.get(("agents", "action")) if self.multi_agent else tensordict.get("action")
        obs, rewards, terminated, truncated, _ = self.vector_env.step(action)
        out = {**self._observation(obs), **self._flags(terminated, truncated)}
        if self.multi_agent:
            out["agents"]["reward"] = rewards[..., None].float()
        else:
            out["reward"] = rewards[:, None].float()
        return TensorDict(out, batch_size=self.batch_size, device=self.device)

    def _set_seed(self, seed: int | None) -> None:
        if seed is not None:
            self.vector_env.generator.manual_seed(int(seed))
