"""Dropout with cheap random bits on CPU, for every model the pipeline trains.

torch's CPU dropout draws one number per element from its generator (`bernoulli_`); under torch.profiler
that was a quarter of the benchmark's student training step on two cores (`hskd bench`). Here each 64-bit
draw of the same seeded generator gives four 16-bit uniforms, which makes a mask several times cheaper,
and a seed still fixes every mask. The drop probability is p rounded to a multiple of 2^-16. Other
devices keep torch's own dropout and attention kernels, which are already fast there.

`use_cheap_dropout(model)` installs it in a transformers BERT: its `nn.Dropout` modules, and its attention
through the transformers attention interface (name `ATTENTION`), which drops attention probabilities."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ATTENTION = "hskd_sdpa"
UNIFORMS_PER_DRAW = 4  # int16 uniforms per int64 draw
INT16_VALUES = 2**16


def keep_mask(shape: tuple[int, ...], p: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """Bool mask of `shape`, each entry False (dropped) with probability round(p * 2^16) / 2^16."""
    if p >= 1.0:
        return torch.zeros(shape, dtype=torch.bool, device=device)
    count = torch.Size(shape).numel()
    draws = torch.empty(-(-count // UNIFORMS_PER_DRAW), dtype=torch.int64, device=device)
    draws.random_(-(2**63), None)  # every 64 bits uniform, hence every int16 view of them
    uniforms = draws.view(torch.int16)[:count].view(shape)
    return uniforms >= torch.iinfo(torch.int16).min + round(p * INT16_VALUES)


def cheap_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """`F.dropout(x, p, training)`, with masks from `keep_mask` on CPU."""
    if not training or p in (0.0, 1.0) or x.device.type != "cpu":
        return F.dropout(x, p, training)
    # one float mask with the scale folded in: the forward and the backward are one multiply each
    scale = torch.tensor(1.0 / (1.0 - p), dtype=x.dtype)
    return x * torch.where(keep_mask(x.shape, p, x.device), scale, 0.0)


class Dropout(nn.Dropout):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cheap_dropout(x, self.p, self.training)


def attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Bidirectional attention, an attention-interface function: [B, H, T, d] in, [B, T, H, d] out.

    `attention_mask` is a bool mask broadcastable to [B, H, T, T] (True = attend) or None. Transformers'
    SDPA path, except when attention probabilities are dropped on CPU: then softmax(QK^T) V is computed
    eagerly (what SDPA itself falls back to when dropping) with a `keep_mask`."""
    if dropout == 0.0 or query.device.type != "cpu":
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, is_causal=False
        )
    scores = query @ key.transpose(-2, -1) * (query.shape[-1] ** -0.5 if scaling is None else scaling)
    if attention_mask is not None:
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    # softmax in fp32 under bf16 autocast, as transformers' eager attention does
    probabilities = cheap_dropout(scores.softmax(-1, dtype=torch.float32).to(value.dtype), dropout, training=True)
    return (probabilities @ value).transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION, attention)
AttentionMaskInterface.register(ATTENTION, sdpa_mask)


def use_cheap_dropout(model: PreTrainedModel) -> PreTrainedModel:
    """Swap a transformers model's dropout modules and attention for this module's; returns `model`."""
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                setattr(parent, name, Dropout(child.p).train(child.training))
    model.set_attn_implementation(ATTENTION)
    return model
