"""The precision setting: which autocast dtype each setting gives on each device."""

from __future__ import annotations

import pytest
import torch

from hskd.training import autocast, autocast_dtype, setup_runtime

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(
    ("precision", "device", "dtype"),
    [("auto", CPU, None), ("auto", CUDA, torch.bfloat16), ("fp32", CPU, None), ("fp32", CUDA, None),
     ("bf16", CPU, torch.bfloat16), ("bf16", CUDA, torch.bfloat16)],
)  # fmt: skip
def test_autocast_dtype_per_precision_and_device(precision, device, dtype):
    assert autocast_dtype(precision, device) == dtype


def test_unknown_precision_is_an_error():
    with pytest.raises(ValueError, match="fp16"):
        autocast_dtype("fp16", CPU)


def test_setup_runtime_sets_the_precision_autocast_uses():
    layer, x = torch.nn.Linear(4, 4), torch.ones(2, 4)
    try:
        device = setup_runtime(1, 0, "bf16")
        with autocast(device):
            assert layer(x).dtype == torch.bfloat16
        device = setup_runtime(1, 0, "fp32")
        with autocast(device):
            assert layer(x).dtype == torch.float32
    finally:
        setup_runtime(1, 0)


def test_soft_cross_entropy_at_temperature_2_by_hand():
    from hskd.training import prediction_kd_loss

    # teacher [0, 2] / 2 -> softmax [1, e] / (1 + e) = [0.268941, 0.731059]
    # student [1, 0] / 2 -> log_softmax [0.5, 0] - log(1 + e^0.5) = [-0.474077, -0.974077]
    expected = 0.268941 * 0.474077 + 0.731059 * 0.974077
    loss = prediction_kd_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]]), temperature=2.0)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_regression_distils_the_teachers_output_with_mse():
    from hskd.training import prediction_kd_loss, task_loss

    student, teacher = torch.tensor([[1.0], [4.0]]), torch.tensor([[2.0], [2.0]])
    # MSE (1 + 4) / 2 = 2.5; an L1 loss would give 1.5, a zero target (1 + 16) / 2 = 8.5
    assert prediction_kd_loss(student, teacher, temperature=1.0).item() == pytest.approx(2.5)
    assert task_loss(student, torch.tensor([2.0, 2.0])).item() == pytest.approx(2.5)


def test_cls_attention_is_from_cls_in_the_last_layer_averaged_over_heads():
    from hskd.teacher import cls_attention_row

    # [layers 3][B 1, heads 2, query 3, key 3]. Right answer: last layer, query 0, mean over heads =
    # [0, 0.5, 0.45] (token 1 first). Every wrong variant ranks token 2 first: max over heads [0, 0.5, 0.9];
    # attention *to* [CLS] (key 0) from tokens 1, 2: [0.1, 0.8]; the first layer: [0, 0, 1].
    last = torch.zeros(1, 2, 3, 3)
    last[0, 0, 0] = torch.tensor([0.0, 0.5, 0.9])
    last[0, 1, 0] = torch.tensor([0.0, 0.5, 0.0])
    last[0, :, 1, 0], last[0, :, 2, 0] = 0.1, 0.8
    first = torch.zeros(1, 2, 3, 3)
    first[0, :, 0] = torch.tensor([0.0, 0.0, 1.0])
    row = cls_attention_row((first, torch.rand(1, 2, 3, 3), last))
    torch.testing.assert_close(row, torch.tensor([[0.0, 0.5, 0.45]]))
