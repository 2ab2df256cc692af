"""The training progress bar's status line."""

from __future__ import annotations

from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ctrlgym.policies import TrainingProgress

__all__ = ["TrainingStatus"]


class TrainingStatus:
    """The bar's postfix: the seed, for envs with a decision clock the simulated hours so far
    (summed over the batch), and the env's headline metric of the latest episodes (traffic: delay)."""

    def __init__(self, env: Any, seed: int) -> None:
        clock = getattr(env, "clock", None)
        self.seconds_per_step = getattr(clock, "delta_time", None)
        headline = getattr(env, "headline_metric", None)  # TorchVectorEnv declares it; other VectorEnvs may not
        self.headline: str | None = headline[0] if headline else None
        self.postfix: dict[str, Any] = {"seed": seed}
        self.shown_at = -1

    def show(self, bar: tqdm, progress: TrainingProgress) -> None:
        latest = progress.get("episode_metrics", {}).get(self.headline) if self.headline else None
        if latest:
            self.postfix[f"last_{self.headline}"] = f"{np.mean(latest):.4g}"
        steps = progress["timesteps"]
        if not latest and steps - self.shown_at < 2000:
            return
        if self.seconds_per_step:
            self.postfix["sim_h"] = f"{steps * self.seconds_per_step / 3600:,.1f}"
        bar.set_postfix(self.postfix, refresh=False)
        self.shown_at = steps
