"""HSK compression along depth, length and width: pure tensor functions, no I/O.

HSK (hidden-state knowledge) is the teacher's hidden states of every layer (index 0 = embeddings
output, 1..Lt = layers), every token and every hidden dimension. A *cell* compresses it along three
dimensions, one hive-style path segment each:

- depth (``depth=top<K>-<k>``, ``depth=all-top<K>``, ``depth=none``): student hidden state l = 0..Ls
  is mapped to teacher hidden state ``round(l * K / Ls)`` (`layer_map`) and only the top k student
  layers are distilled (`top_layers`); ``none`` is the prediction-only baseline (no HSK at all).
- length (``length=<scheme>-<k>``, ``length=all``): k tokens per example chosen by `select_tokens`
  (``left``, ``attention``, ``attention_nosep``, ``cls``).
- width (``width=<scheme>-<fraction>``, ``width=all``): a fraction of the hidden values kept by
  `width_mask` (``random``, ``bernoulli`` and ``uniform`` keep the same dims everywhere; ``magnitude``
  keeps the largest |values| of each example and layer; ``magnitude_batch``, the paper code's, keeps
  those of each layer over a whole training batch, so it is applied at training time by
  `batch_magnitude_mask`).

`compress_batch` applies a cell to a teacher forward pass and is shared by offline extraction and
online distillation. `hsk_loss` has two modes: ``paper`` is the MSE over the full vectors of the
selected tokens against a target that is zero where a value was dropped (as in Liu et al. 2021);
``masked`` is the MSE over the kept values only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LENGTH_SCHEMES = ("left", "attention", "attention_nosep", "cls")
WIDTH_SCHEMES = ("random", "bernoulli", "uniform", "magnitude", "magnitude_batch")
STATIC_WIDTH_SCHEMES = ("random", "bernoulli", "uniform")
BATCH_WIDTH_SCHEMES = ("magnitude_batch",)  # depend on the training batch: stored at full width
# Static width schemes draw their dims from a generator with this seed: every run of a cell, and its store,
# sees the same dims.
WIDTH_SEED = 0
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


# ---------------------------------------------------------------------------------------------- depth


def layer_map(student_layers: int, teacher_top: int) -> list[int]:
    """Teacher hidden-state index for each student hidden state 0..Ls: round(l * K / Ls), half to even."""
    if student_layers < 1 or teacher_top < 1:
        raise ValueError(f"need student_layers, teacher_top >= 1, got {student_layers}, {teacher_top}")
    return [round(layer * teacher_top / student_layers) for layer in range(student_layers + 1)]


def top_layers(student_layers: int, keep: int) -> list[int]:
    """The top `keep` student hidden-state indices, embeddings (0) counting as the lowest layer."""
    if not 1 <= keep <= student_layers + 1:
        raise ValueError(f"keep={keep} outside 1..{student_layers + 1} (student layers + embeddings)")
    return list(range(student_layers - keep + 1, student_layers + 1))


# --------------------------------------------------------------------------------------------- length


def select_tokens(
    scheme: str,
    keep: int,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    cls_attention: torch.Tensor | None,
    sep_token_id: int,
    sep_below_padding: bool = False,
) -> torch.Tensor:
    """Positions [B, keep] of the tokens kept by `scheme`, sorted ascending.

    Padding is chosen only once real tokens run out (and [SEP], for ``attention_nosep``, only once the
    other real tokens do, or with `sep_below_padding` only once padding does too); ties go to the lower
    position. `cls_attention` [B, T] (teacher attention from [CLS] to each position, averaged over heads)
    is needed only by the attention schemes.
    """
    batch, length = input_ids.shape
    if scheme not in LENGTH_SCHEMES:
        raise ValueError(f"unknown length scheme {scheme!r} (expected one of {', '.join(LENGTH_SCHEMES)})")
    if not 1 <= keep <= length:
        raise ValueError(f"keep={keep} outside 1..{length} (sequence length)")
    if scheme == "cls":
        if keep != 1:
            raise ValueError(f"length scheme 'cls' keeps exactly 1 token, got keep={keep}")
        return torch.zeros(batch, 1, dtype=torch.long, device=input_ids.device)
    positions = torch.arange(length, device=input_ids.device)
    if scheme == "left":
        score = (-positions).expand(batch, length)
    elif cls_attention is None:
        raise ValueError(f"length scheme {scheme!r} needs cls_attention")
    else:
        score = cls_attention
    real = attention_mask.bool()
    tier = (~real).long() * 2
    if scheme == "attention_nosep":
        tier = tier + (real & (input_ids == sep_token_id)).long() * (3 if sep_below_padding else 1)
    # Lexicographic (tier, -score, position) via two stable sorts: exact ties and deterministic on any
    # device, unlike topk or an epsilon tie-break.
    by_score = torch.sort(score, dim=-1, descending=True, stable=True).indices
    by_tier = torch.sort(tier.gather(-1, by_score), dim=-1, stable=True).indices
    return by_score.gather(-1, by_tier)[:, :keep].sort(dim=-1).values


# ---------------------------------------------------------------------------------------------- width


def _kept_count(fraction: float, total: int) -> int:
    """How many of `total` values a width fraction keeps: round(fraction * total), at least 1."""
    if not 0 < fraction <= 1:
        raise ValueError(f"width fraction {fraction} outside (0, 1]")
    return max(1, round(fraction * total))


def width_index(
    scheme: str, fraction: float, hidden_size: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Sorted LongTensor of the hidden dims kept by a static scheme.

    ``random``: round(f * D) dims, the first of a permutation drawn from `generator` (pass a freshly
    seeded one for a reproducible subset). ``bernoulli`` (the paper code's random mask): each dim kept
    when a uniform draw from `generator` exceeds 1 - f, so the count varies (the largest draw is kept if
    none is). ``uniform`` (the paper code's): dims round(i / f) for i < int(f * D), those below D.
    """
    _kept_count(fraction, hidden_size)  # range check
    if scheme == "uniform":
        count = max(1, int(fraction * hidden_size))
        return torch.tensor(sorted({d for i in range(count) if (d := round(i / fraction)) < hidden_size}))
    if scheme == "random":
        count = _kept_count(fraction, hidden_size)
        return torch.randperm(hidden_size, generator=generator)[:count].sort().values
    if scheme == "bernoulli":
        draws = torch.rand(hidden_size, generator=generator)
        kept = (draws > 1 - fraction).nonzero().flatten()
        return kept if kept.numel() else draws.argmax().view(1)
    expected = ", ".join(STATIC_WIDTH_SCHEMES)
    raise ValueError(f"unknown static width scheme {scheme!r} (expected one of {expected})")


def width_mask(
    scheme: str, fraction: float, teacher_hidden: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """BoolTensor of kept values, broadcastable to `teacher_hidden` [..., T, D].

    ``random`` / ``uniform``: shape [D], from `width_index`. ``magnitude``: same shape as
    `teacher_hidden`, keeping the round(fraction * T * D) largest |values| of each [T, D] slice (ties
    to the lower flat index).
    """
    if scheme in STATIC_WIDTH_SCHEMES:
        hidden_size = teacher_hidden.shape[-1]
        mask = torch.zeros(hidden_size, dtype=torch.bool, device=teacher_hidden.device)
        mask[width_index(scheme, fraction, hidden_size, generator).to(teacher_hidden.device)] = True
        return mask
    if scheme in BATCH_WIDTH_SCHEMES:
        return torch.ones(teacher_hidden.shape[-1], dtype=torch.bool, device=teacher_hidden.device)
    if scheme == "magnitude":
        flat = teacher_hidden.abs().flatten(-2)
        count = _kept_count(fraction, flat.shape[-1])
        # Stable sort rather than topk so ties resolve identically offline and online.
        top = torch.sort(flat, dim=-1, descending=True, stable=True).indices[..., :count]
        return torch.zeros_like(flat, dtype=torch.bool).scatter_(-1, top, True).view(teacher_hidden.shape)
    raise ValueError(f"unknown width scheme {scheme!r} (expected one of {', '.join(WIDTH_SCHEMES)})")


def batch_magnitude_mask(target: torch.Tensor, fraction: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """``magnitude_batch`` keep mask [B, L, K, D] of a batch's full-width target [B, L, K, D], as the paper's
    code: per layer, one threshold over the whole batch, the int(f * n)-th largest |value| of its n values,
    and every value at or above it kept (ties too). `valid` (bool [B, K]) limits the values ranked and n
    to those tokens (masked padding; [B, L, K] with a token set per layer); None ranks every position,
    padding included (the paper).
    """
    magnitude = target.abs()
    if valid is not None:
        valid = (valid[:, None, :] if valid.ndim == 2 else valid).expand(-1, target.shape[1], -1)[..., None]
        magnitude = magnitude * valid
    keep = torch.zeros_like(magnitude, dtype=torch.bool)
    for layer in range(target.shape[1]):
        values = magnitude[:, layer]
        ranked = values.numel() if valid is None else int(valid[:, layer].sum()) * target.shape[-1]
        threshold = values.flatten().topk(max(1, int(fraction * ranked))).values[-1]
        keep[:, layer] = values >= threshold
    return keep if valid is None else keep & valid


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


# ---------------------------------------------------------------------------------------------- cells


@dataclass(frozen=True)
class Depth:
    """Which layers are distilled: student layers map onto teacher 0..map_top; keep=None = all layers.

    map_top=None is the prediction-only baseline (no HSK).
    """

    map_top: int | None
    keep: int | None

    def __post_init__(self) -> None:
        if self.map_top is None:
            if self.keep is not None:
                raise ValueError("depth none cannot keep layers")
        elif self.map_top < 1:
            raise ValueError(f"teacher top layer {self.map_top} must be >= 1")
        if self.keep is not None and self.keep < 1:
            raise ValueError(f"layers kept {self.keep} must be >= 1")

    def __str__(self) -> str:
        if self.map_top is None:
            return "depth=none"
        if self.keep is None:
            return f"depth=all-top{self.map_top}"
        return f"depth=top{self.map_top}-{self.keep}"


@dataclass(frozen=True)
class Length:
    """Which tokens are distilled: `keep` tokens chosen by `scheme`; both None = all tokens."""

    scheme: str | None
    keep: int | None

    def __post_init__(self) -> None:
        if (self.scheme is None) != (self.keep is None):
            raise ValueError("scheme and keep must both be set or both be None (all tokens)")
        if self.scheme is None:
            return
        if self.scheme not in LENGTH_SCHEMES:
            raise ValueError(f"unknown scheme {self.scheme!r} (expected one of {', '.join(LENGTH_SCHEMES)})")
        if self.keep < 1:
            raise ValueError(f"tokens kept {self.keep} must be >= 1")
        if self.scheme == "cls" and self.keep != 1:
            raise ValueError(f"scheme 'cls' keeps exactly 1 token, got {self.keep}")

    def __str__(self) -> str:
        return "length=all" if self.scheme is None else f"length={self.scheme}-{self.keep}"

    @property
    def needs_attention(self) -> bool:
        """True when tokens are ranked by the teacher's [CLS] attention."""
        return self.scheme in ("attention", "attention_nosep")


@dataclass(frozen=True)
class Width:
    """Which hidden values are distilled: `fraction` of them chosen by `scheme`; both None = all."""

    scheme: str | None
    fraction: float | None

    def __post_init__(self) -> None:
        if (self.scheme is None) != (self.fraction is None):
            raise ValueError("scheme and fraction must both be set or both be None (full width)")
        if self.scheme is None:
            return
        if self.scheme not in WIDTH_SCHEMES:
            raise ValueError(f"unknown scheme {self.scheme!r} (expected one of {', '.join(WIDTH_SCHEMES)})")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction {self.fraction} outside (0, 1]")
        object.__setattr__(self, "fraction", float(self.fraction))  # so 1 prints as "1.0"

    def __str__(self) -> str:
        return "width=all" if self.scheme is None else f"width={self.scheme}-{self.fraction}"

    def kept_dims(self, hidden_size: int) -> torch.Tensor:
        """The hidden dims a store of this width holds for every token (not for ``magnitude``): all of them
        for ``all`` and ``magnitude_batch``, else `width_index` drawn with `WIDTH_SEED`."""
        if self.scheme is None or self.scheme in BATCH_WIDTH_SCHEMES:
            return torch.arange(hidden_size)
        generator = torch.Generator().manual_seed(WIDTH_SEED)
        return width_index(self.scheme, self.fraction, hidden_size, generator)


@dataclass(frozen=True)
class Cell:
    """One compression setting: depth, length and width; str() is its path "depth=…/length=…/width=…"."""

    depth: Depth
    length: Length
    width: Width

    def __post_init__(self) -> None:
        if self.is_none and (self.length.scheme is not None or self.width.scheme is not None):
            raise ValueError("depth=none requires length=all and width=all (prediction-only baseline)")

    def __str__(self) -> str:
        return "/".join(self.segments())

    def segments(self) -> tuple[str, str, str]:
        """The three path segments ("depth=…", "length=…", "width=…")."""
        return str(self.depth), str(self.length), str(self.width)

    @property
    def is_none(self) -> bool:
        """True for the prediction-only baseline (depth=none)."""
        return self.depth.map_top is None

    @property
    def is_full(self) -> bool:
        """True when every layer, token and value is distilled (all/all/all)."""
        return (
            not self.is_none
            and self.depth.keep is None
            and self.length.scheme is None
            and self.width.scheme is None
        )

    def student_layers(self, student_layers: int) -> list[int]:
        """Distilled student hidden-state indices (0 = embeddings); empty for depth=none."""
        if self.is_none:
            return []
        if self.depth.keep is None:
            return list(range(student_layers + 1))
        return top_layers(student_layers, self.depth.keep)

    def teacher_layers(self, student_layers: int) -> list[int]:
        """Teacher hidden-state indices matching `student_layers`, via layer_map(Ls, K)."""
        if self.is_none:
            return []
        mapping = layer_map(student_layers, self.depth.map_top)
        return [mapping[layer] for layer in self.student_layers(student_layers)]

    def num_tokens(self, max_seq_length: int) -> int:
        """Tokens kept per example: k, or max_seq_length for length=all."""
        return max_seq_length if self.length.keep is None else self.length.keep

    def validate(self, student_layers: int, teacher_layers: int, max_seq_length: int) -> None:
        """Raise ValueError naming the part of the cell that does not fit these model sizes."""
        depth, length = self.depth, self.length
        if depth.keep is not None and depth.keep > student_layers + 1:
            raise ValueError(
                f"{depth}: keeps {depth.keep} layers but the student has only {student_layers + 1} "
                "hidden states (layers + embeddings)"
            )
        if depth.map_top is not None and depth.map_top > teacher_layers:
            raise ValueError(f"{depth}: maps onto teacher layer {depth.map_top} of {teacher_layers}")
        if length.keep is not None and length.keep > max_seq_length:
            raise ValueError(f"{length}: keeps {length.keep} tokens but max_seq_length is {max_seq_length}")

    def hsk_fraction(self, student_layers: int, max_seq_length: int, hidden_size: int | None = None) -> float:
        """Kept HSK values / full HSK values, full = (Ls + 1) x max_seq_length x D.

        With `hidden_size`, the width factor is the exact kept count (that of `width_index` / D, or
        round(f * K * D) / (K * D) for magnitude); without it, or for magnitude_batch (whose count depends
        on the batch), the nominal fraction f. Padding counts: see `real_fraction` for the share of the
        real tokens' HSK.
        """
        if self.is_none:
            return 0.0
        tokens = self.num_tokens(max_seq_length)
        layer_part = len(self.student_layers(student_layers)) / (student_layers + 1)
        token_part = tokens / max_seq_length
        width = self.width
        if width.scheme is None:
            width_part = 1.0
        elif hidden_size is None or width.scheme in BATCH_WIDTH_SCHEMES:
            width_part = width.fraction
        elif width.scheme == "magnitude":
            width_part = _kept_count(width.fraction, tokens * hidden_size) / (tokens * hidden_size)
        else:
            width_part = len(width.kept_dims(hidden_size)) / hidden_size
        return layer_part * token_part * width_part

    def paper_name(self) -> str:
        """Short label "<layers>l_<tokens>t_<fraction>h" ('all' where uncompressed), or "none"."""
        if self.is_none:
            return "none"
        parts = (self.depth.keep, self.length.keep, self.width.fraction)
        layers, tokens, fraction = ("all" if part is None else part for part in parts)
        return f"{layers}l_{tokens}t_{fraction}h"


def _parse_depth(value: str) -> Depth:
    if value == "none":
        return Depth(None, None)
    if match := re.fullmatch(r"all-top([0-9]+)", value):
        return Depth(int(match[1]), None)
    if match := re.fullmatch(r"top([0-9]+)-([0-9]+)", value):
        return Depth(int(match[1]), int(match[2]))
    raise ValueError("expected top<K>-<k>, all-top<K> or none")


def _parse_length(value: str) -> Length:
    if value == "all":
        return Length(None, None)
    scheme, dash, keep = value.rpartition("-")
    if not dash or not re.fullmatch(r"[0-9]+", keep):
        raise ValueError("expected <scheme>-<k> or all")
    return Length(scheme, int(keep))


def _parse_width(value: str) -> Width:
    if value == "all":
        return Width(None, None)
    scheme, dash, fraction = value.rpartition("-")
    if not dash:
        raise ValueError("expected <scheme>-<fraction> or all")
    try:
        number = float(fraction)
    except ValueError:
        raise ValueError(f"fraction {fraction!r} is not a number") from None
    return Width(scheme, number)


_SEGMENT_PARSERS: tuple[tuple[str, Callable[[str], Depth | Length | Width]], ...] = (
    ("depth", _parse_depth),
    ("length", _parse_length),
    ("width", _parse_width),
)


def parse_cell(text: str) -> Cell:
    """Parse "depth=…/length=…/width=…"; only the canonical spelling (the one str() gives) is accepted.

    Raises ValueError naming the segment that is wrong.
    """
    segments = text.split("/")
    if len(segments) != len(_SEGMENT_PARSERS):
        raise ValueError(f"cell {text!r}: expected 3 segments depth=…/length=…/width=…, got {len(segments)}")
    parts = []
    for (key, parser), segment in zip(_SEGMENT_PARSERS, segments, strict=True):
        name, equals, value = segment.partition("=")
        if name != key or not equals:
            raise ValueError(f"cell {text!r}: segment {segment!r} should start with '{key}='")
        try:
            part = parser(value)
        except ValueError as error:
            raise ValueError(f"{key} segment {segment!r}: {error}") from None
        # One spelling per cell, so a cell always maps to one output path.
        if str(part) != segment:
            raise ValueError(f"{key} segment {segment!r}: not canonical, write {str(part)!r}")
        parts.append(part)
    try:
        return Cell(*parts)
    except ValueError as error:
        raise ValueError(f"cell {text!r}: {error}") from None


def expand_joint(name: str, schemes: Mapping[str, str]) -> Cell:
    """Cell for a joint name "<layers>l_<tokens>t_<fraction>h" ('all' allowed in each part).

    `schemes` gives the depth mapping ("top<K>"), the length scheme and the width scheme, e.g.
    expand_joint("1l_10t_0.1h", {"depth": "top8", "length": "attention_nosep", "width": "magnitude"})
    is depth=top8-1/length=attention_nosep-10/width=magnitude-0.1.
    """
    match = re.fullmatch(r"([0-9]+|all)l_([0-9]+|all)t_([0-9.eE+-]+|all)h", name)
    if match is None:
        raise ValueError(f"joint name {name!r}: expected <layers>l_<tokens>t_<fraction>h, e.g. 1l_10t_0.1h")
    layers, tokens, fraction = match.groups()
    try:
        top = schemes["depth"]
        depth = f"depth=all-{top}" if layers == "all" else f"depth={top}-{layers}"
        length = "length=all" if tokens == "all" else f"length={schemes['length']}-{tokens}"
        width = "width=all" if fraction == "all" else f"width={schemes['width']}-{float(fraction)}"
        return parse_cell(f"{depth}/{length}/{width}")
    except (KeyError, ValueError) as error:
        raise ValueError(f"joint name {name!r}: {error}") from None


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
    sep_below_padding: bool = False,
    layer_attention: torch.Tensor | None = None,
) -> HSKBatch:
    """Compress one teacher forward pass for `cell` (any cell but depth=none).

    `hidden_states`: the teacher's Lt + 1 tensors [B, T, D] (or one stacked [Lt + 1, B, T, D]).
    Attention schemes rank tokens by `cls_attention` [B, T] for every distilled layer, or, given
    `layer_attention` [Lt, B, T] (every teacher layer's [CLS] row), each distilled teacher hidden state t by
    the attention of the layer that produced it (layer max(t, 1), as the paper's length sweeps do): the
    token index is then [B, L, K], one token set per distilled layer.
    Static width schemes draw their dims from a generator seeded with `width_seed`, so every batch
    keeps the same dims; magnitude ranks only the values of real (non-padding) selected tokens;
    ``magnitude_batch`` keeps every value here (its mask is drawn per training batch).
    """
    if cell.is_none:
        raise ValueError("depth=none has no HSK to compress")
    batch, length = input_ids.shape
    cell.validate(student_layers, len(hidden_states) - 1, length)
    student = cell.student_layers(student_layers)
    teacher = cell.teacher_layers(student_layers)
    def select(attention: torch.Tensor | None) -> torch.Tensor:
        return select_tokens(cell.length.scheme, cell.length.keep, input_ids, attention_mask, attention, sep_token_id,
                             sep_below_padding)  # fmt: skip

    if cell.length.scheme is None:
        token_index = torch.arange(length, device=input_ids.device).expand(batch, length)
    elif layer_attention is not None and cell.length.needs_attention:
        token_index = torch.stack([select(layer_attention[max(index, 1) - 1]) for index in teacher], dim=1)
    else:
        token_index = select(cls_attention)
    layers = torch.stack([hidden_states[index] for index in teacher], dim=1)  # [B, L, T, D]
    hidden_size = layers.shape[-1]
    per_layer = token_index if token_index.ndim == 3 else token_index[:, None, :].expand(-1, len(teacher), -1)
    gathered = layers.gather(2, per_layer[..., None].expand(-1, -1, -1, hidden_size)).float()  # [B, L, K, D]
    width = cell.width
    if width.scheme is None:
        keep_mask = torch.ones(1, 1, 1, hidden_size, dtype=torch.bool, device=gathered.device)
    elif width.scheme == "magnitude":
        real = attention_mask.bool().gather(1, per_layer.flatten(1)).view(per_layer.shape)[..., None]
        keep_mask = width_mask(width.scheme, width.fraction, gathered * real)
    else:
        generator = torch.Generator().manual_seed(width_seed)
        keep_mask = width_mask(width.scheme, width.fraction, gathered, generator).view(1, 1, 1, hidden_size)
    return HSKBatch(student, teacher, token_index, gathered * keep_mask, keep_mask)
