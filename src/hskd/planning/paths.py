"""Path patterns of every pipeline output, shared by the Snakefile and the library.

Patterns use Snakemake/str.format wildcards; `results` is the study's folder (config key `results_dir`)."""

from __future__ import annotations

RESULTS = "results"  # the default study's folder
DATA = "{results}/{task}/data/{split}.safetensors"
TEACHER_DIR = "{results}/{task}/teacher"
TEACHER_METRICS = TEACHER_DIR + "/metrics.json"
TEACHER_WEIGHTS = TEACHER_DIR + "/model.safetensors"
TEACHER_CONFIG = TEACHER_DIR + "/config.json"
LOGITS = TEACHER_DIR + "/logits_{split}.safetensors"
STUDENT_INIT = "{results}/{task}/students/{student}/init"
CELL = "depth={depth}/length={length}/width={width}"
HSK_MANIFEST = "{results}/{task}/hsk/manifest.json"
# every store of a task: one folder, the extraction rule's directory output (beside the manifest, not around it)
HSK_STORES = "{results}/{task}/hsk/stores"
STORE = HSK_STORES + "/{student}/" + CELL + "/{split}.safetensors"
RUN_DIR = "{results}/{task}/runs/{student}/" + CELL + "/lr={lr}/seed={seed}"
RUN_METRICS = RUN_DIR + "/metrics.json"
EVENTS_DIR = "tensorboard"  # a training job's curves (tracking: tensorboard), beside its metrics.json
BENCH = "{results}/bench"
# hub.offline: one manifest per hub model and GLUE task in the hub cache (what a job that reads it waits for),
# and the download rule's, of every model and task of the study
HUB_MODEL = "{results}/hub/models/{model}.json"
HUB_GLUE = "{results}/hub/glue/{task}.json"
HUB_DOWNLOAD = "{results}/hub/download.json"


def format_lr(lr: float) -> str:
    """Learning rate as a path segment: Python's shortest round-tripping repr (5e-05, 0.0001)."""
    return str(float(lr))


def cell_wildcards(cell) -> dict[str, str]:
    """{depth, length, width} values (without the `key=` prefix) of a cell's path segments."""
    return dict(segment.split("=", 1) for segment in cell.segments())
