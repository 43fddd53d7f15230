"""The interface shared by the student families: logits plus all hidden states, and one projection per
hidden-state index (or one shared by all of them) that maps the student width to the teacher width of the HSK
targets."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

STUDENT_FILE = "hskd_student.json"
PROJECTION_FILE = "projection.safetensors"


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
    model: nn.Module  # an HF BERT for sequence classification: .bert, .dropout, .classifier
    initializer_range: float = 0.02
    head: str = "dropout"  # protocol_choices.student_head

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits from the pooled [CLS] state: the classifier on its dropout (transformers' head), or on its ReLU
        with no dropout (`head` "relu": the paper's TinyBERT and ROSITA heads, transformer/modeling.py L1460)."""
        return self.model.classifier(torch.relu(pooled) if self.head == "relu" else self.model.dropout(pooled))

    def forward(self, input_ids, attention_mask, token_type_ids) -> StudentOutput:
        raise NotImplementedError

    def project(self, layer: int, hidden: torch.Tensor) -> torch.Tensor:
        """Map student hidden state number `layer` (0 = embeddings) to the teacher width."""
        return self.projection[0 if len(self.projection) == 1 else layer](hidden)

    def share_projection(self) -> None:
        """One projection for every hidden state (protocol_choices.projection "shared": the paper's TinyBERT
        student has one `fit_dense`, transformer/modeling.py L1452, L1465), drawn by `reset_new_parameters`.
        Nothing changes where the widths match (no projection)."""
        first = self.projection[0]
        if isinstance(first, nn.Linear):
            self.projection = nn.ModuleList([nn.Linear(first.in_features, first.out_features)])

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

    @classmethod
    def load_backbone(cls, path: Path, metadata: dict) -> Student:
        """The student `save_backbone` wrote to `path`, without its projections."""
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
