"""The precision setting: which autocast dtype each setting gives on each device."""

from __future__ import annotations

import math

import pytest
import torch

from hskd.models.runtime import autocast, autocast_dtype, setup_runtime
from hskd.training.loop import make_optimizer

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
    from hskd.training.loop import prediction_kd_loss

    # teacher [0, 2] / 2 -> softmax [1, e] / (1 + e) = [0.268941, 0.731059]
    # student [1, 0] / 2 -> log_softmax [0.5, 0] - log(1 + e^0.5) = [-0.474077, -0.974077]
    expected = 0.268941 * 0.474077 + 0.731059 * 0.974077
    loss = prediction_kd_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]]), temperature=2.0)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_regression_distils_the_teachers_output_with_mse():
    from hskd.training.loop import prediction_kd_loss, task_loss

    student, teacher = torch.tensor([[1.0], [4.0]]), torch.tensor([[2.0], [2.0]])
    # MSE (1 + 4) / 2 = 2.5; an L1 loss would give 1.5, a zero target (1 + 16) / 2 = 8.5
    assert prediction_kd_loss(student, teacher, temperature=1.0).item() == pytest.approx(2.5)
    assert task_loss(student, torch.tensor([2.0, 2.0])).item() == pytest.approx(2.5)


def test_cls_attention_is_from_cls_in_the_last_layer_averaged_over_heads():
    from hskd.models.teacher import cls_attention_row

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


def _split(lengths: list[int], labels: list[int]):
    """A TokenizedSplit of len(lengths) examples padded to 4 positions; token ids 1..length, then 0."""
    from hskd.models.data import TokenizedSplit

    positions = torch.arange(4)
    lengths_tensor = torch.tensor(lengths, dtype=torch.int32)
    ids = torch.where(positions < lengths_tensor[:, None], positions + 1, 0).int()
    return TokenizedSplit(ids, torch.zeros_like(ids, dtype=torch.uint8), lengths_tensor, torch.tensor(labels))


def test_steps_for_rounds_up_and_never_gives_zero_steps():
    from hskd.planning.plan import steps_for

    assert steps_for(1.5, 3) == 5  # ceil(4.5)
    assert steps_for(0.1, 5) == 1  # ceil(0.5)
    assert steps_for(0.0, 10) == 1  # at least one step


def test_batch_stream_reshuffles_every_epoch_with_seed_plus_epoch():
    from hskd.training.loop import batch_stream

    split = _split([1, 2, 3, 4], [0, 1, 0, 1])
    # 4 examples in batches of 2: 2 batches per epoch, so 5 steps = epochs 0, 1 and the first half of 2,
    # drawn with seeds 7, 8 and 9 (the documented seed + epoch)
    epochs = [split.batch_order(2, seed, shuffle=True, group_by_length=False) for seed in (7, 8, 9)]
    assert [b.tolist() for b in epochs[1]] != [b.tolist() for b in epochs[2]]  # the seeds give other orders
    expected = [b.tolist() for b in epochs[0] + epochs[1] + epochs[2][:1]]
    assert [b.tolist() for b in batch_stream(split, 2, 5, seed=7, group_by_length=False)] == expected


@pytest.mark.parametrize("lengths", [[3, 1, 2], [2]])
def test_predict_logits_keeps_the_split_order(lengths):
    from hskd.training.loop import predict_logits

    # the "model" outputs each example's real-token count and its first token id (always 1):
    # lengths [3, 1, 2] are predicted in length order (1, 2, 3) but returned as [[3, 1], [1, 1], [2, 1]];
    # a one-example split must work too (the output shape is probed on example 0)
    def logits_fn(batch):
        return torch.stack([batch["attention_mask"].sum(1), batch["input_ids"][:, 0]], dim=1).float()

    logits = predict_logits(logits_fn, _split(lengths, [0] * len(lengths)), CPU, batch_size=2)
    torch.testing.assert_close(logits, torch.tensor([[float(n), 1.0] for n in lengths]))


def test_collapse_report_compares_with_the_majority_class_of_train():
    from hskd.training.loop import collapse_report

    train, dev = _split([1, 1, 1, 1], [0, 0, 0, 1]), _split([1] * 5, [0, 1, 1, 0, 0])
    # train's majority class is 0; always 0 on dev labels [0, 1, 1, 0, 0] scores 3/5 = 0.6
    better = collapse_report([0, 1, 1, 0, 1], 0.8, "SST-2", train, dev)  # 4/5 correct, 0.8 > 0.6 + 0.01
    assert better == {"dev_trivial": pytest.approx(0.6), "dev_distinct_predictions": 2, "collapsed": False}
    worse = collapse_report([1, 0, 0, 0, 0], 0.4, "SST-2", train, dev)  # 2/5 correct: below the baseline
    assert worse == {"dev_trivial": pytest.approx(0.6), "dev_distinct_predictions": 2, "collapsed": True}


def test_regression_task_loss_pairs_each_output_with_its_own_label():
    from hskd.training.loop import task_loss

    # outputs [1, 4] vs labels [2, 0]: ((1 - 2)^2 + (4 - 0)^2) / 2 = 8.5; an output column [B, 1] broadcast
    # against labels [B] would average all four pairs instead: (1 + 1 + 4 + 16) / 4 = 5.5
    assert task_loss(torch.tensor([[1.0], [4.0]]), torch.tensor([2.0, 0.0])).item() == pytest.approx(8.5)


def test_bert_adam_clips_each_tensor_skips_bias_correction_and_decays_the_weights():
    # one step by hand: grad (3, 4) has norm 5, clipped to norm 1 (torch's clip divides by norm + 1e-6); then
    # m = 0.1 g, v = 0.001 g^2, no bias correction: the update is m / (sqrt(v) + 1e-6) + 0.01 p, times the lr
    from hskd.training.bert_adam import BertAdam

    param = torch.nn.Parameter(torch.tensor([3.0, 4.0], dtype=torch.float64))
    param.grad = torch.tensor([3.0, 4.0], dtype=torch.float64)
    BertAdam([param], lr=0.1).step()
    expected = []
    for p, raw in ((3.0, 3.0), (4.0, 4.0)):
        g = raw / (5.0 + 1e-6)
        update = 0.1 * g / (math.sqrt(0.001 * g * g) + 1e-6) + 0.01 * p
        expected.append(p - 0.1 * update)
    assert param.detach().tolist() == pytest.approx(expected, rel=1e-12)


def test_bert_adam_groups_leave_biases_and_layer_norm_undecayed():
    from hskd.training.bert_adam import BertAdam

    model = torch.nn.ModuleDict({"dense": torch.nn.Linear(2, 2), "LayerNorm": torch.nn.LayerNorm(2)})
    model["dense"].bias.requires_grad_(False)
    optimizer, _ = make_optimizer(model.named_parameters(), 1e-3, 0.01, "constant", 0.0, 10, kind="bertadam")
    assert isinstance(optimizer, BertAdam)
    decays = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    assert decays == {id(model["dense"].weight): 0.01, id(model["LayerNorm"].weight): 0.0,
                      id(model["LayerNorm"].bias): 0.0}  # fmt: skip
    adamw, _ = make_optimizer(model.named_parameters(), 1e-3, 0.01, "constant", 0.0, 10)
    assert isinstance(adamw, torch.optim.AdamW)
