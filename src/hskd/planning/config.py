"""Typed study configuration: one dataclass per schema section, field names the schema's keys, built from
the schema-validated config dict by `typed`, and validated against the schema. Loading a study
(by_task overlays, cross-field checks) is `hskd.planning.study`."""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hskd.planning import protocol
from hskd.planning.protocol import Protocol

# Package data (pyproject.toml), so an installed hskd validates configs without this repository.
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"
PRECISIONS = ("auto", "fp32", "bf16")  # the schema's `precision` values (hskd.training.loop.autocast_dtype)
TRACKING = ("tensorboard", "mlflow", "none")  # the schema's `tracking` values (hskd.training.tracking)
MAX_LOG_EVERY = 50  # `log_every`'s bound: hskd.training.loop keeps the last 50 losses (LOSS_TAIL)


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
    eval_every: int | None = None  # None: keep the last step's weights, else the best dev checkpoint
    max_grad_norm: float | None = None


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
class AdaptiveConfig:
    """`grid.search: adaptive`: seeds per candidate cell, from n_min to n_max in steps (hskd.report.sequential)."""

    n_min: int
    n_max: int
    step: int


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
    search: str  # grid | adaptive
    adaptive: AdaptiveConfig


@dataclass(frozen=True)
class PredictionOnlyConfig:
    epochs: str = "both_stages"  # both_stages | stage1
    batch_size: int | None = None  # None: stage2's
    warmup_ratio: float | None = None  # None: stage2's


@dataclass(frozen=True)
class BaselinesConfig:
    lrs: list[float]
    select_on: str
    prediction_only: PredictionOnlyConfig = PredictionOnlyConfig()


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
    tracking: str
    tracking_uri: str | None
    log_every: int
    standalone: bool
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

    def tracking_environment(self) -> dict[str, str]:
        """Under `tracking: mlflow`, MLflow's own variables for every job (set in the Snakemake process, which
        passes them on): the server, or a SQLite file in the results folder, and the results folder as the
        experiment."""
        if self.tracking != "mlflow":
            return {}
        uri = self.tracking_uri or f"sqlite:///{os.path.abspath(os.path.join(self.results_dir, 'mlflow.db'))}"
        return {"MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": self.results_dir}

    def prediction_only_stage(self) -> StageConfig:
        """The one stage of a prediction-only run: stage 2 with `baselines.prediction_only`'s epochs, batch size
        and warmup."""
        settings = self.baselines.prediction_only
        epochs = self.stage1.epochs + self.stage2.epochs if settings.epochs == "both_stages" else self.stage1.epochs
        return dataclasses.replace(
            self.stage2, epochs=epochs,
            batch_size=self.stage2.batch_size if settings.batch_size is None else settings.batch_size,
            warmup_ratio=self.stage2.warmup_ratio if settings.warmup_ratio is None else settings.warmup_ratio,
        )  # fmt: skip


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
