"""Typed study configuration: one dataclass per schema section, field names the schema's keys, built from
the schema-validated config dict by `typed`, plus the cross-field checks a JSON schema cannot express. Every
check raises `ConfigError` naming the key."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from hskd import glue, protocol
from hskd.model_names import OFFLINE_MODELS, resolve_model_name
from hskd.protocol import Protocol

# Package data (pyproject.toml), so an installed hskd validates configs without this repository.
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"
STUDY_WIDE_TEACHER_KEYS = {"model", "random_init", "hidden_size", "num_layers"}  # not settable per task
PRECISIONS = ("auto", "fp32", "bf16")  # the schema's `precision` values (hskd.training.autocast_dtype)


T = TypeVar("T")


class ConfigError(ValueError):
    """A bad configuration value; the message starts with the offending key."""


@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    heads: int
    ffn: int


@dataclass(frozen=True)
class DataConfig:
    max_seq_length: int
    train_subset: int | None
    heldout_size: int
    subset_seed: int
    group_by_length: bool


@dataclass(frozen=True)
class TeacherConfig:
    model: str
    random_init: Shape | None
    epochs: float
    lr: float
    batch_size: int
    warmup_ratio: float
    weight_decay: float
    seed: int
    hidden_size: int | None
    num_layers: int | None


@dataclass(frozen=True)
class StudentConfig:
    name: str
    family: str
    model: str | None = None
    random_init: Shape | None = None
    layers: int | list[int] | None = None
    heads: int | None = None
    ffn: int | None = None
    emb_rank: int | None = None
    importance_batches: int = 16


@dataclass(frozen=True)
class StageConfig:
    epochs: float
    lr: float
    batch_size: int
    warmup_ratio: float
    weight_decay: float
    temperature: float
    eval_every: int
    schedule: str


@dataclass(frozen=True)
class JointConfig:
    configs: list[str]
    depth: str
    length: str
    width: str


@dataclass(frozen=True)
class DepthSweep:
    maps: list[str]
    keep: list[int]


@dataclass(frozen=True)
class LengthSweep:
    schemes: list[str]
    keep: list[int]


@dataclass(frozen=True)
class WidthSweep:
    schemes: list[str]
    fractions: list[float]


@dataclass(frozen=True)
class GridConfig:
    none: bool
    full: bool
    lr_search: bool
    full_map: str
    sweep_seeds: int
    depth: DepthSweep
    length: LengthSweep
    width: WidthSweep
    joint: JointConfig


@dataclass(frozen=True)
class BaselinesConfig:
    lrs: list[float]
    select_on: str


@dataclass(frozen=True)
class ReportConfig:
    value: str
    margin: float
    alpha: float
    fraction: str


@dataclass(frozen=True)
class RuleResources:
    mem_mb: int
    runtime: int


@dataclass(frozen=True)
class ResourcesConfig:
    finetune_teacher: RuleResources
    init_student: RuleResources
    extract: RuleResources
    distill: RuleResources


@dataclass(frozen=True)
class HubConfig:
    cache_dir: str | None
    offline: bool


@dataclass(frozen=True)
class StudyConfig:
    """The study; `protocol` is resolved from the schema's `protocol` and `protocol_choices`, and `by_task` is
    applied: `for_task` gives the study as a task sees it."""

    tasks: list[str]
    results_dir: str
    glue_dir: str | None
    synthetic_data: bool
    gpu: bool
    threads: int
    seeds: list[int]
    kd_mode: str
    cache_budget_gb: float
    checkpoint_minutes: float
    precision: str
    teacher_margin: float | None
    width_loss: str
    freeze_word_embeddings: bool
    allow_off_grid: bool
    resources: ResourcesConfig
    hub: HubConfig
    protocol: Protocol
    data: DataConfig
    teacher: TeacherConfig
    students: dict[str, StudentConfig]
    stage1: StageConfig
    stage2: StageConfig
    grid: GridConfig
    baselines: BaselinesConfig
    report: ReportConfig
    task_studies: dict[str, StudyConfig] = field(repr=False, compare=False, default_factory=dict)

    def for_task(self, task: str) -> StudyConfig:
        """The study as one task sees it: the config with that task's `by_task` values put in."""
        return self.task_studies.get(task, self)


def typed(cls: type[T], values: Any) -> T:
    """`values` (a config section's dict form: JSON, YAML) as dataclass `cls`, nested sections included.

    Keys are the dataclass's fields; a field with a default may be missing. A value that already has its
    field's type passes as is. Raises TypeError naming the key on a missing or unknown one."""
    return _typed(cls, values)


def _typed(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        hints = typing.get_type_hints(hint)
        names = {item.name for item in dataclasses.fields(hint) if item.init}
        unknown = sorted(set(value) - names)
        if unknown:
            raise TypeError(f"{hint.__name__}: unknown key {unknown[0]!r}")
        return hint(**{name: _typed(hints[name], item) for name, item in value.items()})
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        sections = [arg for arg in args if dataclasses.is_dataclass(arg)]
        return _typed(sections[0], value) if sections and isinstance(value, dict) else value
    if origin is dict:
        return {key: _typed(args[1], item) for key, item in value.items()}
    if origin is list:
        return [_typed(args[0], item) for item in value]
    return value


def _protocol(config: dict[str, Any]) -> Protocol:
    try:
        return protocol.resolve(config["protocol"], config["protocol_choices"])
    except ValueError as err:
        raise ConfigError(str(err)) from None


def from_dict(config: dict[str, Any]) -> StudyConfig:
    """Build the typed config from a dict already validated (and defaulted) by the JSON schema."""
    values = {key: value for key, value in config.items() if key not in ("protocol_choices", "by_task")}
    # normpath: `results/` and `./results` name the targets `results/…`
    return typed(StudyConfig, {
        **values,
        "results_dir": os.path.normpath(config["results_dir"]),
        "glue_dir": config["glue_dir"] or os.environ.get("GLUE_DIR") or None,
        "protocol": _protocol(config),
        "students": {name: {"name": name, **spec} for name, spec in config["students"].items()},
    })  # fmt: skip


def load(config: dict[str, Any]) -> StudyConfig:
    """Validate a raw config dict against the schema (filling defaults in place), then each task's
    `by_task` values as the keys they replace, then cross-check the whole."""
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


def _validate(config: dict[str, Any], key_prefix: str = "") -> None:
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, str(SCHEMA_PATH), set_default=True)
    except WorkflowError as err:
        raise ConfigError(_schema_message(err, key_prefix)) from None


def _schema_message(err: Exception, key_prefix: str = "") -> str:
    """One line out of jsonschema's multi-line validation error: the key path and the reason."""
    cause = err.__cause__ or err.__context__
    if cause is not None and hasattr(cause, "absolute_path"):
        key = ".".join(str(part) for part in cause.absolute_path) or "<top level>"
        return f"config key '{key_prefix}{key}': {cause.message}"
    return str(err).splitlines()[0]


def _local_model_config(name: str) -> dict | None:
    if name not in OFFLINE_MODELS and not Path(resolve_model_name(name)).exists():
        return None
    config_file = Path(resolve_model_name(name)) / "config.json"
    return json.loads(config_file.read_text()) if config_file.exists() else None


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or Path(name).exists()


def teacher_shape(study: StudyConfig) -> tuple[int, int]:
    """(num_layers, hidden_size) of the teacher, known without downloading anything."""
    teacher = study.teacher
    if teacher.random_init:
        return teacher.random_init.layers, teacher.random_init.hidden
    local = _local_model_config(teacher.model)
    if local:
        return local["num_hidden_layers"], local["hidden_size"]
    if teacher.num_layers and teacher.hidden_size:
        return teacher.num_layers, teacher.hidden_size
    raise ConfigError(
        f"teacher.num_layers/teacher.hidden_size: set both for hub model '{teacher.model}' "
        "(needed to plan layer maps and cache sizes without network)"
    )


def student_layer_count(study: StudyConfig, student: StudentConfig) -> int:
    """Number of transformer layers (Ls) of a student, known without downloading anything."""
    if isinstance(student.layers, list):
        return len(student.layers)
    if isinstance(student.layers, int):
        return student.layers
    if student.family == "pruned":
        return teacher_shape(study)[0]
    if student.random_init:
        return student.random_init.layers
    local = _local_model_config(student.model or "")
    if local:
        return local["num_hidden_layers"]
    raise ConfigError(f"students.{student.name}.layers: set it for hub model '{student.model}'")


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


def _teacher_heads(study: StudyConfig) -> int | None:
    """The teacher's attention heads per layer, where known without downloading anything."""
    if study.teacher.random_init:
        return study.teacher.random_init.heads
    local = _local_model_config(study.teacher.model)
    return local["num_attention_heads"] if local else None


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
        if study.glue_dir is None or study.tasks != ["SST-2"]:
            raise ConfigError("synthetic_data: needs glue_dir (where to write it) and tasks: [SST-2]")
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
    from hskd.grid import joint_cells, study_cells

    for task in study.tasks:
        _check_task_name("tasks", task)
    _check_glue_dir(study)
    _check_model_folder("teacher.model", study.teacher.model)
    if study.grid.sweep_seeds > len(study.seeds):
        raise ConfigError(f"grid.sweep_seeds: {study.grid.sweep_seeds} > the {len(study.seeds)} seeds")
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
