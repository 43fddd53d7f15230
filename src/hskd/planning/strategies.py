"""The length and width strategies of HSK compression, each registered once.

An entry holds everything the pipeline needs to know about a strategy: its name (the scheme of the cell
grammar, e.g. ``length=attention-4``), its description in docs/cells.md, what it needs from the teacher, whether its
picks differ per example, how a store holds it, and the function that picks. The cell grammar, the config
schema's enums and the table in docs/cells.md (both tested equal to these), the workflow's wildcard patterns,
extraction, online distillation and store sizing all read the registry: a new strategy is one entry.

Depth has one strategy, the top k student layers on a linear layer map (`hskd.planning.cells.layer_map`).

Importing this module loads no torch (planning reads the registry); the picking functions load it when
called."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

# Static width strategies draw from a generator with this seed: every run of a cell, and its store, see the
# same dims.
WIDTH_SEED = 0


# --------------------------------------------------------------------------------------------- length


@dataclass(frozen=True)
class TokenInputs:
    """What a length strategy may rank the tokens of a batch by (B examples padded to T positions)."""

    input_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor  # [B, T]
    cls_attention: torch.Tensor | None  # [B, T]: teacher attention from [CLS], mean over heads
    example_ids: torch.Tensor | None  # [B]: each example's index in its split


@dataclass(frozen=True)
class LengthStrategy:
    """Keeps the k best-scored tokens of each example; real tokens always rank before padding.

    `score` gives [B, T], higher kept first, ties to the lower position. `per_example`: positions differ
    between examples (a store records them). `sep_last`: [SEP] ranks after the other real tokens.
    `fixed_keep`: the only k the strategy allows."""

    name: str
    description: str
    score: Callable[[TokenInputs], torch.Tensor]
    needs_attention: bool = False
    needs_example_ids: bool = False
    per_example: bool = False
    sep_last: bool = False
    fixed_keep: int | None = None


def _leftmost(inputs: TokenInputs) -> torch.Tensor:
    import torch

    positions = torch.arange(inputs.input_ids.shape[1], device=inputs.input_ids.device)
    return (-positions).expand_as(inputs.input_ids)


def _cls_attention(inputs: TokenInputs) -> torch.Tensor:
    return inputs.cls_attention


def _seeded_uniform(inputs: TokenInputs) -> torch.Tensor:
    """One uniform draw per position from a CPU generator seeded with the example's id: the same picks for an
    example whichever batch, padding or device it comes in (offline, online, on resume), since the first n
    of torch.rand(m) are torch.rand(n) (tests/test_strategies.py). The id alone is the seed: torch keeps
    only a seed's low 32 bits, so no second seed can be packed above it."""
    import torch

    length = inputs.input_ids.shape[1]
    rows = [
        torch.rand(length, generator=torch.Generator().manual_seed(example))
        for example in inputs.example_ids.tolist()
    ]
    return torch.stack(rows).to(inputs.input_ids.device)


LENGTH_STRATEGIES: dict[str, LengthStrategy] = {
    strategy.name: strategy
    for strategy in (
        LengthStrategy("left", "the first k tokens", _leftmost),
        LengthStrategy(
            "attention", "top k by the teacher's [CLS] attention (last layer, mean over heads)", _cls_attention,
            needs_attention=True, per_example=True,
        ),  # fmt: skip
        LengthStrategy(
            "attention_nosep", "as `attention`, [SEP] only once the other real tokens run out", _cls_attention,
            needs_attention=True, per_example=True, sep_last=True,
        ),  # fmt: skip
        LengthStrategy("cls", "the [CLS] token only (k = 1)", _leftmost, fixed_keep=1),
        LengthStrategy(
            "random",
            "k real tokens drawn per example, seeded by its index in the split (the same in every run and store)",
            _seeded_uniform, needs_example_ids=True, per_example=True,
        ),  # fmt: skip
    )
}


def length_strategy(name: str) -> LengthStrategy:
    try:
        return LENGTH_STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown length scheme {name!r} (expected one of {', '.join(LENGTH_STRATEGIES)})") from None


# ---------------------------------------------------------------------------------------------- width


def kept_count(fraction: float, total: int) -> int:
    """How many of `total` values a width fraction keeps: round(fraction * total), at least 1."""
    if not 0 < fraction <= 1:
        raise ValueError(f"width fraction {fraction} outside (0, 1]")
    return max(1, round(fraction * total))


@dataclass(frozen=True)
class WidthStrategy:
    """Keeps a fraction of the hidden values. `kind` says where the kept set is fixed, and so how a store
    holds it: ``static`` - the same dims for every token (`dims`; a store holds only those dims);
    ``per_example`` - a mask per example and layer (`mask`; a store holds the kept values and a bitmask);
    ``per_batch`` - a mask per training batch, drawn at training time from the batch's full-width target
    (`batch_mask`; a store holds the full width)."""

    name: str
    description: str
    kind: Literal["static", "per_example", "per_batch"]
    dims: Callable[[float, int, int], list[int]] | None = None  # (fraction, hidden size, seed) -> sorted dims
    mask: Callable[[torch.Tensor, float], torch.Tensor] | None = None  # [..., K, D] -> bool, same shape
    # (target [B, L, K, D], fraction, valid tokens [B, K] / [B, L, K] or None) -> bool [B, L, K, D]
    batch_mask: Callable[[torch.Tensor, float, torch.Tensor | None], torch.Tensor] | None = None


def _uniform_dims(fraction: float, hidden_size: int, seed: int) -> list[int]:
    count = max(1, int(fraction * hidden_size))
    return sorted({dim for i in range(count) if (dim := round(i / fraction)) < hidden_size})


def _permutation_dims(fraction: float, hidden_size: int, seed: int) -> list[int]:
    perm = list(range(hidden_size))
    draws = _torch_cpu_generator(seed)
    for i in range(hidden_size - 1):  # torch.randperm's CPU shuffle
        j = i + draws.getrandbits(32) % (hidden_size - i)
        perm[i], perm[j] = perm[j], perm[i]
    return sorted(perm[: kept_count(fraction, hidden_size)])


def _bernoulli_dims(fraction: float, hidden_size: int, seed: int) -> list[int]:
    draws = _torch_cpu_generator(seed)
    # torch.rand's float32 draws are the low 24 bits of each 32-bit word / 2^24, and `draws > 1 - f`
    # compares in float32.
    uniform = [(draws.getrandbits(32) & 0xFFFFFF) * 2.0**-24 for _ in range(hidden_size)]
    threshold = struct.unpack("f", struct.pack("f", 1 - fraction))[0]
    kept = [dim for dim, value in enumerate(uniform) if value > threshold]
    return kept or [max(range(hidden_size), key=uniform.__getitem__)]  # first largest, as argmax


def _torch_cpu_generator(seed: int) -> random.Random:
    """A Random whose getrandbits(32) gives the words of ``torch.Generator().manual_seed(seed)``: both are
    MT19937, which torch seeds with the reference init_genrand (Python's own seed() does not)."""
    state = [seed & 0xFFFFFFFF]
    for index in range(1, 624):
        state.append((1812433253 * (state[-1] ^ (state[-1] >> 30)) + index) & 0xFFFFFFFF)
    generator = random.Random()
    generator.setstate((3, (*state, 624), None))
    return generator


def _largest_magnitudes(hidden: torch.Tensor, fraction: float) -> torch.Tensor:
    """The round(fraction * K * D) largest |values| of each [K, D] slice, ties to the lower flat index."""
    import torch

    flat = hidden.abs().flatten(-2)
    count = kept_count(fraction, flat.shape[-1])
    # Stable sort rather than topk so ties resolve identically offline and online.
    top = torch.sort(flat, dim=-1, descending=True, stable=True).indices[..., :count]
    return torch.zeros_like(flat, dtype=torch.bool).scatter_(-1, top, True).view(hidden.shape)


def batch_magnitude_mask(target: torch.Tensor, fraction: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """``magnitude_batch`` keep mask [B, L, K, D] of a batch's full-width target [B, L, K, D], as the paper's
    code: per layer, one threshold over the whole batch, the int(f * n)-th largest |value| of its n values,
    and every value at or above it kept (ties too). `valid` (bool [B, K]) limits the values ranked and n
    to those tokens (masked padding; [B, L, K] with a token set per layer); None ranks every position,
    padding included (the paper).
    """
    import torch

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


WIDTH_STRATEGIES: dict[str, WidthStrategy] = {
    strategy.name: strategy
    for strategy in (
        WidthStrategy(
            "random", "fixed dims: round(f·D) dims of a seeded permutation", "static", dims=_permutation_dims
        ),
        WidthStrategy(
            "bernoulli", "fixed dims: each kept with probability f (the paper code's random mask)", "static",
            dims=_bernoulli_dims,
        ),  # fmt: skip
        WidthStrategy(
            "uniform", "fixed dims: round(i/f) for i < int(f·D) (the paper code's)", "static", dims=_uniform_dims
        ),
        WidthStrategy(
            "magnitude", "per example and layer, the round(f·K·D) largest \\|values\\| of the real tokens",
            "per_example", mask=_largest_magnitudes,
        ),  # fmt: skip
        WidthStrategy(
            "magnitude_batch",
            "the paper code's: per layer, one threshold over the whole training batch, int(f·n) values, ties "
            "kept; drawn per batch at training time, so its store holds the full width",
            "per_batch", batch_mask=batch_magnitude_mask,
        ),
    )
}


def width_strategy(name: str) -> WidthStrategy:
    try:
        return WIDTH_STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown width scheme {name!r} (expected one of {', '.join(WIDTH_STRATEGIES)})") from None


def static_dims(scheme: str, fraction: float, hidden_size: int, seed: int = WIDTH_SEED) -> list[int]:
    """Sorted hidden dims a static width scheme keeps, the one draw extraction, online distillation and
    store sizing share. ``random``: the first round(f * D) dims of a permutation; ``bernoulli`` (the paper
    code's random mask): each dim whose uniform draw exceeds 1 - f, so the count varies (the largest
    draw if none does); ``uniform`` (the paper code's): dims round(i / f) for i < int(f * D), those below D.

    Plain Python so that planning needs no torch, drawing the very numbers of torch.randperm / torch.rand
    with ``torch.Generator().manual_seed(seed)`` (tests/test_compression.py checks it against torch), so
    dims are those earlier hskd versions drew with torch.
    """
    kept_count(fraction, hidden_size)  # range check
    strategy = WIDTH_STRATEGIES.get(scheme)
    if strategy is None or strategy.dims is None:
        static = ", ".join(name for name, entry in WIDTH_STRATEGIES.items() if entry.dims is not None)
        raise ValueError(f"unknown static width scheme {scheme!r} (expected one of {static})")
    return strategy.dims(fraction, hidden_size, seed)
