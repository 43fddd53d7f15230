"""`hskd bench`: seconds per stage-1 training step with the teacher online, with HSK read from a store,
and for the student alone (prediction loss only), plus the bytes each cell's store takes.

Models have the paper's shapes and random weights (speed does not depend on the weights; nothing is
downloaded). Every sequence is full length (no padding), the simplest worst case. Stores are real
`HSKStoreWriter` files in a temp folder under the output folder; their content is a compressed random
hidden-state tensor (read cost depends on the layout, not the values), and they are small enough to be
read from the page cache, so the cached step times memory-mapped decoding, not disk throughput."""

from __future__ import annotations

import itertools
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from transformers import BertConfig, PreTrainedModel

from hskd.common.io import package_versions, write_json_atomic, write_text
from hskd.hsk.compression import compress_batch
from hskd.hsk.extract import StoreTarget, manifest_row, store_writer
from hskd.hsk.sources import CachedHSK, OnlineHSK
from hskd.hsk.store import HSKStore
from hskd.models.data import TokenizedSplit
from hskd.models.hub import random_classifier
from hskd.models.pretrained import pretrained_student_from_config
from hskd.models.pruned import pruned_student_from_shape
from hskd.models.runtime import autocast, setup_runtime, to_device
from hskd.models.student import Student
from hskd.planning.cells import Cell, expand_joint, parse_cell
from hskd.planning.grid import GLUE_TRAIN_SIZES, store_bytes_lower_bound
from hskd.planning.paths import EVENTS_DIR
from hskd.report.plots import save_figure
from hskd.training.curves import Curves, write_events
from hskd.training.distill import stage1_loss
from hskd.training.loop import Optimisation, fit, make_optimizer, prediction_kd_loss

MODES = ("online", "cached", "student_only")
NUM_LABELS = 2
CLS_ID, SEP_ID = 101, 102  # bert-base-uncased
LR, WEIGHT_DECAY, TEMPERATURE, LOSS_MODE = 5e-5, 0.01, 1.0, "paper"
FAKE_SHA = "0" * 64
JOINT_SCHEMES = {"depth": "top8", "length": "attention_nosep", "width": "magnitude"}
EXTRAPOLATE_TO = ("SST-2", "MNLI")
TARGETS = {"online_over_cached_min": 3.4, "cached_over_student_only_max": 1.10, "store_over_fp16_kept_max": 1.3,
           "tracking_overhead_max": 0.02}
TRACKING_STEPS = 20  # training steps of each timed run with and without curves
TRACKING_LOG_EVERY = 10  # the pipeline's default log_every
TARGET_SEQ_LEN = 128
TARGET_STORE_CELL = "1l_10t_0.1h"

Times = dict[str, list[tuple[float, float]]]  # mode -> (step seconds, HSK seconds) per rep
StepFn = Callable[[torch.Tensor], float]  # one training step on an index batch -> seconds spent getting HSK


@dataclass(frozen=True)
class TeacherShape:
    layers: int
    hidden: int
    heads: int
    ffn: int
    vocab_size: int


@dataclass(frozen=True)
class StudentShape:
    """``pretrained``: TinyBERT-style BERT of width `hidden` with projections; ``pruned``: ROSITA-style."""

    family: str
    layers: int
    heads: int
    ffn: int
    hidden: int | None = None
    emb_rank: int | None = None


@dataclass(frozen=True)
class BenchSettings:
    teacher: TeacherShape
    students: dict[str, StudentShape]
    cells: dict[str, Cell]
    seq_lens: tuple[int, ...]
    batch_size: int = 32
    store_examples: int = 256
    warmup: int = 2  # rounds of every mode, once per student and sequence length
    reps: int = 5  # interleaved rounds (online, cached, student_only) per cell
    seed: int = 0
    freeze_word_embeddings: bool = True  # the pipeline's default
    extrapolate: dict[str, int] = field(default_factory=lambda: {t: GLUE_TRAIN_SIZES[t] for t in EXTRAPOLATE_TO})


PAPER_TEACHER = TeacherShape(layers=12, hidden=768, heads=12, ffn=3072, vocab_size=30522)
PAPER_STUDENTS = {
    "tinybert_4l_312": StudentShape("pretrained", layers=4, heads=12, ffn=1200, hidden=312),
    "rosita_6l": StudentShape("pruned", layers=6, heads=2, ffn=768, emb_rank=128),
}


def paper_cells() -> dict[str, Cell]:
    """Full HSK, one layer, and the paper's joint 1 layer / 10 tokens / 10% width cell."""
    return {
        "full": parse_cell("depth=all-top12/length=all/width=all"),
        "1l": parse_cell("depth=top10-1/length=all/width=all"),
        TARGET_STORE_CELL: expand_joint(TARGET_STORE_CELL, JOINT_SCHEMES),
    }


def paper_settings(quick: bool) -> BenchSettings:
    """Paper shapes; quick = seq 128 only, one warm-up round and one timed round per cell (about 2.5 min on
    2 idle cores: the bert-base forward alone takes ~5 s per batch)."""
    if quick:
        return BenchSettings(PAPER_TEACHER, PAPER_STUDENTS, paper_cells(), (128,), warmup=1, reps=1)
    return BenchSettings(PAPER_TEACHER, PAPER_STUDENTS, paper_cells(), (128, 64))


# ------------------------------------------------------------------------------------------ models, data


def build_teacher(shape: TeacherShape, seed: int) -> PreTrainedModel:
    """Random-weight teacher in eval mode (each cell's online step picks its attention implementation)."""
    model = random_classifier(NUM_LABELS, shape.layers, shape.hidden, shape.heads, shape.ffn, shape.vocab_size, seed)
    return model.eval()


def build_student(shape: StudentShape, teacher_config: BertConfig, seed: int) -> Student:
    if shape.family == "pretrained":
        config = BertConfig(
            vocab_size=teacher_config.vocab_size, hidden_size=shape.hidden, num_hidden_layers=shape.layers,
            num_attention_heads=shape.heads, intermediate_size=shape.ffn,
        )  # fmt: skip
        student = pretrained_student_from_config(config, NUM_LABELS, teacher_config.hidden_size, seed)
    else:
        student = pruned_student_from_shape(
            teacher_config, shape.layers, shape.heads, shape.ffn, shape.emb_rank, NUM_LABELS, seed
        )
    return student.train()


def random_split(num_examples: int, seq_len: int, vocab_size: int, seed: int) -> TokenizedSplit:
    """Full-length sequences [CLS] w_1 .. w_{T-2} [SEP] of random word ids."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(SEP_ID + 1, vocab_size, (num_examples, seq_len), generator=generator, dtype=torch.int32)
    ids[:, 0], ids[:, -1] = CLS_ID, SEP_ID
    return TokenizedSplit(
        input_ids=ids,
        token_type_ids=torch.zeros(num_examples, seq_len, dtype=torch.uint8),
        lengths=torch.full((num_examples,), seq_len, dtype=torch.int32),
        labels=torch.zeros(num_examples, dtype=torch.long),
    )


def write_store(path: Path, target: StoreTarget, split: TokenizedSplit, teacher: TeacherShape, batch_size: int) -> dict:
    """Write `target`'s store for `split` through the pipeline's writer; return its manifest row.

    The HSK is one random teacher pass [Lt + 1, B, T, D] reused for every batch (compressed per batch)."""
    generator = torch.Generator().manual_seed(0)
    seq_len = split.max_seq_length
    hidden = torch.randn(teacher.layers + 1, batch_size, seq_len, teacher.hidden, generator=generator)
    cls_attention = torch.rand(batch_size, seq_len, generator=generator)
    with store_writer(target, len(split), seq_len, teacher.hidden, FAKE_SHA, FAKE_SHA) as writer:
        for index in torch.arange(len(split)).split(batch_size):
            batch, size = split.batch(index), len(index)
            hsk = compress_batch(
                target.cell, hidden[:, :size], cls_attention[:size], batch["input_ids"], batch["attention_mask"],
                SEP_ID, target.student_layers, example_ids=index,
            )  # fmt: skip
            writer.write(int(index[0]), hsk)
    return manifest_row(target, writer, len(split), teacher.hidden, seq_len)


# ------------------------------------------------------------------------------------------------- steps


def _optimise(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock times measure it (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_steps(
    student: Student, optimizer: torch.optim.Optimizer, teacher: PreTrainedModel, cell: Cell, store: HSKStore,
    split: TokenizedSplit, teacher_logits: torch.Tensor, device: torch.device,
) -> dict[str, StepFn]:  # fmt: skip
    """The three training steps; each returns the seconds it spent getting its HSK targets."""
    def hsk_step(source: CachedHSK | OnlineHSK) -> StepFn:
        """A stage-1 step whose HSK targets come from `source` (a store, or the teacher run now)."""

        def step(index: torch.Tensor) -> float:
            batch, started = to_device(split.batch(index), device), time.perf_counter()
            hsk = source(index, batch)
            synchronize(device)
            hsk_seconds = time.perf_counter() - started
            with autocast(device):
                loss = stage1_loss(student, batch, hsk, LOSS_MODE)
            _optimise(optimizer, loss)
            return hsk_seconds

        return step

    def student_only(index: torch.Tensor) -> float:
        batch = to_device(split.batch(index), device)
        with autocast(device):
            logits = student(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).logits.float()
            loss = prediction_kd_loss(logits, teacher_logits[index.to(device)], TEMPERATURE)
        _optimise(optimizer, loss)
        return 0.0

    return {
        "online": hsk_step(OnlineHSK(teacher, SEP_ID, cell, student.num_layers, split.max_seq_length)),
        "cached": hsk_step(CachedHSK(store)),
        "student_only": student_only,
    }


def time_steps(
    steps: dict[str, StepFn], batches: Iterator[torch.Tensor], warmup: int, reps: int, device: torch.device
) -> Times:
    """`warmup` untimed rounds, then `reps` interleaved rounds; (step seconds, HSK seconds) per mode."""
    for _ in range(warmup):
        for step in steps.values():
            step(next(batches))
    times: Times = {mode: [] for mode in steps}
    for _ in range(reps):
        for mode, step in steps.items():
            synchronize(device)
            started = time.perf_counter()
            hsk_seconds = step(next(batches))
            synchronize(device)
            times[mode].append((time.perf_counter() - started, hsk_seconds))
    return times


# -------------------------------------------------------------------------------------------- pure parts


def speed_row(student: str, cell_label: str, cell: Cell, seq_len: int, batch_size: int, times: Times) -> dict:
    """Medians of the timed steps and their ratios."""
    median = {mode: statistics.median(step for step, _ in times[mode]) for mode in MODES}
    return {
        "student": student,
        "cell": cell_label,
        "cell_path": str(cell),
        "seq_len": seq_len,
        "batch_size": batch_size,
        "reps": len(times["online"]),
        **{f"{mode}_s": median[mode] for mode in MODES},
        "teacher_and_compress_s": statistics.median(hsk for _, hsk in times["online"]),
        "store_read_s": statistics.median(hsk for _, hsk in times["cached"]),
        "online_over_cached": median["online"] / median["cached"],
        "cached_over_student_only": median["cached"] / median["student_only"],
    }


def storage_row(
    student: str, cell_label: str, cell: Cell, num_layers: int, seq_len: int, hidden_size: int, manifest: dict,
    extrapolate: dict[str, int],
) -> dict:  # fmt: skip
    """A store's bytes per example next to full fp32 HSK, the fp16 bytes of its kept values and the fewest
    bytes any fixed-size record could take."""
    per_example = manifest["bytes_per_example"]
    fp16_kept = 2 * manifest["kept_values_per_example"]
    return {
        "student": student,
        "cell": cell_label,
        "cell_path": manifest["cell"],
        "seq_len": seq_len,
        "store_bytes_per_example": per_example,
        "expected_bytes_per_example": manifest["expected_bytes_per_example"],
        "full_fp32_bytes_per_example": (num_layers + 1) * seq_len * hidden_size * 4,
        "fp16_kept_bytes_per_example": fp16_kept,
        "store_over_fp16_kept": manifest["bytes_over_fp16_kept"],
        "lower_bound_over_fp16_kept": store_bytes_lower_bound(cell, num_layers, hidden_size, seq_len) / fp16_kept,
        **{f"store_gb_{task}": per_example * size / 1e9 for task, size in extrapolate.items()},
    }


def _target(name: str, subject: dict, value: float, threshold: float, met: bool, **extra) -> dict:
    return {"target": name, "student": subject["student"], "cell": subject["cell"], "seq_len": subject["seq_len"],
            "value": value, "threshold": threshold, "met": met, **extra}  # fmt: skip


def check_targets(rows: list[dict], storage: list[dict]) -> list[dict]:
    """Met/missed per row for the team's three targets (speed ratios at seq 128, and the joint cell's store)."""
    results = []
    for row in rows:
        if row["seq_len"] == TARGET_SEQ_LEN:
            value, threshold = row["online_over_cached"], TARGETS["online_over_cached_min"]
            results.append(_target("online_over_cached_min", row, value, threshold, value >= threshold))
        value, threshold = row["cached_over_student_only"], TARGETS["cached_over_student_only_max"]
        results.append(_target("cached_over_student_only_max", row, value, threshold, value <= threshold))
    for row in storage:
        if row["cell"] == TARGET_STORE_CELL:
            value, threshold = row["store_over_fp16_kept"], TARGETS["store_over_fp16_kept_max"]
            results.append(_target("store_over_fp16_kept_max", row, value, threshold, value <= threshold,
                                   lower_bound=row["lower_bound_over_fp16_kept"]))  # fmt: skip
    return results


def machine_info(threads: int) -> dict:
    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
              if line.startswith("model name")] if cpuinfo.exists() else []  # fmt: skip
    return {
        "cpu_model": models[0] if models else platform.processor(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "requested_threads": threads,
        "torch_version": torch.__version__,
        "load_average": os.getloadavg(),
        "versions": package_versions(),
    }


# -------------------------------------------------------------------------------------------------- runs


def bench_student(
    name: str, shape: StudentShape, teacher: PreTrainedModel, settings: BenchSettings, seq_len: int, tmp_dir: Path
) -> tuple[list[dict], list[dict]]:
    """Speed and storage rows of one student at one sequence length, for every cell."""
    device = teacher.device
    student = build_student(shape, teacher.config, settings.seed).to(device)
    if settings.freeze_word_embeddings:
        student.freeze_word_embeddings()
    optimizer, _ = make_optimizer(student.named_parameters(), LR, WEIGHT_DECAY, "constant", 0.0, 1)
    split = random_split(settings.store_examples, seq_len, settings.teacher.vocab_size, settings.seed)
    teacher_logits = torch.randn(len(split), NUM_LABELS, generator=torch.Generator().manual_seed(settings.seed))
    teacher_logits = teacher_logits.to(device)
    batches = itertools.cycle(split.batch_order(settings.batch_size, settings.seed, shuffle=True,
                                                group_by_length=False))  # fmt: skip
    rows, storage = [], []
    for position, (label, cell) in enumerate(settings.cells.items()):
        path = tmp_dir / f"{name}_{seq_len}_{label}.safetensors"
        target = StoreTarget(name, student.num_layers, cell, str(path))
        manifest = write_store(path, target, split, settings.teacher, settings.batch_size)
        steps = make_steps(student, optimizer, teacher, cell, HSKStore(path), split, teacher_logits, device)
        times = time_steps(steps, batches, settings.warmup if position == 0 else 0, settings.reps, device)
        path.unlink()
        rows.append(speed_row(name, label, cell, seq_len, settings.batch_size, times))
        storage.append(storage_row(name, label, cell, student.num_layers, seq_len, settings.teacher.hidden, manifest,
                                   settings.extrapolate))  # fmt: skip
        print(f"  {name} seq {seq_len} {label}: " + ", ".join(f"{m} {rows[-1][f'{m}_s']:.3f}s" for m in MODES),
              flush=True)  # fmt: skip
    return rows, storage


def bench_tracking(
    name: str, shape: StudentShape, teacher: PreTrainedModel, settings: BenchSettings, seq_len: int, tmp_dir: Path
) -> dict:  # fmt: skip
    """A short prediction-distillation run of one student through the pipeline's own loop (`fit`), timed with
    its curves (a point every `TRACKING_LOG_EVERY` steps, an event file written at the end) and without,
    alternating, `settings.reps` times each after one untimed run: the share of a run's time tracking adds."""
    device = teacher.device
    student = build_student(shape, teacher.config, settings.seed).to(device)
    if settings.freeze_word_embeddings:
        student.freeze_word_embeddings()
    split = random_split(TRACKING_STEPS * settings.batch_size, seq_len, settings.teacher.vocab_size, settings.seed)
    teacher_logits = torch.randn(len(split), NUM_LABELS, generator=torch.Generator().manual_seed(settings.seed))
    teacher_logits = teacher_logits.to(device)
    optimisation = Optimisation(LR, WEIGHT_DECAY, "constant", 0.0, settings.batch_size)

    def loss(index: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = student(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).logits.float()
        return prediction_kd_loss(logits, teacher_logits[index.to(device)], TEMPERATURE)

    writes: list[float] = []

    def seconds(tracked: bool) -> float:
        curves = Curves(TRACKING_LOG_EVERY) if tracked else None
        started = time.perf_counter()
        fit(student, split, optimisation, 1, settings.seed, False, device, loss, "bench tracking", curves=curves,
            tag="stage2")  # fmt: skip
        if tracked:
            written = time.perf_counter()
            write_events(curves, tmp_dir / EVENTS_DIR)
            writes.append(time.perf_counter() - written)
        synchronize(device)
        return time.perf_counter() - started

    seconds(False)
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(settings.reps):
        for tracked in (False, True):
            times[tracked].append(seconds(tracked))
    untracked, tracked = statistics.median(times[False]), statistics.median(times[True])
    return {"student": name, "cell": "prediction-only", "seq_len": seq_len, "steps": TRACKING_STEPS,
            "log_every": TRACKING_LOG_EVERY, "reps": settings.reps, "untracked_s": untracked, "tracked_s": tracked,
            "overhead": tracked / untracked - 1, "write_s": statistics.median(writes),
            "untracked_spread": (max(times[False]) - min(times[False])) / untracked}  # fmt: skip


def run_bench(settings: BenchSettings, out_dir: str | Path, threads: int, quick: bool, precision: str = "auto") -> dict:
    """Run every student x sequence length x cell; write speed.json, tables and the figure under `out_dir`."""
    device = setup_runtime(threads, settings.seed, precision)
    out_dir = Path(out_dir)
    (out_dir / "bench").mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    teacher = build_teacher(settings.teacher, settings.seed).to(device)
    rows, storage = [], []
    with tempfile.TemporaryDirectory(dir=out_dir / "bench", prefix="stores.") as tmp:
        for seq_len in settings.seq_lens:
            for name, shape in settings.students.items():
                speed, store = bench_student(name, shape, teacher, settings, seq_len, Path(tmp))
                rows += speed
                storage += store
        name, shape = next(iter(settings.students.items()))
        tracking = bench_tracking(name, shape, teacher, settings, settings.seq_lens[0], Path(tmp))
    targets = check_targets(rows, storage)
    targets.append(_target("tracking_overhead_max", tracking, tracking["overhead"], TARGETS["tracking_overhead_max"],
                           tracking["overhead"] <= TARGETS["tracking_overhead_max"]))  # fmt: skip
    result = {
        "rows": rows,
        "storage": storage,
        # what `hskd plan` needs to turn a timed step into multiply-adds per second
        "shapes": {"teacher": asdict(settings.teacher),
                   "students": {name: asdict(shape) for name, shape in settings.students.items()}},  # fmt: skip
        "tracking": tracking,
        "targets": targets,
        "machine": {**machine_info(threads), "load_average_before": load_before},
        "settings": {
            "batch_size": settings.batch_size,
            "warmup": settings.warmup,
            "reps": settings.reps,
            "store_examples": settings.store_examples,
            "full_length_sequences": True,
            "freeze_word_embeddings": settings.freeze_word_embeddings,
            "device": str(device),
            "precision": precision,
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        },
        "quick": quick,
    }
    write_json_atomic(result, out_dir / "bench" / "speed.json")
    write_tables(rows, storage, tracking, out_dir / "tables")
    save_figure(plot_speed(pd.DataFrame(rows)), out_dir / "figures", "speedup")
    return result


# ------------------------------------------------------------------------------------------------ output

TABLE_COLUMNS = ["student", "cell", "seq_len", "online_s", "cached_s", "student_only_s", "store_read_s",
                 "online_over_cached", "cached_over_student_only"]  # fmt: skip
STORAGE_COLUMNS = ["student", "cell", "seq_len", "store_bytes_per_example", "fp16_kept_bytes_per_example",
                   "full_fp32_bytes_per_example", "store_over_fp16_kept", "lower_bound_over_fp16_kept"]  # fmt: skip


def speed_markdown(rows: list[dict], storage: list[dict], tracking: dict) -> str:
    speed = pd.DataFrame(rows)[TABLE_COLUMNS].to_markdown(index=False, floatfmt=".3g")
    store = pd.DataFrame(storage)
    extrapolated = [column for column in store.columns if column.startswith("store_gb_")]
    stores = store[STORAGE_COLUMNS + extrapolated].to_markdown(index=False, floatfmt=".4g")
    return f"{speed}\n\n{stores}\n\n{tracking_sentence(tracking)}\n"


def tracking_sentence(tracking: dict) -> str:
    return (f"Training curves: a {tracking['steps']}-step prediction-distillation run of {tracking['student']} at "
            f"seq {tracking['seq_len']} took {tracking['untracked_s']:.3f} s without curves and "
            f"{tracking['tracked_s']:.3f} s with them (a point every {tracking['log_every']} steps, the event file "
            f"written; medians of {tracking['reps']} alternating runs): {tracking['overhead']:+.2%}, of which writing "
            f"the event file took {tracking['write_s']:.3f} s; the untracked runs themselves spread "
            f"{tracking['untracked_spread']:.2%}.")


def write_tables(rows: list[dict], storage: list[dict], tracking: dict, out_dir: Path) -> None:
    """speed.csv (one row per student x cell x seq_len, with its storage columns) and speed.md."""
    keys = ["student", "cell", "cell_path", "seq_len"]
    table = pd.DataFrame(rows).merge(pd.DataFrame(storage), on=keys)
    write_text(table.to_csv(index=False), out_dir / "speed.csv")
    write_text(speed_markdown(rows, storage, tracking), out_dir / "speed.md")


def plot_speed(rows: pd.DataFrame) -> Figure:
    """Seconds per training step, online vs cached vs student alone: one panel per student x seq_len."""
    panels = list(rows.groupby(["student", "seq_len"], sort=False))
    fig = Figure(figsize=(3.4 * len(panels), 2.6), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, ((student, seq_len), group) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        columns = {f"{mode}_s": mode.replace("_", " ") for mode in MODES}
        group.set_index("cell")[list(columns)].rename(columns=columns).plot.bar(ax=ax, rot=0)
        ax.set_title(f"{student}, seq {seq_len}, batch {group['batch_size'].iloc[0]}")
        ax.set_xlabel("cell")
        ax.set_ylabel("seconds per training step")
    return fig


def main(args) -> None:
    """CLI entry: paper shapes, `args.quick`, `args.out` (results root), `args.threads`."""
    result = run_bench(paper_settings(args.quick), args.out, args.threads, args.quick, args.precision)
    print(speed_markdown(result["rows"], result["storage"], result["tracking"]))
    for target in result["targets"]:
        status = "met" if target["met"] else "MISSED"
        bound = f"; no fixed-size record can go below {target['lower_bound']:.3f}" if "lower_bound" in target else ""
        print(f"{status}: {target['target']} {target['student']} {target['cell']} seq {target['seq_len']}: "
              f"{target['value']:.3g} (threshold {target['threshold']}{bound})")  # fmt: skip
