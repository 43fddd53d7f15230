"""Teacher and student shapes known without downloading anything: read from a local model folder's config.json or
from the study config."""

from __future__ import annotations

import json
from pathlib import Path

from hskd.common.model_names import OFFLINE_MODELS, resolve_model_name
from hskd.planning.config import ConfigError, Shape, StudentConfig, StudyConfig

# The hub models of workflow/configs/paper.yaml, as their config.json give them, for planning without network
HUB_SHAPES = {
    "bert-base-uncased": Shape(layers=12, hidden=768, heads=12, ffn=3072),
    "huawei-noah/TinyBERT_General_4L_312D": Shape(layers=4, hidden=312, heads=12, ffn=1200),
}


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


def _teacher_heads(study: StudyConfig) -> int | None:
    """The teacher's attention heads per layer, where known without downloading anything."""
    if study.teacher.random_init:
        return study.teacher.random_init.heads
    local = _local_model_config(study.teacher.model)
    return local["num_attention_heads"] if local else None


def model_config(name: str) -> Shape | None:
    """A model's shape from its local folder's config.json, or `HUB_SHAPES`; None where neither knows it."""
    local = _local_model_config(name) if name else None
    if local:
        return Shape(local["num_hidden_layers"], local["hidden_size"], local["num_attention_heads"],
                     local["intermediate_size"])  # fmt: skip
    return HUB_SHAPES.get(name)
