"""The paper protocol's choices, each against a case small enough to check by hand."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from test_wiring import FULL, LayerStudent, run, setup  # noqa: F401  (fixture)

from hskd.hsk.compression import HSKBatch, real_fraction, select_tokens
from hskd.hsk.extract import StoreTarget, extract
from hskd.hsk.sources import CachedHSK
from hskd.hsk.store import HSKStore, StoreMismatchError
from hskd.planning.cells import parse_cell, static_dims
from hskd.planning.config import ConfigError
from hskd.planning.protocol import PRESETS, resolve
from hskd.planning.strategies import batch_magnitude_mask
from hskd.training import distill
from hskd.training.distill import stage1_loss, stage2_loss
from hskd.training.loop import prediction_kd_loss

PAPER = PRESETS["paper"]

# ------------------------------------------------------------------------------------ batch magnitude

# |values| of one layer, 2 examples x 3 tokens x 2 dims: 12 values 6, 5, 4, 3, 3, 3, 2, 1, 1, 0.5, 0, 0
TARGET = torch.tensor([[[5.0, -1.0], [3.0, 3.0], [0.5, 2.0]], [[-4.0, 3.0], [0.0, 0.0], [1.0, -6.0]]]).unsqueeze(
    1
)  # fmt: skip  [2, 1, 3, 2]


def test_batch_magnitude_keeps_int_f_n_values_over_the_whole_batch():
    # int(0.25 * 12) = 3: threshold 4, kept 6, 5, 4 (two in example 1, one in example 0)
    keep = batch_magnitude_mask(TARGET, 0.25)
    assert keep.squeeze(1).tolist() == [[[True, False], [False, False], [False, False]],
                                        [[True, False], [False, False], [False, True]]]  # fmt: skip


def test_batch_magnitude_count_is_int_not_round():
    # 0.3 x 12 = 3.6: int gives 3 values (threshold 4), round would give 4 and keep all three 3s
    assert int(batch_magnitude_mask(TARGET, 0.3).sum()) == 3


def test_stage1_draws_the_batch_magnitude_mask_from_the_batch():
    lengths = torch.tensor([3, 2])
    batch = {"input_ids": torch.ones(2, 3, dtype=torch.long), "token_type_ids": torch.zeros(2, 3, dtype=torch.long),
             "attention_mask": (torch.arange(3)[None, :] < lengths[:, None]).long()}  # fmt: skip
    hsk = HSKBatch(student_layers=[2], teacher_layers=[2], token_index=torch.tensor([[0, 1, 2], [0, 1, 2]]),
                   target=TARGET.clone(), keep_mask=torch.ones(1, 1, 1, 2, dtype=torch.bool))  # fmt: skip
    cell = parse_cell("depth=top2-1/length=all/width=magnitude_batch-0.25")
    loss = stage1_loss(LayerStudent(lengths, 2, 2), batch, hsk, "paper", padding_counts=True, cell=cell)
    # kept: 5 (example 0), -4 and -6 (example 1, the -6 on padding); student 2 on real tokens, 100 on padding.
    # example 0: (2-5)^2 + 5 x 2^2 = 29; example 1: (2+4)^2 + 3 x 2^2 + 100^2 + (100+6)^2 = 21284
    assert loss.item() == pytest.approx((29 + 21284) / 12)


def test_batch_magnitude_keeps_ties_at_the_threshold():
    # int(1/3 * 12) = 4: the 4th largest is 3, and all three 3s are kept (>=): 6 values, not 4
    keep = batch_magnitude_mask(TARGET, 1 / 3)
    assert int(keep.sum()) == 6
    assert keep[0, 0, 1].tolist() == [True, True] and keep[1, 0, 0].tolist() == [True, True]


def test_batch_magnitude_with_masked_padding_ranks_real_tokens_only():
    # example 1's third token is padding: 10 values ranked, int(1/3 * 10) = 3, threshold 3, the 6 never kept
    valid = torch.tensor([[True, True, True], [True, True, False]])
    keep = batch_magnitude_mask(TARGET, 1 / 3, valid)
    assert int(keep.sum()) == 5 and not keep[1, 0, 2].any()


def test_per_example_magnitude_differs_from_batch_magnitude():
    from hskd.hsk.compression import width_mask

    per_example = width_mask("magnitude", 1 / 3, TARGET)  # round(6 / 3) = 2 per example and layer
    assert per_example.sum(dim=(1, 2, 3)).tolist() == [2, 2]
    assert not torch.equal(per_example, batch_magnitude_mask(TARGET, 1 / 3))


# ------------------------------------------------------------------------------------------ [SEP] rank

IDS = torch.tensor([[101, 7, 102, 0, 0]])
MASK = torch.tensor([[1, 1, 1, 0, 0]])
ATTENTION = torch.tensor([[0.1, 0.5, 0.9, 0.3, 0.2]])


def test_attention_nosep_ranks_sep_above_below_or_among_padding():
    above = select_tokens("attention_nosep", 3, IDS, MASK, ATTENTION, 102)
    below = select_tokens("attention_nosep", 3, IDS, MASK, ATTENTION, 102, sep_rank="below_padding")
    assert above.tolist() == [[0, 1, 2]]  # [CLS], a, then [SEP] before any padding
    assert below.tolist() == [[0, 1, 3]]  # [CLS], a, then the padding with more attention (0.3)
    assert select_tokens("attention", 3, IDS, MASK, ATTENTION, 102, sep_rank="below_padding").tolist() == [[0, 1, 2]]
    # among padding, [SEP] scores 0: pre-softmax padding scores 0.3 and -0.2 put it between them
    scores = torch.tensor([[0.1, 0.5, 0.9, 0.3, -0.2]])
    among = [select_tokens("attention_nosep", keep, IDS, MASK, scores, 102, sep_rank="among_padding").tolist()
             for keep in (3, 4)]  # fmt: skip
    assert among == [[[0, 1, 3]], [[0, 1, 2, 3]]]


def test_padding_is_taken_in_the_order_of_its_scores():
    # k past the 3 real tokens: padding follows by score (position 4 above 3), as the paper's topk does
    scores = torch.tensor([[0.1, 0.5, 0.9, -0.3, 0.2]])
    assert select_tokens("attention", 4, IDS, MASK, scores, 102).tolist() == [[0, 1, 2, 4]]


def test_score_attention_returns_the_pre_softmax_cls_row():
    from hskd.models.teacher import cls_scores_attention

    generator = torch.Generator().manual_seed(0)
    query, key, value = (torch.randn(2, 3, 5, 4, generator=generator) for _ in range(3))
    mask = torch.zeros(2, 1, 1, 5)
    mask[1, ..., 3:] = torch.finfo(torch.float32).min
    module = torch.nn.Module().eval()
    output, scores = cls_scores_attention(module, query, key, value, mask)
    expected = (query[:, :, :1] @ key.transpose(2, 3)) / 2  # scaling 4 ** -0.5, no mask
    assert torch.allclose(scores, expected)
    probabilities = (query @ key.transpose(2, 3) / 2 + mask).softmax(-1)
    assert torch.allclose(output, (probabilities @ value).transpose(1, 2))


def test_sep_among_padding_needs_pre_softmax_scores():
    with pytest.raises(ValueError, match="protocol_choices.sep_rank: among_padding .* needs token_score: score"):
        resolve("paper", {"token_score": "logit"})


# ------------------------------------------------------------------------------------ padding in the loss


def test_padding_counts_in_the_loss_under_the_paper_protocol():
    lengths = torch.tensor([3, 2])
    batch = {"input_ids": torch.ones(2, 3, dtype=torch.long), "token_type_ids": torch.zeros(2, 3, dtype=torch.long),
             "attention_mask": (torch.arange(3)[None, :] < lengths[:, None]).long()}  # fmt: skip
    hsk = HSKBatch(student_layers=[2], teacher_layers=[4], token_index=torch.tensor([[0, 1, 2], [0, 1, 2]]),
                   target=torch.zeros(2, 1, 3, 4), keep_mask=torch.ones(1, 1, 1, 4, dtype=torch.bool))  # fmt: skip
    student = LayerStudent(lengths, 4, 2)  # layer 2 is 2 on real tokens, 100 on padding
    masked = stage1_loss(student, batch, hsk, "paper", padding_counts=False)
    included = stage1_loss(student, batch, hsk, "paper", padding_counts=True)
    assert masked.item() == pytest.approx(4.0)
    # 5 real positions at 2^2 and 1 padding position at 100^2, averaged over 6 positions
    assert included.item() == pytest.approx((5 * 4 + 10_000) / 6)


# ------------------------------------------------------------------------------------------- stage 2


def test_soft_cross_entropy_per_class_is_the_mean_over_batch_and_classes():
    student, teacher = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    # T = 2: p = softmax([0, 1]) = [0.2689, 0.7311]; log q = log_softmax([0.5, 0]) = [-0.4741, -0.9741]
    per_example = 0.2689414 * 0.4740770 + 0.7310586 * 0.9740770
    assert prediction_kd_loss(student, teacher, 2.0).item() == pytest.approx(per_example, rel=1e-5)
    assert prediction_kd_loss(student, teacher, 2.0, per_class=True).item() == pytest.approx(per_example / 2, rel=1e-5)


def test_regression_stage2_target_is_gold_or_teacher():
    logits, teacher, labels = torch.tensor([[1.0], [2.0]]), torch.tensor([[0.0], [0.0]]), torch.tensor([3.0, 2.0])
    # gold: ((1 - 3)^2 + (2 - 2)^2) / 2 = 2; teacher: (1^2 + 2^2) / 2 = 2.5
    assert stage2_loss(logits, teacher, labels, 1.0, PAPER).item() == pytest.approx(2.0)
    assert stage2_loss(logits, teacher, labels, 1.0, PRESETS["hskd"]).item() == pytest.approx(2.5)
    classes = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]]), torch.tensor([1])
    assert stage2_loss(*classes, 2.0, PAPER).item() == pytest.approx(prediction_kd_loss(*classes[:2], 2.0).item() / 2)


# ------------------------------------------------------------------------------------------ static dims


def test_bernoulli_keeps_each_dim_whose_draw_exceeds_one_minus_f():
    draws = torch.rand(16, generator=torch.Generator().manual_seed(3))
    kept = static_dims("bernoulli", 0.5, 16, seed=3)
    assert kept == [d for d in range(16) if draws[d] > 0.5]
    counts = {len(static_dims("bernoulli", 0.5, 16, seed=s)) for s in range(10)}
    assert len(counts) > 1  # the count varies with the draw: not an exact-count subset
    tiny = static_dims("bernoulli", 0.001, 4, seed=0)
    assert tiny == [int(torch.rand(4, generator=torch.Generator().manual_seed(0)).argmax())]


# ------------------------------------------------------------------------------------------ real fraction


def test_real_fraction_counts_only_real_tokens():
    # one distilled layer of Ls + 1 = 2 hidden states, D = 2, dim 0 kept, tokens 0..2 selected;
    # example 0 has 2 real tokens: 2 kept / (2 x 2 x 2) = 0.25; example 1 has 4: 3 / (4 x 2 x 2) = 0.1875
    keep, tokens, lengths = (
        torch.tensor([True, False]).view(1, 1, 1, 2),
        torch.tensor([[0, 1, 2], [0, 1, 2]]),
        torch.tensor([2, 4]),
    )
    assert real_fraction(keep, tokens, lengths, 1, 2).tolist() == pytest.approx([0.25, 0.1875])
    # the same static mask on both of 2 distilled layers counts twice: 0.5 and 0.375
    assert real_fraction(keep, tokens, lengths, 2, 2).tolist() == pytest.approx([0.5, 0.375])


def test_the_manifest_real_fraction_of_full_hsk_is_one(paper_store, tmp_path):
    manifest = json.loads((Path(paper_store["hskd"]).parent / "hskd.json").read_text())
    assert [row["hsk_fraction_real"] for row in manifest["stores"]] == [1.0]


# ---------------------------------------------------------------------------------------------- config


def test_protocol_presets_and_overrides():
    assert resolve("paper") == PAPER and resolve("hskd") == PRESETS["hskd"]
    mixed = resolve("paper", {"hsk_padding": "masked", "soft_ce": None})
    assert mixed.hsk_padding == "masked" and mixed.soft_ce == "per_class" and mixed.sep_rank == "among_padding"
    with pytest.raises(ValueError, match="protocol_choices.padding: unknown choice"):
        resolve("hskd", {"padding": "masked"})
    with pytest.raises(ValueError, match="protocol_choices.hsk_padding: 'none' is not one of masked, included"):
        resolve("hskd", {"hsk_padding": "none"})


def test_config_protocol_is_validated(config):
    from hskd.planning.study import load

    assert load({**config, "protocol": "paper"}).protocol == PAPER
    assert load({**config, "protocol": "paper", "protocol_choices": {"soft_ce": "per_example"}}).protocol.soft_ce == (
        "per_example")  # fmt: skip
    with pytest.raises(ConfigError, match="config key 'protocol'"):
        load({**config, "protocol": "tinybert"})


# --------------------------------------------------------------------------------- stores and runs


@pytest.fixture(scope="module")
def paper_store(tiny_task, tmp_path_factory):
    out = tmp_path_factory.mktemp("paper_store")
    stores = {name: str(out / f"{name}.safetensors") for name in PRESETS}
    for name, path in stores.items():
        target = StoreTarget("s", 2, parse_cell(FULL), path)
        extract(tiny_task["teacher"], tiny_task["train"], [target], str(out / f"{name}_logits.st"),
                str(out / f"{name}.json"), threads=1, protocol=PRESETS[name])  # fmt: skip
    return stores


def test_paper_stores_hold_the_teachers_padding_states(tiny_task, paper_store):
    from hskd.models.data import TokenizedSplit

    lengths = TokenizedSplit.load(tiny_task["train"]).lengths
    shortest = int(lengths.argmin())  # its last positions lie beyond every batch's longest example
    hskd_target = HSKStore(paper_store["hskd"]).batch([shortest]).target
    paper_target = HSKStore(paper_store["paper"]).batch([shortest]).target
    assert (hskd_target[0, :, -1] == 0).all()  # zero-filled: never in the hskd loss
    assert (paper_target[0, :, -1] != 0).any()  # the teacher's real hidden state at that padding position
    real = int(lengths[shortest])
    assert torch.equal(hskd_target[0, :, :real], paper_target[0, :, :real])


def test_a_store_of_another_protocol_or_cell_is_refused(paper_store):
    store = HSKStore(paper_store["hskd"])
    CachedHSK(store, parse_cell(FULL), PRESETS["hskd"])
    with pytest.raises(StoreMismatchError, match="store has hsk_padding 'masked' but this run needs 'included'"):
        CachedHSK(store, parse_cell(FULL), PAPER)
    with pytest.raises(StoreMismatchError, match="store has cell"):
        CachedHSK(store, parse_cell("depth=top2-1/length=all/width=all"), PRESETS["hskd"])


def test_a_paper_run_records_its_protocol_and_real_fraction(tiny_task, setup, paper_store):  # noqa: F811
    metrics = run(tiny_task, dict(setup, store=paper_store["paper"]), FULL, "paper.json",
                  protocol=PAPER.as_dict())  # fmt: skip
    assert metrics["protocol"] == "paper" and metrics["protocol_choices"]["hsk_padding"] == "included"
    assert metrics["hsk_fraction"] == 1.0 and metrics["hsk_fraction_real"] == 1.0


def test_a_non_finite_loss_stops_the_run_and_writes_nothing(tiny_task, setup, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(distill, "stage1_loss", lambda *a, **k: torch.tensor(float("nan"), requires_grad=True))
    with pytest.raises(FloatingPointError, match="stage 1 .* loss is nan at step 1"):
        run(tiny_task, setup, FULL, "nan.json")
    assert not (setup["out"] / "nan.json").exists()


# ------------------------------------------------------------------------------- per-layer token ranking


def test_each_distilled_layer_ranks_tokens_by_the_attention_of_the_layer_that_produced_it():
    from hskd.hsk.compression import compress_batch

    ids, mask = torch.tensor([[101, 5, 6, 7, 102]]), torch.ones(1, 5, dtype=torch.long)
    # [CLS] rows of teacher layers 1, 2, 3 (they disagree): top 2 = {1, 2}, {3, 4}, {1, 4}
    layer_attention = torch.tensor([[[0.0, 0.5, 0.4, 0.05, 0.05]],
                                    [[0.0, 0.05, 0.05, 0.4, 0.5]],
                                    [[0.0, 0.5, 0.05, 0.05, 0.4]]])  # fmt: skip
    hidden = torch.arange(4 * 5 * 2, dtype=torch.float).view(4, 1, 5, 2)  # teacher states 0..3
    cell = parse_cell("depth=all-top3/length=attention-2/width=all")
    last = compress_batch(cell, hidden, layer_attention[-1], ids, mask, 102, 3)
    mapped = compress_batch(cell, hidden, layer_attention[-1], ids, mask, 102, 3, layer_attention=layer_attention)
    assert last.token_index.tolist() == [[1, 4]]
    # teacher states 0, 1, 2, 3 <- attention of layers 1, 1, 2, 3
    assert mapped.token_index.tolist() == [[[1, 2], [1, 2], [3, 4], [1, 4]]]
    assert torch.equal(mapped.target[0, 2], hidden[2, 0, [3, 4]])  # state 2's values at its own tokens


@pytest.mark.parametrize(
    ("depth", "ranking", "expected"),
    [
        # 12-layer teacher, 4-layer student. top8: layer_map(4, 8) = [0, 2, 4, 6, 8]; the paper's
        # --att_ttop12 rows [0] + [3i + 2 for i < 4] = [0, 2, 5, 8, 11] (0-based) = layers [1, 3, 6, 9, 12]
        ("top8-2", "last_layer", [12, 12]),
        ("top8-2", "mapped_layer", [6, 8]),
        ("top8-2", "uniform_layer", [9, 12]),
        ("all-top8", "mapped_layer", [1, 2, 4, 6, 8]),  # the embeddings (state 0) take layer 1's
        ("all-top8", "uniform_layer", [1, 3, 6, 9, 12]),
    ],
)
def test_the_teacher_layer_that_ranks_each_distilled_layers_tokens(depth, ranking, expected):
    cell = parse_cell(f"depth={depth}/length=attention-10/width=all")
    assert cell.ranking_layers(4, 12, ranking) == expected


def test_uniform_ranking_picks_each_layers_tokens_by_the_layer_of_the_full_depth_map():
    from hskd.hsk.compression import compress_batch

    ids, mask = torch.tensor([[101, 5, 6, 7, 102]]), torch.ones(1, 5, dtype=torch.long)
    # [CLS] rows of teacher layers 1..4: top 2 = {1, 2}, {3, 4}, {2, 3}, {1, 4}
    layer_attention = torch.tensor([[[0.0, 0.5, 0.4, 0.05, 0.05]],
                                    [[0.0, 0.05, 0.05, 0.4, 0.5]],
                                    [[0.0, 0.05, 0.5, 0.4, 0.05]],
                                    [[0.0, 0.5, 0.05, 0.05, 0.4]]])  # fmt: skip
    hidden = torch.arange(5 * 5 * 2, dtype=torch.float).view(5, 1, 5, 2)  # teacher states 0..4
    # 2-layer student, its top layer mapped onto the top 2 of 4 teacher layers: teacher state 2, made by
    # layer 2; a uniform map over all 4 layers gives student layer 2 teacher layer 4
    cell = parse_cell("depth=top2-1/length=attention-2/width=all")
    mapped = compress_batch(cell, hidden, layer_attention[-1], ids, mask, 102, 2, layer_attention=layer_attention,
                            ranking_layers=cell.ranking_layers(2, 4, "mapped_layer"))  # fmt: skip
    uniform = compress_batch(cell, hidden, layer_attention[-1], ids, mask, 102, 2, layer_attention=layer_attention,
                             ranking_layers=cell.ranking_layers(2, 4, "uniform_layer"))  # fmt: skip
    assert mapped.token_index.tolist() == [[[3, 4]]]
    assert uniform.token_index.tolist() == [[[1, 4]]]
    assert torch.equal(uniform.target[0, 0], hidden[2, 0, [1, 4]])  # teacher state 2 at layer 4's tokens


def test_joint_cells_rank_tokens_by_the_joint_choice():
    assert (PAPER.token_ranking, PAPER.joint_token_ranking) == ("mapped_layer", "uniform_layer")
    assert PAPER.for_cell(joint=True).token_ranking == "uniform_layer"
    assert PAPER.for_cell(joint=False) == PAPER
    hskd = PRESETS["hskd"]
    assert hskd.for_cell(joint=True).token_ranking == hskd.for_cell(joint=False).token_ranking == "last_layer"
    assert not hskd.per_layer_tokens and PAPER.for_cell(joint=True).per_layer_tokens


def test_logit_scores_rank_like_the_mean_of_pre_softmax_scores():
    from hskd.models.teacher import cls_attention_rows

    # one layer, 2 heads, [CLS] row over 3 tokens; mean probability [0.3, 0.425, 0.275] ranks 1, 0, 2;
    # mean log-probability [-1.498, -0.949, -1.295] ranks 1, 2, 0
    attention = torch.zeros(1, 2, 3, 3)
    attention[0, 0, 0] = torch.tensor([0.1, 0.6, 0.3])
    attention[0, 1, 0] = torch.tensor([0.5, 0.25, 0.25])
    probability = cls_attention_rows((attention,), "probability")[0, 0]
    logit = cls_attention_rows((attention,), "logit")[0, 0]
    assert probability.argsort(descending=True).tolist() == [1, 0, 2]
    assert logit.argsort(descending=True).tolist() == [1, 2, 0]
    assert logit.tolist() == pytest.approx([-1.4979, -0.9486, -1.2951], abs=1e-4)


class PositionStudent:
    """Hidden state l at position p is 10 l + p everywhere; projections are the identity."""

    def __call__(self, input_ids, attention_mask, token_type_ids):
        batch, length = input_ids.shape
        states = [(10.0 * layer + torch.arange(length, dtype=torch.float)).view(1, length, 1).expand(batch, -1, 2)
                  for layer in range(4)]  # fmt: skip
        return SimpleNamespace(hidden_states=tuple(states))

    def project(self, layer, hidden):
        return hidden


def test_stage1_compares_each_layer_at_its_own_tokens():
    batch = {"input_ids": torch.ones(1, 4, dtype=torch.long), "token_type_ids": torch.zeros(1, 4, dtype=torch.long),
             "attention_mask": torch.ones(1, 4, dtype=torch.long)}  # fmt: skip
    hsk = HSKBatch(student_layers=[1, 2], teacher_layers=[2, 4], token_index=torch.tensor([[[1], [3]]]),
                   target=torch.zeros(1, 2, 1, 2), keep_mask=torch.ones(1, 1, 1, 2, dtype=torch.bool))  # fmt: skip
    # layer 1 at position 1: 11^2; layer 2 at position 3: 23^2 (one shared set would use one position for both)
    assert stage1_loss(PositionStudent(), batch, hsk, "paper").item() == pytest.approx(11**2 + 23**2)


def test_a_store_with_a_token_set_per_layer_round_trips(tmp_path):
    from hskd.hsk.store import HSKStoreWriter
    from hskd.planning.grid import store_bytes_per_example

    cell = parse_cell("depth=all-top2/length=attention-2/width=all")
    tokens = torch.tensor([[[1, 2], [0, 3], [2, 3]], [[0, 1], [1, 2], [0, 2]]])
    target = torch.randn(2, 3, 2, 4, generator=torch.Generator().manual_seed(0)).half().float()
    batch = HSKBatch([0, 1, 2], [0, 1, 2], tokens, target, torch.ones(1, 1, 1, 4, dtype=torch.bool))
    path = tmp_path / "s.safetensors"
    with HSKStoreWriter(path, num_examples=2, cell=str(cell), split="train", student_layers=[0, 1, 2],
                        teacher_layers=[0, 1, 2], num_tokens=2, hidden_size=4, max_seq_length=4,
                        width_layout="dense", kept_dims=None, kept_entries=None, teacher_sha256="a",
                        data_sha256="b", per_layer_tokens=True) as writer:  # fmt: skip
        writer.write(0, batch)
    store = HSKStore(path)
    read = store.batch([1, 0])
    assert read.token_index.tolist() == tokens[[1, 0]].tolist() and torch.equal(read.target.float(), target[[1, 0]])
    # int16 positions of 2 tokens x 3 layers, fp16 values of 3 layers x 2 tokens x 4 dims
    expected = 2 * 2 * 3 + 3 * 2 * 2 * 4
    assert store.bytes_per_example == store_bytes_per_example(cell, 2, 4, 4, per_layer_tokens=True) == expected


ATTENTION_CELL = "depth=all-top2/length=attention_nosep-3/width=magnitude_batch-0.2"


def test_paper_extraction_and_online_distillation_rank_tokens_per_layer_alike(tiny_task, tmp_path):
    from transformers import BertConfig

    from hskd.hsk.sources import OnlineHSK
    from hskd.models.data import TokenizedSplit
    from hskd.models.pretrained import pretrained_student_from_config

    path = str(tmp_path / "attention.safetensors")
    target = StoreTarget("s", 2, parse_cell(ATTENTION_CELL), path)
    manifest = extract(tiny_task["teacher"], tiny_task["train"], [target], str(tmp_path / "l.st"),
                       str(tmp_path / "m.json"), threads=1, protocol=PAPER)  # fmt: skip
    row = manifest["stores"][0]
    assert row["bytes_per_example"] == row["expected_bytes_per_example"]
    train = TokenizedSplit.load(tiny_task["train"])
    index = torch.tensor([5, 1, 17, 30, 2, 9])
    batch = train.batch(index, pad_to=train.max_seq_length)
    cached = CachedHSK(HSKStore(path), parse_cell(ATTENTION_CELL), PAPER)(index, batch)
    assert cached.token_index.shape == (6, 3, 3)  # a token set per distilled layer
    assert not all(torch.equal(cached.token_index[:, 0], cached.token_index[:, i]) for i in (1, 2))
    # stores hold the eval-mode teacher's targets; the paper's train-mode teacher re-noises them online
    # (test_distill.py), so the ranking is compared with the teacher in eval mode
    eval_teacher = replace(PAPER, teacher_mode="eval")
    online = OnlineHSK.load(tiny_task["teacher"], parse_cell(ATTENTION_CELL), 2, train.max_seq_length,
                            torch.device("cpu"), eval_teacher)(index, batch)  # fmt: skip
    assert torch.equal(cached.token_index, online.token_index)
    config = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32)  # fmt: skip
    student = pretrained_student_from_config(config, num_labels=2, teacher_hidden_size=32, seed=0).eval()
    cell = parse_cell(ATTENTION_CELL)
    losses = [stage1_loss(student, batch, hsk, "paper", padding_counts=True, cell=cell) for hsk in (cached, online)]
    torch.testing.assert_close(losses[0], losses[1], rtol=2e-3, atol=1e-5)


def test_extraction_ranks_a_joint_cells_tokens_by_the_joint_choice(tiny_task, tmp_path):
    from hskd.models.data import TokenizedSplit
    from hskd.models.teacher import load_teacher, teacher_pass

    # a 1-layer student on the 2-layer tiny teacher's top layer (top1 map: teacher state 1, made by layer 1);
    # a uniform map over both teacher layers gives the student's layer 1 teacher layer 2
    cell = parse_cell("depth=top1-1/length=attention-3/width=all")
    sweep, joint = (StoreTarget("s", 1, cell, str(tmp_path / f"{name}.st"), is_joint) for name, is_joint in
                    (("sweep", False), ("joint", True)))  # fmt: skip
    extract(tiny_task["teacher"], tiny_task["train"], [sweep, joint], str(tmp_path / "l.st"), str(tmp_path / "m.json"),
            threads=1, protocol=PAPER)  # fmt: skip
    train = TokenizedSplit.load(tiny_task["train"])
    index = torch.arange(8)
    batch = train.batch(index, pad_to=train.max_seq_length)
    def rows_of(score: str) -> torch.Tensor:
        teacher = load_teacher(tiny_task["teacher"], torch.device("cpu"), attentions=True, token_score=score)
        return teacher_pass(teacher, batch, train.max_seq_length, True, score).layer_attention

    rows, logits = rows_of("score"), rows_of("logit")
    # on real tokens the pre-softmax scores and the mean log-probabilities differ by a constant per row
    real = batch["attention_mask"].bool().expand_as(rows)
    gap = torch.where(real, rows - logits, float("nan"))
    spread = gap.nan_to_num(-1e9).amax(-1) - gap.nan_to_num(1e9).amin(-1)
    assert spread.max() < 1e-3 and (rows - logits)[real].abs().max() > 0.1
    for target, layer in ((sweep, 1), (joint, 2)):
        store = HSKStore(target.path)
        assert store.metadata["token_ranking"] == ("uniform_layer" if target.joint else "mapped_layer")
        tokens = store.batch(index).token_index[:, 0]  # [B, K]: the one distilled layer's tokens
        expected = rows[layer - 1].masked_fill(~real[0], float("-inf")).topk(3, dim=1).indices  # real tokens first
        assert [sorted(row) for row in tokens.tolist()] == [sorted(row) for row in expected.tolist()]
    assert not torch.equal(rows[0].topk(3, dim=1).indices.sort(1).values, rows[1].topk(3, dim=1).indices.sort(1).values)
