"""Teacher fine-tuning on a GLUE task, resumable, with its dev report."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from hskd.common import glue
from hskd.common.io import file_sha256, package_versions, write_json_atomic
from hskd.common.metrics import compute_metrics
from hskd.models import hub as models
from hskd.models.data import TokenizedSplit
from hskd.models.dropout import use_cheap_dropout
from hskd.models.runtime import setup_runtime
from hskd.models.teacher import _inputs, initial_teacher
from hskd.planning.config import TeacherConfig
from hskd.training.curves import Curves
from hskd.training.loop import Optimisation, collapse_report, fit, predict, task_loss
from hskd.training.resume import Checkpoint, job_key
from hskd.training.tracking import publish

RESUME_FILE = "resume.pt"
TEACHER_PARAMS = ("model", "lr", "epochs", "batch_size", "seed")  # a teacher's MLflow parameters, of its config


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
    tracking: str = "tensorboard",
    log_every: int = 10,
) -> dict:
    """Fine-tune the teacher; save an HF checkpoint with tokenizer and metrics.json into `out_dir`.

    With `checkpoint_minutes` > 0 the training state is saved that often to `out_dir`/resume.pt, and a
    rerun after an interruption continues from it (`hskd.training.resume`). With `tracking` other than none
    its curves go where it says (`hskd.training.tracking`)."""
    device = setup_runtime(threads, teacher.seed, precision)
    spec = glue.get_task(task)
    tokenizer = models.load_tokenizer(teacher.model)
    model = use_cheap_dropout(initial_teacher(teacher, spec.num_labels, tokenizer.vocab_size)).to(device)
    train, dev = TokenizedSplit.load(train_path), TokenizedSplit.load(dev_path)
    optimisation = Optimisation(teacher.lr, teacher.weight_decay, "linear", teacher.warmup_ratio, teacher.batch_size,
                                max_grad_norm=teacher.max_grad_norm)  # fmt: skip
    key = job_key(task=task, teacher=asdict(teacher), train=file_sha256(train_path), group_by_length=group_by_length,
                  threads=threads, device=device.type, precision=precision)  # fmt: skip
    checkpoint = Checkpoint(Path(out_dir) / RESUME_FILE, key, checkpoint_minutes)

    def dev_value() -> float:
        model.eval()
        predictions = predict(lambda b: model(**_inputs(b)).logits, dev, task, device)
        model.train()
        return compute_metrics(task, predictions, dev.labels.tolist())[spec.metric]

    best: dict = {"step": None, "dev": None, "weights": None}  # the best dev checkpoint (teacher.eval_every)
    curves = Curves(log_every)

    def keep_best(step: int, total: int) -> float:
        if teacher.eval_every is None or (step % teacher.eval_every and step != total):
            return 0.0
        started = time.perf_counter()
        value = dev_value()
        curves.add("teacher/dev", step, value)
        if best["dev"] is None or value > best["dev"]:  # a later checkpoint must be strictly better, as bert_ft.py
            best.update(step=step, dev=value, weights={name: tensor.detach().clone()
                                                       for name, tensor in model.state_dict().items()})  # fmt: skip
        return time.perf_counter() - started

    model.train()
    log = fit(
        model, train, optimisation, teacher.epochs, teacher.seed, group_by_length, device,
        lambda index, batch: task_loss(model(**_inputs(batch)).logits.float(), batch["labels"]), f"teacher {task}",
        after_step=keep_best, checkpoint=checkpoint, carry=best, curves=curves, tag="teacher",
    )  # fmt: skip
    if best["weights"] is not None:
        model.load_state_dict(best["weights"])
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
        "selected_step": best["step"] or log.steps,  # the step whose weights were saved
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
    if tracking != "none":
        curves.add("final/dev", log.steps, result["dev"])
        params = {"task": task, **{key: result["config"][key] for key in TEACHER_PARAMS}, "precision": precision}
        publish(curves, out_dir, tracking, params)
    write_json_atomic(result, Path(out_dir) / "metrics.json")
    checkpoint.remove()
    return result
