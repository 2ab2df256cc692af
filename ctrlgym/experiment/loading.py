"""A trained agent of a run, loaded for use in Python: ``ctrlgym.load(run_dir)``.

Example (after ``ctrlgym train quickstart/ppo_multiclass_queue_tiny``)::

    policy = ctrlgym.load("runs/ppo_multiclass_queue_tiny")  # seed: the run's first
    env = policy.make_env(num_envs=8)                         # the run's env, with its kwargs
    observations, _ = env.reset(seed=0)
    actions = policy(observations)                            # greedy / deterministic actions
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ctrlgym.errors import UsageError
from ctrlgym.experiment.evaluation import agent_policy
from ctrlgym.experiment.runs import RunDir
from ctrlgym.policies import Policy
from ctrlgym.vector_env import AutoresetMode, TorchVectorEnv

__all__ = ["TrainedPolicy", "load"]


class TrainedPolicy:
    """The final model of one seed of a run, acting greedily: ``policy(observations) -> actions``.

    Own agents (DQN, Nash DQN, ...) are built for an env's spaces: the policy acts in the env
    :meth:`make_env` made last (it makes a one-copy env on the first call if none was made).
    """

    def __init__(self, run: RunDir, seed: int) -> None:
        self.run, self.seed = run, seed
        self.config = run.config
        self.path = run.final_model(seed)
        #: make_policy(env): the agent acting in ``env`` (RunDirError here if training has not finished)
        self.make_policy = agent_policy(run.path, run.config, seed)
        self.env: TorchVectorEnv | None = None
        self._policy: Policy | None = None

    def make_env(self, num_envs: int = 1, autoreset_mode: AutoresetMode | str = "next_step", **overrides: Any):
        """The run's env (its id and kwargs; ``overrides`` replace kwargs), and the policy acts in it from now on."""
        self.env = self.config.make_env(num_envs, autoreset_mode=autoreset_mode, **overrides)
        self._policy = self.make_policy(self.env)
        return self.env

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        if self._policy is None:
            self.make_env()
        assert self._policy is not None
        with torch.no_grad():
            return self._policy(observations)

    def __repr__(self) -> str:
        return f"TrainedPolicy({self.config.trained_agent.algo} on {self.config.env.id}, seed {self.seed}, {self.path})"


def load(run_dir: str | Path, seed: int | None = None) -> TrainedPolicy:
    """The trained agent of ``seed`` (default: the run's first seed) in the run directory ``run_dir``."""
    run = RunDir.open(run_dir)
    seed = run.config.seeds[0] if seed is None else seed
    if seed not in run.config.seeds:
        raise UsageError(f"{run.path}: seed {seed} is not among the run's seeds {run.config.seeds}")
    return TrainedPolicy(run, seed)
