"""Student models for hidden-state distillation: pretrained (TinyBERT-style) and pruned (ROSITA-style) BERTs.

Both families share the `Student` interface: logits plus all hidden states, and one projection per
hidden-state index that maps the student width to the teacher width of the HSK targets.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModelForSequenceClassification, BertConfig, PreTrainedModel

from hskd.dropout import Dropout, attention, use_cheap_dropout
from hskd.model_names import resolve_model_name
from hskd.training import task_loss

STUDENT_FILE = "hskd_student.json"
PROJECTION_FILE = "projection.safetensors"
PRUNED_WEIGHTS_FILE = "model.safetensors"
PRUNED_CONFIG_FILE = "config.json"

SaliencyPair = tuple[torch.Tensor, torch.Tensor]  # saliency of a Linear layer's (weight, bias)


@dataclass
class StudentOutput:
    logits: torch.Tensor  # [B, C]
    hidden_states: tuple[torch.Tensor, ...]  # Ls+1 tensors [B, T, d_student], index 0 = embeddings output


def build_projection(num_states: int, student_width: int, teacher_width: int) -> nn.ModuleList:
    """One Linear(student_width, teacher_width) per hidden-state index, or Identity when the widths match."""
    if student_width == teacher_width:
        return nn.ModuleList(nn.Identity() for _ in range(num_states))
    return nn.ModuleList(nn.Linear(student_width, teacher_width) for _ in range(num_states))


def init_linear_(layer: nn.Linear, std: float, generator: torch.Generator) -> None:
    """BERT initialisation of a Linear layer (normal weights, zero bias), drawn from `generator`."""
    with torch.no_grad():
        weight = torch.randn(layer.weight.shape, generator=generator) * std
        layer.weight.copy_(weight)
        if layer.bias is not None:
            layer.bias.zero_()


class Student(nn.Module):
    """Common interface of the student families; subclasses build the backbone and `projection`."""

    family: str
    num_layers: int
    hidden_size: int
    teacher_hidden_size: int
    projection: nn.ModuleList
    initializer_range: float = 0.02

    def forward(self, input_ids, attention_mask, token_type_ids) -> StudentOutput:
        raise NotImplementedError

    def project(self, layer: int, hidden: torch.Tensor) -> torch.Tensor:
        """Map student hidden state number `layer` (0 = embeddings) to the teacher width."""
        return self.projection[layer](hidden)

    def word_embedding_weight(self) -> nn.Parameter:
        raise NotImplementedError

    def freeze_word_embeddings(self) -> None:
        self.word_embedding_weight().requires_grad_(False)

    def new_linear_layers(self) -> list[nn.Linear]:
        """Backbone Linear layers that did not come from a trained model."""
        raise NotImplementedError

    def reset_new_parameters(self, seed: int) -> None:
        """Re-initialise new backbone layers, then the projections, deterministically from `seed`."""
        generator = torch.Generator().manual_seed(seed)
        projections = [p for p in self.projection if isinstance(p, nn.Linear)]
        for layer in self.new_linear_layers() + projections:
            init_linear_(layer, self.initializer_range, generator)

    def save_backbone(self, out_dir: Path) -> None:
        raise NotImplementedError

    def student_metadata(self) -> dict:
        return {"family": self.family, "teacher_hidden_size": self.teacher_hidden_size}

    def save(self, out_dir) -> None:
        """Write the backbone, the projections (training-only) and the family metadata to `out_dir`."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.save_backbone(out_dir)
        state = {k: v.detach().cpu().contiguous() for k, v in self.projection.state_dict().items()}
        save_file(state, str(out_dir / PROJECTION_FILE))
        (out_dir / STUDENT_FILE).write_text(json.dumps(self.student_metadata(), indent=2))

    def load_projection(self, path: Path) -> None:
        self.projection.load_state_dict(load_file(str(path)))


# ---------------------------------------------------------------------------------------------------------
# Pretrained family (TinyBERT-style): an HF BERT checkpoint, optionally truncated to its first layers.
# ---------------------------------------------------------------------------------------------------------


class PretrainedStudent(Student):
    """An HF `BertForSequenceClassification` returning all hidden states."""

    family = "pretrained"

    def __init__(self, model: PreTrainedModel, teacher_hidden_size: int, new_modules: list[str]):
        super().__init__()
        self.model = use_cheap_dropout(model)
        self.num_layers = model.config.num_hidden_layers
        self.hidden_size = model.config.hidden_size
        self.teacher_hidden_size = teacher_hidden_size
        self.initializer_range = model.config.initializer_range
        self.new_modules = new_modules
        self.projection = build_projection(self.num_layers + 1, self.hidden_size, teacher_hidden_size)

    def forward(self, input_ids, attention_mask, token_type_ids) -> StudentOutput:
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            output_hidden_states=True,
        )
        return StudentOutput(logits=out.logits, hidden_states=tuple(out.hidden_states))

    def word_embedding_weight(self) -> nn.Parameter:
        return self.model.get_input_embeddings().weight

    def new_linear_layers(self) -> list[nn.Linear]:
        modules = [self.model.get_submodule(name) for name in self.new_modules]
        return [m for module in modules for m in module.modules() if isinstance(m, nn.Linear)]

    def save_backbone(self, out_dir: Path) -> None:
        self.model.save_pretrained(out_dir)

    def student_metadata(self) -> dict:
        return {**super().student_metadata(), "new_modules": self.new_modules}


def truncate_layers(model: PreTrainedModel, layers: int) -> None:
    """Keep only the first `layers` encoder layers of an HF BERT model."""
    available = model.config.num_hidden_layers
    if not 1 <= layers <= available:
        raise ValueError(f"cannot keep {layers} layers of a {available}-layer model")
    model.bert.encoder.layer = model.bert.encoder.layer[:layers]
    model.config.num_hidden_layers = layers


def init_pretrained_student(
    model: str, layers: int | None, num_labels: int, teacher_hidden_size: int, seed: int
) -> Student:
    """Load a BERT checkpoint as a classifier, truncate it and initialise its new parts from `seed`."""
    hf_model, info = AutoModelForSequenceClassification.from_pretrained(
        resolve_model_name(model),
        num_labels=num_labels,
        output_loading_info=True,
        ignore_mismatched_sizes=True,  # a checkpoint's own classifier may have another label count
    )
    if layers is not None:
        truncate_layers(hf_model, layers)
    new_modules = ["classifier"]
    if any(key.startswith("bert.pooler.") for key in info["missing_keys"]):
        new_modules.append("bert.pooler")
    student = PretrainedStudent(hf_model, teacher_hidden_size, new_modules)
    student.reset_new_parameters(seed)
    return student


def pretrained_student_from_config(
    config: BertConfig, num_labels: int, teacher_hidden_size: int, seed: int
) -> Student:
    """A random-weight pretrained-family student of the given shape (speed benchmarks)."""
    config = BertConfig.from_dict({**config.to_dict(), "num_labels": num_labels})
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        hf_model = AutoModelForSequenceClassification.from_config(config)
    student = PretrainedStudent(hf_model, teacher_hidden_size, ["classifier", "bert.pooler"])
    student.reset_new_parameters(seed)
    return student


# ---------------------------------------------------------------------------------------------------------
# Pruned family (ROSITA-style): a BERT with fewer layers, heads and FFN neurons, cut from a teacher.
# ---------------------------------------------------------------------------------------------------------


@dataclass
class PrunedConfig:
    vocab_size: int
    hidden_size: int
    num_heads: int
    head_dim: int
    ffn_size: int
    num_layers: int
    emb_rank: int | None
    num_labels: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float
    hidden_dropout: float
    attention_dropout: float
    classifier_dropout: float
    initializer_range: float = 0.02

    @classmethod
    def from_teacher(
        cls, teacher: BertConfig, layers: int, heads: int, ffn: int, emb_rank: int | None, num_labels: int
    ) -> PrunedConfig:
        if teacher.hidden_act != "gelu":
            raise ValueError(f"PrunedBert supports hidden_act 'gelu' only, not {teacher.hidden_act!r}")
        classifier_dropout = teacher.classifier_dropout
        if classifier_dropout is None:
            classifier_dropout = teacher.hidden_dropout_prob
        return cls(
            vocab_size=teacher.vocab_size,
            hidden_size=teacher.hidden_size,
            num_heads=heads,
            head_dim=teacher.hidden_size // teacher.num_attention_heads,
            ffn_size=ffn,
            num_layers=layers,
            emb_rank=emb_rank,
            num_labels=num_labels,
            max_position_embeddings=teacher.max_position_embeddings,
            type_vocab_size=teacher.type_vocab_size,
            layer_norm_eps=teacher.layer_norm_eps,
            hidden_dropout=teacher.hidden_dropout_prob,
            attention_dropout=teacher.attention_probs_dropout_prob,
            classifier_dropout=classifier_dropout,
            initializer_range=teacher.initializer_range,
        )


class FactorizedEmbedding(nn.Module):
    """Word embedding E ~ E1 @ E2 with E1 [V, r] (`factor`) and E2 [r, H] (`expand.weight` holds E2^T)."""

    def __init__(self, vocab_size: int, rank: int, hidden_size: int):
        super().__init__()
        self.factor = nn.Embedding(vocab_size, rank)
        self.expand = nn.Linear(rank, hidden_size, bias=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.expand(self.factor(input_ids))


class PrunedEmbeddings(nn.Module):
    def __init__(self, config: PrunedConfig):
        super().__init__()
        if config.emb_rank is None:
            self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        else:
            self.word_embeddings = FactorizedEmbedding(config.vocab_size, config.emb_rank, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        embeddings = (
            self.word_embeddings(input_ids)
            + self.token_type_embeddings(token_type_ids)
            + self.position_embeddings(positions)
        )
        return self.dropout(self.LayerNorm(embeddings))


class PrunedAttention(nn.Module):
    """Multi-head self-attention whose total head width (heads * head_dim) may differ from the hidden size."""

    def __init__(self, config: PrunedConfig):
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        width = config.num_heads * config.head_dim
        self.query = nn.Linear(config.hidden_size, width)
        self.key = nn.Linear(config.hidden_size, width)
        self.value = nn.Linear(config.hidden_size, width)
        self.output = nn.Linear(width, config.hidden_size)
        self.attention_dropout = config.attention_dropout
        self.dropout = Dropout(config.hidden_dropout)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, hidden: torch.Tensor, attend: torch.Tensor | None) -> torch.Tensor:
        context, _ = attention(
            self,
            self.split_heads(self.query(hidden)),
            self.split_heads(self.key(hidden)),
            self.split_heads(self.value(hidden)),
            attend,
            dropout=self.attention_dropout if self.training else 0.0,
        )
        context = context.flatten(2)
        return self.LayerNorm(hidden + self.dropout(self.output(context)))


class PrunedLayer(nn.Module):
    def __init__(self, config: PrunedConfig):
        super().__init__()
        self.attention = PrunedAttention(config)
        self.intermediate = nn.Linear(config.hidden_size, config.ffn_size)
        self.output = nn.Linear(config.ffn_size, config.hidden_size)
        self.dropout = Dropout(config.hidden_dropout)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden: torch.Tensor, attend: torch.Tensor | None) -> torch.Tensor:
        attended = self.attention(hidden, attend)
        ffn_out = self.output(F.gelu(self.intermediate(attended)))
        return self.LayerNorm(attended + self.dropout(ffn_out))


class PrunedBert(nn.Module):
    """BERT sequence classifier with per-model head count, FFN size and optional factorised embedding."""

    def __init__(self, config: PrunedConfig):
        super().__init__()
        self.config = config
        self.embeddings = PrunedEmbeddings(config)
        self.layers = nn.ModuleList(PrunedLayer(config) for _ in range(config.num_layers))
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Return logits [B, C] and the embeddings output followed by every layer output."""
        hidden = self.embeddings(input_ids, token_type_ids)
        # [B, 1, 1, T], True = a real token; None without padding, which spares masking every layer
        attend = None if bool(attention_mask.all()) else attention_mask.bool()[:, None, None, :]
        hidden_states = [hidden]
        for layer in self.layers:
            hidden = layer(hidden, attend)
            hidden_states.append(hidden)
        pooled = torch.tanh(self.pooler(hidden[:, 0]))
        return self.classifier(self.dropout(pooled)), tuple(hidden_states)


class PrunedStudent(Student):
    """A `PrunedBert` as a student; it keeps the teacher width, so its projections are Identity."""

    family = "pruned"

    def __init__(self, config: PrunedConfig):
        super().__init__()
        self.model = PrunedBert(config)
        self.num_layers = config.num_layers
        self.hidden_size = config.hidden_size
        self.teacher_hidden_size = config.hidden_size
        self.initializer_range = config.initializer_range
        self.projection = build_projection(self.num_layers + 1, self.hidden_size, self.teacher_hidden_size)

    def forward(self, input_ids, attention_mask, token_type_ids) -> StudentOutput:
        logits, hidden_states = self.model(input_ids, attention_mask, token_type_ids)
        return StudentOutput(logits=logits, hidden_states=hidden_states)

    def word_embedding_weight(self) -> nn.Parameter:
        words = self.model.embeddings.word_embeddings
        return words.factor.weight if isinstance(words, FactorizedEmbedding) else words.weight

    def new_linear_layers(self) -> list[nn.Linear]:
        return []

    def save_backbone(self, out_dir: Path) -> None:
        (out_dir / PRUNED_CONFIG_FILE).write_text(json.dumps(asdict(self.model.config), indent=2))
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(out_dir / PRUNED_WEIGHTS_FILE))


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
    config = PrunedConfig.from_teacher(teacher.config, len(kept_layers), heads, ffn, emb_rank, num_labels)
    student = PrunedStudent(config).to(next(teacher.parameters()).device)
    model = student.model
    copy_embeddings(model.embeddings, teacher.bert.embeddings, emb_rank)
    for target, index in zip(model.layers, kept_layers, strict=True):
        kept_heads = top_k_indices(head_importance[index], heads)
        kept_neurons = top_k_indices(neuron_importance[index], ffn)
        copy_pruned_layer(target, teacher.bert.encoder.layer[index], kept_heads, kept_neurons)
    copy_linear(model.pooler, teacher.bert.pooler.dense, None, None)
    copy_linear(model.classifier, teacher.classifier, None, None)
    return student


def pruned_student_from_shape(
    teacher_config: BertConfig,
    layers: int,
    heads: int,
    ffn: int,
    emb_rank: int | None,
    num_labels: int,
    seed: int,
) -> Student:
    """A random-weight pruned-family student of the given shape (speed benchmarks)."""
    config = PrunedConfig.from_teacher(teacher_config, layers, heads, ffn, emb_rank, num_labels)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return PrunedStudent(config)


# ---------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------


def load_pretrained_backbone(path: Path, metadata: dict) -> Student:
    model = AutoModelForSequenceClassification.from_pretrained(path)
    return PretrainedStudent(model, metadata["teacher_hidden_size"], metadata["new_modules"])


def load_pruned_backbone(path: Path, metadata: dict) -> Student:
    config = PrunedConfig(**json.loads((path / PRUNED_CONFIG_FILE).read_text()))
    student = PrunedStudent(config)
    student.model.load_state_dict(load_file(str(path / PRUNED_WEIGHTS_FILE)))
    return student


BACKBONE_LOADERS = {"pretrained": load_pretrained_backbone, "pruned": load_pruned_backbone}


def load_student(path) -> Student:
    """Load a student saved by `Student.save`, dispatching on the family in its metadata."""
    path = Path(path)
    metadata = json.loads((path / STUDENT_FILE).read_text())
    student = BACKBONE_LOADERS[metadata["family"]](path, metadata)
    student.load_projection(path / PROJECTION_FILE)
    return student
