"""Env-steps per second: the batched BeamformingEnv vs a numpy loop over the same cells.

M = 32 antennas, K = 4 users, flat Rayleigh fading with Jakes ageing (sum of 16 sinusoids per
link, or ``--fading ar1``), SRS every 5 slots, 2 slots of uplink delay, 4 estimates observed; the action is a fixed
precoder (precoder mode, no policy cost). One step of one cell = the sum rate on the current
channel, one slot of channel ageing, the SRS estimate when due and the observation. Peers: the
same model in numpy vectorised over the cells (one batched matmul per step: the peer a user would
write), and per cell in a Python loop (extra row). Each size is measured in ``--rounds``
interleaved rounds, quiet and then beside one busy process (``competitor.py``): medians with their
range over rounds; provenance and results in ``benchmarks/results/bench_beamforming.json``.

    python benchmarks/bench_beamforming.py                    # CPU
    python benchmarks/bench_beamforming.py --fading ar1
    python benchmarks/bench_beamforming.py --device cuda      # adds the GPU at large batches
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from competitor import busy_machine
from provenance import (
    header,
    provenance,
    write_results,
)  # benchmarks/provenance.py: run as scripts, their folder is on sys.path
from scipy.special import j0

from ctrlgym.envs.beamforming import BeamformingEnv, doppler_frequency

ANTENNAS, USERS, SINUSOIDS, SRS_PERIOD, DELAY, HISTORY = 32, 4, 16, 5, 2, 4


class NumpyCell:
    """One cell of the same model, in numpy: sum-of-sinusoids (or AR(1)) channel, SRS ring, sum rate."""

    def __init__(
        self, rng: np.random.Generator, doppler: float, fading: str, slot: float = 0.5e-3, snr_db: float = 10.0
    ) -> None:
        shape = (USERS, ANTENNAS, SINUSOIDS)
        self.rng, self.noise, self.fading = rng, 10 ** (-snr_db / 10), fading
        self.rho = float(j0(2 * math.pi * doppler * slot))
        self.gains = ((rng.standard_normal(shape[:2]) + 1j * rng.standard_normal(shape[:2])) / math.sqrt(2)).astype(
            np.complex64
        )
        self.phasors = np.exp(1j * rng.uniform(0, 2 * math.pi, shape)).astype(np.complex64)
        self.turns = np.exp(1j * 2 * math.pi * doppler * slot * np.cos(rng.uniform(0, 2 * math.pi, shape))).astype(
            np.complex64
        )
        self.time = 0
        self.estimates = [self.channel() for _ in range(HISTORY + 1)]
        self.times = [-SRS_PERIOD * i for i in range(HISTORY + 1)]

    def channel(self) -> np.ndarray:
        if self.fading == "ar1":
            return self.gains
        return self.phasors.sum(-1) / math.sqrt(SINUSOIDS)

    def age(self) -> None:
        if self.fading == "ar1":
            fresh = (
                self.rng.standard_normal(self.gains.shape) + 1j * self.rng.standard_normal(self.gains.shape)
            ) / math.sqrt(2)
            self.gains = (self.rho * self.gains + math.sqrt(1 - self.rho**2) * fresh).astype(np.complex64)
        else:
            self.phasors *= self.turns

    def step(self, precoder: np.ndarray) -> tuple[np.ndarray, float]:
        gains = np.abs(self.channel() @ precoder) ** 2
        signal = np.diag(gains)
        rate = float(np.log2(1 + signal / (gains.sum(1) - signal + self.noise)).sum())
        self.age()
        self.time += 1
        if self.time % SRS_PERIOD == 0:
            noise = (
                self.rng.standard_normal((USERS, ANTENNAS)) + 1j * self.rng.standard_normal((USERS, ANTENNAS))
            ) * math.sqrt(0.005)
            self.estimates = [self.channel() + noise.astype(np.complex64), *self.estimates[:-1]]
            self.times = [self.time, *self.times[:-1]]
        usable = [e for e, t in zip(self.estimates, self.times, strict=False) if t <= self.time - DELAY][:HISTORY]
        observation = np.concatenate([np.stack([e.real, e.imag], -1).ravel() for e in usable])
        return observation, rate


class NumpyBatch:
    """The same model vectorised over cells in numpy (what a user would write): arrays ``(cells, K, M, ...)``,
    the cells' SRS rings in step (they share the clock), rates by one batched matmul."""

    def __init__(
        self,
        rng: np.random.Generator,
        cells: int,
        doppler: float,
        fading: str,
        slot: float = 0.5e-3,
        snr_db: float = 10.0,
    ) -> None:
        shape = (cells, USERS, ANTENNAS, SINUSOIDS)
        self.rng, self.noise, self.fading, self.cells = rng, 10 ** (-snr_db / 10), fading, cells
        self.rho = float(j0(2 * math.pi * doppler * slot))
        self.gains = ((rng.standard_normal(shape[:3]) + 1j * rng.standard_normal(shape[:3])) / math.sqrt(2)).astype(
            np.complex64
        )
        self.phasors = np.exp(1j * rng.uniform(0, 2 * math.pi, shape)).astype(np.complex64)
        self.turns = np.exp(1j * 2 * math.pi * doppler * slot * np.cos(rng.uniform(0, 2 * math.pi, shape))).astype(
            np.complex64
        )
        self.time = 0
        self.estimates = np.repeat(self.channel()[:, None], HISTORY + 1, axis=1)  # (cells, ring, K, M)
        self.times = np.array([-SRS_PERIOD * i for i in range(HISTORY + 1)])

    def channel(self) -> np.ndarray:
        return self.gains if self.fading == "ar1" else self.phasors.sum(-1) / math.sqrt(SINUSOIDS)

    def step(self, precoder: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gains = np.abs(self.channel() @ precoder) ** 2  # (cells, K, K)
        signal = np.einsum("ckk->ck", gains)
        rates = np.log2(1 + signal / (gains.sum(-1) - signal + self.noise)).sum(-1)
        if self.fading == "ar1":
            fresh = (
                self.rng.standard_normal(self.gains.shape) + 1j * self.rng.standard_normal(self.gains.shape)
            ) / math.sqrt(2)
            self.gains = (self.rho * self.gains + math.sqrt(1 - self.rho**2) * fresh).astype(np.complex64)
        else:
            self.phasors *= self.turns
        self.time += 1
        if self.time % SRS_PERIOD == 0:
            noise = (
                self.rng.standard_normal((self.cells, USERS, ANTENNAS))
                + 1j * self.rng.standard_normal((self.cells, USERS, ANTENNAS))
            ) * math.sqrt(0.005)
            self.estimates = np.concatenate(
                [(self.channel() + noise.astype(np.complex64))[:, None], self.estimates[:, :-1]], axis=1
            )
            self.times = np.concatenate([[self.time], self.times[:-1]])
        usable = np.flatnonzero(self.times <= self.time - DELAY)[:HISTORY]
        chosen = self.estimates[:, usable]
        observation = np.stack([chosen.real, chosen.imag], -1).reshape(self.cells, -1)
        return observation, rates


def numpy_batch(cells: int, fading: str):
    """A warmed-up numpy batch and its fixed precoder."""
    batch = NumpyBatch(np.random.default_rng(0), cells, doppler_frequency(30.0, 3.5e9), fading)
    precoder = np.ones((ANTENNAS, USERS), dtype=np.complex64) / math.sqrt(ANTENNAS * USERS)
    batch.step(precoder)  # warm-up
    return batch, precoder


def numpy_batch_steps_per_second(batch, precoder, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        batch.step(precoder)
    return batch.cells * steps / (time.perf_counter() - start)


def numpy_steps_per_second(cells: int, steps: int, fading: str) -> float:
    rng = np.random.default_rng(0)
    population = [NumpyCell(rng, doppler_frequency(30.0, 3.5e9), fading) for _ in range(cells)]
    precoder = np.ones((ANTENNAS, USERS), dtype=np.complex64) / math.sqrt(ANTENNAS * USERS)
    start = time.perf_counter()
    for _ in range(steps):
        for cell in population:
            cell.step(precoder)
    return cells * steps / (time.perf_counter() - start)


def batched_env(cells: int, device: str, fading: str):
    """A reset, warmed-up BeamformingEnv and its fixed precoder action."""
    env = BeamformingEnv(
        cells,
        antennas=ANTENNAS,
        users=USERS,
        fading=fading,
        sinusoids=SINUSOIDS,
        srs_period=SRS_PERIOD,
        uplink_delay=DELAY,
        history=HISTORY,
        max_episode_steps=None,
        device=device,
        validate_actions=False,
    )
    env.reset(seed=0)
    action = torch.full((cells, env.single_action_space.shape[0]), 0.1, device=env.device)
    env.step(action)  # warm-up
    return env, action


def batched_steps_per_second(env: BeamformingEnv, action: torch.Tensor, steps: int) -> float:
    sync = torch.cuda.synchronize if env.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        env.step(action)
    sync()
    return env.num_envs * steps / (time.perf_counter() - start)


def measure(sizes: list[int], args: argparse.Namespace, busy: bool) -> list[dict]:
    """ctrlgym and the numpy batch interleaved in each round, so that drifts of the machine hit both."""
    rows = []
    for cells in sizes:
        env, action = batched_env(cells, args.device, args.fading)
        peer = numpy_batch(cells, args.fading) if cells <= 16384 else None
        ours, theirs = [], []
        with busy_machine(busy):
            for _ in range(args.rounds):
                ours.append(batched_steps_per_second(env, action, args.steps))
                if peer is not None:
                    theirs.append(numpy_batch_steps_per_second(*peer, args.steps))
        row = {"cells": cells, "machine": "busy" if busy else "quiet", "ctrlgym": statistics.median(ours)}
        if theirs:
            ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
            row.update(
                {
                    "numpy_batch": statistics.median(theirs),
                    "ctrlgym / numpy_batch": statistics.median(ratios),
                    "ctrlgym / numpy_batch, range over rounds": f"[{min(ratios):.2f}, {max(ratios):.2f}]",
                }
            )
            ratio = f"{row['ctrlgym / numpy_batch']:>7.2f}x {row['ctrlgym / numpy_batch, range over rounds']}"
        else:
            ratio = "-"
        rows.append(row)
        print(
            f"{cells:>7} {row['machine']:>6} {row['ctrlgym']:>20,.0f} {row.get('numpy_batch', float('nan')):>14,.0f} {ratio:>22}"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-busy", action="store_true", help="skip the rounds beside a busy process")
    parser.add_argument("--fading", choices=("sum_of_sinusoids", "ar1"), default="sum_of_sinusoids")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "bench_beamforming.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    info = provenance(args.device)
    info["rounds"] = args.rounds
    print(header(info))
    loop = numpy_steps_per_second(64, args.steps, args.fading)
    sizes = [1, 64, 1024, 4096] + ([16384, 65536, 100_000] if args.device.startswith("cuda") else [])
    print(
        f"M={ANTENNAS}, K={USERS}, fading {args.fading}, {args.steps} steps per round; peer: numpy vectorised over "
        f"the same cells (a numpy loop over 64 cells: {loop:,.0f} env-steps/s)"
    )
    print(f"{'cells':>7} {'load':>6} {'ctrlgym env-steps/s':>20} {'numpy batch':>14} {'ctrlgym/numpy [range]':>22}")
    rows = measure(sizes, args, busy=False)
    if not args.no_busy:
        rows += measure(sizes, args, busy=True)
    results = {"fading": args.fading, "steps": args.steps, "numpy_loop_64": loop, "rows": rows}
    print(f"results: {write_results(args.json, info, results)}")


if __name__ == "__main__":
    main()
