"""GLUE evaluation metrics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from hskd.common.glue import get_task

if TYPE_CHECKING:
    import torch

_F1_TASKS = ("MRPC", "QQP")
# A run within this many metric units of (or below) the trivial baseline has learned nothing usable.
COLLAPSE_TOLERANCE = 0.01


def primary_metric(task: str) -> str:
    """Name of the metric a task is ranked by (a key of ``compute_metrics``' result)."""
    return get_task(task).metric


def compute_metrics(
    task: str, predictions: Sequence[int] | Sequence[float], labels: Sequence[int] | Sequence[float]
) -> dict[str, float]:
    """GLUE metrics of class-id (or, for STS-B, float) predictions against gold labels.

    Classification: ``accuracy``, plus ``f1`` (positive class 1) for MRPC/QQP and ``matthews_corrcoef``
    for CoLA. Regression: ``pearson`` and ``spearman`` (NaN when either side is constant).
    """
    spec = get_task(task)
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
    if len(labels) == 0:
        raise ValueError("cannot compute metrics of an empty split")
    if spec.is_regression:
        return {
            "pearson": float(pearsonr(predictions, labels)[0]),
            "spearman": float(spearmanr(predictions, labels)[0]),
        }
    metrics = {"accuracy": float(accuracy_score(labels, predictions))}
    if spec.name in _F1_TASKS:
        metrics["f1"] = float(f1_score(labels, predictions, pos_label=1, zero_division=0.0))
    if spec.name == "CoLA":
        metrics["matthews_corrcoef"] = float(matthews_corrcoef(labels, predictions))
    return metrics


def predictions_from_logits(task: str, logits: torch.Tensor) -> list[int] | list[float]:
    """Argmax class ids, or for regression the scores of ``(n, 1)`` or ``(n,)`` logits."""
    logits = logits.detach().cpu()
    if get_task(task).is_regression:
        if logits.ndim == 2 and logits.shape[-1] == 1:
            logits = logits[:, 0]
        if logits.ndim != 1:
            raise ValueError(f"regression logits must have shape (n, 1) or (n,), got {tuple(logits.shape)}")
        return logits.float().tolist()
    return logits.argmax(dim=-1).tolist()


def trivial_predictions(task: str, train_labels: Sequence[int] | Sequence[float], count: int) -> list:
    """What a model that ignores its input predicts for `count` examples: the most frequent training class
    (ties: the smallest class id), or for regression the training mean."""
    if len(train_labels) == 0:
        raise ValueError("cannot derive a trivial baseline from no training labels")
    if get_task(task).is_regression:
        return [float(sum(train_labels) / len(train_labels))] * count
    counts = Counter(int(label) for label in train_labels)
    majority = min(counts, key=lambda label: (-counts[label], label))
    return [majority] * count


def trivial_metrics(
    task: str, train_labels: Sequence[int] | Sequence[float], eval_labels: Sequence[int] | Sequence[float]
) -> dict[str, float]:
    """GLUE metrics of `trivial_predictions` on `eval_labels`. A constant has no correlation with anything:
    for regression Pearson and Spearman are reported as 0 (scipy's value is undefined, NaN)."""
    spec = get_task(task)
    if spec.is_regression:
        return {"pearson": 0.0, "spearman": 0.0}
    return compute_metrics(task, trivial_predictions(task, train_labels, len(eval_labels)), eval_labels)


def distinct_predictions(predictions: Sequence[int] | Sequence[float]) -> int:
    """How many different values a model predicted (1 = constant predictions)."""
    return len(set(predictions))


def is_collapsed(distinct: int, value: float, trivial_value: float, tolerance: float = COLLAPSE_TOLERANCE) -> bool:
    """A run collapsed when its predictions are constant or its metric is not above the trivial baseline by
    more than `tolerance` (NaN metrics, e.g. Pearson of constant predictions, count as collapsed)."""
    return distinct <= 1 or not value > trivial_value + tolerance
