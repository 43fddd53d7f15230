"""A student run: stage 1 (HSK distillation from a store, or from the teacher online) and stage 2
(prediction distillation on the cached teacher logits), evaluated with the task's GLUE metric."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from hskd.common import glue
from hskd.common.io import dir_sha256, file_sha256, package_versions, peak_rss_mb, write_json_atomic
from hskd.hsk.compression import HSKBatch, hsk_loss, real_fraction
from hskd.hsk.sources import CachedHSK, OnlineHSK
from hskd.hsk.store import HSKStore, load_logits
from hskd.models.data import TokenizedSplit
from hskd.models.runtime import seed_all, setup_runtime
from hskd.models.student import Student
from hskd.models.students import load_student
from hskd.models.teacher import teacher_fingerprint
from hskd.planning.cells import Cell, parse_cell
from hskd.planning.config import StageConfig
from hskd.planning.grid import store_bytes_per_example
from hskd.planning.paths import cell_wildcards
from hskd.planning.protocol import PRESETS, Protocol
from hskd.training.curves import Curves
from hskd.training.loop import Optimisation, collapse_report, evaluate, fit, predict, prediction_kd_loss, task_loss
from hskd.training.resume import Checkpoint, job_key
from hskd.training.tracking import publish

RESUME_SUFFIX = ".resume.pt"  # beside the run's metrics.json: metrics.resume.pt


@dataclass(frozen=True)
class RunSettings:
    """Everything one run needs; the Snakefile passes these from the config and the target path."""

    task: str
    student: str
    cell: str
    lr: float
    seed: int
    stage1: StageConfig
    stage2: StageConfig
    width_loss: str
    freeze_word_embeddings: bool
    group_by_length: bool
    threads: int  # `hskd distill --threads`, not the rule's settings param: a thread count must rerun no run
    kd_mode: str  # cached | online (depth=none runs have no HSK stage)
    precision: str = "auto"  # hskd.planning.config.PRECISIONS
    protocol: dict[str, str] = field(default_factory=PRESETS["hskd"].as_dict)  # hskd.planning.protocol.Protocol fields

    @property
    def choices(self) -> Protocol:
        return Protocol(**self.protocol)


@dataclass(frozen=True)
class RunInputs:
    student_dir: str
    teacher_dir: str
    train: str
    heldout: str
    dev: str
    logits: str
    store: str | None


def _student_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: batch[name] for name in ("input_ids", "attention_mask", "token_type_ids")}


@dataclass
class Stage1Loss:
    """The stage-1 loss of a batch, and the mean real-token HSK fraction (`real_fraction`) of what it used.

    `padding_counts` (paper protocol): batches come padded to max_seq_length and every selected position
    counts, padding too. Otherwise selected positions that are padding carry no loss and the token axis is
    cut to the batch's largest count of real selected tokens (real positions precede padding, indices are
    sorted). A ``magnitude_batch`` cell's mask is drawn here, from the batch's target."""

    student: Student
    cell: Cell
    mode: str
    padding_counts: bool
    totals: dict = field(default_factory=lambda: {"real_sum": 0.0, "real_count": 0})  # saved with a checkpoint

    def __call__(self, batch: dict[str, torch.Tensor], hsk: HSKBatch) -> torch.Tensor:
        fractions: list[torch.Tensor] = []
        loss = stage1_loss(self.student, batch, hsk, self.mode, self.padding_counts, self.cell, fractions)
        for part in fractions:
            self.totals["real_sum"] += float(part.sum())
            self.totals["real_count"] += len(part)
        return loss

    @property
    def real_fraction(self) -> float | None:
        count = self.totals["real_count"]
        return round(self.totals["real_sum"] / count, 6) if count else None


def stage1_loss(
    student: Student, batch: dict[str, torch.Tensor], hsk: HSKBatch, mode: str, padding_counts: bool = False,
    cell: Cell | None = None, real_fractions: list[torch.Tensor] | None = None,
) -> torch.Tensor:  # fmt: skip
    """Sum over the cell's layers of the HSK loss on the cell's tokens and width mask (see `Stage1Loss`);
    the per-example real-token HSK fractions [B] are appended to `real_fractions` when given."""
    device = batch["input_ids"].device
    lengths = batch["attention_mask"].sum(1)
    token_index = hsk.token_index.to(device)  # [B, K], or [B, L, K] with a token set per layer
    token_mask = token_index < lengths.view(-1, *[1] * (token_index.ndim - 1))
    kept = token_index.shape[-1] if padding_counts else int(token_mask.sum(-1).max())
    token_index = token_index[..., :kept].clamp(max=batch["input_ids"].shape[1] - 1)
    token_mask = token_mask[..., :kept]
    every_token = torch.equal(token_index, torch.arange(kept, device=device).expand_as(token_index))
    target = hsk.target[:, :, :kept].to(device, non_blocking=True).float()
    # [1, 1, 1, D] for static width schemes: a view over the layers, no copy.
    keep_mask = hsk.keep_mask[..., :kept, :].expand(-1, len(hsk.student_layers), -1, -1).to(device)
    if cell is not None and cell.width.kind == "per_batch":
        keep_mask = cell.width.strategy.batch_mask(target, cell.width.fraction, None if padding_counts else token_mask)
    hidden_states = student(**_student_inputs(batch)).hidden_states
    if real_fractions is not None:
        layers = len(hsk.student_layers)
        real_fractions.append(real_fraction(keep_mask, token_index, lengths, layers, len(hidden_states)))
    loss = torch.zeros((), device=device)
    for position, layer in enumerate(hsk.student_layers):
        hidden = hidden_states[layer]
        layer_index, layer_mask = (
            (token_index[:, position], token_mask[:, position]) if token_index.ndim == 3 else (token_index, token_mask)
        )
        if every_token:  # positions 0..kept-1 in order: a view, not a gather
            selected = hidden[:, :kept]
        else:
            selected = hidden.gather(1, layer_index[..., None].expand(-1, -1, hidden.shape[-1]))
        loss = loss + hsk_loss(
            student.project(layer, selected).float(), target[:, position], keep_mask[:, position], mode,
            token_mask=None if padding_counts else layer_mask,
        )  # fmt: skip
    return loss


def stage2_loss(
    logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float, protocol: Protocol
) -> torch.Tensor:
    """Prediction distillation: soft cross-entropy to the teacher (scaled as `protocol.soft_ce` says); for a
    regression task MSE to the teacher's output, or to the gold label (`protocol.regression_target`)."""
    if logits.shape[-1] == 1 and protocol.regression_target == "gold":
        return task_loss(logits, labels)
    return prediction_kd_loss(logits, teacher_logits, temperature, per_class=protocol.soft_ce == "per_class")


def _evaluate_student(student: Student, split: TokenizedSplit, task: str, device) -> float:
    student.eval()
    value = evaluate(lambda b: student(**_student_inputs(b)).logits, split, task, device)
    student.train()
    return value[glue.get_task(task).metric]


def run(
    settings: RunSettings, inputs: RunInputs, out_path: str, checkpoint_minutes: float = 0,
    tracking: str = "tensorboard", log_every: int = 10,
) -> dict:  # fmt: skip
    """Train and evaluate one student run; write its metrics.json to `out_path`.

    With `checkpoint_minutes` > 0 the run's state is saved that often beside `out_path` (suffix
    `RESUME_SUFFIX`), and a rerun after an interruption continues from it (`hskd.training.resume`). With
    `tracking` other than none its curves go where it says (`hskd.training.tracking`)."""
    device = setup_runtime(settings.threads, settings.seed, settings.precision)
    cell = parse_cell(settings.cell)
    spec = glue.get_task(settings.task)
    train, heldout, dev = (TokenizedSplit.load(p) for p in (inputs.train, inputs.heldout, inputs.dev))
    teacher_sha, data_sha = teacher_fingerprint(inputs.teacher_dir), file_sha256(inputs.train)
    teacher_logits = load_logits(inputs.logits, teacher_sha256=teacher_sha, data_sha256=data_sha)
    student = load_student(inputs.student_dir).to(device)
    if settings.choices.projection == "shared":
        student.share_projection()
    student.reset_new_parameters(settings.seed)
    student.head = settings.choices.student_head
    if settings.freeze_word_embeddings:
        student.freeze_word_embeddings()
    student.train()
    # Loading a model may draw from the global generator (how often depends on the model class and the
    # transformers version); seeding again here makes dropout depend on the run's seed alone.
    seed_all(settings.seed)
    key = job_key(settings=asdict(settings), teacher=teacher_sha, data=data_sha, student=dir_sha256(inputs.student_dir),
                  store=inputs.store, device=device.type)  # fmt: skip
    checkpoint = Checkpoint(Path(out_path).with_suffix(RESUME_SUFFIX), key, checkpoint_minutes)
    result: dict = {"teacher_loaded": False, "kd_mode": "none", "dev_after_stage1": None}
    curves = Curves(log_every)
    if cell.is_none:  # its one stage is settings.stage2 (StudyConfig.prediction_only_stage)
        result.update(stage1_steps=0, stage1_seconds=0.0, stage1_loss=None)
    else:

        def stage1() -> dict:
            protocol = settings.choices
            if settings.kd_mode == "cached":
                store = HSKStore(inputs.store, teacher_sha256=teacher_sha, data_sha256=data_sha)
                source = CachedHSK(store, cell, protocol)
            else:
                source = OnlineHSK.load(inputs.teacher_dir, cell, student.num_layers, train.max_seq_length, device,
                                        protocol)  # fmt: skip
            return {**_stage1(student, source, train, dev, cell, settings, device, checkpoint, curves),
                    "curve_points": list(curves.points)}  # fmt: skip

        result.update(checkpoint.once("stage1", stage1))
        curves.restore(result.pop("curve_points"))  # stage 1's curve, also when it finished in an earlier attempt
    result.update(_stage2(student, train, dev, teacher_logits, settings, device, checkpoint, curves))
    # no held-out slice (data.heldout_size 0: the whole split trains, selection is on dev)
    result["heldout_final"] = _evaluate_student(student, heldout, settings.task, device) if len(heldout) else None
    student.eval()
    dev_predictions = predict(lambda b: student(**_student_inputs(b)).logits, dev, settings.task, device)
    result.update(collapse_report(dev_predictions, result["dev_final"], settings.task, train, dev))
    hidden_size = _teacher_hidden_size(inputs.teacher_dir)
    metrics = {
        "task": settings.task,
        "student": settings.student,
        **cell_wildcards(cell),
        "cell": str(cell),
        "lr": settings.lr,
        "stage1_lr": None if cell.is_none else settings.stage1.lr,
        "seed": settings.seed,
        "hsk_fraction": cell.hsk_fraction(student.num_layers, train.max_seq_length, hidden_size=hidden_size),
        "hsk_fraction_real": 0.0 if cell.is_none else result.pop("hsk_fraction_real"),
        "hsk_bytes_per_example": 0 if cell.is_none else store_bytes_per_example(
            cell, student.num_layers, hidden_size, train.max_seq_length, settings.choices.per_layer_tokens),
        "metric": spec.metric,
        **result,
        "train_examples": len(train),
        "width_loss": settings.width_loss,
        "protocol": settings.protocol["name"],
        "protocol_choices": {key: value for key, value in settings.protocol.items() if key != "name"},
        "freeze_word_embeddings": settings.freeze_word_embeddings,
        "threads": settings.threads,
        "device": device.type,
        "precision": settings.precision,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "settings": {"stage1": asdict(settings.stage1), "stage2": asdict(settings.stage2)},
        "versions": package_versions(),
    }
    if tracking != "none":
        for name in ("dev_final", "dev_best", "heldout_final", "stage1_loss", "stage2_loss"):  # at stage 2's last step
            if metrics[name] is not None:
                curves.add(f"final/{name}", result["stage2_steps"], metrics[name])
        publish(curves, Path(out_path).parent, tracking, run_params(metrics))
    write_json_atomic(metrics, out_path)
    checkpoint.remove()
    return metrics


RUN_PARAMS = ("task", "student", "cell", "depth", "length", "width", "lr", "stage1_lr", "seed", "kd_mode",
              "hsk_fraction", "protocol", "precision", "device")  # fmt: skip


def run_params(metrics: dict) -> dict:
    """What names a run in a tracking server's run table: its cell, learning rates, seed and protocol."""
    choices = {f"protocol.{key}": value for key, value in metrics["protocol_choices"].items()}
    return {**{key: metrics[key] for key in RUN_PARAMS}, **choices}


def _teacher_hidden_size(teacher_dir: str) -> int:
    """The teacher's width, read from its config (the teacher itself is not loaded)."""
    return json.loads((Path(teacher_dir) / "config.json").read_text())["hidden_size"]


def _optimisation(stage: StageConfig, lr: float, protocol: Protocol) -> Optimisation:
    return Optimisation(lr, stage.weight_decay, stage.schedule, stage.warmup_ratio, stage.batch_size,
                        protocol.optimizer)


def _stage1(
    student: Student, source: CachedHSK | OnlineHSK, train: TokenizedSplit, dev: TokenizedSplit, cell: Cell,
    settings: RunSettings, device: torch.device, checkpoint: Checkpoint, curves: Curves,
) -> dict:  # fmt: skip
    """HSK distillation from `source`, then the dev metric after it."""
    result: dict = {"kd_mode": settings.kd_mode, "teacher_loaded": isinstance(source, OnlineHSK)}
    stage = settings.stage1
    padding_counts = settings.choices.pads_to_max
    loss = Stage1Loss(student, cell, settings.width_loss, padding_counts)
    # With padding in the loss every batch is padded to max_seq_length, so length grouping changes nothing
    # but which examples share a batch: off, as in the paper's code.
    log = fit(
        student, train, _optimisation(stage, stage.lr, settings.choices), stage.epochs, settings.seed,
        settings.group_by_length and not padding_counts, device,
        lambda index, batch: loss(batch, source(index, batch)),
        f"stage 1 {cell}", checkpoint=checkpoint, carry=loss.totals,
        pad_to=train.max_seq_length if padding_counts else None, curves=curves, tag="stage1",
    )  # fmt: skip
    result.update(stage1_steps=log.steps, stage1_seconds=log.seconds, stage1_loss=log.loss)
    result["hsk_fraction_real"] = loss.real_fraction
    result["dev_after_stage1"] = _evaluate_student(student, dev, settings.task, device)
    curves.add("stage1/dev", log.steps, result["dev_after_stage1"])
    return result


def _stage2(
    student: Student, train: TokenizedSplit, dev: TokenizedSplit, teacher_logits: torch.Tensor, settings: RunSettings,
    device: torch.device, checkpoint: Checkpoint, curves: Curves,
) -> dict:  # fmt: skip
    stage = settings.stage2
    progress: dict[str, list[float]] = {"dev_values": []}

    def evaluate_dev(step: int, total: int) -> float:
        if step % stage.eval_every and step != total:
            return 0.0
        started = time.perf_counter()
        progress["dev_values"].append(_evaluate_student(student, dev, settings.task, device))
        curves.add("stage2/dev", step, progress["dev_values"][-1])
        return time.perf_counter() - started

    protocol = settings.choices

    def loss_fn(index: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = student(**_student_inputs(batch)).logits.float()
        return stage2_loss(logits, teacher_logits[index].to(device), batch["labels"], stage.temperature, protocol)

    # A different stream from stage 1's: the seed offset keeps the two stages' data orders independent.
    log = fit(student, train, _optimisation(stage, settings.lr, settings.choices), stage.epochs, settings.seed + 10_000,
              settings.group_by_length, device, loss_fn, "stage 2", after_step=evaluate_dev, checkpoint=checkpoint,
              carry=progress, curves=curves, tag="stage2")  # fmt: skip
    dev_values = progress["dev_values"]
    return {
        "dev_best": max(dev_values),
        "dev_final": dev_values[-1],
        "stage2_steps": log.steps,
        "stage2_loss": log.loss,
        "stage2_seconds": log.seconds,
    }
