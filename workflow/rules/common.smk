# Config validation and the small input functions the rules use. All logic lives in the hskd package.
import dataclasses
import json
import os
import shlex
import sys

from hskd.planning import paths
from hskd.planning.config import ConfigError
from hskd.planning.study import load as load_study
from hskd.planning.grid import cached_cells, cell_protocol, is_cached, is_joint, runs
from hskd.planning.cells import parse_cell
from hskd.planning.shapes import student_layer_count
from hskd.planning.download import HUB_ID_PATTERN, glue_from_hub, hub_downloads, hub_environment, write_merged
from hskd.planning.download import student_hub_model, teacher_hub_model
from hskd.common.glue import get_task
from hskd.common.io import content_file, write_json_atomic, write_text
from hskd.planning.strategies import LENGTH_STRATEGIES, WIDTH_STRATEGIES
from hskd.planning.search import first_round_runs, search_spec
from hskd.planning.plan import DEFAULT_MACS_PER_SECOND, format_plan, plan_json, plan_study
from hskd.planning.protocol import format_recipe
from hskd.planning.layers import RUN_ENVIRONMENT_KEYS, effective_rows, format_rows, merge, read_layers

# The config as its layers give it: config.yaml, each --configfile, --config; a `standalone: true` file drops
# the layers before it (Snakemake itself always merges config.yaml under every --configfile).
CONFIG_LAYERS = read_layers(workflow.config_settings.configfiles, dict(workflow.config_settings.config))
_merged, CONFIG_ORIGINS = merge(CONFIG_LAYERS)
config.clear()
config.update(_merged)
try:
    STUDY = load_study(config)  # schema defaults filled in place; cross-field checks; before any job
except ConfigError as err:
    sys.exit(f"hskd config error: {err}")

R = STUDY.results_dir

# The hub cache and offline switches of every job (`hub` section): local jobs inherit this process's environment,
# the SLURM plugin submits with --export=ALL, and each job re-parses this file anyway.
os.environ.update(hub_environment(STUDY.hub))
os.environ.update(STUDY.tracking_environment())  # under tracking: mlflow, where the runs go
HUB_MODELS, HUB_GLUE_TASKS = hub_downloads(STUDY)


wildcard_constraints:
    task="[A-Za-z0-9-]+",
    split="train|heldout|dev",
    student="[A-Za-z0-9_.]+",
    depth="none|all-top[0-9]+|top[0-9]+-[0-9]+",
    length=f"all|({'|'.join(LENGTH_STRATEGIES)})-[0-9]+",
    width=f"all|({'|'.join(WIDTH_STRATEGIES)})-[0-9.e-]+",
    lr="[0-9.e+-]+",
    seed="[0-9]+",
    round="[0-9]+",


def cluster_resources(rule_name):
    """`mem_mb` and `runtime` of a rule from the config's `resources` section, scaled by the attempt (a retry
    after running out of memory or time gets more); `--set-resources` overrides them."""
    section = getattr(STUDY.resources, rule_name)
    return {"mem_mb": lambda w, attempt: section.mem_mb * attempt,
            "runtime": lambda w, attempt: section.runtime * attempt}  # fmt: skip


def as_json(value):
    return json.dumps(value, sort_keys=True)


def args_file(*arguments):
    """A job's arguments, one per line, in a file its `hskd` command reads as `@file` (argparse's own syntax), so
    the shell line Snakemake echoes (and repeats on an error) stays short. The file is named by its content:
    any changed argument is a changed param, which reruns the job as a changed inline argument would. Dry runs
    write it too, so a planned command can be read and run by hand."""
    text = "".join(f"{argument}\n" for argument in arguments)
    return content_file(text, f"{R}/args", ".args")


def optional(flag, value):
    """`flag 'value'` quoted for the shell, or nothing for an empty value (Snakemake's :q drops empty strings)."""
    return f"{flag} {shlex.quote(str(value))}" if value else ""


def write_text_logged(text, path, log, note=None):
    """A small local output written atomically, and a one-line log saying so."""
    write_text(text, path)
    write_text(f"{note or f'wrote {path}'}\n", log)


def study_plan():
    """(`hskd plan`'s text at the assumed throughput, its per-task JSON); a study whose model shapes are unknown
    offline gets a text saying so."""
    try:
        plan = plan_study(STUDY)
    except ConfigError as err:
        return f"# no plan: {err}\n", {}
    text = format_plan(STUDY, plan, DEFAULT_MACS_PER_SECOND, "assumed; hskd plan --bench measures it", 1)
    return text, plan_json(plan)


def write_run_list(runs, path, log):
    """The run list file of the aggregate rule (one metrics.json path per line)."""
    write_text_logged("".join(f"{run}\n" for run in runs), path, log, f"{len(runs)} runs listed in {path}")


def write_hub_manifest(manifests, path, log):
    """The download rule's manifest: the per-model and per-task manifests in one file, written atomically."""
    merged = write_merged(manifests, path)
    write_text(f"{len(merged['models'])} models and {len(merged['glue_tasks'])} GLUE tasks in {merged['hf_home']}: "
               f"{path}\n", log)  # fmt: skip


def run_targets():
    return [run.metrics_path(R) for run in runs(STUDY)]


# grid.search adaptive: each round of the search is a checkpoint whose decision names the next round's runs;
# Snakemake re-plans after each, until a round has decided every sequence (hskd.report.search).
def search_decision(round_):
    return json.loads(open(checkpoints.search_round.get(round=str(round_)).output[0]).read())


def search_round_inputs(wildcards):
    round_ = int(wildcards.round)
    if round_ == 0:
        return [run.metrics_path(R) for run in first_round_runs(STUDY)]
    return search_decision(round_ - 1)["runs"]


def search_rounds(wildcards=None):
    """Every round's decision file, in order, up to the one that decided every sequence."""
    files, round_ = [], 0
    while True:
        files.append(checkpoints.search_round.get(round=str(round_)).output[0])
        if search_decision(round_)["done"]:
            return files
        round_ += 1


def search_result(wildcards=None):
    """The decision file of the search's last round (none under grid.search grid)."""
    return [] if STUDY.grid.search == "grid" else search_rounds()[-1:]


def final_runs(search):
    """The runs the tables read: the grid's, or those the search's last decision (`search`) names."""
    return json.loads(open(search[0]).read())["runs"] if search else run_targets()


def cell_of(wildcards):
    return parse_cell(f"depth={wildcards.depth}/length={wildcards.length}/width={wildcards.width}")


def data_files(task):
    return {split: paths.DATA.format(results=R, task=task, split=split) for split in ("train", "heldout", "dev")}


def teacher_files(task):
    return {
        "weights": paths.TEACHER_WEIGHTS.format(results=R, task=task),
        "config": paths.TEACHER_CONFIG.format(results=R, task=task),
        "teacher_metrics": paths.TEACHER_METRICS.format(results=R, task=task),
    }


def teacher_dir(wildcards):
    """The teacher's folder (`--teacher-dir`, in args files), beside the teacher_files inputs that are in it."""
    return paths.TEACHER_DIR.format(results=R, task=wildcards.task)


# A resource, not a param: the guard does not change what a job computes, so a new margin must not rerun
# students that exist (Snakemake reruns a job whose params change).
TEACHER_MARGIN = "none" if STUDY.teacher_margin is None else str(STUDY.teacher_margin)


def store_targets(task):
    """[{student, student_layers, cell, path}] of every cached store of a task."""
    targets = []
    for student in STUDY.students:
        layers = student_layer_count(STUDY, STUDY.students[student])
        for cell in cached_cells(STUDY, task, student):
            wildcards = paths.cell_wildcards(cell)
            path = paths.STORE.format(results=R, task=task, student=student, split="train", **wildcards)
            targets.append({"student": student, "student_layers": layers, "cell": str(cell), "path": path,
                            "joint": is_joint(STUDY, cell)})
    return targets


# Every run the config asks for: a target outside it (another lr, seed, cell or student) is refused at
# planning, unless `allow_off_grid: true` (its run then trains, and the tables still ignore it).
GRID_RUNS = set(run_targets())


def run_inputs(wildcards):
    target = paths.RUN_METRICS.format(results=R, **wildcards)
    if target not in GRID_RUNS and not STUDY.allow_off_grid:
        raise ValueError(f"{target} is not a run of this config (lr, seed, cell or student not in it); "
                         "set allow_off_grid: true to train it anyway")
    inputs = {
        **data_files(wildcards.task),
        **teacher_files(wildcards.task),
        "student": paths.STUDENT_INIT.format(results=R, task=wildcards.task, student=wildcards.student),
        "logits": paths.LOGITS.format(results=R, task=wildcards.task, split="train"),
    }
    store = run_store(wildcards)
    if store:
        if target not in GRID_RUNS and store not in {row["path"] for row in store_targets(wildcards.task)}:
            raise ValueError(f"{target}: its store {store} is not one the extraction of this config writes "
                             "(its cell is not in the grid); add the cell to the config to train it cached")
        # the store folder and manifest, not the store: a file inside the extract rule's directory output is
        # refused as an input. Extraction rewrites both, so the run reruns (the folder by mtime: Snakemake
        # skips a rewritten small file, such as the manifest, whose checksum is unchanged)
        inputs["hsk_stores"] = paths.HSK_STORES.format(results=R, task=wildcards.task)
        inputs["hsk_manifest"] = paths.HSK_MANIFEST.format(results=R, task=wildcards.task)
    return inputs


def run_store(wildcards):
    """The store of a cached run (its `--store`), or "" for a run without one."""
    if not is_cached(STUDY, wildcards.task, wildcards.student, cell_of(wildcards)):
        return ""
    return paths.STORE.format(results=R, task=wildcards.task, student=wildcards.student, split="train",
                              **paths.cell_wildcards(cell_of(wildcards)))


def run_settings(wildcards):
    cell = cell_of(wildcards)
    task_study = STUDY.for_task(wildcards.task)
    return as_json({
        "task": wildcards.task,
        "student": wildcards.student,
        "cell": str(cell),
        "lr": float(wildcards.lr),
        "seed": int(wildcards.seed),
        "stage1": dataclasses.asdict(task_study.stage1),
        "stage2": dataclasses.asdict(task_study.prediction_only_stage() if cell.is_none else task_study.stage2),
        "width_loss": STUDY.width_loss,
        "freeze_word_embeddings": STUDY.freeze_word_embeddings,
        "group_by_length": task_study.data.group_by_length,
        "precision": STUDY.precision,
        "kd_mode": "cached" if is_cached(STUDY, wildcards.task, wildcards.student, cell) else "online",
        "protocol": cell_protocol(STUDY, cell).as_dict(),
    })


def glue_inputs(wildcards):
    if STUDY.glue_dir is None:
        return []
    folder = f"{STUDY.glue_dir}/{wildcards.task}"
    return [f"{folder}/train.tsv", f"{folder}/{get_task(wildcards.task).dev_file}"]


def hub_inputs(models=(), task=None):
    """With `hub.offline`, the download manifests of these hub models (None: not from the hub) and of the task's
    GLUE data (when read from the hub): the job reads them from the hub cache only, so it waits for them. Else
    nothing, and an online study's DAG is unchanged. `ancient`: fetching again (a moved cache) reruns no job."""
    if not STUDY.hub.offline:
        return []
    items = [paths.HUB_MODEL.format(results=R, model=model) for model in models if model]
    if task is not None and glue_from_hub(STUDY):
        items.append(paths.HUB_GLUE.format(results=R, task=task))
    return [ancient(item) for item in items]


def hub_data_inputs(wildcards):
    return hub_inputs([teacher_hub_model(STUDY)], wildcards.task)  # the tokenizer, GLUE


def hub_teacher_inputs(wildcards):
    return hub_inputs([teacher_hub_model(STUDY)])  # weights (none with random_init) and tokenizer


def hub_student_inputs(wildcards):
    return hub_inputs([student_hub_model(STUDY.students[wildcards.student])])
