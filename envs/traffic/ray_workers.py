"""SUMO simulations in Ray actors (``workers="ray"``; ``pip install 'ctrlgym[ray]'``): one actor per
env of a batch, placed anywhere in the Ray cluster, behind the interface of the local
:class:`~ctrlgym.envs.traffic.workers.SumoWorkers` (start, step, pids, close).

Every actor is a process of its own (libsumo allows one simulation per process) and runs the
same :class:`~ctrlgym.envs.traffic.simulation.SumoSimulation`, so the same seeds give the same
trajectories as local workers. Each step sends every actor its greens before waiting on any
answer; a wait longer than ``step_timeout`` kills the actor; a dead or failed actor is a
:class:`SumoError` naming the env, what it was doing and SUMO's own last error lines, and the
next ``reset()`` starts a new actor.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from ctrlgym.envs.traffic.simulation import SumoSimulation
from ctrlgym.envs.traffic.workers import SumoError, sumo_messages

__all__ = ["RayWorkers"]


class _SimulationActor:
    """One SumoSimulation in a Ray actor process; SUMO's messages go to a log file read back on failure."""

    def __init__(self, simulation_kwargs: dict[str, Any]) -> None:
        handle, self.log_path = tempfile.mkstemp(prefix="ctrlgym-sumo-ray-", suffix=".log")
        os.dup2(handle, 1)  # SUMO writes to the C++ streams
        os.dup2(handle, 2)
        self.simulation = SumoSimulation(**simulation_kwargs)

    def _run(self, call, *args) -> np.ndarray:
        try:
            return call(*args)
        except Exception as error:
            self.simulation.close()
            messages = sumo_messages(self.log_path)
            raise RuntimeError(
                f"{type(error).__name__}: {str(error).strip()}" + (f"; SUMO said: {messages}" if messages else "")
            ) from None

    def start(self, seed: int) -> np.ndarray:
        os.ftruncate(1, 0)  # this episode's messages only
        return self._run(self.simulation.start, seed)

    def step(self, greens: np.ndarray, final: bool) -> np.ndarray:
        return self._run(self.simulation.step, greens, final)

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        self.simulation.close()


class RayWorkers:
    """``num_envs`` Ray actors, each holding one :class:`SumoSimulation` (a local Ray is started if none is running)."""

    def __init__(
        self, num_envs: int, simulation_kwargs: dict[str, Any], scenario_name: str, step_timeout: float = 300.0
    ) -> None:
        try:
            import ray
        except ImportError:
            raise ImportError("workers='ray' needs Ray: pip install 'ctrlgym[ray]'") from None
        if not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        self.ray = ray
        self.actor_class = ray.remote(num_cpus=1, max_restarts=0)(_SimulationActor)
        self.simulation_kwargs, self.scenario_name, self.step_timeout = simulation_kwargs, scenario_name, step_timeout
        self.actors: list = [None] * num_envs
        self.closed = False
        for i in range(num_envs):
            self._spawn(i)

    def _spawn(self, i: int) -> None:
        if self.actors[i] is not None:
            self.ray.kill(self.actors[i])
        self.actors[i] = self.actor_class.remote({**self.simulation_kwargs, "label": f"ctrlgym-ray-{id(self)}-{i}"})

    def _gather(self, calls: dict[int, Any], stage: str, out: np.ndarray) -> None:
        """Wait for every call (already sent) into ``out[i]``; the first failure wins, failed actors are replaced at the next start."""
        ray, first_error = self.ray, None
        ready, _ = ray.wait(list(calls.values()), num_returns=len(calls), timeout=self.step_timeout)
        ready = set(ready)
        for i, call in calls.items():
            try:
                if call not in ready:
                    ray.kill(self.actors[i])
                    self.actors[i] = None
                    raise SumoError(
                        f"scenario {self.scenario_name}, env {i}: no answer from SUMO within step_timeout={self.step_timeout:g} s "
                        f"while {stage}; the actor was stopped, reset() restarts it"
                    )
                out[i] = ray.get(call)
            except ray.exceptions.RayActorError:
                self.actors[i] = None
                first_error = first_error or SumoError(
                    f"scenario {self.scenario_name}, env {i}: the SUMO actor died while {stage}; reset() restarts it"
                )
            except ray.exceptions.RayTaskError as error:
                message = str(error.cause) if getattr(error, "cause", None) is not None else str(error).splitlines()[-1]
                first_error = first_error or SumoError(
                    f"scenario {self.scenario_name}, env {i}: SUMO failed while {stage}: {message}"
                )
            except SumoError as error:
                first_error = first_error or error
        if first_error is not None:
            raise first_error

    def _check_open(self) -> None:
        if self.closed:
            raise SumoError(f"scenario {self.scenario_name}: the env is closed; make a new one")

    def start(self, seeds: dict[int, int], out: np.ndarray) -> None:
        """(Re)start the simulations of the given envs with SUMO seeds; replace actors that died."""
        self._check_open()
        for i in seeds:
            if self.actors[i] is None:
                self._spawn(i)
        self._gather(
            {i: self.actors[i].start.remote(seed) for i, seed in seeds.items()}, "starting the simulation", out
        )

    def step(self, greens: np.ndarray, final: np.ndarray, out: np.ndarray) -> None:
        self._check_open()
        dead = [i for i, actor in enumerate(self.actors) if actor is None]
        if dead:
            raise SumoError(
                f"scenario {self.scenario_name}, env {dead[0]}: the SUMO actor is gone; reset() restarts it"
            )
        calls = {i: actor.step.remote(greens[i], bool(final[i])) for i, actor in enumerate(self.actors)}
        self._gather(calls, "stepping", out)

    def pids(self) -> list[int | None]:
        return [
            self.ray.get(actor.pid.remote(), timeout=self.step_timeout) if actor is not None else None
            for actor in self.actors
        ]

    def kill(self, i: int) -> None:
        """Kill env ``i``'s actor (as a node failure would): the next call fails, the next reset replaces it."""
        self.ray.kill(self.actors[i])

    def close(self) -> None:
        if self.closed:
            return
        for actor in self.actors:
            if actor is not None:
                try:
                    self.ray.get(actor.close.remote(), timeout=10)
                except Exception:
                    pass
                self.ray.kill(actor)
        self.actors = [None] * len(self.actors)
        self.closed = True
