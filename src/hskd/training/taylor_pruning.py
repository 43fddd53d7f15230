"""Cutting a pruned student from a fine-tuned BERT: heads and FFN neurons ranked by first-order Taylor
importance on task batches, layers chosen by index, the word embedding optionally factorised by SVD."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn
from transformers import PreTrainedModel

from hskd.models.pruned import PrunedStudent
from hskd.models.pruned_bert import PrunedBertConfig, PrunedBertForSequenceClassification, PrunedEmbeddings, PrunedLayer
from hskd.models.student import Student
from hskd.training.loop import task_loss

SaliencyPair = tuple[torch.Tensor, torch.Tensor]  # saliency of a Linear layer's (weight, bias)


def saliency(param: nn.Parameter) -> torch.Tensor:
    """First-order Taylor saliency |w * dL/dw|, elementwise."""
    return (param.detach() * param.grad).abs()


def head_scores(
    query: SaliencyPair, key: SaliencyPair, value: SaliencyPair, output: SaliencyPair, num_heads: int
) -> torch.Tensor:
    """Per-head sum of the saliencies of q/k/v rows (weights and biases) and attention-output columns.

    Weights have the nn.Linear layout [out, in]; the output layer's bias is shared by all heads.
    """
    scores = torch.zeros(num_heads)
    for weight, bias in (query, key, value):
        scores += weight.reshape(num_heads, -1).sum(1).cpu() + bias.reshape(num_heads, -1).sum(1).cpu()
    out_weight = output[0]
    return scores + out_weight.reshape(out_weight.shape[0], num_heads, -1).sum((0, 2)).cpu()


def neuron_scores(intermediate: SaliencyPair, output: SaliencyPair) -> torch.Tensor:
    """Per-neuron sum of the saliencies of its intermediate row (weight and bias) and output column."""
    (in_weight, in_bias), out_weight = intermediate, output[0]
    return (in_weight.sum(1) + in_bias + out_weight.sum(0)).cpu()


def top_k_indices(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the `k` highest scores, in ascending (original) order."""
    if not 1 <= k <= scores.numel():
        raise ValueError(f"cannot keep {k} of {scores.numel()} units")
    return torch.topk(scores, k).indices.sort().values


def linear_saliency(linear: nn.Linear) -> SaliencyPair:
    return saliency(linear.weight), saliency(linear.bias)


def layer_scores(layer: nn.Module, num_heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Head and neuron scores of one HF BertLayer from its current gradients."""
    attention = layer.attention
    heads = head_scores(
        linear_saliency(attention.self.query),
        linear_saliency(attention.self.key),
        linear_saliency(attention.self.value),
        linear_saliency(attention.output.dense),
        num_heads,
    )
    return heads, neuron_scores(
        linear_saliency(layer.intermediate.dense), linear_saliency(layer.output.dense)
    )


def taylor_importance(
    teacher: PreTrainedModel, batches: Iterable[Mapping[str, torch.Tensor]], num_labels: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Taylor importance of every head and FFN neuron of every teacher layer, summed over `batches`.

    Returns per-layer head scores [heads] and neuron scores [ffn]. The teacher runs in eval mode (no
    dropout) with gradients enabled even if it was frozen; its mode, requires_grad flags and (cleared)
    gradients are restored afterwards.
    """
    was_training = teacher.training
    frozen = [p for p in teacher.parameters() if not p.requires_grad]
    teacher.eval().requires_grad_(True)
    device = next(teacher.parameters()).device
    layers = teacher.bert.encoder.layer
    num_heads = teacher.config.num_attention_heads
    heads = [torch.zeros(num_heads) for _ in layers]
    neurons = [torch.zeros(teacher.config.intermediate_size) for _ in layers]
    with torch.enable_grad():
        for batch in batches:
            teacher.zero_grad(set_to_none=True)
            inputs = {k: batch[k].to(device) for k in ("input_ids", "attention_mask", "token_type_ids")}
            logits = teacher(**inputs).logits
            task_loss(logits, batch["labels"].to(device)).backward()
            for i, layer in enumerate(layers):
                layer_heads, layer_neurons = layer_scores(layer, num_heads)
                heads[i] += layer_heads
                neurons[i] += layer_neurons
    teacher.zero_grad(set_to_none=True)
    teacher.train(was_training)
    for param in frozen:
        param.requires_grad_(False)
    return heads, neurons


def kept_layer_indices(layers: int | list[int], num_teacher_layers: int) -> list[int]:
    """0-based teacher layer indices: an int n keeps the bottom n layers, a list those 1-based layers."""
    chosen = list(range(1, layers + 1)) if isinstance(layers, int) else list(layers)
    if not chosen or any(not 1 <= n <= num_teacher_layers for n in chosen):
        raise ValueError(f"invalid layers {layers} for a {num_teacher_layers}-layer teacher")
    return [n - 1 for n in chosen]


def head_rows(heads: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Row indices of q/k/v (columns of the attention output) belonging to the given heads."""
    return (heads[:, None] * head_dim + torch.arange(head_dim)).flatten()


def copy_linear(
    target: nn.Linear, source: nn.Linear, rows: torch.Tensor | None, cols: torch.Tensor | None
) -> None:
    """Copy source weights into target, keeping only the given output rows / input columns."""
    weight = source.weight.detach()
    bias = source.bias.detach()
    if rows is not None:
        weight, bias = weight[rows], bias[rows]
    if cols is not None:
        weight = weight[:, cols]
    with torch.no_grad():
        target.weight.copy_(weight)
        target.bias.copy_(bias)


def svd_factors(matrix: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Truncated SVD: matrix [V, H] ~ E1 [V, r] @ E2 [r, H] with E1 = U_r * S_r and E2 = V_r^T."""
    u, s, vh = torch.linalg.svd(matrix.float(), full_matrices=False)
    return u[:, :rank] * s[:rank], vh[:rank]


def copy_embeddings(target: PrunedEmbeddings, source: nn.Module, emb_rank: int | None) -> None:
    """Copy the teacher's embeddings, factorising the word embedding matrix when `emb_rank` is set."""
    words = source.word_embeddings.weight.detach()
    with torch.no_grad():
        if emb_rank is None:
            target.word_embeddings.weight.copy_(words)
        else:
            e1, e2 = svd_factors(words, emb_rank)
            target.word_embeddings.factor.weight.copy_(e1)
            target.word_embeddings.expand.weight.copy_(e2.T)
        target.position_embeddings.load_state_dict(source.position_embeddings.state_dict())
        target.token_type_embeddings.load_state_dict(source.token_type_embeddings.state_dict())
        target.LayerNorm.load_state_dict(source.LayerNorm.state_dict())


def copy_pruned_layer(
    target: PrunedLayer, source: nn.Module, heads: torch.Tensor, neurons: torch.Tensor
) -> None:
    """Copy one HF BertLayer into a PrunedLayer, keeping the given heads and FFN neurons."""
    rows = head_rows(heads, target.attention.head_dim)
    attention = source.attention
    copy_linear(target.attention.query, attention.self.query, rows, None)
    copy_linear(target.attention.key, attention.self.key, rows, None)
    copy_linear(target.attention.value, attention.self.value, rows, None)
    copy_linear(target.attention.output, attention.output.dense, None, rows)
    target.attention.LayerNorm.load_state_dict(attention.output.LayerNorm.state_dict())
    copy_linear(target.intermediate, source.intermediate.dense, neurons, None)
    copy_linear(target.output, source.output.dense, None, neurons)
    target.LayerNorm.load_state_dict(source.output.LayerNorm.state_dict())


def init_pruned_student(
    teacher: PreTrainedModel,
    batches: Iterable[Mapping[str, torch.Tensor]],
    layers: int | list[int],
    heads: int,
    ffn: int,
    emb_rank: int | None,
    num_labels: int,
) -> Student:
    """Cut a student from a fine-tuned `BertForSequenceClassification` by Taylor importance on `batches`."""
    if num_labels != teacher.config.num_labels:
        raise ValueError(f"teacher has {teacher.config.num_labels} labels, student asks for {num_labels}")
    kept_layers = kept_layer_indices(layers, teacher.config.num_hidden_layers)
    head_importance, neuron_importance = taylor_importance(teacher, batches, num_labels)
    config = PrunedBertConfig.from_teacher(teacher.config, len(kept_layers), heads, ffn, emb_rank, num_labels)
    model = PrunedBertForSequenceClassification(config).to(next(teacher.parameters()).device)
    copy_embeddings(model.bert.embeddings, teacher.bert.embeddings, emb_rank)
    for target, index in zip(model.bert.layers, kept_layers, strict=True):
        kept_heads = top_k_indices(head_importance[index], heads)
        kept_neurons = top_k_indices(neuron_importance[index], ffn)
        copy_pruned_layer(target, teacher.bert.encoder.layer[index], kept_heads, kept_neurons)
    copy_linear(model.bert.pooler, teacher.bert.pooler.dense, None, None)
    copy_linear(model.classifier, teacher.classifier, None, None)
    return PrunedStudent(model)
