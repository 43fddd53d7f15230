"""Offline compute nodes: what a study reads from the Hugging Face hub, and fetching it into the cache once.

Planning (no torch, transformers or hub import): `hub_downloads` lists the hub models and GLUE tasks a study
loads (`teacher_hub_model`, `student_hub_model`, `glue_from_hub` say which job reads which), `hub_environment`
maps the config's `hub` section to the variables every job runs with. `download` (`hskd download`, the
download rules of workflow/rules/download.smk) fetches models and tasks with the hub forced online for its own
process, and `merge_manifests` makes the `download` rule's manifest of their manifests. docs/cluster.md: "Running on a
cluster", "Offline compute nodes"."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from hskd.common.glue import HUB_DATASET, get_task
from hskd.common.io import write_json_atomic
from hskd.common.model_names import OFFLINE_MODELS
from hskd.planning.config import HubConfig, StudentConfig, StudyConfig
from hskd.planning.shapes import _looks_like_path

# a hub model id, `name` or `namespace/name` (the download_model rule's wildcard)
HUB_ID_PATTERN = r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?"
# config, tokenizer, vocabulary and weights: what transformers loads; no TF/Flax/ONNX/CoreML weights
MODEL_FILES = ["*.json", "*.txt", "*.model", "*.safetensors", "*.bin"]
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


class DownloadError(RuntimeError):
    """A model or GLUE task could not be fetched; the message names it."""


def is_hub_id(name: str) -> bool:
    """A hub model id: neither an offline short name (`minilm-l6`) nor a local folder."""
    return name not in OFFLINE_MODELS and not _looks_like_path(name)


def teacher_hub_model(study: StudyConfig) -> str | None:
    """The teacher's `model` if it is a hub id, also with `random_init`: the tokenizer of every job is loaded
    from it."""
    return study.teacher.model if is_hub_id(study.teacher.model) else None


def student_hub_model(student: StudentConfig) -> str | None:
    """A `pretrained`-family student's `model` if it is a hub id and the student loads it (no `random_init`: such a
    student gets the teacher's vocabulary and loads nothing); pruned students come from the teacher."""
    loads = student.family == "pretrained" and student.model and not student.random_init
    return student.model if loads and is_hub_id(student.model) else None


def glue_from_hub(study: StudyConfig) -> bool:
    """GLUE is read from the hub: `glue_dir` null and env GLUE_DIR unset (the config folds it into glue_dir);
    `synthetic_data` needs a glue_dir (it writes the data there)."""
    return study.glue_dir is None


def hub_downloads(study: StudyConfig) -> tuple[list[str], list[str]]:
    """(hub model ids, GLUE task names) the study reads from the hub, in config order, without repeats: the
    teacher's model and each student's (`teacher_hub_model`, `student_hub_model`), and every task of the study
    when `glue_from_hub`."""
    models = [teacher_hub_model(study), *(student_hub_model(student) for student in study.students.values())]
    hub_models = [model for model in dict.fromkeys(models) if model]
    return hub_models, list(dict.fromkeys(study.tasks)) if glue_from_hub(study) else []


def hub_environment(hub: HubConfig) -> dict[str, str]:
    """The environment variables of every job (set in the Snakemake process, which passes them on): HF_HOME
    when `cache_dir` is set, and the hub's and datasets' offline switches when `offline`."""
    environment = {}
    if hub.cache_dir:
        environment["HF_HOME"] = str(Path(hub.cache_dir).expanduser())
    if hub.offline:
        environment.update(dict.fromkeys(OFFLINE_VARIABLES, "1"))
    return environment


@contextmanager
def _hub_online() -> Iterator[None]:
    """The hub reachable for this process while inside, whatever the environment says (the download rule runs
    with the study's HF_HUB_OFFLINE=1). huggingface_hub and datasets read the variables once, at import: set
    them first, and where either is already imported, its flags too; everything is put back on exit."""
    saved_environment = {name: os.environ.get(name) for name in OFFLINE_VARIABLES}
    os.environ.update(dict.fromkeys(OFFLINE_VARIABLES, "0"))
    flags = [(sys.modules.get("huggingface_hub.constants"), "HF_HUB_OFFLINE"),
             (sys.modules.get("datasets.config"), "HF_HUB_OFFLINE"),
             (sys.modules.get("datasets.config"), "HF_DATASETS_OFFLINE")]  # fmt: skip
    saved_flags = [(module, name, getattr(module, name)) for module, name in flags if hasattr(module, name)]
    for module, name, _ in saved_flags:
        setattr(module, name, False)
    try:
        yield
    finally:
        for module, name, value in saved_flags:
            setattr(module, name, value)
        for name, value in saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _failure(what: str, err: Exception, hf_home: str) -> DownloadError:
    reason = str(err).splitlines()[0] if str(err) else ""
    return DownloadError(
        f"cannot download {what} from the Hugging Face hub ({type(err).__name__}: {reason}). Run "
        f"`snakemake --cores 1 download` (or `hskd download`) on a machine with internet, into the same cache "
        f"(HF_HOME={hf_home}; the config's hub.cache_dir when set), then run the study."
    )


def download(models: Sequence[str], glue_tasks: Sequence[str], out_path: str | Path) -> dict:
    """Fetch each hub model (config, tokenizer, vocabulary, weights) and each GLUE task (all splits) into the
    hub cache (HF_HOME), then write the manifest `out_path` (JSON) and return it. Raises DownloadError naming
    the first model or task that fails."""
    specs = {task: get_task(task) for task in glue_tasks}  # an unknown task fails before any download
    start = time.perf_counter()
    snapshots: dict[str, str] = {}
    with _hub_online():
        from huggingface_hub import constants, snapshot_download
        from tqdm.auto import tqdm

        hf_home = constants.HF_HOME
        with tqdm(total=len(models) + len(specs), desc="hub download", unit="item", file=sys.stderr) as progress:
            for model in models:
                progress.set_postfix_str(model)
                try:
                    snapshots[model] = str(snapshot_download(model, allow_patterns=MODEL_FILES))
                except Exception as err:  # hub, network and file errors alike: name the model
                    raise _failure(f"model '{model}'", err, hf_home) from err
                progress.update()
            for task, spec in specs.items():
                import datasets  # slow to import: only when a task is fetched

                progress.set_postfix_str(task)
                try:
                    datasets.load_dataset(HUB_DATASET, spec.hub_config)
                except Exception as err:
                    raise _failure(f"GLUE task {task} ({HUB_DATASET}/{spec.hub_config})", err, hf_home) from err
                progress.update()
    manifest = {
        "models": snapshots,
        "glue_tasks": {task: {"dataset": HUB_DATASET, "config": spec.hub_config} for task, spec in specs.items()},
        "hf_home": hf_home,
        "seconds": round(time.perf_counter() - start, 3),
    }
    write_json_atomic(manifest, out_path)
    return manifest


def merge_manifests(manifests: Sequence[dict]) -> dict:
    """One manifest out of the per-model and per-task manifests of `download` (the `download` rule's)."""
    return {
        "models": {model: folder for manifest in manifests for model, folder in manifest["models"].items()},
        "glue_tasks": {task: source for manifest in manifests for task, source in manifest["glue_tasks"].items()},
        "hf_home": sorted({manifest["hf_home"] for manifest in manifests}),
        "seconds": round(sum(manifest["seconds"] for manifest in manifests), 3),
    }


def write_merged(manifest_paths: Sequence[str | Path], out_path: str | Path) -> dict:
    """`merge_manifests` of JSON files, written atomically to `out_path`; returned."""
    merged = merge_manifests([json.loads(Path(path).read_text()) for path in manifest_paths])
    write_json_atomic(merged, out_path)
    return merged
