"""A training job's curves: scalars collected while it trains (losses, learning rates, dev evaluations, its final
metrics), kept in its checkpoint so a resumed job continues the same curve, and written once, when the job has
finished, as a TensorBoard event file in the job's own folder (`tracking: tensorboard`). Nothing is written
while a job runs, so a killed job leaves no partial curve behind."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Curves:
    """(tag, step, value) points in the order they were logged; `log_every` steps between loss points."""

    log_every: int = 10
    points: list[tuple[str, int, float]] = field(default_factory=list)

    def add(self, tag: str, step: int, value: float) -> None:
        self.points.append((tag, step, float(value)))

    def restore(self, points: list) -> None:
        """The points of a saved state: what was logged up to the step the job resumes after."""
        self.points[:] = [tuple(point) for point in points]

    def scalars(self, tag: str) -> list[tuple[int, float]]:
        return [(step, value) for name, step, value in self.points if name == tag]


def write_events(curves: Curves, folder: str | os.PathLike) -> Path:
    """Write every point into one TensorBoard event file in `folder` (replacing an earlier one), via a
    temporary folder renamed into place."""
    from torch.utils.tensorboard import SummaryWriter

    folder = Path(folder)
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    with SummaryWriter(log_dir=str(tmp)) as writer:
        for tag, step, value in curves.points:
            writer.add_scalar(tag, value, step)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder
