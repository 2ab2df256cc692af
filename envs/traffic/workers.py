"""SUMO simulations in worker processes, one per env of a batch (or one in the calling process).

libsumo runs SUMO inside the calling process and allows one simulation per process, so each
env of a batch gets a worker process (with traci, the worker drives a SUMO child over a socket).
Commands go to every worker before any answer is read, so the simulations step in parallel; each
answer is one flat float64 array (:class:`~ctrlgym.envs.traffic.simulation.ReadingLayout`).

Workers start from a ``forkserver`` (``spawn`` where there is none): never a fork of a parent
that may run torch threads. As with Stable-Baselines3's ``SubprocVecEnv``, a script that builds
envs at top level needs the ``if __name__ == "__main__":`` guard. Every wait on a worker has a
timeout (``step_timeout``); a worker's stdout/stderr (SUMO's own messages) go to a log file whose
last error lines come back with any failure. :class:`InlineSimulation` runs one simulation in
the calling process (libsumo, no round trip).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import time
from typing import Any

import numpy as np

from ctrlgym.envs.traffic.simulation import SumoSimulation
from ctrlgym.errors import CtrlgymError

__all__ = ["SumoError", "SumoWorkers", "InlineSimulation", "WORKER_KINDS", "choose_workers"]

WORKER_KINDS = ("auto", "process", "inline", "ray")
_OK, _ERROR = b"\x00", b"\x01"


class SumoError(CtrlgymError, RuntimeError):
    """SUMO failed (bad input, a killed or hung process, a teleport storm); the message names the scenario."""


def sumo_messages(log_path: str | None, limit: int = 600) -> str:
    """SUMO's error lines from a worker's log ("Error: ...", "Quitting ..."), the last few."""
    if not log_path or not os.path.isfile(log_path):
        return ""
    with open(log_path, errors="replace") as log:
        lines = [line.strip() for line in log.read()[-20_000:].splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "quitting" in line.lower()]
    text = " | ".join(errors[-4:])
    return text[-limit:]


def _worker_main(connection, simulation_kwargs: dict[str, Any], log_path: str) -> None:
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)  # SUMO writes its messages to the C++ streams: keep them for error reports
    os.dup2(log, 2)
    if "torch" in sys.modules:  # a worker only steps SUMO: one thread, never spinning beside it
        sys.modules["torch"].set_num_threads(1)
    try:  # Linux: a woken worker does not preempt the parent, which sends every env its actions first
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError):
        pass
    simulation = None
    try:  # built now, while the parent finishes its own set-up; a failure is reported at the first command
        simulation = SumoSimulation(**simulation_kwargs)
    except Exception:
        pass
    while True:
        try:
            command, payload = connection.recv()
        except (EOFError, KeyboardInterrupt, OSError):
            break
        try:
            if simulation is None:
                simulation = SumoSimulation(**simulation_kwargs)
            if command == "start":
                os.ftruncate(log, 0)  # this episode's messages only
                connection.send_bytes(_OK + simulation.start(payload).tobytes())
            elif command == "step":
                connection.send_bytes(_OK + simulation.step(*payload).tobytes())
            elif command == "close":
                simulation.close()
                connection.send_bytes(_OK)
                break
            else:
                connection.send_bytes(_ERROR + f"unknown command {command!r}".encode())
        except Exception as error:  # report SUMO's own message to the parent
            if simulation is not None:
                simulation.close()
            sys.stdout.flush()
            connection.send_bytes(_ERROR + f"{type(error).__name__}: {str(error).strip()}".encode())
    if simulation is not None:
        simulation.close()


def _context():
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(
            ["ctrlgym.envs.traffic.workers", "ctrlgym.envs.traffic.quiet_libsumo"]
        )  # forked children start warm, libsumo already imported (quietly)
        return context
    return multiprocessing.get_context("spawn")


class SumoWorkers:
    """``num_envs`` worker processes, each holding one :class:`SumoSimulation`.

    ``step_timeout`` (s) bounds every wait for an answer; a worker that does not answer in time
    is killed and :class:`SumoError` names the env and what it was doing.
    """

    def __init__(
        self, num_envs: int, simulation_kwargs: dict[str, Any], scenario_name: str, step_timeout: float = 300.0
    ) -> None:
        self.simulation_kwargs = simulation_kwargs
        self.scenario_name = scenario_name
        self.step_timeout = step_timeout
        self.processes: list = [None] * num_envs
        self.connections: list = [None] * num_envs
        self.logs: list[str | None] = [None] * num_envs
        self.closed = False
        for i in range(num_envs):
            self._spawn(i)

    def _spawn(self, i: int) -> None:
        self._stop(i)
        context = _context()
        parent, child = context.Pipe()
        handle, self.logs[i] = tempfile.mkstemp(prefix=f"ctrlgym-sumo-{i}-", suffix=".log")
        os.close(handle)
        kwargs = {**self.simulation_kwargs, "label": f"ctrlgym-{os.getpid()}-{id(self)}-{i}"}
        process = context.Process(
            target=_worker_main, args=(child, kwargs, self.logs[i]), daemon=True, name=f"ctrlgym-sumo-{i}"
        )
        process.start()
        child.close()
        self.processes[i], self.connections[i] = process, parent

    def _failure(self, i: int, what: str) -> SumoError:
        messages = sumo_messages(self.logs[i])
        return SumoError(
            f"scenario {self.scenario_name}, env {i}: {what}" + (f"; SUMO said: {messages}" if messages else "")
        )

    def _receive(self, i: int, stage: str, deadline: float, out: np.ndarray | None) -> None:
        connection = self.connections[i]
        try:
            ready = connection.poll(max(0.0, deadline - time.monotonic()))
            if not ready:
                self.processes[i].kill()
                self.processes[i].join(timeout=5)  # reaped: reset() sees it dead and respawns it
                raise SumoError(
                    f"scenario {self.scenario_name}, env {i}: no answer from SUMO within step_timeout={self.step_timeout:g} s "
                    f"while {stage}; the worker was stopped, reset() restarts it"
                )
            data = connection.recv_bytes()
        except (EOFError, ConnectionResetError, BrokenPipeError, OSError):
            process = self.processes[i]
            process.join(timeout=1)
            hint = ""
            if (
                stage == "starting the simulation" and process.exitcode == 1
            ):  # e.g. multiprocessing re-importing an unguarded script
                hint = "; a script that makes SUMO envs needs `if __name__ == '__main__':` around its code (the worker's traceback is above)"
            raise self._failure(
                i, f"the SUMO process died while {stage} (exit code {process.exitcode}){hint}; reset() restarts it"
            ) from None
        if data[:1] == _ERROR:
            raise self._failure(i, f"SUMO failed while {stage}: {data[1:].decode(errors='replace')}")
        if out is not None:
            out[:] = np.frombuffer(data, dtype=np.float64, offset=1)

    def _broadcast(self, command: str, payloads: dict[int, Any], stage: str, out: np.ndarray | None) -> None:
        """Send ``command`` to the given workers, then collect every answer into ``out[i]`` (the first error wins)."""
        if self.closed:
            raise SumoError(f"scenario {self.scenario_name}: the env is closed; make a new one")
        sent = []
        for i, payload in payloads.items():
            try:
                self.connections[i].send((command, payload))
                sent.append(i)
            except (BrokenPipeError, OSError):
                pass
        deadline = time.monotonic() + self.step_timeout
        first_error = None
        for i in payloads:
            try:
                if i not in sent:
                    self.processes[i].join(timeout=1)
                    raise self._failure(
                        i, f"the SUMO process died (exit code {self.processes[i].exitcode}); reset() restarts it"
                    )
                self._receive(i, stage, deadline, None if out is None else out[i])
            except SumoError as error:
                first_error = first_error or error
        if first_error is not None:
            raise first_error

    def start(self, seeds: dict[int, int], out: np.ndarray) -> None:
        """(Re)start the simulations of the given envs with SUMO seeds into ``out[i]``; respawn dead workers."""
        if self.closed:
            raise SumoError(f"scenario {self.scenario_name}: the env is closed; make a new one")
        for i in seeds:
            if not self.processes[i].is_alive():
                self._spawn(i)
        self._broadcast("start", seeds, "starting the simulation", out)

    def step(self, greens: np.ndarray, final: np.ndarray, out: np.ndarray) -> None:
        """One decision step of every env: ``greens[i]`` per light; the episode's metrics where ``final[i]``."""
        self._broadcast("step", {i: (greens[i], bool(final[i])) for i in range(len(greens))}, "stepping", out)

    def pids(self) -> list[int | None]:
        return [process.pid if process is not None else None for process in self.processes]

    def _stop(self, i: int) -> None:
        process, connection = self.processes[i], self.connections[i]
        if process is not None:
            if process.is_alive():
                try:
                    connection.send(("close", None))
                    connection.poll(5) and connection.recv_bytes()
                except (BrokenPipeError, EOFError, OSError):
                    pass
                process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        if connection is not None:
            connection.close()
        log = self.logs[i]
        if log and os.path.exists(log):
            os.unlink(log)
        self.processes[i], self.connections[i], self.logs[i] = None, None, None

    def close(self) -> None:
        for i in range(len(self.processes)):
            self._stop(i)
        self.closed = True


def choose_workers(workers: str, num_envs: int, backend: str) -> str:
    """``workers="auto"``: one libsumo simulation in this process when the batch has one env and no
    inline simulation is open here (libsumo runs one per process), so a plain script needs no
    ``if __name__ == "__main__":`` guard and a step has no round trip; worker processes otherwise."""
    if workers != "auto":
        return workers
    return "inline" if num_envs == 1 and backend == "libsumo" and not InlineSimulation._open else "process"


class InlineSimulation:
    """One :class:`SumoSimulation` in the calling process (``workers="inline"``): no worker, no
    round trip. libsumo allows one simulation per process, so only one inline env may be open."""

    _open = 0

    def __init__(self, simulation_kwargs: dict[str, Any], scenario_name: str) -> None:
        self._counted = simulation_kwargs["backend"] == "libsumo"  # traci drives its own SUMO process: no limit
        if self._counted and InlineSimulation._open:
            raise ValueError(
                f"scenario {scenario_name}: libsumo runs one simulation per process and an inline env is open; use workers='process'"
            )
        self.scenario_name, self.closed = scenario_name, False
        self.simulation = SumoSimulation(**simulation_kwargs)
        InlineSimulation._open += self._counted

    def _run(self, stage: str, call, *args) -> np.ndarray:
        if self.closed:
            raise SumoError(f"scenario {self.scenario_name}: the env is closed; make a new one")
        try:
            return call(*args)
        except Exception as error:
            self.simulation.close()
            raise SumoError(
                f"scenario {self.scenario_name}, env 0: SUMO failed while {stage}: {type(error).__name__}: {str(error).strip()}"
            ) from None

    def start(self, seeds: dict[int, int], out: np.ndarray) -> None:
        for i, seed in seeds.items():
            out[i] = self._run("starting the simulation", self.simulation.start, seed)

    def step(self, greens: np.ndarray, final: np.ndarray, out: np.ndarray) -> None:
        out[0] = self._run("stepping", self.simulation.step, greens[0], bool(final[0]))

    def pids(self) -> list[int | None]:
        return [os.getpid()]

    def close(self) -> None:
        if not self.closed:
            self.simulation.close()
            InlineSimulation._open -= self._counted
            self.closed = True
