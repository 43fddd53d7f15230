"""`hskd plan`: what a study will cost, from its config alone (no data, no model, no torch): jobs per task and
rule, the bytes of every cached cell's store (logical, and on disk after students share identical stores),
which cells run the teacher online under `cache_budget_gb`, teacher forward passes, multiply-adds per job
from the model shapes, and device-hours from a throughput (measured by `hskd bench`, or an assumed default).

The multiply-add count is that of the dense matrix products of a BERT encoder at full `max_seq_length`
(an upper bound where batches are padded per batch); a training step counts 3 forward passes (the backward
pass costs about two)."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from hskd.common.glue import get_task
from hskd.common.synthetic import SYNTHETIC_DEV_SIZE
from hskd.planning.config import ConfigError, StudentConfig, StudyConfig
from hskd.planning.grid import (
    Run,
    cell_protocol,
    is_cached,
    is_joint,
    runs,
    store_bytes_per_example,
    store_content_key,
    study_cells,
    train_size,
)
from hskd.planning.search import first_round_runs
from hskd.planning.shapes import model_config, student_layer_count, teacher_shape

# dev examples of each GLUE task (MNLI: the matched dev set, the one evaluated), for sizing evaluation
GLUE_DEV_SIZES = {
    "CoLA": 1043, "SST-2": 872, "MRPC": 408, "STS-B": 1500,
    "QQP": 40430, "MNLI": 9815, "QNLI": 5463, "RTE": 277,
}  # fmt: skip
TRAIN_PASSES = 3  # forward + backward (about two forwards) per training example
EXTRACT_BATCH_SIZE = 64  # hskd.hsk.extract's batch
IMPORTANCE_BATCH_SIZE = 32  # hskd.training.student_init's batch for pruning importance
# Assumed when no `hskd bench` JSON is given: 25e12 multiply-adds per second (50 TFLOP/s), about a third of an
# A100's dense TF32 peak; a stated assumption, not a measurement.
DEFAULT_MACS_PER_SECOND = 25e12


def steps_for(epochs: float, batches_per_epoch: int) -> int:
    """Training steps of `epochs` (fractional epochs round up), at least one."""
    return max(1, math.ceil(epochs * batches_per_epoch))


@dataclass(frozen=True)
class Encoder:
    """What a BERT encoder's compute depends on: layers, width, attention width (heads x head size; narrower
    than `hidden` in a pruned student), FFN width and, for a factorised embedding, its rank."""

    layers: int
    hidden: int
    attention: int
    ffn: int
    emb_rank: int | None = None

    def forward_macs(self, tokens: int) -> int:
        """Multiply-adds of one example of `tokens` tokens through the encoder and pooler."""
        projections = tokens * (4 * self.hidden * self.attention + 2 * self.hidden * self.ffn)
        attention = 2 * tokens * tokens * self.attention  # scores and the weighted sum of values
        embedding = tokens * self.emb_rank * self.hidden if self.emb_rank else 0
        return self.layers * (projections + attention) + embedding + self.hidden * self.hidden


def teacher_encoder(study: StudyConfig) -> Encoder:
    layers, hidden = teacher_shape(study)
    _, ffn = _heads_and_ffn(study.teacher.random_init, study.teacher.model, "teacher")
    return Encoder(layers, hidden, hidden, ffn)


def student_encoder(study: StudyConfig, student: StudentConfig) -> Encoder:
    layers = student_layer_count(study, student)
    if student.family == "pruned":
        teacher = teacher_encoder(study)
        teacher_heads, _ = _heads_and_ffn(study.teacher.random_init, study.teacher.model, "teacher")
        head_size = teacher.hidden // teacher_heads
        return Encoder(layers, teacher.hidden, head_size * (student.heads or teacher_heads), student.ffn or teacher.ffn,
                       student.emb_rank)  # fmt: skip
    shape = student.random_init or model_config(student.model or "")
    if shape is None:
        raise ConfigError(f"students.{student.name}.model: its shape is unknown offline ({student.model}); give a "
                          "local folder or random_init")  # fmt: skip
    return Encoder(layers, shape.hidden, shape.hidden, shape.ffn)


def _heads_and_ffn(random_init, model: str, key: str) -> tuple[int, int]:
    shape = random_init or model_config(model)
    if shape is None:
        raise ConfigError(f"{key}.model: its shape is unknown offline ({model}); give a local folder or random_init")
    return shape.heads, shape.ffn


def dev_size(study: StudyConfig, task: str) -> int:
    if study.synthetic_data:
        return SYNTHETIC_DEV_SIZE
    return GLUE_DEV_SIZES[get_task(task).name]


def evaluations(steps: int, eval_every: int | None) -> int:
    """Dev evaluations of a training of `steps` steps evaluated every `eval_every` steps and at the end."""
    if eval_every is None:
        return 0
    return steps // eval_every + (1 if steps % eval_every else 0)


@dataclass
class Job:
    rule: str
    task: str
    macs: int
    eval_macs: int = 0  # of `macs`, what dev and held-out evaluation takes
    teacher_passes: int = 0  # teacher forward passes over a batch (extraction batches, online stage-1 steps)
    online: bool = False
    run: Run | None = None  # a distill job's run


@dataclass
class Store:
    task: str
    student: str
    cell: str
    bytes: int
    shared: bool  # an identical store of another student is written once and hard-linked


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    stores: list[Store] = field(default_factory=list)
    online_cells: list[tuple[str, str, str]] = field(default_factory=list)  # (task, student, cell)


def plan_study(study: StudyConfig) -> Plan:
    plan = Plan()
    teacher = teacher_encoder(study)
    planned_runs = runs(study)
    for task in study.tasks:
        task_study = study.for_task(task)
        tokens, examples, dev = task_study.data.max_seq_length, train_size(study, task), dev_size(study, task)
        teacher_step = teacher.forward_macs(tokens)
        settings = task_study.teacher
        steps = steps_for(settings.epochs, -(-examples // settings.batch_size))
        plan.jobs.append(Job("prepare_data", task, 0))  # tokenizing: no model
        evaluation = (evaluations(steps, settings.eval_every) + 1) * dev * teacher_step
        plan.jobs.append(Job("finetune_teacher", task, steps * settings.batch_size * TRAIN_PASSES * teacher_step
                             + evaluation, eval_macs=evaluation))  # fmt: skip
        batches = -(-examples // EXTRACT_BATCH_SIZE)
        plan.jobs.append(Job("extract", task, examples * teacher_step, teacher_passes=batches))
        seen: set[tuple] = set()
        for name, student in study.students.items():
            importance = student.importance_batches * IMPORTANCE_BATCH_SIZE if student.family == "pruned" else 0
            plan.jobs.append(Job("init_student", task, importance * TRAIN_PASSES * teacher_step))
            layers = student_layer_count(study, student)
            for cell in study_cells(study, name):
                if cell.is_none:
                    continue
                if not is_cached(study, task, name, cell):
                    plan.online_cells.append((task, name, str(cell)))
                    continue
                per_layer = cell_protocol(study, cell).per_layer_tokens
                key = store_content_key(cell, layers, is_joint(study, cell))
                plan.stores.append(Store(task, name, str(cell), examples * store_bytes_per_example(
                    cell, layers, teacher.hidden, tokens, per_layer), shared=key in seen))  # fmt: skip
                seen.add(key)
        for run in (run for run in planned_runs if run.task == task):
            plan.jobs.append(_run_job(study, run, teacher))
    return plan


def _run_job(study: StudyConfig, run: Run, teacher: Encoder) -> Job:
    task, student_name, cell = run.task, run.student, run.cell
    task_study = study.for_task(task)
    tokens, examples, dev = task_study.data.max_seq_length, train_size(study, task), dev_size(study, task)
    student = student_encoder(study, study.students[student_name])
    student_fwd = student.forward_macs(tokens)
    heldout = task_study.data.heldout_size
    macs, passes, online = 0, 0, False
    stage2 = task_study.prediction_only_stage() if cell.is_none else task_study.stage2
    steps2 = steps_for(stage2.epochs, -(-examples // stage2.batch_size))
    evaluated = evaluations(steps2, stage2.eval_every) + 1
    if not cell.is_none:
        steps1 = steps_for(task_study.stage1.epochs, -(-examples // task_study.stage1.batch_size))
        distilled = len(cell.student_layers(student.layers))
        projection = distilled * tokens * student.hidden * teacher.hidden if student.hidden != teacher.hidden else 0
        macs += steps1 * task_study.stage1.batch_size * TRAIN_PASSES * (student_fwd + projection)
        evaluated += 1  # dev after stage 1
        if not is_cached(study, task, student_name, cell):
            online, passes = True, steps1
            macs += steps1 * task_study.stage1.batch_size * teacher.forward_macs(tokens)
    evaluation = (evaluated * dev + heldout) * student_fwd  # every eval_every steps, at the end, the final predictions
    macs += steps2 * stage2.batch_size * TRAIN_PASSES * student_fwd + evaluation
    return Job("distill", task, macs, eval_macs=evaluation, teacher_passes=passes, online=online, run=run)


def throughput_from_bench(path: str | Path) -> tuple[float, str]:
    """Multiply-adds per second measured by `hskd bench` (its speed.json): the median over its rows and modes
    of a timed step's multiply-adds over its seconds, each at the shapes the bench ran; and where it ran."""
    bench = json.loads(Path(path).read_text(encoding="utf-8"))
    if "shapes" not in bench:
        raise ConfigError(f"{path}: no 'shapes' (written by an older hskd bench); rerun hskd bench")
    shape = bench["shapes"]["teacher"]
    teacher = Encoder(shape["layers"], shape["hidden"], shape["hidden"], shape["ffn"])
    head_size = shape["hidden"] // shape["heads"]
    students = {name: Encoder(s["layers"], s["hidden"] or teacher.hidden,
                              s["hidden"] or head_size * s["heads"], s["ffn"], s["emb_rank"])
                for name, s in bench["shapes"]["students"].items()}  # fmt: skip
    rates = []
    for row in bench["rows"]:
        student = students[row["student"]]
        batch, tokens = row["batch_size"], row["seq_len"]
        step = batch * TRAIN_PASSES * student.forward_macs(tokens)
        rates += [step / row["student_only_s"], step / row["cached_s"],
                  (step + batch * teacher.forward_macs(tokens)) / row["online_s"]]  # fmt: skip
    rates.sort()
    machine, settings = bench["machine"], bench["settings"]
    where = (f"hskd bench {path}: {settings['gpu'] or machine['cpu_model']}, precision {settings['precision']}, "
             f"{machine['torch_threads']} threads")  # fmt: skip
    return rates[len(rates) // 2], where


def format_plan(study: StudyConfig, plan: Plan, macs_per_second: float, throughput_source: str, devices: int) -> str:
    """The plan as a text table: per task and rule, then stores, then the totals and wall time."""
    by_rule: dict[tuple[str, str], list[Job]] = defaultdict(list)
    for job in plan.jobs:
        by_rule[(job.task, job.rule)].append(job)
    hours = {key: sum(job.macs for job in jobs) / macs_per_second / 3600 for key, jobs in by_rule.items()}
    header = (f"{'task':<7} {'rule':<17} {'jobs':>6} {'multiply-adds':>14} {'evaluation':>10} {'teacher passes':>15} "
              f"{'device-h':>10}")  # fmt: skip
    lines = [f"# plan of {study.results_dir}: {len(plan.jobs)} jobs; device-hours at {macs_per_second:.3g} "
             f"multiply-adds/s ({throughput_source})", header]  # fmt: skip
    for (task, rule), jobs in by_rule.items():
        macs = sum(job.macs for job in jobs)
        passes = sum(job.teacher_passes for job in jobs)
        share = sum(job.eval_macs for job in jobs) / macs if macs else 0.0
        lines.append(f"{task:<7} {rule:<17} {len(jobs):>6} {macs:>14.3e} {share:>10.0%} {passes:>15} "
                     f"{hours[(task, rule)]:>10.4g}")  # fmt: skip
    total = sum(hours.values())
    macs = sum(job.macs for job in plan.jobs)
    share = sum(job.eval_macs for job in plan.jobs) / macs if macs else 0.0
    lines.append(f"{'all':<7} {'':<17} {len(plan.jobs):>6} {macs:>14.3e} {share:>10.0%} "
                 f"{sum(job.teacher_passes for job in plan.jobs):>15} {total:>10.4g}")  # fmt: skip
    lines.append("")
    lines.append(f"{'task':<7} {'cached cells':>12} {'store bytes':>14} {'on disk':>14} {'online cells':>13}")
    for task in study.tasks:
        stores = [store for store in plan.stores if store.task == task]
        logical = sum(store.bytes for store in stores)
        on_disk = sum(store.bytes for store in stores if not store.shared)
        online = sum(1 for cell in plan.online_cells if cell[0] == task)
        lines.append(f"{task:<7} {len(stores):>12} {logical:>14,} {on_disk:>14,} {online:>13}")
    lines.append(f"cache_budget_gb {study.cache_budget_gb:g} per store; kd_mode {study.kd_mode}")
    wall = max(total / devices, critical_path_hours(plan, macs_per_second))
    lines.append(f"\nwall time on {devices} device(s): {wall:.4g} h (device-hours / devices, at least the longest "
                 "chain teacher -> extract -> run of one task)")  # fmt: skip
    if study.grid.search == "adaptive":
        lines.append(adaptive_range(study, plan, macs_per_second))
    return "\n".join(lines) + "\n"


def adaptive_range(study: StudyConfig, plan: Plan, macs_per_second: float) -> str:
    """Under grid.search adaptive, what the distill jobs above are: the most the search can run (every candidate
    to n_max seeds); and the least, its first round (baselines, joint cells, each sequence's first cell at n_min
    seeds), after which every sequence may stop."""
    first = set(first_round_runs(study))
    distill = [job for job in plan.jobs if job.rule == "distill"]
    least = [job for job in distill if job.run in first]
    hours = [sum(job.macs for job in jobs) / macs_per_second / 3600 for jobs in (least, distill)]
    return (f"grid.search adaptive: the search runs between {len(least)} distill jobs ({hours[0]:.4g} device-h; its "
            f"first round, where every sequence may stop) and the {len(distill)} above ({hours[1]:.4g} device-h; "
            f"every candidate to n_max = {study.grid.adaptive.n_max} seeds); scripts/simulate_search.py estimates "
            "where in between (docs/statistics.md)")  # fmt: skip


def critical_path_hours(plan: Plan, macs_per_second: float) -> float:
    """The longest chain of dependent jobs: a task's teacher, its extraction, its longest run."""
    longest = 0.0
    for task in {job.task for job in plan.jobs}:
        jobs = [job for job in plan.jobs if job.task == task]
        chain = sum(max((job.macs for job in jobs if job.rule == rule), default=0)
                    for rule in ("finetune_teacher", "extract", "init_student", "distill"))  # fmt: skip
        longest = max(longest, chain / macs_per_second / 3600)
    return longest


def plan_json(plan: Plan) -> dict:
    """Per task: its store rows (as the extraction manifest's `bytes` and `same_file_as`) and its totals."""
    tasks = sorted({store.task for store in plan.stores} | {job.task for job in plan.jobs})
    return {task: {
        "stores": [{"student": s.student, "cell": s.cell, "bytes": s.bytes, "shared": s.shared}
                   for s in plan.stores if s.task == task],
        "bytes_total": sum(s.bytes for s in plan.stores if s.task == task),
        "bytes_on_disk": sum(s.bytes for s in plan.stores if s.task == task and not s.shared),
        "jobs": sum(1 for job in plan.jobs if job.task == task),
        "macs": sum(job.macs for job in plan.jobs if job.task == task),
    } for task in tasks}  # fmt: skip
