"""A replay buffer of multi-agent transitions, on the agent's device, saved with checkpoints."""

from __future__ import annotations

import torch

__all__ = ["ReplayBuffer"]


class ReplayBuffer:
    """A ring of the last ``capacity`` transitions ``(s, a, r, s', terminated)`` of every env.

    Observations ``(n_agents, obs_dim)``, actions and rewards ``(n_agents,)`` per transition;
    ``add`` takes a batch (one step of ``num_envs`` envs), ``sample`` a uniform minibatch.
    """

    FIELDS = ("observations", "actions", "rewards", "next_observations", "terminated")

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], n_agents: int, device: torch.device) -> None:
        if capacity < 1:
            raise ValueError(f"ReplayBuffer capacity must be >= 1, got {capacity}")
        self.capacity, self.device = int(capacity), torch.device(device)
        self.observations = torch.zeros((capacity, *obs_shape), device=device)
        self.next_observations = torch.zeros((capacity, *obs_shape), device=device)
        self.actions = torch.zeros((capacity, n_agents), dtype=torch.long, device=device)
        self.rewards = torch.zeros((capacity, n_agents), device=device)
        self.terminated = torch.zeros(capacity, device=device)
        self.position, self.size = 0, 0

    def __len__(self) -> int:
        return self.size

    def add(self, observations, actions, rewards, next_observations, terminated) -> None:
        count = observations.shape[0]
        index = (self.position + torch.arange(count, device=self.device)) % self.capacity
        values = (observations, actions, rewards, next_observations, terminated)
        for name, value in zip(self.FIELDS, values, strict=False):
            getattr(self, name)[index] = value.to(self.device, getattr(self, name).dtype).reshape(
                getattr(self, name)[index].shape
            )
        self.position = (self.position + count) % self.capacity
        self.size = min(self.size + count, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        index = torch.randint(0, self.size, (batch_size,), generator=generator, device=self.device)
        return {name: getattr(self, name)[index] for name in self.FIELDS}

    def state_dict(self) -> dict:
        return {
            "position": self.position,
            "size": self.size,
            **{name: getattr(self, name)[: self.size].cpu() for name in self.FIELDS},
        }

    def load_state_dict(self, state: dict) -> None:
        self.position, self.size = state["position"], state["size"]
        for name in self.FIELDS:
            getattr(self, name)[: self.size] = state[name].to(self.device)
