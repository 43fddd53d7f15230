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
