"""Pieces shared by every training loop: optimiser and schedule, batches, the fit loop, evaluation, KD losses."""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup

from hskd.common import metrics
from hskd.models.data import TokenizedSplit
from hskd.models.runtime import autocast, to_device
from hskd.planning.config import MAX_LOG_EVERY
from hskd.planning.plan import steps_for
from hskd.training.bert_adam import bert_adam
from hskd.training.curves import Curves
from hskd.training.resume import Checkpoint, rng_state, set_rng_state


def make_optimizer(
    named_parameters, lr: float, weight_decay: float, schedule: str, warmup_ratio: float, total_steps: int,
    kind: str = "adamw",
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (or the paper's BertAdam, `kind="bertadam"`) over the trainable parameters, with a constant or
    linearly decaying schedule, both with optional linear warmup."""
    named = [(name, p) for name, p in named_parameters if p.requires_grad]
    if kind == "bertadam":
        optimizer = bert_adam(named, lr, weight_decay)
    else:
        # fused: one kernel for all parameters (on 2 CPU cores ~4x faster than the default multi-tensor step)
        optimizer = torch.optim.AdamW([p for _, p in named], lr=lr, weight_decay=weight_decay, fused=True)
    warmup = int(warmup_ratio * total_steps)
    if schedule == "constant":
        return optimizer, get_constant_schedule_with_warmup(optimizer, warmup)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, total_steps)


def batch_stream(split: TokenizedSplit, batch_size: int, total_steps: int, seed: int, group_by_length: bool):
    """Yield `total_steps` index batches, a freshly shuffled epoch (seed + epoch) whenever one runs out."""
    epoch = 0
    while True:
        for index in split.batch_order(batch_size, seed + epoch, shuffle=True, group_by_length=group_by_length):
            if total_steps == 0:
                return
            total_steps -= 1
            yield index
        epoch += 1


@dataclass(frozen=True)
class Optimisation:
    """How a training loop updates: optimiser settings, schedule and batch size."""

    lr: float
    weight_decay: float
    schedule: str  # constant | linear
    warmup_ratio: float
    batch_size: int
    optimizer: str = "adamw"  # adamw | bertadam (protocol_choices.optimizer)
    max_grad_norm: float | None = None  # clip the norm of all gradients together before each update


LOSS_TAIL = MAX_LOG_EVERY  # FitResult.loss: mean over the last steps (and a curve point's window)


@dataclass(frozen=True)
class FitResult:
    steps: int
    seconds: float  # training time, without what `after_step` spent (evaluation)
    loss: float  # mean loss over the last LOSS_TAIL steps


def fit(
    model: torch.nn.Module,
    split: TokenizedSplit,
    optimisation: Optimisation,
    epochs: float,
    seed: int,
    group_by_length: bool,
    device: torch.device,
    loss_fn: Callable[[torch.Tensor, dict[str, torch.Tensor]], torch.Tensor],
    desc: str,
    after_step: Callable[[int, int], float] | None = None,
    checkpoint: Checkpoint | None = None,
    carry: dict | None = None,
    pad_to: int | None = None,
    curves: Curves | None = None,
    tag: str = "",
) -> FitResult:
    """The one training loop: `epochs` over `split` in seeded batches, `loss_fn(index, batch)` per step,
    updating `model`'s trainable parameters.

    `after_step(step, total)` runs after each update and returns the seconds it spent outside training.
    With a `checkpoint`, the training state under the name `desc` (with `carry`, a dict of what `after_step`
    accumulates) is restored if the job stopped during it, and saved whenever a save is due. `pad_to` pads
    every batch to that length (else to its longest example). With `curves`, every `curves.log_every` steps
    and at the end the mean loss since the last point and the learning rate are logged as `tag`/loss and
    `tag`/lr. A non-finite loss stops training."""
    total = steps_for(epochs, -(-len(split) // optimisation.batch_size))
    optimizer, scheduler = make_optimizer(
        model.named_parameters(), optimisation.lr, optimisation.weight_decay, optimisation.schedule,
        optimisation.warmup_ratio, total, optimisation.optimizer,
    )  # fmt: skip
    done, seconds_before, losses = 0, 0.0, deque(maxlen=LOSS_TAIL)
    saved = checkpoint.training(desc) if checkpoint is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        set_rng_state(saved["rng"])
        done, seconds_before = saved["step"], saved["seconds"]
        losses.extend(saved["losses"])
        if carry is not None:
            carry.update(saved["carry"])
        if curves is not None:
            curves.restore(saved["curves"])
    started, outside = time.perf_counter(), 0.0

    def training_seconds() -> float:  # across every attempt of this job, evaluation excluded
        return seconds_before + time.perf_counter() - started - outside

    stream = itertools.islice(batch_stream(split, optimisation.batch_size, total, seed, group_by_length), done, None)
    progress = tqdm(stream, total=total, initial=done, desc=desc, mininterval=10)
    for step, index in enumerate(progress, start=done + 1):
        batch = to_device(split.batch(index, pad_to), device)
        with autocast(device):
            loss = loss_fn(index, batch)
        loss.backward()
        if optimisation.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), optimisation.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"{desc}: loss is {value} at step {step} (non-finite inputs or a diverged "
                                     "model); nothing was written")  # fmt: skip
        losses.append(value)
        if curves is not None and (step % curves.log_every == 0 or step == total):
            since = step - (step - 1) // curves.log_every * curves.log_every  # steps since the last point
            curves.add(f"{tag}/loss", step, sum(itertools.islice(reversed(losses), since)) / since)
            curves.add(f"{tag}/lr", step, scheduler.get_last_lr()[0])
        if after_step is not None:
            outside += after_step(step, total)
        if checkpoint is not None and step < total and checkpoint.due():
            checkpoint.save(desc, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": rng_state(), "step": step, "losses": list(losses),
                "seconds": training_seconds(), "carry": carry or {},
                "curves": curves.points if curves is not None else [],
            })  # fmt: skip
    return FitResult(total, round(training_seconds(), 2), sum(losses) / len(losses))


@torch.no_grad()
def predict_logits(
    logits_fn: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    split: TokenizedSplit,
    device: torch.device,
    batch_size: int = 128,
) -> torch.Tensor:
    """Logits for every example of a split, in order (batches grouped by length for speed)."""
    order = split.lengths.argsort()
    outputs = torch.empty(len(split), *_logit_shape(logits_fn, split, device))
    for index in order.split(batch_size):
        batch = to_device(split.batch(index), device)
        with autocast(device):
            outputs[index] = logits_fn(batch).float().cpu()
    return outputs


def _logit_shape(logits_fn, split: TokenizedSplit, device: torch.device) -> tuple[int, ...]:
    probe = to_device(split.batch(torch.tensor([0])), device)
    with autocast(device):
        return tuple(logits_fn(probe).shape[1:])


def predict(logits_fn, split: TokenizedSplit, task: str, device: torch.device) -> list[int] | list[float]:
    """A model's class ids (or regression scores) for every example of a split, in order."""
    return metrics.predictions_from_logits(task, predict_logits(logits_fn, split, device))


def evaluate(logits_fn, split: TokenizedSplit, task: str, device: torch.device) -> dict[str, float]:
    """The task's GLUE metrics of a model on a split."""
    return metrics.compute_metrics(task, predict(logits_fn, split, task, device), split.labels.tolist())


def collapse_report(
    predictions: list[int] | list[float], value: float, task: str, train: TokenizedSplit, split: TokenizedSplit
) -> dict:
    """The trivial baseline of `split` (from `train`'s labels) and whether `predictions`, scoring `value`,
    collapsed onto it (``hskd.common.metrics.is_collapsed``)."""
    trivial = metrics.trivial_metrics(task, train.labels.tolist(), split.labels.tolist())[metrics.primary_metric(task)]
    distinct = metrics.distinct_predictions(predictions)
    return {
        "dev_trivial": trivial,
        "dev_distinct_predictions": distinct,
        "collapsed": metrics.is_collapsed(distinct, value, trivial),
    }


def task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy, or MSE for regression (one output)."""
    if logits.shape[-1] == 1:
        return F.mse_loss(logits.squeeze(-1), labels.float())
    return F.cross_entropy(logits, labels)


def prediction_kd_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, per_class: bool = False
) -> torch.Tensor:
    """Soft cross-entropy to the teacher's distribution at temperature T (MSE for regression): summed over
    classes and averaged over the batch, or with `per_class` averaged over batch x classes (the paper's
    code, i.e. divided by the number of classes)."""
    if student_logits.shape[-1] == 1:
        return F.mse_loss(student_logits, teacher_logits)
    targets = F.softmax(teacher_logits / temperature, dim=-1)
    cross_entropy = -(targets * F.log_softmax(student_logits / temperature, dim=-1))
    return cross_entropy.mean() if per_class else cross_entropy.sum(-1).mean()
