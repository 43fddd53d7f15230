import re

import pytest
import torch

from hskd.hsk.compression import compress_batch, hsk_loss, select_tokens, width_mask
from hskd.planning.cells import Cell, Depth, Length, Width, expand_joint, layer_map, parse_cell, static_dims, top_layers
from hskd.planning.strategies import WIDTH_SEED, WIDTH_STRATEGIES

STATIC_WIDTH_SCHEMES = [name for name, strategy in WIDTH_STRATEGIES.items() if strategy.kind == "static"]

SEP = 102

# --------------------------------------------------------------------------------------------- depth


@pytest.mark.parametrize(
    ("student", "top", "expected"),
    [(4, 10, [0, 2, 5, 8, 10]), (6, 8, [0, 1, 3, 4, 5, 7, 8]), (6, 12, [0, 2, 4, 6, 8, 10, 12])],
)
def test_layer_map(student, top, expected):
    assert layer_map(student, top) == expected


def test_top_layers():
    assert top_layers(6, 1) == [6]
    assert top_layers(6, 3) == [4, 5, 6]
    assert top_layers(6, 7) == [0, 1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("keep", [0, 8])
def test_top_layers_bounds(keep):
    with pytest.raises(ValueError, match="outside 1..7"):
        top_layers(6, keep)


# -------------------------------------------------------------------------------------------- length

# Row 0: 4 real tokens + [SEP] + 1 padding; row 1: [CLS] x [SEP] + 3 padding.
IDS = torch.tensor([[101, 5, 6, 7, SEP, 0], [101, 8, SEP, 0, 0, 0]])
MASK = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]])
ATTN = torch.tensor([[0.1, 0.3, 0.1, 0.2, 0.5, 0.9], [0.2, 0.2, 0.6, 0.9, 0.9, 0.1]])


@pytest.mark.parametrize(
    ("scheme", "keep", "expected"),
    [
        ("attention", 3, [[1, 3, 4], [0, 1, 2]]),  # padding at 0.9 never beats real tokens
        ("attention", 4, [[0, 1, 3, 4], [0, 1, 2, 3]]),  # 0.1 tie -> pos 0; 0.9 padding tie -> pos 3
        ("attention_nosep", 3, [[0, 1, 3], [0, 1, 2]]),  # [SEP] skipped while others remain
        ("attention_nosep", 1, [[1], [0]]),  # row 1: 0.2 tie between pos 0 and 1 -> pos 0
        ("attention_nosep", 5, [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]),  # [SEP] before padding
        ("left", 2, [[0, 1], [0, 1]]),
        ("left", 5, [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]),
        ("cls", 1, [[0], [0]]),
    ],
)
def test_select_tokens(scheme, keep, expected):
    got = select_tokens(scheme, keep, IDS, MASK, ATTN, SEP)
    assert got.dtype == torch.long
    assert got.tolist() == expected


def test_select_tokens_left_skips_left_padding():
    ids = torch.tensor([[0, 0, 101, 5, 6, SEP]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1]])
    assert select_tokens("left", 3, ids, mask, None, SEP).tolist() == [[2, 3, 4]]


@pytest.mark.parametrize(
    ("scheme", "keep", "attn", "message"),
    [
        ("cls", 2, ATTN, "exactly 1 token"),
        ("left", 7, ATTN, "outside 1..6"),
        ("left", 0, ATTN, "outside 1..6"),
        ("attention", 2, None, "needs cls_attention"),
        ("right", 2, ATTN, "unknown length scheme 'right'"),
    ],
)
def test_select_tokens_errors(scheme, keep, attn, message):
    with pytest.raises(ValueError, match=message):
        select_tokens(scheme, keep, IDS, MASK, attn, SEP)


# --------------------------------------------------------------------------------------------- width


@pytest.mark.parametrize(
    ("scheme", "fraction", "count"),
    # random: round(f * D) (half to even); uniform, as the paper's code: int(f * D), at least 1
    [("random", 0.25, 2), ("random", 0.35, 4), ("random", 0.01, 1), ("random", 1.0, 10),
     ("uniform", 0.25, 2), ("uniform", 0.35, 3), ("uniform", 0.01, 1), ("uniform", 1.0, 10)],
)  # fmt: skip
def test_static_width_kept_counts(scheme, fraction, count):
    mask = width_mask(scheme, fraction, torch.zeros(3, 4, 10), seed=0)
    assert mask.shape == (10,)
    assert mask.dtype == torch.bool
    assert int(mask.sum()) == count


# round(i / f) for i < int(f * D): 0.3 -> 0, 3.33, 6.67; 0.4 -> 0, 2.5 (half to even: 2), 5, 7.5 (8);
# 0.1 of 384 -> int(38.4) = 38 dims 0, 10, ..., 370
@pytest.mark.parametrize(
    ("size", "fraction", "expected"),
    [(10, 0.3, [0, 3, 7]), (10, 0.4, [0, 2, 5, 8]), (384, 0.1, list(range(0, 380, 10)))],
)
def test_uniform_index(size, fraction, expected):
    assert static_dims("uniform", fraction, size) == expected


def test_random_index_is_reproducible_with_a_fresh_seed():
    first = static_dims("random", 0.5, 16, seed=3)
    # the specification: the first 8 dims of a permutation drawn from the generator, sorted
    expected = torch.randperm(16, generator=torch.Generator().manual_seed(3))[:8].sort().values
    assert first == expected.tolist()
    assert first != static_dims("random", 0.5, 16, seed=4)


@pytest.mark.parametrize("seed", [WIDTH_SEED, 3])
@pytest.mark.parametrize("scheme", STATIC_WIDTH_SCHEMES)
def test_static_dims_are_torchs_draws(scheme, seed):
    # hskd.planning.cells draws without torch (planning sizes stores); the draws must be torch's own, as before
    for size in [*range(1, 130), 256, 312, 384, 768, 1024, 4096]:
        for fraction in (0.001, 0.01, 0.05, 0.1, 0.2, 1 / 3, 0.5, 0.9, 1.0):
            expected = _torch_static_dims(scheme, fraction, size, seed)
            assert static_dims(scheme, fraction, size, seed) == expected, (size, fraction)


def _torch_static_dims(scheme: str, fraction: float, size: int, seed: int) -> list[int]:
    """The static dims as torch draws them: the reference `static_dims` must reproduce."""
    generator = torch.Generator().manual_seed(seed)
    if scheme == "random":
        return torch.randperm(size, generator=generator)[: max(1, round(fraction * size))].sort().values.tolist()
    if scheme == "bernoulli":
        draws = torch.rand(size, generator=generator)
        kept = (draws > 1 - fraction).nonzero().flatten()
        return (kept if kept.numel() else draws.argmax().view(1)).tolist()
    return static_dims(scheme, fraction, size, seed)  # uniform draws nothing


def test_bernoulli_static_dims_compare_in_float32_as_torch():
    draws = torch.rand(768, generator=torch.Generator().manual_seed(WIDTH_SEED)).tolist()
    for dim, value in [(dim, value) for dim, value in enumerate(draws) if value > 0.5][:20]:
        fraction = 1 - value + 2**-30  # 1 - f is just below the draw in float64 but equal to it in float32
        expected = _torch_static_dims("bernoulli", fraction, 768, WIDTH_SEED)
        assert dim not in expected
        assert static_dims("bernoulli", fraction, 768) == expected
        assert Width("bernoulli", fraction).kept_dims(768) == expected


def test_magnitude_keeps_largest_abs_per_slice():
    hidden = torch.tensor([[[1.0, -5.0], [3.0, 0.5]], [[-2.0, 2.0], [0.1, -0.2]]])  # 2 slices [T=2, D=2]
    half = width_mask("magnitude", 0.5, hidden)
    assert half.tolist() == [[[False, True], [True, False]], [[True, True], [False, False]]]
    quarter = width_mask("magnitude", 0.25, hidden)  # 1 per slice; |2| tie -> lower flat index
    assert quarter.tolist() == [[[False, True], [False, False]], [[True, False], [False, False]]]


def test_magnitude_counts_per_example_and_layer():
    hidden = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    mask = width_mask("magnitude", 0.1, hidden)
    assert mask.shape == hidden.shape
    assert mask.sum(dim=(-2, -1)).tolist() == [[2, 2, 2], [2, 2, 2]]


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5, float("nan")])
def test_width_fraction_bounds(fraction):
    with pytest.raises(ValueError, match="outside"):
        width_mask("uniform", fraction, torch.zeros(2, 4))


def test_width_unknown_schemes():
    with pytest.raises(ValueError, match="unknown static width scheme 'magnitude'"):
        static_dims("magnitude", 0.5, 4)
    with pytest.raises(ValueError, match="unknown width scheme 'top'"):
        width_mask("top", 0.5, torch.zeros(2, 4))


# ---------------------------------------------------------------------------------------------- loss

STUDENT = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # [B=1, K=2, D=2]
TARGET = torch.tensor([[[0.0, 2.0], [1.0, 1.0]]])
KEEP = torch.tensor([True, False])


@pytest.mark.parametrize(
    ("mode", "token_mask", "expected"),
    [
        ("paper", None, (1 + 4 + 4 + 16) / 4),  # target becomes [[0, 0], [1, 0]]
        ("masked", None, (1 + 4) / 2),  # dim 0 only
        ("paper", torch.tensor([[True, False]]), (1 + 4) / 2),
        ("masked", torch.tensor([[True, False]]), 1 / 1),
    ],
)
def test_hsk_loss(mode, token_mask, expected):
    loss = hsk_loss(STUDENT, TARGET, KEEP, mode, token_mask)
    assert loss.item() == pytest.approx(expected)


@pytest.mark.parametrize(("mode", "expected"), [("paper", 2.5), ("masked", 1.0)])
def test_hsk_loss_token_mask_spans_layers(mode, expected):
    # Two identical layers [B=1, L=2, K=2, D=2]: the mean equals the single-layer value.
    student = STUDENT[:, None].expand(1, 2, 2, 2)
    target = TARGET[:, None].expand(1, 2, 2, 2)
    loss = hsk_loss(student, target, KEEP, mode, torch.tensor([[True, False]]))
    assert loss.item() == pytest.approx(expected)


@pytest.mark.parametrize("mode", ["paper", "masked"])
def test_hsk_loss_nothing_valid_is_zero_with_grad(mode):
    student = STUDENT.clone().requires_grad_()
    loss = hsk_loss(student, TARGET, KEEP, mode, torch.tensor([[False, False]]))
    loss.backward()
    assert loss.item() == 0.0
    assert student.grad.abs().sum().item() == 0.0


def test_hsk_loss_errors():
    with pytest.raises(ValueError, match="unknown loss mode 'l1'"):
        hsk_loss(STUDENT, TARGET, KEEP, "l1")
    with pytest.raises(ValueError, match="does not fit"):
        hsk_loss(STUDENT, TARGET, KEEP, "paper", torch.ones(1, 2, 2, dtype=torch.bool))


# --------------------------------------------------------------------------------------------- cells


@pytest.mark.parametrize(
    "text",
    [
        "depth=top10-3/length=all/width=all",
        "depth=none/length=all/width=all",
        "depth=all-top6/length=attention_nosep-10/width=magnitude-0.1",
        "depth=top12-1/length=cls-1/width=random-0.01",
        "depth=all-top12/length=left-128/width=uniform-1.0",
    ],
)
def test_cell_round_trip(text):
    cell = parse_cell(text)
    assert str(cell) == text
    assert "/".join(cell.segments()) == text


def test_parse_cell_fields():
    cell = parse_cell("depth=all-top6/length=attention_nosep-10/width=magnitude-0.1")
    assert cell == Cell(Depth(6, None), Length("attention_nosep", 10), Width("magnitude", 0.1))
    assert parse_cell("depth=top10-3/length=all/width=all") == Cell(
        Depth(10, 3), Length(None, None), Width(None, None)
    )
    assert parse_cell("depth=none/length=all/width=all").depth == Depth(None, None)


def test_width_int_fraction_prints_as_float():
    assert str(Width("random", 1)) == "width=random-1.0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "depth=top10-3/length=foo-3/width=all",
            "length segment 'length=foo-3': unknown length scheme 'foo' "
            "(expected one of left, attention, attention_nosep, cls, random)",
        ),
        ("depth=top10/length=all/width=all", "depth segment 'depth=top10': expected top<K>-<k>"),
        ("depth=top0-1/length=all/width=all", "depth segment 'depth=top0-1': teacher top layer 0"),
        ("depth=top10-0/length=all/width=all", "depth segment 'depth=top10-0': layers kept 0"),
        ("depth=top10-03/length=all/width=all", "not canonical, write 'depth=top10-3'"),
        ("depth=top10-3/length=left/width=all", "length segment 'length=left': expected <scheme>-<k>"),
        ("depth=top10-3/length=left-0/width=all", "length segment 'length=left-0': tokens kept 0"),
        ("depth=top10-3/length=cls-2/width=all", "segment 'length=cls-2': scheme 'cls' keeps exactly 1"),
        ("depth=top10-3/length=all/width=magic-0.1", "segment 'width=magic-0.1': unknown width scheme 'magic'"),
        ("depth=top10-3/length=all/width=random-0", "width segment 'width=random-0': fraction 0.0 outside"),
        ("depth=top10-3/length=all/width=random-1.5", "fraction 1.5 outside"),
        ("depth=top10-3/length=all/width=random-abc", "fraction 'abc' is not a number"),
        ("depth=top10-3/length=all/width=random-0.10", "not canonical, write 'width=random-0.1'"),
        ("depth=top10-3/length=all/width=random-1", "not canonical, write 'width=random-1.0'"),
        ("depth=none/length=left-3/width=all", "depth=none requires length=all and width=all"),
        ("depth=top10-3/length=all", "expected 3 segments"),
        ("length=all/depth=top10-3/width=all", "should start with 'depth='"),
    ],
)
def test_parse_cell_errors(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_cell(text)


def test_cell_flags():
    assert parse_cell("depth=all-top12/length=all/width=all").is_full
    assert not parse_cell("depth=top12-7/length=all/width=all").is_full
    assert not parse_cell("depth=none/length=all/width=all").is_full
    assert parse_cell("depth=none/length=all/width=all").is_none
    assert not parse_cell("depth=all-top12/length=all/width=all").is_none


def test_expand_joint():
    schemes = {"depth": "top8", "length": "attention_nosep", "width": "magnitude"}
    cell = expand_joint("1l_10t_0.1h", schemes)
    assert str(cell) == "depth=top8-1/length=attention_nosep-10/width=magnitude-0.1"
    assert cell.paper_name() == "1l_10t_0.1h"
    assert str(expand_joint("alll_allt_allh", schemes)) == "depth=all-top8/length=all/width=all"
    assert str(expand_joint("2l_allt_1h", schemes)) == "depth=top8-2/length=all/width=magnitude-1.0"


@pytest.mark.parametrize(
    ("name", "schemes", "message"),
    [
        ("1l_10t", {"depth": "top8", "length": "left", "width": "random"}, "joint name '1l_10t': expected"),
        ("1l_10t_0.1h", {"depth": "top8", "width": "random"}, "joint name '1l_10t_0.1h': 'length'"),
        ("1l_10t_0.1h", {"depth": "top8", "length": "cls", "width": "random"}, "keeps exactly 1"),
        ("1l_10t_2h", {"depth": "top8", "length": "left", "width": "random"}, "joint name '1l_10t_2h'"),
    ],
)
def test_expand_joint_errors(name, schemes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        expand_joint(name, schemes)


def test_paper_name():
    assert parse_cell("depth=all-top12/length=all/width=all").paper_name() == "alll_allt_allh"
    assert parse_cell("depth=none/length=all/width=all").paper_name() == "none"
    assert parse_cell("depth=top12-1/length=cls-1/width=uniform-0.5").paper_name() == "1l_1t_0.5h"


def test_hsk_fraction():
    random = parse_cell("depth=top12-2/length=left-32/width=random-0.1")
    assert random.hsk_fraction(6, 128) == pytest.approx(2 / 7 * 32 / 128 * 0.1)
    assert random.hsk_fraction(6, 128, hidden_size=768) == pytest.approx(2 / 7 * 32 / 128 * 77 / 768)
    magnitude = parse_cell("depth=top12-2/length=attention-10/width=magnitude-0.001")
    # 10 tokens x 768 dims = 7680 values per slice, round(7.68) = 8 kept.
    assert magnitude.hsk_fraction(6, 128, hidden_size=768) == pytest.approx(2 / 7 * 10 / 128 * 8 / 7680)
    assert parse_cell("depth=all-top12/length=cls-1/width=all").hsk_fraction(6, 128) == pytest.approx(1 / 128)
    assert parse_cell("depth=all-top12/length=all/width=all").hsk_fraction(6, 128, 768) == 1.0
    assert parse_cell("depth=none/length=all/width=all").hsk_fraction(6, 128) == 0.0


def test_cell_layers_and_tokens():
    cell = parse_cell("depth=top8-3/length=left-5/width=all")
    assert cell.student_layers(6) == [4, 5, 6]
    assert cell.teacher_layers(6) == [5, 7, 8]  # layer_map(6, 8) = [0, 1, 3, 4, 5, 7, 8]
    full = parse_cell("depth=all-top12/length=all/width=all")
    assert full.student_layers(4) == [0, 1, 2, 3, 4]
    assert full.teacher_layers(4) == [0, 3, 6, 9, 12]
    assert cell.num_tokens(128) == 5
    assert full.num_tokens(128) == 128
    none = parse_cell("depth=none/length=all/width=all")
    assert none.student_layers(6) == none.teacher_layers(6) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("depth=top12-8/length=all/width=all", "depth=top12-8: keeps 8 layers"),
        ("depth=top24-1/length=all/width=all", "depth=top24-1: maps onto teacher layer 24 of 12"),
        ("depth=top12-1/length=left-200/width=all", "length=left-200: keeps 200 tokens"),
    ],
)
def test_cell_validate(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_cell(text).validate(6, 12, 128)


def test_cell_validate_bounds_are_tight():
    parse_cell("depth=top12-7/length=left-128/width=random-0.5").validate(6, 12, 128)  # every bound met exactly
    for cell, message in (
        ("depth=top12-8/length=all/width=all", "keep"),  # 8 > Ls + 1
        ("depth=top13-1/length=all/width=all", "13"),  # map beyond the teacher's 12 layers
        ("depth=top12-1/length=left-129/width=all", "129"),  # more tokens than max_seq_length
    ):
        with pytest.raises(ValueError, match=message):
            parse_cell(cell).validate(6, 12, 128)


# ------------------------------------------------------------------------------------------ compress

B, T, D, TEACHER_LAYERS = 2, 5, 4, 4
HIDDEN = [torch.randn(B, T, D, generator=torch.Generator().manual_seed(layer)) for layer in range(5)]
C_IDS = torch.tensor([[101, 7, 8, 9, SEP], [101, 7, SEP, 0, 0]])
C_MASK = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
C_ATTN = torch.tensor([[0.1, 0.4, 0.1, 0.3, 0.1], [0.5, 0.1, 0.4, 0.9, 0.9]])


def _compress(text: str, hidden=HIDDEN, seed: int = 0):
    cell = parse_cell(text)
    return compress_batch(cell, hidden, C_ATTN, C_IDS, C_MASK, SEP, student_layers=2, width_seed=seed)


def test_compress_batch_matches_manual_indexing():
    batch = _compress("depth=top4-2/length=attention-2/width=uniform-0.5")
    assert batch.student_layers == [1, 2]
    assert batch.teacher_layers == [2, 4]  # layer_map(2, 4) = [0, 2, 4]
    assert batch.token_index.tolist() == [[1, 3], [0, 2]]
    assert batch.keep_mask.shape == (1, 1, 1, D)
    assert batch.keep_mask.flatten().tolist() == [True, False, True, False]  # uniform dims 0, 2
    assert batch.target.shape == (B, 2, 2, D)
    assert batch.target.dtype == torch.float32
    for b in range(B):
        for li, layer in enumerate([2, 4]):
            for ki, pos in enumerate(batch.token_index[b].tolist()):
                expected = HIDDEN[layer][b, pos] * torch.tensor([1.0, 0.0, 1.0, 0.0])
                assert torch.equal(batch.target[b, li, ki], expected)


def test_compress_batch_stacked_input_and_full_cell():
    batch = _compress("depth=all-top4/length=all/width=all", hidden=torch.stack(HIDDEN))
    assert batch.teacher_layers == [0, 2, 4]
    assert batch.token_index.tolist() == [list(range(T))] * B
    assert bool(batch.keep_mask.all())
    assert batch.keep_mask.shape == (1, 1, 1, D)
    assert torch.equal(batch.target, torch.stack([HIDDEN[0], HIDDEN[2], HIDDEN[4]], dim=1))


def test_compress_batch_random_width_follows_seed():
    batch = _compress("depth=top4-1/length=left-2/width=random-0.5", seed=7)
    expected = _torch_static_dims("random", 0.5, D, 7)
    assert batch.keep_mask.flatten().nonzero().flatten().tolist() == expected
    again = _compress("depth=top4-1/length=left-2/width=random-0.5", seed=7)
    assert torch.equal(batch.keep_mask, again.keep_mask)


def test_compress_batch_magnitude_ignores_padding():
    batch = _compress("depth=all-top4/length=left-5/width=magnitude-0.25")
    assert batch.keep_mask.shape == (B, 3, T, D)
    assert batch.keep_mask.sum(dim=(-2, -1)).tolist() == [[5, 5, 5], [5, 5, 5]]  # round(0.25 * 5 * 4)
    assert not batch.keep_mask[1, :, 3:].any()  # row 1's positions 3, 4 are padding
    for b in range(B):
        for li, layer in enumerate([0, 2, 4]):
            real = HIDDEN[layer][b, : int(C_MASK[b].sum())].abs()
            kept = batch.keep_mask[b, li, : real.shape[0]]
            assert real[kept].min() >= real[~kept].max()
    gathered = torch.stack([HIDDEN[0], HIDDEN[2], HIDDEN[4]], dim=1)
    assert torch.equal(batch.target, gathered * batch.keep_mask)


def test_compress_batch_errors():
    with pytest.raises(ValueError, match="depth=none"):
        _compress("depth=none/length=all/width=all")
    with pytest.raises(ValueError, match="maps onto teacher layer 6 of 4"):
        _compress("depth=top6-1/length=all/width=all")
    with pytest.raises(ValueError, match="keeps 6 tokens but max_seq_length is 5"):
        _compress("depth=top4-1/length=left-6/width=all")
