"""Adapters from the native batch to other RL libraries' interfaces.

* :class:`~ctrlgym.adapters.sb3.SB3VecEnv` – Stable-Baselines3 ``VecEnv`` (numpy at the boundary).
* :class:`~ctrlgym.adapters.torchrl.TorchRLEnv` – TorchRL ``EnvBase`` (needs ``ctrlgym[torchrl]``).
* :class:`~ctrlgym.adapters.pettingzoo.PettingZooEnv` – PettingZoo ``ParallelEnv`` for multi-agent envs.
* :class:`~ctrlgym.adapters.rllib.RLlibMultiAgentEnv` – RLlib ``MultiAgentEnv`` (needs ``ctrlgym[rllib]``).
"""

from ctrlgym.adapters.sb3 import SB3VecEnv

__all__ = ["SB3VecEnv"]
