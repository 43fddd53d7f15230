"""hskd.models.dropout: 16-bit keep masks, dropout, the attention function and installing them in an HF BERT."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from hskd.models.dropout import ATTENTION, Dropout, attention, cheap_dropout, keep_mask, use_cheap_dropout
from hskd.models.hub import random_classifier


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_mask_drops_the_requested_share(p):
    torch.manual_seed(0)
    mask = keep_mask((1000, 1000), p)
    assert mask.dtype == torch.bool and mask.shape == (1000, 1000)
    # binomial std of the kept share is at most 0.0005 for 10^6 entries
    assert abs(mask.float().mean().item() - (1 - p)) < 0.003


def test_keep_mask_edges_and_odd_sizes():
    assert keep_mask((3, 5), 0.0).all()  # p = 0 keeps everything
    assert not keep_mask((7,), 1.0).any()  # p = 1 drops everything
    assert keep_mask((2, 3, 5), 0.5).shape == (2, 3, 5)  # 30 entries: not a multiple of 4 per draw


def test_keep_mask_is_fixed_by_the_seed():
    torch.manual_seed(3)
    first = keep_mask((64, 64), 0.1)
    torch.manual_seed(3)
    assert torch.equal(first, keep_mask((64, 64), 0.1))
    assert not torch.equal(first, keep_mask((64, 64), 0.1))


def test_cheap_dropout_zeroes_or_rescales_and_passes_gradients_through_the_same_mask():
    torch.manual_seed(0)
    x = torch.rand(200, 300).add_(1).requires_grad_()
    y = cheap_dropout(x, 0.25, training=True)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / 0.75)
    assert abs(kept.float().mean().item() - 0.75) < 0.01
    y.sum().backward()
    assert torch.allclose(x.grad, kept.float() / 0.75)


def test_cheap_dropout_is_the_identity_when_not_training_or_p_zero():
    x = torch.randn(4, 5)
    assert torch.equal(cheap_dropout(x, 0.3, training=False), x)
    assert torch.equal(cheap_dropout(x, 0.0, training=True), x)
    module = Dropout(0.3).eval()
    assert torch.equal(module(x), x)


def test_eager_attention_with_dropout_matches_sdpa_when_nothing_is_dropped():
    torch.manual_seed(0)
    query, key, value = (torch.randn(2, 3, 6, 4) for _ in range(3))
    attend = torch.ones(2, 1, 1, 6, dtype=torch.bool)
    attend[0, ..., 4:] = False  # padding in the first example
    module = torch.nn.Module()
    reference, _ = sdpa_attention_forward(module, query, key, value, attend, dropout=0.0, is_causal=False)
    # p = 1e-9 rounds to a 0/65536 drop rate, but still takes the eager CPU dropout path
    eager, weights = attention(module, query, key, value, attend, dropout=1e-9)
    assert weights is None and eager.shape == (2, 6, 3, 4)
    assert torch.allclose(eager, reference, atol=1e-6)


def test_use_cheap_dropout_keeps_eval_outputs_and_seeded_training(tmp_path):
    model = random_classifier(2, layers=2, hidden=32, heads=4, ffn=64, vocab_size=50, seed=0)
    input_ids = torch.randint(0, 50, (3, 7), generator=torch.Generator().manual_seed(0))
    attention_mask = torch.ones(3, 7, dtype=torch.long)
    attention_mask[1, 5:] = 0
    model.eval()
    before = model(input_ids=input_ids, attention_mask=attention_mask).logits
    use_cheap_dropout(model)
    assert model.config._attn_implementation == ATTENTION
    assert not any(type(module) is torch.nn.Dropout for module in model.modules())
    assert torch.allclose(model(input_ids=input_ids, attention_mask=attention_mask).logits, before, atol=1e-5)
    model.train()
    outputs = []
    for _ in range(2):
        torch.manual_seed(5)
        outputs.append(model(input_ids=input_ids, attention_mask=attention_mask).logits)
    assert torch.equal(outputs[0], outputs[1])
    assert not torch.allclose(outputs[0], before)  # dropout is active in training
    model.save_pretrained(tmp_path)
    assert ATTENTION not in json.loads((tmp_path / "config.json").read_text()).values()


def test_other_devices_keep_torch_dropout(monkeypatch):
    calls = []
    monkeypatch.setattr(F, "dropout", lambda x, p, training: calls.append(p) or x)
    x = torch.randn(2, 2, device="meta")
    cheap_dropout(x, 0.1, training=True)
    assert calls == [0.1]
