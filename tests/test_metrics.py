import math

import pytest
import torch

from hskd.metrics import compute_metrics, predictions_from_logits, primary_metric

# labels 1 1 1 0 0 0 / predictions 1 1 0 0 0 1: TP=2 FN=1 FP=1 TN=2.
LABELS = [1, 1, 1, 0, 0, 0]
PREDICTIONS = [1, 1, 0, 0, 0, 1]


def test_cola_accuracy_and_mcc():
    # accuracy 4/6; MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (4 - 1) / sqrt(3^4) = 1/3
    metrics = compute_metrics("CoLA", PREDICTIONS, LABELS)
    assert metrics == pytest.approx({"accuracy": 2 / 3, "matthews_corrcoef": 1 / 3})
    assert all(type(value) is float for value in metrics.values())


def test_mrpc_f1_is_of_positive_class():
    # TP=1 FP=1 FN=0: precision 1/2, recall 1 -> F1 = 2/3 (class 0 would give 8/9); accuracy 5/6
    metrics = compute_metrics("MRPC", [1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0])
    assert metrics == pytest.approx({"accuracy": 5 / 6, "f1": 2 / 3})
    assert compute_metrics("QQP", PREDICTIONS, LABELS) == pytest.approx({"accuracy": 2 / 3, "f1": 2 / 3})


def test_other_classification_tasks_report_accuracy_only():
    assert compute_metrics("MNLI", [0, 1, 2, 2], [0, 1, 1, 2]) == {"accuracy": 0.75}
    assert compute_metrics("SST-2", PREDICTIONS, LABELS) == pytest.approx({"accuracy": 2 / 3})


def test_stsb_pearson_and_spearman():
    # x - mean = (-2, -1, 3), y - mean = (-1, 0, 1): r = 5 / sqrt(14 * 2); ranks agree exactly -> spearman 1
    metrics = compute_metrics("STS-B", [0.0, 1.0, 5.0], [1.0, 2.0, 3.0])
    assert metrics == pytest.approx({"pearson": 5 / math.sqrt(28), "spearman": 1.0})
    assert all(type(value) is float for value in metrics.values())


def test_compute_metrics_rejects_bad_input():
    with pytest.raises(ValueError, match="3 predictions but 2 labels"):
        compute_metrics("RTE", [0, 1, 0], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        compute_metrics("RTE", [], [])
    with pytest.raises(ValueError, match="unknown task"):
        compute_metrics("rte", [0], [0])


def test_primary_metric_is_a_computed_key():
    assert primary_metric("CoLA") == "matthews_corrcoef"
    assert primary_metric("STS-B") == "pearson"
    assert primary_metric("MRPC") == "f1"
    assert primary_metric("MNLI") == "accuracy"
    assert primary_metric("QQP") in compute_metrics("QQP", PREDICTIONS, LABELS)


def test_predictions_from_logits():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5]], requires_grad=True)
    assert predictions_from_logits("MNLI", logits) == [1, 0]
    assert predictions_from_logits("STS-B", torch.tensor([[0.5], [4.25]])) == [0.5, 4.25]
    assert predictions_from_logits("STS-B", torch.tensor([1.5])) == [1.5]
    with pytest.raises(ValueError, match=r"shape \(n, 1\)"):
        predictions_from_logits("STS-B", torch.zeros(2, 2))
