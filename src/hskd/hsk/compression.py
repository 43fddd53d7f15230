"""HSK compression along depth, length and width: pure tensor functions, no I/O.

HSK (hidden-state knowledge) is the teacher's hidden states of every layer (index 0 = embeddings
output, 1..Lt = layers), every token and every hidden dimension. A cell (`hskd.planning.cells`, the grammar and
its layer maps) says which of them a run distils; this module applies it to tensors:

- length: `select_tokens` keeps k tokens per example, ranked by a strategy of
  `hskd.planning.strategies.LENGTH_STRATEGIES`.
- width: `width_mask` keeps a fraction of the hidden values, chosen by a strategy of
  `hskd.planning.strategies.WIDTH_STRATEGIES` (static dims, or a mask per example; a per-batch mask, the paper
  code's ``magnitude_batch``, is drawn at training time from the batch's full-width target).

`compress_batch` applies a cell to a teacher forward pass and is shared by offline extraction and
online distillation. `hsk_loss` has two modes: ``paper`` is the MSE over the full vectors of the
selected tokens against a target that is zero where a value was dropped (as in Liu et al. 2021);
``masked`` is the MSE over the kept values only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hskd.planning.cells import Cell
from hskd.planning.strategies import WIDTH_SEED, TokenInputs, length_strategy, static_dims, width_strategy

LOSS_MODES = ("paper", "masked")


@dataclass
class HSKBatch:
    """A batch of compressed teacher HSK, dense and zero-filled, ready for `hsk_loss`.

    L = number of distilled layers, K = kept tokens per example, D = teacher hidden width.
    """

    student_layers: list[int]  # student hidden-state indices (0 = embeddings), length L
    teacher_layers: list[int]  # teacher hidden-state indices (0 = embeddings), length L
    # LongTensor [B, K] (one token set for every layer) or [B, L, K] (per layer), sorted ascending
    token_index: torch.Tensor
    target: torch.Tensor  # float [B, L, K, D] (fp32, or fp16 from a store): teacher hidden states, 0 where dropped
    keep_mask: torch.Tensor  # BoolTensor broadcastable to [B, L, K, D]: True where the value was kept


# --------------------------------------------------------------------------------------------- length


def select_tokens(
    scheme: str,
    keep: int,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    cls_attention: torch.Tensor | None,
    sep_token_id: int,
    sep_rank: str = "above_padding",
    example_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Positions [B, keep] of the tokens kept by length strategy `scheme`, sorted ascending.

    Padding is chosen only once real tokens run out, in the order of its scores; for a `sep_last` strategy such
    as ``attention_nosep`` [SEP] only once the other real tokens do (`sep_rank` ``above_padding``), only once
    padding does too (``below_padding``), or among padding as a padding position of score 0
    (``among_padding``, the paper's, for pre-softmax scores); ties go to the lower position. `cls_attention`
    [B, T] (the teacher's [CLS] row, averaged over heads) is needed only by the attention schemes;
    `example_ids` [B] (indices in the split) only by per-example seeded ones (``random``).
    """
    batch, length = input_ids.shape
    strategy = length_strategy(scheme)
    if not 1 <= keep <= length:
        raise ValueError(f"keep={keep} outside 1..{length} (sequence length)")
    if strategy.fixed_keep is not None and keep != strategy.fixed_keep:
        raise ValueError(f"length scheme {scheme!r} keeps exactly {strategy.fixed_keep} token(s), got keep={keep}")
    if strategy.needs_attention and cls_attention is None:
        raise ValueError(f"length scheme {scheme!r} needs cls_attention")
    if strategy.needs_example_ids and example_ids is None:
        raise ValueError(f"length scheme {scheme!r} draws per example: it needs example_ids")
    inputs = TokenInputs(input_ids, attention_mask, cls_attention, example_ids)
    score = strategy.score(inputs)
    real = attention_mask.bool()
    tier = (~real).long() * 2
    if strategy.sep_last:
        sep = real & (input_ids == sep_token_id)
        if sep_rank == "among_padding":
            tier, score = tier + sep.long() * 2, score.masked_fill(sep, 0.0)
        else:
            tier = tier + sep.long() * (3 if sep_rank == "below_padding" else 1)
    # Lexicographic (tier, -score, position) via two stable sorts: exact ties and deterministic on any
    # device, unlike topk or an epsilon tie-break.
    by_score = torch.sort(score, dim=-1, descending=True, stable=True).indices
    by_tier = torch.sort(tier.gather(-1, by_score), dim=-1, stable=True).indices
    return by_score.gather(-1, by_tier)[:, :keep].sort(dim=-1).values


# ---------------------------------------------------------------------------------------------- width


def width_mask(scheme: str, fraction: float, teacher_hidden: torch.Tensor, seed: int = WIDTH_SEED) -> torch.Tensor:
    """BoolTensor of kept values, broadcastable to `teacher_hidden` [..., T, D].

    Static schemes (``random``, ``bernoulli``, ``uniform``): shape [D], the dims `static_dims` draws with
    `seed`. Per-example masks (``magnitude``: the round(fraction * T * D) largest |values| of each [T, D]
    slice, ties to the lower flat index): same shape as `teacher_hidden`. Per-batch masks: all of [D]
    (drawn at training time).
    """
    strategy = width_strategy(scheme)
    hidden_size = teacher_hidden.shape[-1]
    if strategy.kind == "per_example":
        return strategy.mask(teacher_hidden, fraction)
    if strategy.kind == "per_batch":
        return torch.ones(hidden_size, dtype=torch.bool, device=teacher_hidden.device)
    mask = torch.zeros(hidden_size, dtype=torch.bool, device=teacher_hidden.device)
    mask[torch.tensor(static_dims(scheme, fraction, hidden_size, seed), device=teacher_hidden.device)] = True
    return mask


def real_fraction(
    keep_mask: torch.Tensor, token_index: torch.Tensor, lengths: torch.Tensor, layers: int, hidden_states: int
) -> torch.Tensor:
    """Per example [B], the share of its real-token HSK a cell keeps: kept values on non-padding positions
    / (real tokens x (Ls + 1) x D). `keep_mask` broadcasts to [B, L, K, D] with L = `layers` distilled layers;
    `token_index` [B, K] or [B, L, K] are the kept positions, `lengths` [B] the real-token counts and
    `hidden_states` = Ls + 1."""
    batch, tokens = token_index.shape[0], token_index.shape[-1]
    real = token_index.to(lengths.device) < lengths.view(-1, *[1] * (token_index.ndim - 1))
    real = (real if real.ndim == 3 else real[:, None])[..., None]  # [B, 1 or L, K, 1]
    kept = (keep_mask.to(lengths.device) & real).expand(batch, layers, tokens, keep_mask.shape[-1])
    return kept.flatten(1).sum(1).float() / (lengths.float() * hidden_states * keep_mask.shape[-1])


# ----------------------------------------------------------------------------------------------- loss


def _expand_token_mask(token_mask: torch.Tensor, ndim: int) -> torch.Tensor:
    """Token mask reshaped to broadcast over [..., K, D]; a [B, K] mask spans any middle (layer) dims."""
    if token_mask.ndim == 2 and ndim > 3:
        token_mask = token_mask.view(token_mask.shape[0], *[1] * (ndim - 3), token_mask.shape[1])
    if token_mask.ndim != ndim - 1:
        raise ValueError(f"token_mask shape {tuple(token_mask.shape)} does not fit rank-{ndim} hidden states")
    return token_mask.bool().unsqueeze(-1)


def hsk_loss(
    student_hidden: torch.Tensor,
    teacher_target: torch.Tensor,
    keep_mask: torch.Tensor,
    mode: str,
    token_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scalar MSE between student hidden states and a compressed teacher target, both [..., K, D].

    ``paper``: mean of (s - t * keep)^2 over every value of the valid tokens. ``masked``: mean of
    (s - t)^2 over the kept values of the valid tokens. `token_mask` (bool [B, K] or broadcastable to
    the hidden states without D) marks valid tokens; None = all valid. Returns 0 (with grad) when
    nothing counts.
    """
    if mode not in LOSS_MODES:
        raise ValueError(f"unknown loss mode {mode!r} (expected one of {', '.join(LOSS_MODES)})")
    keep_mask = keep_mask.bool()
    # Masks that keep everything are skipped: the loss is then one fused MSE, the common full-HSK case.
    weight = None
    if not bool(keep_mask.all()):
        if mode == "paper":
            teacher_target = teacher_target * keep_mask  # every value of a valid token counts
        else:
            weight = keep_mask
    if token_mask is not None:
        tokens = _expand_token_mask(token_mask, student_hidden.ndim)
        if not bool(tokens.all()):
            weight = tokens if weight is None else weight & tokens
    if weight is None:
        return F.mse_loss(student_hidden, teacher_target)
    weighted = (student_hidden - teacher_target) ** 2 * weight
    # broadcasting repeats each weight entry numel(weighted) / numel(weight) times
    count = weight.sum() * (weighted.numel() // weight.numel())
    return weighted.sum() / count.clamp_min(1)


# ------------------------------------------------------------------------------------------ compress


def compress_batch(
    cell: Cell,
    hidden_states: Sequence[torch.Tensor] | torch.Tensor,
    cls_attention: torch.Tensor | None,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    sep_token_id: int,
    student_layers: int,
    width_seed: int = WIDTH_SEED,
    sep_rank: str = "above_padding",
    layer_attention: torch.Tensor | None = None,
    example_ids: torch.Tensor | None = None,
    ranking_layers: Sequence[int] | None = None,
) -> HSKBatch:
    """Compress one teacher forward pass for `cell` (any cell but depth=none).

    `hidden_states`: the teacher's Lt + 1 tensors [B, T, D] (or one stacked [Lt + 1, B, T, D]).
    Attention schemes rank tokens by `cls_attention` [B, T] for every distilled layer, or, given
    `layer_attention` [Lt, B, T] (every teacher layer's [CLS] row), each distilled layer by the attention of
    its entry of `ranking_layers` (teacher layers 1..Lt, `Cell.ranking_layers`; by default the layer that
    produced its teacher hidden state t, max(t, 1), as the paper's length sweeps do): the token index is
    then [B, L, K], one token set per distilled layer.
    Per-example seeded length schemes (``random``) need `example_ids` [B] (indices in the split), so an
    example gets the same tokens in any batch.
    Static width schemes draw their dims with `width_seed`, so every batch keeps the same dims;
    per-example masks (magnitude) rank only the values of real (non-padding) selected tokens;
    per-batch masks (``magnitude_batch``) keep every value here (drawn per training batch).
    """
    if cell.is_none:
        raise ValueError("depth=none has no HSK to compress")
    batch, length = input_ids.shape
    cell.validate(student_layers, len(hidden_states) - 1, length)
    student = cell.student_layers(student_layers)
    teacher = cell.teacher_layers(student_layers)
    def select(attention: torch.Tensor | None) -> torch.Tensor:
        return select_tokens(cell.length.scheme, cell.length.keep, input_ids, attention_mask, attention, sep_token_id,
                             sep_rank, example_ids)  # fmt: skip

    if cell.length.scheme is None:
        token_index = torch.arange(length, device=input_ids.device).expand(batch, length)
    elif layer_attention is not None and cell.length.needs_attention:
        ranking = ranking_layers or cell.ranking_layers(student_layers, len(hidden_states) - 1, "mapped_layer")
        token_index = torch.stack([select(layer_attention[layer - 1]) for layer in ranking], dim=1)
    else:
        token_index = select(cls_attention)
    layers = torch.stack([hidden_states[index] for index in teacher], dim=1)  # [B, L, T, D]
    hidden_size = layers.shape[-1]
    per_layer = token_index if token_index.ndim == 3 else token_index[:, None, :].expand(-1, len(teacher), -1)
    gathered = layers.gather(2, per_layer[..., None].expand(-1, -1, -1, hidden_size)).float()  # [B, L, K, D]
    width = cell.width
    if width.scheme is None:
        keep_mask = torch.ones(1, 1, 1, hidden_size, dtype=torch.bool, device=gathered.device)
    elif width.kind == "per_example":
        real = attention_mask.bool().gather(1, per_layer.flatten(1)).view(per_layer.shape)[..., None]
        keep_mask = width_mask(width.scheme, width.fraction, gathered * real)
    else:
        keep_mask = width_mask(width.scheme, width.fraction, gathered, width_seed).view(1, 1, 1, hidden_size)
    return HSKBatch(student, teacher, token_index, gathered * keep_mask, keep_mask)
