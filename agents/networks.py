"""Q-networks for a batch of agents: one MLP per agent, or one shared with an agent-id embedding."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["AgentLinear", "AgentQNetwork"]


class AgentLinear(nn.Module):
    """``y[:, i] = x[:, i] W_i + b_i`` for every agent i at once (``groups=1``: one W shared by all)."""

    def __init__(self, groups: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)  # nn.Linear's default initialisation, per agent
        self.weight = nn.Parameter(torch.empty(groups, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(groups, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, n_agents, in) -> (batch, n_agents, out)
        weight = self.weight.expand(x.shape[1], -1, -1) if self.weight.shape[0] == 1 else self.weight
        return torch.einsum("bni,nio->bno", x, weight) + self.bias


class AgentQNetwork(nn.Module):
    """``Q_i(s_i, ·)`` for all agents: observation ``(batch, n, obs_dim)`` -> ``(batch, n, outputs)``.

    ``shared=True``: one MLP for every agent, its input extended by a learned agent-id
    embedding of ``embedding_dim`` (parameter sharing, Gupta et al. 2017); ``shared=False``:
    separate weights per agent, evaluated together by batched matrix products.
    """

    def __init__(
        self,
        n_agents: int,
        obs_dim: int,
        outputs: int,
        hidden: tuple[int, ...] = (64, 64),
        shared: bool = False,
        embedding_dim: int = 8,
    ) -> None:
        super().__init__()
        self.shared = shared
        groups = 1 if shared else n_agents
        self.embedding = nn.Embedding(n_agents, embedding_dim) if shared else None
        sizes = (obs_dim + (embedding_dim if shared else 0), *hidden)
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=False):
            layers += [AgentLinear(groups, a, b), nn.ReLU()]
        layers.append(AgentLinear(groups, sizes[-1], outputs))
        self.body = nn.Sequential(*layers)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        if self.embedding is not None:
            ids = self.embedding.weight.expand(observations.shape[0], -1, -1)
            observations = torch.cat([observations, ids], dim=-1)
        return self.body(observations)
