"""The teacher: building it, loading the fine-tuned one, its fingerprint, and one pass over a batch (hidden
states, [CLS] attention rows, logits)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, AutoModelForSequenceClassification
from transformers.models.bert.modeling_bert import eager_attention_forward

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


SCORES_ATTENTION = "hskd_cls_scores"


def cls_scores_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Eager attention that returns, in place of the probabilities, the [CLS] query's pre-softmax scores
    [B, heads, 1, T] without the padding mask: what the paper's BERT ranks tokens by, less the -10000 it adds
    at padding (`select_tokens` ranks padding after real tokens by itself). Probabilities lose the order of
    padding positions (they are all 0), which the paper's code selects once k passes a sentence's length."""
    output, _ = eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout, **kwargs)
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    return output, torch.matmul(query[:, :, :1], key.transpose(2, 3)) * scaling


AttentionInterface.register(SCORES_ATTENTION, cls_scores_attention)


def attention_implementation(attentions: bool, token_score: str = "probability") -> str:
    """Only eager attention returns attention rows ([CLS] attention), and `cls_scores_attention` the pre-softmax
    scores (``token_score: score``); SDPA is faster when none are needed."""
    if not attentions:
        return "sdpa"
    return SCORES_ATTENTION if token_score == "score" else "eager"


def load_teacher(teacher_dir: str | Path, device: torch.device, attentions: bool = False,
                 token_score: str = "probability"):  # fmt: skip
    """The fine-tuned teacher in eval mode, able to return the attention rows `token_score` ranks by if
    `attentions`."""
    model = AutoModelForSequenceClassification.from_pretrained(
        str(teacher_dir), attn_implementation=attention_implementation(attentions, token_score)
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
    (``probability``), of their logarithms (``logit``) or of the pre-softmax scores `cls_scores_attention`
    returns (``score``, the paper's). The mean over heads of log-probabilities ranks the real tokens as the
    mean of the scores does: per head they differ by a constant of the row. Padding (probability 0) ties
    under the first two; `select_tokens` ranks it after real tokens under all three."""
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
