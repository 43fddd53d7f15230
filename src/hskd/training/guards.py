"""Checks that stop a study which could show nothing: a teacher that barely beats always predicting the
majority class (or the training mean) leaves its students nothing to learn from."""

from __future__ import annotations

import json
import sys
from pathlib import Path


class WeakTeacherError(ValueError):
    """The fine-tuned teacher is not above the trivial baseline by the configured margin."""


def check_teacher_margin(metrics_path: str | Path, margin: float | None) -> None:
    """Refuse a teacher whose dev metric is below `dev_trivial` + `margin` (None: no check).

    A metrics.json written before trivial baselines were recorded is let through with a warning."""
    if margin is None:
        return
    metrics = json.loads(Path(metrics_path).read_text(encoding="utf-8"))
    if "dev_trivial" not in metrics:
        print(f"warning: {metrics_path} has no dev_trivial (older teacher): margin not checked", file=sys.stderr)
        return
    value, trivial = metrics["dev"], metrics["dev_trivial"]
    if not value >= trivial + margin:
        raise WeakTeacherError(
            f"{metrics_path}: teacher dev {metrics['metric']} {value:.4f} is not {margin} above the trivial "
            f"baseline {trivial:.4f}, so students would learn nothing to compare; train the teacher longer "
            f"(by_task.{metrics['task']}.teacher: epochs, lr; data.train_subset), drop {metrics['task']} from tasks "
            "so the other tasks' tables are built, or lower teacher_margin (null skips this check)"
        )
