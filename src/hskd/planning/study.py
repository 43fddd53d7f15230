"""Load a study: validate the config dict against the schema, apply `by_task` overlays, build the typed config and
run the cross-field checks a JSON schema cannot express."""

from __future__ import annotations

import copy
import importlib.util
from dataclasses import replace
from pathlib import Path
from typing import Any

from hskd.common import glue
from hskd.common.model_names import resolve_model_name
from hskd.planning.config import ConfigError, StudentConfig, StudyConfig, _validate, from_dict
from hskd.planning.shapes import (
    _local_model_config,
    _looks_like_path,
    _teacher_heads,
    student_layer_count,
    teacher_shape,
)

STUDY_WIDE_TEACHER_KEYS = {"model", "random_init", "hidden_size", "num_layers"}  # not settable per task


def load(config: dict[str, Any]) -> StudyConfig:
    """Validate a raw config dict against the schema (filling defaults in place), then each task's
    `by_task` values as the keys they replace, then cross-check the whole. A student set to null (an overlay's
    `students: {pretrained: null}`) is dropped first: it is not in the study."""
    if isinstance(config.get("students"), dict):
        config["students"] = {name: spec for name, spec in config["students"].items() if spec is not None}
    _validate(config)
    task_studies = {}
    for task, sections in config["by_task"].items():
        _check_task_name(f"by_task.{task}", task)
        study_wide = sorted(STUDY_WIDE_TEACHER_KEYS & set(sections.get("teacher", {})))
        if study_wide:
            raise ConfigError(f"by_task.{task}.teacher.{study_wide[0]}: the teacher's model and shape are one for "
                              "the study (its layer maps, tokenizer and cache sizes are planned once)")
        task_config = _with_task_values(config, sections)
        _validate(task_config, key_prefix=f"by_task.{task}.")
        task_studies[task] = from_dict(task_config)
    study = replace(from_dict(config), task_studies=task_studies)
    check(study)
    return study


def _with_task_values(config: dict[str, Any], sections: dict[str, dict]) -> dict[str, Any]:
    """A copy of `config` whose sections carry one task's values (keys not named keep the study's)."""
    merged = copy.deepcopy(config)
    merged["by_task"] = {}
    for section, values in sections.items():
        merged[section] = {**merged[section], **values}
    return merged


def _check_adaptive(study: StudyConfig) -> None:
    adaptive = study.grid.adaptive
    if adaptive.n_min > adaptive.n_max:
        raise ConfigError(f"grid.adaptive.n_min: {adaptive.n_min} > n_max {adaptive.n_max}")
    if adaptive.n_max > len(study.seeds):
        raise ConfigError(f"grid.adaptive.n_max: {adaptive.n_max} > the {len(study.seeds)} seeds")
    if not study.grid.full:
        raise ConfigError("grid.full: the adaptive search tests every cell against full HSK; set it true")
    if study.grid.lr_search:
        raise ConfigError("grid.lr_search: the adaptive search runs each cell at stage2.lr; set it false")


def _check_student(study: StudyConfig, student: StudentConfig, teacher_layers: int) -> None:
    key = f"students.{student.name}"
    if student.family == "pretrained":
        if not student.model:
            raise ConfigError(f"{key}.model: required for the pretrained family")
        _check_model_folder(f"{key}.model", student.model)
        local = _local_model_config(student.model)
        if local and isinstance(student.layers, int) and student.layers > local["num_hidden_layers"]:
            raise ConfigError(
                f"{key}.layers: {student.layers} > the {local['num_hidden_layers']} layers of '{student.model}'"
            )
        return
    for name in ("layers", "heads", "ffn"):
        if getattr(student, name) is None:
            raise ConfigError(f"{key}.{name}: required for the pruned family")
    layers = student.layers if isinstance(student.layers, list) else [student.layers]
    if max(layers) > teacher_layers:
        raise ConfigError(f"{key}.layers: {student.layers} exceeds the teacher's {teacher_layers} layers")
    if len(set(layers)) != len(layers):
        raise ConfigError(f"{key}.layers: {student.layers} names a teacher layer twice")
    heads = _teacher_heads(study)
    if heads is not None and student.heads > heads:
        raise ConfigError(f"{key}.heads: {student.heads} > the teacher's {heads} attention heads")


def _check_model_folder(key: str, name: str) -> None:
    """A model given as a path must be a folder with an HF config.json."""
    if not _looks_like_path(name):
        return
    folder = Path(resolve_model_name(name))
    if not folder.is_dir():
        raise ConfigError(f"{key}: folder '{name}' does not exist")
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{key}: folder '{name}' has no config.json (not a Hugging Face model folder)")


def _check_glue_dir(study: StudyConfig) -> None:
    if study.synthetic_data:
        if study.glue_dir is None:
            raise ConfigError("synthetic_data: needs glue_dir (where to write the tasks' synthetic TSVs)")
        return
    if study.glue_dir is None:
        return
    root = Path(study.glue_dir)
    if not root.is_dir():
        raise ConfigError(f"glue_dir: folder '{study.glue_dir}' does not exist")
    for task in study.tasks:
        for name in ("train.tsv", glue.get_task(task).dev_file):
            path = root / task / name
            if not path.is_file():
                raise ConfigError(f"glue_dir: '{path}' is missing (needed by tasks: {task})")
            try:  # a malformed row stops the study before any job runs, not an hour into it
                glue.read_tsv(task, path)
            except glue.GlueFormatError as err:
                raise ConfigError(f"glue_dir: {err}") from None


def _check_task_name(key: str, task: str) -> None:
    try:
        glue.get_task(task)
    except ValueError as err:
        raise ConfigError(f"{key}: {err}") from None


def check(study: StudyConfig) -> None:
    """Cross-field checks; raise ConfigError naming the key of the first problem."""
    from hskd.planning.grid import joint_cells, study_cells

    for task in study.tasks:
        _check_task_name("tasks", task)
    _check_glue_dir(study)
    _check_model_folder("teacher.model", study.teacher.model)
    if study.tracking == "mlflow" and importlib.util.find_spec("mlflow") is None:
        raise ConfigError("tracking: mlflow needs the mlflow package (pip install 'hskd[mlflow]')")
    for task in study.tasks:
        if study.for_task(task).data.heldout_size == 0 and study.baselines.select_on == "train_heldout":
            key = "data.heldout_size" if task not in study.task_studies else f"by_task.{task}.data.heldout_size"
            raise ConfigError(f"{key}: 0 leaves no held-out slice for baselines.select_on: train_heldout; set "
                              "baselines.select_on: dev (the paper's choice) or a held-out size")
    if study.grid.sweep_seeds > len(study.seeds):
        raise ConfigError(f"grid.sweep_seeds: {study.grid.sweep_seeds} > the {len(study.seeds)} seeds")
    if study.grid.search == "adaptive":
        _check_adaptive(study)
    teacher_layers, _ = teacher_shape(study)
    try:
        joint_cells(study)
    except ValueError as err:
        raise ConfigError(f"grid.joint: {err}") from None
    for student in study.students.values():
        _check_student(study, student, teacher_layers)
        try:
            cells = study_cells(study, student.name)
        except ValueError as err:
            raise ConfigError(f"grid: {err}") from None
        for task in study.tasks:
            for cell in cells:
                if cell.is_none:
                    continue
                try:
                    cell.validate(student_layer_count(study, student), teacher_layers,
                                  study.for_task(task).data.max_seq_length)
                except ValueError as err:
                    raise ConfigError(f"grid ({task}, student {student.name}): {err}") from None
