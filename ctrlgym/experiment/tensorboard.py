"""TensorBoard logs of a training run that survive a resume: a resumed run's events continue the
curve instead of repeating the steps the killed run logged after its last checkpoint."""

from __future__ import annotations

import re
import time
from pathlib import Path

__all__ = ["wait_out_older_event_files", "tensorboard_writer", "sb3_logger"]


def wait_out_older_event_files(folder: Path) -> None:
    """A resumed run's TensorBoard file must sort after the killed run's (TensorBoard reads them by
    name, which starts with the second they were opened): wait until that second has passed."""
    stamps = [
        int(m.group(1))
        for path in folder.glob("events.out.tfevents.*")
        if (m := re.match(r"events\.out\.tfevents\.(\d+)\.", path.name))
    ]
    while stamps and time.time() < max(stamps) + 1:
        time.sleep(0.05)


def tensorboard_writer(folder: Path, steps: int):
    """A SummaryWriter that, resumed at ``steps``, makes TensorBoard drop the events the killed run wrote after it."""
    from torch.utils.tensorboard import SummaryWriter

    if steps:
        wait_out_older_event_files(folder)
    return SummaryWriter(str(folder), purge_step=steps if steps else None)


def sb3_logger(folder: Path, steps: int):
    """SB3's logger writing TensorBoard to ``tensorboard/seed_<s>``; resumed at ``steps``, it
    starts with the purge marker that ``SummaryWriter(purge_step=steps)`` writes, so the curve
    continues instead of going back."""
    from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat
    from tensorboard.compat.proto.event_pb2 import Event, SessionLog

    if steps:
        wait_out_older_event_files(folder)
    output = TensorBoardOutputFormat(str(folder))
    if steps:
        output.writer.file_writer.add_event(  # type: ignore[attr-defined]  # open once constructed
            Event(step=steps, session_log=SessionLog(status=SessionLog.START))
        )
    return Logger(folder=str(folder), output_formats=[output])
