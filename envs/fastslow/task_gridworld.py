"""A gridworld where the task to serve moves slowly among a few sites."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from gymnasium import spaces

from ctrlgym.envs.fastslow.slow_chain import SlowChainMixin, switch_slow_state, uniform_levels
from ctrlgym.vector_env import AutoresetMode, PureSteps, TorchVectorEnv

__all__ = ["TaskGridworld", "MOVES"]

# stay, up, down, left, right as (row, column) steps
MOVES = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


class TaskGridworld(SlowChainMixin, PureSteps, TorchVectorEnv):
    r"""A robot on a ``size × size`` grid serves spatial tasks; which site has the task changes slowly.

    ## Description
    One of the benchmarks of the later version of Wang & Jiang ("Frozen-State Value Iteration",
    arXiv 2301.00922): a gridworld with spatial tasks. Fast state: the robot's cell; slow state:
    the site whose task is active (one of ``sites``).

    ## Dynamics (one step from (cell, z) under action a)
    1. the robot moves one cell in direction a (stay, up, down, left, right); with probability
       ``slip`` it moves in a uniformly random direction instead; walls stop it;
    2. z stays w.p. 1 − ε, else the task moves uniformly to another site.
    The exact model factorises: :math:`P^a = F^a \otimes Z`.

    ## Action Space
    ``Discrete(5)``: stay, up, down, left, right.

    ## Observation Space
    ``MultiDiscrete([size, size, len(sites)])``: row, column, active site.

    ## Rewards
    ``task_reward`` while the robot is on the active site (before moving), minus ``move_cost``
    for every move other than stay.

    ## Starting State
    Uniform cell, uniform site.

    ## Episode End
    Termination: never. Truncation: ``max_episode_steps`` (default 256).

    ## Arguments
    ``size`` (5), ``sites`` (cells (0, 0), (0, 4), (4, 2) by default: two corners and a middle
    edge), ``slip`` (0.1), ``task_reward`` (1), ``move_cost`` (0.05), ``switch_prob`` ε (0.02),
    ``discount`` (0.99). Default: 25 · 3 = 75 states; ``size=100`` with 10 sites has 100,000.
    ``compile=True`` fuses each step into one compiled kernel (``TorchVectorEnv``), with the eager
    step's results bit for bit.

    ## Version History
    * v0: initial version. Since ctrlgym 0.2 the slow chain takes one uniform per step (u < ε
      switches, u / ε picks the new state) and a step draws its uniforms as one block, so a
      seed's trajectories differ from 0.1's.
    """

    metric_descriptions = {"on_task": "share of steps the robot is on the task site"}

    def __init__(
        self,
        num_envs: int = 1,
        *,
        size: int = 5,
        sites: Sequence[Sequence[int]] | None = None,
        slip: float = 0.1,
        task_reward: float = 1.0,
        move_cost: float = 0.05,
        switch_prob: float = 0.02,
        discount: float = 0.99,
        max_episode_steps: int | None = 256,
        device: str | torch.device = "cpu",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        validate_actions: bool = True,
        compile: bool = False,
    ) -> None:
        name = type(self).__name__
        if int(size) != size or size < 2:
            raise ValueError(f"{name}: size must be an integer >= 2, got {size}")
        size = int(size)
        sites = [(0, 0), (0, size - 1), (size - 1, size // 2)] if sites is None else [tuple(site) for site in sites]
        if not sites or any(len(site) != 2 or not all(0 <= int(v) < size for v in site) for site in sites):
            raise ValueError(
                f"{name}: sites must be a non-empty list of (row, column) cells inside the {size}x{size} grid, got {sites}"
            )
        if not 0 <= slip <= 1 or not 0 <= switch_prob <= 1 or not 0 <= discount < 1:
            raise ValueError(f"{name}: slip and switch_prob must be in [0, 1], discount in [0, 1)")
        self.size, self.slip, self.task_reward, self.move_cost = size, float(slip), float(task_reward), float(move_cost)
        self.switch_prob, self.discount = float(switch_prob), float(discount)
        self.sites = [(int(r), int(c)) for r, c in sites]
        self.num_slow_states = len(self.sites)
        super().__init__(
            num_envs,
            spaces.MultiDiscrete([size, size, self.num_slow_states]),
            spaces.Discrete(len(MOVES)),
            device=device,
            max_episode_steps=max_episode_steps,
            autoreset_mode=autoreset_mode,
            validate_actions=validate_actions,
            compile=compile,
        )
        self.site_cells = torch.tensor([r * size + c for r, c in self.sites], device=self.device)
        self._moves = torch.tensor(MOVES, device=self.device)
        self.cell = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.slow_state = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)

    # ------------------------------------------------------------------ the step, as pure functions
    state_names = ("cell", "slow_state")
    num_step_draws = 3  # slip or not, the slipped direction, the slow chain's
    num_reset_draws = 2  # the first cell and site

    def _params(self) -> dict:
        return {
            "site_cells": self.site_cells,
            "moves": self._moves,
            "size": self.size,
            "slip": self.slip,
            "task_reward": self.task_reward,
            "move_cost": self.move_cost,
            "switch_prob": self.switch_prob,
            "num_slow_states": self.num_slow_states,
        }

    @staticmethod
    def _transition(params, state, actions, draws):
        """Steps 1–2 of the dynamics; ``draws`` rows: slip, the slipped direction, the slow chain."""
        cell, slow = state
        size, moves = params["size"], params["moves"]
        actions = actions.long()
        on_task = cell == params["site_cells"][slow]
        rewards = params["task_reward"] * on_task.float() - params["move_cost"] * (actions != 0).float()
        direction = torch.where(draws[0] < params["slip"], uniform_levels(draws[1], moves.shape[0]), actions)
        step = moves[direction]
        row = (cell // size + step[:, 0]).clamp(0, size - 1)
        column = (cell % size + step[:, 1]).clamp(0, size - 1)
        slow = switch_slow_state(slow, draws[2], params["switch_prob"], params["num_slow_states"])
        info = {"on_task": on_task.float()}
        return (row * size + column, slow), rewards, torch.zeros_like(rewards, dtype=torch.bool), info

    @staticmethod
    def _reset_state(params, state, mask, draws):
        """A uniform cell and site; ``draws`` rows: the cell's, the site's."""
        cell, slow = state
        return (
            torch.where(mask, uniform_levels(draws[0], params["size"] ** 2), cell),
            torch.where(mask, uniform_levels(draws[1], params["num_slow_states"]), slow),
        )

    @staticmethod
    def _observe_state(params, state):
        cell, slow = state
        size = params["size"]
        return torch.stack([cell // size, cell % size, slow], dim=1)

    def state_index(self, observations: torch.Tensor) -> torch.Tensor:
        return (observations[:, 0] * self.size + observations[:, 1]) * self.num_slow_states + observations[:, 2]

    # ------------------------------------------------------------------ exact model
    def exact_model(self, device: str | torch.device = "cpu"):
        """The exact MDP: ``P^a = F^a ⊗ Z``, state s = cell · n_sites + z."""
        import scipy.sparse as sp

        n, cells = self.size, np.arange(self.size * self.size)
        row, column = cells // n, cells % n

        def destination(move: tuple[int, int]) -> np.ndarray:
            return np.clip(row + move[0], 0, n - 1) * n + np.clip(column + move[1], 0, n - 1)

        on_task = np.zeros((cells.size, self.num_slow_states))
        for z, (r, c) in enumerate(self.sites):
            on_task[r * n + c, z] = self.task_reward
        fast_transitions, rewards = [], []
        for action, move in enumerate(MOVES):
            targets = [destination(move)] + [destination(other) for other in MOVES]
            weights = [1 - self.slip] + [self.slip / len(MOVES)] * len(MOVES)
            data = np.concatenate([np.full(cells.size, w) for w in weights])
            matrix = sp.csr_matrix(
                (data, (np.tile(cells, len(targets)), np.concatenate(targets))), shape=(cells.size, cells.size)
            )
            fast_transitions.append(matrix)
            rewards.append((on_task - self.move_cost * (action != 0)).reshape(-1))
        return self.factored_model(fast_transitions, rewards, device, f"{n}x{n}")
