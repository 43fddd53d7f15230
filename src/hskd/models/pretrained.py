"""The pretrained student family (TinyBERT-style): an HF BERT checkpoint, optionally truncated to its first
layers."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, BertConfig, PreTrainedModel

from hskd.common.model_names import resolve_model_name
from hskd.models.dropout import use_cheap_dropout
from hskd.models.student import Student, StudentOutput, build_projection


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
        out = self.model.bert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            output_hidden_states=True,
        )
        return StudentOutput(logits=self.classify(out.pooler_output), hidden_states=tuple(out.hidden_states))

    def word_embedding_weight(self) -> nn.Parameter:
        return self.model.get_input_embeddings().weight

    def new_linear_layers(self) -> list[nn.Linear]:
        modules = [self.model.get_submodule(name) for name in self.new_modules]
        return [m for module in modules for m in module.modules() if isinstance(m, nn.Linear)]

    def save_backbone(self, out_dir: Path) -> None:
        self.model.save_pretrained(out_dir)

    @classmethod
    def load_backbone(cls, path: Path, metadata: dict) -> PretrainedStudent:
        model = AutoModelForSequenceClassification.from_pretrained(path)
        return cls(model, metadata["teacher_hidden_size"], metadata["new_modules"])

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
