"""Teacher fine-tuning on a GLUE task, and loading the fine-tuned teacher."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification

from hskd import glue, models
from hskd.config import TeacherConfig
from hskd.data import TokenizedSplit
from hskd.dropout import use_cheap_dropout
from hskd.io import package_versions, write_json_atomic
from hskd.metrics import compute_metrics
from hskd.resume import Checkpoint, job_key
from hskd.store import file_sha256
from hskd.training import Optimisation, autocast, collapse_report, fit, predict, setup_runtime, task_loss

WEIGHTS_FILE = "model.safetensors"
RESUME_FILE = "resume.pt"


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


def finetune(
    task: str,
    teacher: TeacherConfig,
    train_path: str,
    dev_path: str,
    out_dir: str,
    threads: int,
    group_by_length: bool,
    checkpoint_minutes: float = 0,
    precision: str = "auto",
) -> dict:
    """Fine-tune the teacher; save an HF checkpoint with tokenizer and metrics.json into `out_dir`.

    With `checkpoint_minutes` > 0 the training state is saved that often to `out_dir`/resume.pt, and a
    rerun after an interruption continues from it (`hskd.resume`)."""
    device = setup_runtime(threads, teacher.seed, precision)
    spec = glue.get_task(task)
    tokenizer = models.load_tokenizer(teacher.model)
    model = use_cheap_dropout(initial_teacher(teacher, spec.num_labels, tokenizer.vocab_size)).to(device)
    train, dev = TokenizedSplit.load(train_path), TokenizedSplit.load(dev_path)
    optimisation = Optimisation(teacher.lr, teacher.weight_decay, "linear", teacher.warmup_ratio, teacher.batch_size)
    key = job_key(task=task, teacher=asdict(teacher), train=file_sha256(train_path), group_by_length=group_by_length,
                  threads=threads, device=device.type, precision=precision)  # fmt: skip
    checkpoint = Checkpoint(Path(out_dir) / RESUME_FILE, key, checkpoint_minutes)
    model.train()
    log = fit(
        model, train, optimisation, teacher.epochs, teacher.seed, group_by_length, device,
        lambda index, batch: task_loss(model(**_inputs(batch)).logits.float(), batch["labels"]), f"teacher {task}",
        checkpoint=checkpoint,
    )  # fmt: skip
    model.eval()
    dev_predictions = predict(lambda b: model(**_inputs(b)).logits, dev, task, device)
    dev_metrics = compute_metrics(task, dev_predictions, dev.labels.tolist())
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    result = {
        "task": task,
        "metric": spec.metric,
        "dev": dev_metrics[spec.metric],
        "dev_metrics": dev_metrics,
        **collapse_report(dev_predictions, dev_metrics[spec.metric], task, train, dev),
        "data": {"train": train.facts, "dev": dev.facts},
        "steps": log.steps,
        "train_seconds": log.seconds,
        "train_loss": log.loss,
        "train_examples": len(train),
        "dev_examples": len(dev),
        "config": {**teacher.__dict__, "random_init": teacher.random_init and teacher.random_init.__dict__},
        "threads": threads,
        "device": device.type,
        "precision": precision,
        "versions": package_versions(),
    }
    write_json_atomic(result, Path(out_dir) / "metrics.json")
    checkpoint.remove()
    return result


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
