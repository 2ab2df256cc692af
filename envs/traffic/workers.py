"""SUMO simulations in worker processes, one per env of a batch.

libsumo runs SUMO inside the calling process and allows one simulation per process, so each
env of a batch gets a worker process (with traci, the worker drives a SUMO child over a socket).
Commands go to every worker before any answer is read, so the simulations step in parallel.
A failure inside a worker comes back as a message; a worker that died is noticed on the pipe.
"""

from __future__ import annotations

import multiprocessing
import sys
from typing import Any

from ctrlgym.envs.traffic.simulation import SumoSimulation

__all__ = ["SumoError", "SumoWorkers"]


class SumoError(RuntimeError):
    """SUMO failed (bad input, a killed process, a teleport storm); the message names the scenario."""


def _worker_main(connection, simulation_kwargs: dict[str, Any]) -> None:
    simulation = SumoSimulation(**simulation_kwargs)
    while True:
        try:
            command, payload = connection.recv()
        except (EOFError, KeyboardInterrupt):
            break
        try:
            if command == "start":
                simulation.start(payload)
                connection.send(("ok", simulation.read()))
            elif command == "step":
                connection.send(("ok", simulation.step(payload)))
            elif command == "close":
                simulation.close()
                connection.send(("ok", None))
                break
            else:
                connection.send(("error", f"unknown command {command!r}"))
        except Exception as error:  # report SUMO's own message to the parent
            simulation.close()
            connection.send(("error", f"{type(error).__name__}: {str(error).strip()}"))
    simulation.close()


def _context():
    # fork is fast and safe here (workers never touch torch or CUDA); elsewhere spawn
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")


class SumoWorkers:
    """``num_envs`` worker processes, each holding one :class:`SumoSimulation`."""

    def __init__(self, num_envs: int, simulation_kwargs: dict[str, Any], scenario_name: str) -> None:
        self.simulation_kwargs = simulation_kwargs
        self.scenario_name = scenario_name
        self.processes: list = [None] * num_envs
        self.connections: list = [None] * num_envs
        for i in range(num_envs):
            self._spawn(i)

    def _spawn(self, i: int) -> None:
        context = _context()
        parent, child = context.Pipe()
        kwargs = {**self.simulation_kwargs, "label": f"ctrlgym-{id(self)}-{i}"}
        process = context.Process(target=_worker_main, args=(child, kwargs), daemon=True, name=f"ctrlgym-sumo-{i}")
        process.start()
        child.close()
        self.processes[i], self.connections[i] = process, parent

    def _receive(self, i: int):
        try:
            status, value = self.connections[i].recv()
        except (EOFError, ConnectionResetError, BrokenPipeError):
            code = self.processes[i].exitcode if self.processes[i] is not None else None
            raise SumoError(
                f"scenario {self.scenario_name}: the SUMO process of env {i} died (exit code {code}); reset() restarts it"
            ) from None
        if status == "error":
            raise SumoError(f"scenario {self.scenario_name}, env {i}: SUMO failed: {value}")
        return value

    def _broadcast(self, command: str, payloads: dict[int, Any]) -> dict[int, Any]:
        """Send ``command`` to the given workers, then collect every answer (the first error wins)."""
        sent = []
        for i, payload in payloads.items():
            try:
                self.connections[i].send((command, payload))
                sent.append(i)
            except (BrokenPipeError, OSError):
                pass
        results, first_error = {}, None
        for i in payloads:
            try:
                if i not in sent:
                    raise SumoError(f"scenario {self.scenario_name}: the SUMO process of env {i} died; reset() restarts it")
                results[i] = self._receive(i)
            except SumoError as error:
                first_error = first_error or error
        if first_error is not None:
            raise first_error
        return results

    def start(self, seeds: dict[int, int]) -> dict[int, Any]:
        """(Re)start the simulations of the given envs with SUMO seeds; respawn dead workers."""
        for i in seeds:
            if not self.processes[i].is_alive():
                self._spawn(i)
        return self._broadcast("start", seeds)

    def step(self, greens: list) -> list:
        results = self._broadcast("step", dict(enumerate(greens)))
        return [results[i] for i in range(len(greens))]

    def close(self) -> None:
        for i, process in enumerate(self.processes):
            if process is None:
                continue
            if process.is_alive():
                try:
                    self.connections[i].send(("close", None))
                    self.connections[i].poll(5) and self.connections[i].recv()
                except (BrokenPipeError, EOFError, OSError):
                    pass
                process.join(timeout=5)
            if process.is_alive():
                process.kill()
            self.connections[i].close()
            self.processes[i] = None
