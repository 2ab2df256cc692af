"""The training progress bar's status line."""

from __future__ import annotations

from typing import Any

import numpy as np
from tqdm.auto import tqdm

__all__ = ["TrainingStatus"]


class TrainingStatus:
    """The bar's postfix: the seed, for envs with a decision clock the simulated hours so far
    (summed over the batch), and the env's headline metric of the latest episodes (traffic: delay)."""

    def __init__(self, env: Any, seed: int) -> None:
        clock = getattr(env, "clock", None)
        self.seconds_per_step = getattr(clock, "delta_time", None)
        self.headline = getattr(env, "headline_metric", (None, True))[0]
        self.postfix: dict[str, Any] = {"seed": seed}
        self.shown_at = -1

    def show(self, bar: tqdm, progress: dict[str, Any]) -> None:
        latest = progress.get("episode_metrics", {}).get(self.headline)
        if latest:
            self.postfix[f"last_{self.headline}"] = f"{np.mean(latest):.4g}"
        steps = progress["timesteps"]
        if not latest and steps - self.shown_at < 2000:
            return
        if self.seconds_per_step:
            self.postfix["sim_h"] = f"{steps * self.seconds_per_step / 3600:,.1f}"
        bar.set_postfix(self.postfix, refresh=False)
        self.shown_at = steps
