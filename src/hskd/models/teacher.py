"""The teacher: building it, loading the fine-tuned one, its fingerprint, and one pass over a batch (hidden
states, [CLS] attention rows, logits)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification

from hskd.common.io import file_sha256
from hskd.models import hub as models
from hskd.models.runtime import autocast
from hskd.planning.config import TeacherConfig

WEIGHTS_FILE = "model.safetensors"


def initial_teacher(teacher: TeacherConfig, num_labels: int, vocab_size: int):
    """The teacher before fine-tuning: pretrained weights, or random weights of `random_init`'s shape."""
    if teacher.random_init:
        shape = teacher.random_init
        return models.random_classifier(
            num_labels, shape.layers, shape.hidden, shape.heads, shape.ffn, vocab_size, teacher.seed
        )
    return models.load_classifier(teacher.model, num_labels)


def attention_implementation(attentions: bool) -> str:
    """Only eager attention returns attention rows ([CLS] attention); SDPA is faster when none are needed."""
    return "eager" if attentions else "sdpa"


def load_teacher(teacher_dir: str | Path, device: torch.device, attentions: bool = False):
    """The fine-tuned teacher in eval mode, able to return attention rows if `attentions`."""
    model = AutoModelForSequenceClassification.from_pretrained(
        str(teacher_dir), attn_implementation=attention_implementation(attentions)
    )
    return model.to(device).eval()


def teacher_fingerprint(teacher_dir: str | Path) -> str:
    return file_sha256(Path(teacher_dir) / WEIGHTS_FILE)


def _inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: batch[name] for name in ("input_ids", "attention_mask", "token_type_ids")}


@dataclass
class TeacherPass:
    """What one teacher forward pass gives the HSK compression, padded to max_seq_length so that a
    cell's store has a fixed size per example and online/offline compression see the same inputs."""

    hidden_states: torch.Tensor  # [Lt+1, B, T, D] float32
    cls_attention: torch.Tensor | None  # [B, T]: last layer's [CLS] row (`cls_attention_rows`)
    input_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor  # [B, T]
    logits: torch.Tensor  # [B, C]
    layer_attention: torch.Tensor | None = None  # [Lt, B, T]: every layer's [CLS] row


def cls_attention_row(attentions: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """[B, T] attention paid by [CLS] (query 0) to every token in the last layer, averaged over heads, from
    per-layer attention probabilities [B, heads, T(query), T(key)]."""
    return cls_attention_rows(attentions)[-1]


def cls_attention_rows(attentions: tuple[torch.Tensor, ...], score: str = "probability") -> torch.Tensor:
    """[Lt, B, T]: per layer, the [CLS] (query 0) row averaged over heads, of the attention probabilities
    (``probability``) or of their logarithms (``logit``). The mean over heads of log-probabilities ranks the
    real tokens as the mean of the pre-softmax scores does (the paper's code): per head they differ by a
    constant of the row. Padding (probability 0) ranks last either way."""
    rows = torch.stack([layer[:, :, 0, :].float() for layer in attentions])  # [Lt, B, heads, T]
    if score == "logit":
        rows = rows.clamp_min(torch.finfo(torch.float32).tiny).log()
    return rows.mean(2)


@torch.no_grad()
def teacher_pass(
    model, batch: dict[str, torch.Tensor], max_seq_length: int, attentions: bool, token_score: str = "probability"
) -> TeacherPass:
    """Hidden states, logits and (if `attentions`, which needs eager attention) [CLS] attention rows of every
    layer (`cls_attention_rows` with `token_score`)."""
    with autocast(batch["input_ids"].device):
        out = model(**_inputs(batch), output_hidden_states=True, output_attentions=attentions)
    pad = max_seq_length - batch["input_ids"].shape[1]
    hidden = torch.stack(out.hidden_states).float()
    # padding scores below every real token's, whatever the score
    rows = F.pad(cls_attention_rows(out.attentions, token_score), (0, pad), value=-1e30) if attentions else None
    return TeacherPass(
        hidden_states=F.pad(hidden, (0, 0, 0, pad)) if pad else hidden,
        cls_attention=rows[-1] if attentions else None,
        layer_attention=rows,
        input_ids=F.pad(batch["input_ids"], (0, pad)),
        attention_mask=F.pad(batch["attention_mask"], (0, pad)),
        logits=out.logits.float(),
    )
