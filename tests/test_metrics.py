import math

import pytest
import torch

from hskd.common.metrics import compute_metrics, predictions_from_logits, primary_metric

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


def test_trivial_baseline_predicts_the_training_majority():
    from hskd.common.metrics import trivial_metrics, trivial_predictions

    # train majority is 1; dev has one 1 in four
    assert trivial_metrics("SST-2", [1, 1, 0], [1, 0, 0, 0]) == pytest.approx({"accuracy": 0.25})
    assert trivial_predictions("SST-2", [0, 1], 3) == [0, 0, 0]  # a tie goes to the smallest class id
    assert trivial_predictions("MNLI", [2, 2, 1, 0], 2) == [2, 2]


def test_trivial_f1_with_the_positive_class_in_the_majority_and_in_the_minority():
    from hskd.common.metrics import trivial_metrics

    # always 1 on labels 1 1 0: TP=2 FP=1 FN=0 -> precision 2/3, recall 1, F1 = 0.8; accuracy 2/3
    assert trivial_metrics("MRPC", [1, 1, 0], [1, 1, 0]) == pytest.approx({"accuracy": 2 / 3, "f1": 0.8})
    # always 0: no true positives, F1 = 0; accuracy 1/3
    assert trivial_metrics("MRPC", [0, 0, 1], [1, 1, 0]) == pytest.approx({"accuracy": 1 / 3, "f1": 0.0})


def test_trivial_matthews_is_zero_and_a_constant_regression_has_no_correlation():
    from hskd.common.metrics import trivial_metrics, trivial_predictions

    assert trivial_metrics("CoLA", [1, 1, 0], [1, 0, 1, 0])["matthews_corrcoef"] == 0.0
    assert trivial_metrics("STS-B", [1.0, 2.0, 4.5], [0.5, 3.0]) == {"pearson": 0.0, "spearman": 0.0}
    assert trivial_predictions("STS-B", [1.0, 2.0, 4.5], 2) == [2.5, 2.5]


@pytest.mark.parametrize(
    ("distinct", "value", "trivial", "collapsed"),
    [
        (1, 0.90, 0.50, True),  # constant predictions, whatever the metric says
        (2, 0.505, 0.50, True),  # within the tolerance (0.01) of the trivial baseline
        (2, 0.45, 0.50, True),  # below it
        (2, math.nan, 0.0, True),  # an undefined metric
        (2, 0.52, 0.50, False),
    ],
)
def test_collapse_flag(distinct, value, trivial, collapsed):
    from hskd.common.metrics import is_collapsed

    assert is_collapsed(distinct, value, trivial) is collapsed


def test_metric_edges_one_example_no_positives_and_the_collapse_boundary():
    from hskd.common.metrics import is_collapsed, trivial_predictions

    # one example is a split; one training label is a baseline
    assert compute_metrics("SST-2", [1], [1])["accuracy"] == 1.0
    assert trivial_predictions("SST-2", [1], 2) == [1, 1]
    # no positive prediction and no positive label: F1 is 0 (zero_division), not 1
    assert compute_metrics("MRPC", [0, 0], [0, 0])["f1"] == 0.0
    # a metric exactly tolerance above the trivial baseline is still collapsed ("not above by more")
    assert is_collapsed(2, 0.75, 0.5, 0.25) and not is_collapsed(2, 0.7501, 0.5, 0.25)
