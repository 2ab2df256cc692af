"""Add your own algorithm: an agent with ctrlgym's Agent interface, registered, and run from a
config by ctrlgym's own train / evaluate / report, checkpoints and resume included.

The agent: "best fixed action", a bandit over the env's discrete actions. It plays each action in
turn, keeps the mean reward of each, and acts greedily. Run: python docs/tutorials/custom_algorithm.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml

from ctrlgym.experiment.algorithms import register_algorithm
from ctrlgym.experiment.cli import main as ctrlgym
from ctrlgym.policies import CheckpointedAgent


class BestFixedAction(CheckpointedAgent):
    """Plays every action in turn and keeps the mean reward of each; acts with the best one.

    Args:
        env: the batched env it learns on (a ``Discrete`` action space).
        seed: unused (the agent is deterministic); kept for the Agent interface.
        device: torch device of its statistics.
    """

    algo = "best_fixed_action"

    def __init__(self, env: Any, seed: int = 0, device: str = "cpu") -> None:
        self.hyperparameters: dict[str, Any] = {}
        self.n = int(env.single_action_space.n)
        self.sums = torch.zeros(self.n, dtype=torch.float64)
        self.counts = torch.zeros(self.n, dtype=torch.float64)
        self.num_timesteps = 0

    def __call__(self, observations: torch.Tensor) -> torch.Tensor:
        best = int((self.sums / self.counts.clamp_min(1)).argmax())
        return torch.full((observations.shape[0],), best, dtype=torch.long, device=observations.device)

    def learn(self, env: Any, total_timesteps: int, callback=None, seed: int = 0) -> BestFixedAction:
        observations = self._last_obs if self._last_obs is not None else env.reset(seed=seed)[0]
        while self.num_timesteps < total_timesteps:
            action = (self.num_timesteps // env.num_envs) % self.n  # round robin over the actions
            observations, rewards, terminated, truncated, info = env.step(torch.full((env.num_envs,), action))
            self.sums[action] += rewards.double().sum()
            self.counts[action] += env.num_envs
            self.num_timesteps += env.num_envs
            self._last_obs = observations
            if callback is not None:  # ctrlgym's training loop: progress bar, checkpoints, learning curve
                done = terminated | truncated
                callback(
                    {
                        "timesteps": self.num_timesteps,
                        "episode_returns": info["episode"]["r"][done].tolist() if done.any() else [],
                    }
                )
        return self

    def state_dict(self, with_replay: bool = True) -> dict[str, Any]:
        state = {"algo": self.algo, "hyperparameters": self.hyperparameters, "sums": self.sums, "counts": self.counts}
        state["num_timesteps"] = self.num_timesteps
        if with_replay:
            state["last_obs"] = self._last_obs
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums, self.counts, self.num_timesteps = state["sums"], state["counts"], state["num_timesteps"]


if __name__ == "__main__":
    # registered under a name; a package would use the "ctrlgym.algorithms" entry point instead,
    # and a config can also name the class directly: agent.algo: my_module:BestFixedAction
    register_algorithm("best_fixed_action", f"{__name__}:BestFixedAction", "the action with the best mean reward")
    with tempfile.TemporaryDirectory() as folder:
        config = {
            "name": "best_fixed_action_queue",
            "env": {"id": "ctrlgym/MultiClassQueue-v0", "num_envs": 16},
            "agent": {"algo": "best_fixed_action", "total_timesteps": 4096, "checkpoint_every": 1024},
            "evaluation": {"episodes": 8, "baselines": ["c_mu", "random"]},
            "seeds": [0, 1, 2, 3, 4],
            "output_dir": str(Path(folder) / "run"),
        }
        path = Path(folder) / "best_fixed_action.yaml"
        path.write_text(yaml.safe_dump(config))
        for command in (
            ["train", str(path)],
            ["evaluate", str(path)],
            ["report", str(path), "-o", str(Path(folder) / "report")],
        ):
            assert ctrlgym([*command, "--no-progress"] if command[0] != "report" else command) == 0
        print((Path(folder) / "report.md").read_text()[:1500])
