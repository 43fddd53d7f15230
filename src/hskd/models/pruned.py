"""The pruned student family (ROSITA-style): a `PrunedBertForSequenceClassification` as a `Student`."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, BertConfig

from hskd.models.pruned_bert import FactorizedEmbedding, PrunedBertConfig, PrunedBertForSequenceClassification
from hskd.models.student import Student, StudentOutput, build_projection


class PrunedStudent(Student):
    """A pruned BERT as a student; it keeps the teacher width, so its projections are Identity."""

    family = "pruned"

    def __init__(self, model: PrunedBertForSequenceClassification):
        super().__init__()
        self.model = model
        self.num_layers = model.config.num_hidden_layers
        self.hidden_size = model.config.hidden_size
        self.teacher_hidden_size = model.config.hidden_size
        self.initializer_range = model.config.initializer_range
        self.projection = build_projection(self.num_layers + 1, self.hidden_size, self.teacher_hidden_size)

    def forward(self, input_ids, attention_mask, token_type_ids) -> StudentOutput:
        out = self.model.bert(input_ids, attention_mask, token_type_ids, output_hidden_states=True)
        return StudentOutput(logits=self.classify(out.pooler_output), hidden_states=out.hidden_states)

    def word_embedding_weight(self) -> nn.Parameter:
        words = self.model.get_input_embeddings()
        return words.factor.weight if isinstance(words, FactorizedEmbedding) else words.weight

    def new_linear_layers(self) -> list[nn.Linear]:
        return []

    def save_backbone(self, out_dir: Path) -> None:
        self.model.save_pretrained(out_dir)

    @classmethod
    def load_backbone(cls, path: Path, metadata: dict) -> PrunedStudent:
        return cls(AutoModelForSequenceClassification.from_pretrained(path))


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
    config = PrunedBertConfig.from_teacher(teacher_config, layers, heads, ffn, emb_rank, num_labels)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return PrunedStudent(PrunedBertForSequenceClassification(config))
