"""The ROSITA-style pruned BERT as a transformers model: fewer layers, heads and FFN neurons than the BERT it
was cut from, and optionally a factorised word embedding.

Importing this module registers it with the Auto classes (model type `hskd_pruned_bert`), so that a saved
pruned student loads with `AutoModelForSequenceClassification.from_pretrained(folder)`. Dropout and attention
are `hskd.models.dropout`'s, whatever `attn_implementation` says."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    BertConfig,
    PreTrainedConfig,
    PreTrainedModel,
)
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput
from transformers.utils.generic import can_return_tuple

from hskd.models.dropout import Dropout, attention

MODEL_TYPE = "hskd_pruned_bert"


class PrunedBertConfig(PreTrainedConfig):
    """A BERT config whose heads times `head_dim` need not equal `hidden_size`; `emb_rank` factorises the
    word embedding (None: a full matrix)."""

    model_type = MODEL_TYPE

    def __init__(
        self,
        vocab_size: int = 30522,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        head_dim: int = 64,
        intermediate_size: int = 3072,
        emb_rank: int | None = None,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        layer_norm_eps: float = 1e-12,
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        classifier_dropout: float | None = None,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.head_dim = head_dim
        self.intermediate_size = intermediate_size
        self.emb_rank = emb_rank
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.layer_norm_eps = layer_norm_eps
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.classifier_dropout = classifier_dropout
        self.initializer_range = initializer_range
        super().__init__(**kwargs)

    @classmethod
    def from_teacher(
        cls, teacher: BertConfig, layers: int, heads: int, ffn: int, emb_rank: int | None, num_labels: int
    ) -> PrunedBertConfig:
        """The config of a student cut from `teacher` with `layers` layers of `heads` heads and `ffn` neurons."""
        if teacher.hidden_act != "gelu":
            raise ValueError(f"PrunedBert supports hidden_act 'gelu' only, not {teacher.hidden_act!r}")
        classifier_dropout = teacher.classifier_dropout
        if classifier_dropout is None:
            classifier_dropout = teacher.hidden_dropout_prob
        return cls(
            vocab_size=teacher.vocab_size,
            hidden_size=teacher.hidden_size,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            head_dim=teacher.hidden_size // teacher.num_attention_heads,
            intermediate_size=ffn,
            emb_rank=emb_rank,
            max_position_embeddings=teacher.max_position_embeddings,
            type_vocab_size=teacher.type_vocab_size,
            layer_norm_eps=teacher.layer_norm_eps,
            hidden_dropout_prob=teacher.hidden_dropout_prob,
            attention_probs_dropout_prob=teacher.attention_probs_dropout_prob,
            classifier_dropout=classifier_dropout,
            initializer_range=teacher.initializer_range,
            num_labels=num_labels,
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
    def __init__(self, config: PrunedBertConfig):
        super().__init__()
        if config.emb_rank is None:
            self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        else:
            self.word_embeddings = FactorizedEmbedding(config.vocab_size, config.emb_rank, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

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

    def __init__(self, config: PrunedBertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        width = self.num_heads * self.head_dim
        self.query = nn.Linear(config.hidden_size, width)
        self.key = nn.Linear(config.hidden_size, width)
        self.value = nn.Linear(config.hidden_size, width)
        self.output = nn.Linear(width, config.hidden_size)
        self.attention_dropout = config.attention_probs_dropout_prob
        self.dropout = Dropout(config.hidden_dropout_prob)
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
    def __init__(self, config: PrunedBertConfig):
        super().__init__()
        self.attention = PrunedAttention(config)
        self.intermediate = nn.Linear(config.hidden_size, config.intermediate_size)
        self.output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = Dropout(config.hidden_dropout_prob)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden: torch.Tensor, attend: torch.Tensor | None) -> torch.Tensor:
        attended = self.attention(hidden, attend)
        ffn_out = self.output(F.gelu(self.intermediate(attended)))
        return self.LayerNorm(attended + self.dropout(ffn_out))


class PrunedBertPreTrainedModel(PreTrainedModel):
    config_class = PrunedBertConfig
    base_model_prefix = "bert"


class PrunedBertModel(PrunedBertPreTrainedModel):
    """The encoder with its pooler (tanh of a Linear on the first token), as in `BertModel`."""

    def __init__(self, config: PrunedBertConfig):
        super().__init__(config)
        self.embeddings = PrunedEmbeddings(config)
        self.layers = nn.ModuleList(PrunedLayer(config) for _ in range(config.num_hidden_layers))
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.word_embeddings

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
    ) -> BaseModelOutputWithPooling:
        """`hidden_states`, when asked for, are the embeddings output followed by every layer output."""
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        hidden = self.embeddings(input_ids, token_type_ids)
        # [B, 1, 1, T], True = a real token; None without padding, which spares masking every layer
        attend = None
        if attention_mask is not None and not bool(attention_mask.all()):
            attend = attention_mask.bool()[:, None, None, :]
        hidden_states = [hidden]
        for layer in self.layers:
            hidden = layer(hidden, attend)
            hidden_states.append(hidden)
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden,
            pooler_output=torch.tanh(self.pooler(hidden[:, 0])),
            hidden_states=tuple(hidden_states) if output_hidden_states else None,
        )


class PrunedBertForSequenceClassification(PrunedBertPreTrainedModel):
    def __init__(self, config: PrunedBertConfig):
        super().__init__(config)
        self.bert = PrunedBertModel(config)
        dropout = config.classifier_dropout
        self.dropout = Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.bert.get_input_embeddings()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
    ) -> SequenceClassifierOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, output_hidden_states=output_hidden_states)
        logits = self.classifier(self.dropout(out.pooler_output))
        loss = None
        if labels is not None:
            loss = self.loss_function(labels=labels, pooled_logits=logits, config=self.config)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)


AutoConfig.register(MODEL_TYPE, PrunedBertConfig, exist_ok=True)
AutoModel.register(PrunedBertConfig, PrunedBertModel, exist_ok=True)
AutoModelForSequenceClassification.register(PrunedBertConfig, PrunedBertForSequenceClassification, exist_ok=True)
