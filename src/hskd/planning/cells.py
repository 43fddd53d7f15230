"""The cell grammar: which teacher HSK a run distils along depth, length and width, and its path.

A *cell* is one hive-style path segment per dimension, "depth=…/length=…/width=…":

- depth (``depth=top<K>-<k>``, ``depth=all-top<K>``, ``depth=none``): student hidden state l = 0..Ls
  is mapped to teacher hidden state ``round(l * K / Ls)`` (`layer_map`) and only the top k student
  layers are distilled (`top_layers`); ``none`` is the prediction-only baseline (no HSK at all).
- length (``length=<scheme>-<k>``, ``length=all``): k tokens per example (`hskd.planning.strategies.LENGTH_STRATEGIES`).
- width (``width=<scheme>-<fraction>``, ``width=all``): a fraction of the hidden values
  (`hskd.planning.strategies.WIDTH_STRATEGIES`).

Pure Python, no torch: planning (config checks, the run grid, store sizes) imports only this. The tensor
math that applies a cell is `hskd.hsk.compression`."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hskd.planning.strategies import (
    LENGTH_STRATEGIES,
    WIDTH_SEED,
    WIDTH_STRATEGIES,
    LengthStrategy,
    WidthStrategy,
    kept_count,
    length_strategy,
    static_dims,
    width_strategy,
)

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
        fixed = length_strategy(self.scheme).fixed_keep
        if self.keep < 1:
            raise ValueError(f"tokens kept {self.keep} must be >= 1")
        if fixed is not None and self.keep != fixed:
            raise ValueError(f"scheme {self.scheme!r} keeps exactly {fixed} token(s), got {self.keep}")

    def __str__(self) -> str:
        return "length=all" if self.scheme is None else f"length={self.scheme}-{self.keep}"

    @property
    def strategy(self) -> LengthStrategy | None:
        """The registered strategy; None for all tokens."""
        return None if self.scheme is None else LENGTH_STRATEGIES[self.scheme]

    @property
    def needs_attention(self) -> bool:
        """True when tokens are ranked by the teacher's [CLS] attention."""
        return self.strategy is not None and self.strategy.needs_attention

    @property
    def per_example(self) -> bool:
        """True when the kept positions differ between examples."""
        return self.strategy is not None and self.strategy.per_example


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
        width_strategy(self.scheme)  # a known scheme
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction {self.fraction} outside (0, 1]")
        object.__setattr__(self, "fraction", float(self.fraction))  # so 1 prints as "1.0"

    def __str__(self) -> str:
        return "width=all" if self.scheme is None else f"width={self.scheme}-{self.fraction}"

    @property
    def kind(self) -> str:
        """``all`` for full width, else the strategy's kind (``static``, ``per_example``, ``per_batch``)."""
        return "all" if self.scheme is None else self.strategy.kind

    @property
    def strategy(self) -> WidthStrategy | None:
        """The registered strategy; None for full width."""
        return None if self.scheme is None else WIDTH_STRATEGIES[self.scheme]

    def kept_dims(self, hidden_size: int) -> list[int]:
        """The hidden dims a store of this width holds for every token (not for per-example masks): all of
        them for ``all`` and per-batch masks, else `static_dims` drawn with `WIDTH_SEED`."""
        if self.kind in ("all", "per_batch"):
            return list(range(hidden_size))
        return static_dims(self.scheme, self.fraction, hidden_size, WIDTH_SEED)


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

    def ranking_layers(self, student_layers: int, teacher_layers: int, token_ranking: str) -> list[int]:
        """Per distilled layer, the teacher layer (1..Lt) whose [CLS] attention ranks its tokens: the last
        (``last_layer``); the layer that produced its teacher hidden state (``mapped_layer``; the embeddings
        take layer 1's); or the layer that a uniform map over all Lt teacher layers gives its student layer
        (``uniform_layer``: the paper's `--att_ttop12`, whose code needs Lt divisible by Ls, where layer_map
        gives s * Lt / Ls)."""
        if token_ranking == "last_layer":
            return [teacher_layers] * len(self.student_layers(student_layers))
        if token_ranking == "mapped_layer":
            return [max(layer, 1) for layer in self.teacher_layers(student_layers)]
        if token_ranking == "uniform_layer":
            mapping = layer_map(student_layers, teacher_layers)
            return [max(mapping[layer], 1) for layer in self.student_layers(student_layers)]
        raise ValueError(f"token_ranking: {token_ranking!r} is not one of last_layer, mapped_layer, uniform_layer")

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

        With `hidden_size`, the width factor is the exact kept count (that of `kept_dims` / D, or
        round(f * K * D) / (K * D) for a per-example mask); without it, or for a per-batch mask (whose count
        depends on the batch), the nominal fraction f. Padding counts: see `hskd.hsk.compression.real_fraction` for the
        share of the real tokens' HSK.
        """
        if self.is_none:
            return 0.0
        tokens = self.num_tokens(max_seq_length)
        layer_part = len(self.student_layers(student_layers)) / (student_layers + 1)
        token_part = tokens / max_seq_length
        width = self.width
        if width.scheme is None:
            width_part = 1.0
        elif hidden_size is None or width.kind == "per_batch":
            width_part = width.fraction
        elif width.kind == "per_example":
            width_part = kept_count(width.fraction, tokens * hidden_size) / (tokens * hidden_size)
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
    scheme, dash, keep = value.partition("-")
    if not dash or not re.fullmatch(r"[0-9]+", keep):
        raise ValueError("expected <scheme>-<k> or all")
    return Length(scheme, int(keep))


def _parse_width(value: str) -> Width:
    if value == "all":
        return Width(None, None)
    scheme, dash, fraction = value.partition("-")  # the first dash: fractions such as 1e-05 hold one
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
