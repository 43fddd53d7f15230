"""GLUE task specifications and loading of train/dev examples from classic TSVs or the Hugging Face hub."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

HUB_DATASET = "nyu-mll/glue"
SPLITS = ("train", "dev")


class GlueFormatError(ValueError):
    """A malformed row in a GLUE TSV file; the message starts with ``path:line:``."""


@dataclass(frozen=True)
class TsvLayout:
    """Where a task's classic GLUE TSV keeps its texts and label."""

    text_columns: tuple[str, ...]
    label_column: str
    # Labels written as ids ("0"/"1") rather than as label names.
    numeric_labels: bool = False
    # Column names for headerless files (CoLA); None when the file's first line is a header.
    columns: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TaskSpec:
    """Static description of one GLUE task."""

    name: str
    hub_config: str
    text_columns: tuple[str, ...]
    labels: tuple[str, ...]
    metric: str
    tsv: TsvLayout
    dev_split: str = "validation"
    dev_file: str = "dev.tsv"

    @property
    def is_regression(self) -> bool:
        return not self.labels

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.labels)


_PAIR = ("sentence1", "sentence2")

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            "CoLA",
            "cola",
            ("sentence",),
            ("unacceptable", "acceptable"),
            "matthews_corrcoef",
            TsvLayout(
                ("sentence",),
                "label",
                numeric_labels=True,
                columns=("source", "label", "original_label", "sentence"),
            ),
        ),
        TaskSpec(
            "SST-2",
            "sst2",
            ("sentence",),
            ("negative", "positive"),
            "accuracy",
            TsvLayout(("sentence",), "label", numeric_labels=True),
        ),
        TaskSpec(
            "MRPC",
            "mrpc",
            _PAIR,
            ("not_equivalent", "equivalent"),
            "f1",
            TsvLayout(("#1 String", "#2 String"), "Quality", numeric_labels=True),
        ),
        TaskSpec("STS-B", "stsb", _PAIR, (), "pearson", TsvLayout(_PAIR, "score")),
        TaskSpec(
            "QQP",
            "qqp",
            ("question1", "question2"),
            ("not_duplicate", "duplicate"),
            "f1",
            TsvLayout(("question1", "question2"), "is_duplicate", numeric_labels=True),
        ),
        TaskSpec(
            "MNLI",
            "mnli",
            ("premise", "hypothesis"),
            ("entailment", "neutral", "contradiction"),
            "accuracy",
            TsvLayout(_PAIR, "gold_label"),
            dev_split="validation_matched",
            dev_file="dev_matched.tsv",
        ),
        TaskSpec(
            "QNLI",
            "qnli",
            ("question", "sentence"),
            ("entailment", "not_entailment"),
            "accuracy",
            TsvLayout(("question", "sentence"), "label"),
        ),
        TaskSpec(
            "RTE",
            "rte",
            _PAIR,
            ("entailment", "not_entailment"),
            "accuracy",
            TsvLayout(_PAIR, "label"),
        ),
    )
}


def get_task(name: str) -> TaskSpec:
    """Return the spec of a GLUE task by its canonical name (e.g. ``"SST-2"``)."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r} (expected one of {', '.join(TASKS)})") from None


@dataclass
class Examples:
    """Texts and label ids (floats for regression) of one split; ``text_b`` is None for single-text tasks."""

    text_a: list[str]
    text_b: list[str] | None
    labels: list[int] | list[float]

    def __len__(self) -> int:
        return len(self.labels)


def _label_map(spec: TaskSpec) -> dict[str, int]:
    if spec.tsv.numeric_labels:
        return {str(i): i for i in range(len(spec.labels))}
    return {name: i for i, name in enumerate(spec.labels)}


def _parse_label(spec: TaskSpec, value: str) -> int | float:
    """Label id (or float score) of a TSV label field; ValueError with a reason if invalid."""
    if spec.is_regression:
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"non-numeric score {value!r}") from None
    label_ids = _label_map(spec)
    if value not in label_ids:
        raise ValueError(f"unknown label {value!r} (expected one of {', '.join(label_ids)})")
    return label_ids[value]


def _column_indices(columns: list[str], wanted: tuple[str, ...]) -> list[int]:
    missing = [name for name in wanted if name not in columns]
    if missing:
        raise ValueError(f"header lacks column(s) {', '.join(map(repr, missing))}")
    return [columns.index(name) for name in wanted]


def _parse_row(
    spec: TaskSpec, row: list[str], n_columns: int, indices: list[int]
) -> tuple[list[str], int | float]:
    """Texts and label of one data row; ValueError with a reason if the row is malformed."""
    if len(row) != n_columns:
        raise ValueError(f"expected {n_columns} columns, got {len(row)}")
    *texts, label = (row[i] for i in indices)
    if any(not text.strip() for text in texts):
        raise ValueError("empty text")
    return texts, _parse_label(spec, label)


def read_tsv(task: str, path: str | os.PathLike[str]) -> Examples:
    """Read a classic GLUE TSV file of ``task`` (train or dev layout); blank lines are skipped."""
    spec = get_task(task)
    layout = spec.tsv
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GLUE TSV not found: {path}")
    texts: list[list[str]] = [[] for _ in layout.text_columns]
    labels: list = []
    # utf-8-sig: the MRPC files start with a byte-order mark. QUOTE_NONE: GLUE texts contain stray quotes.
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            columns = list(layout.columns) if layout.columns is not None else next(reader, [])
            indices = _column_indices(columns, (*layout.text_columns, layout.label_column))
        except ValueError as err:  # UnicodeDecodeError too (not UTF-8 text): it is a ValueError
            raise GlueFormatError(f"{path}:1: {err}") from None
        try:
            for row in reader:
                if not row:
                    continue
                row_texts, label = _parse_row(spec, row, len(columns), indices)
                for column, text in zip(texts, row_texts, strict=True):
                    column.append(text)
                labels.append(label)
        except ValueError as err:
            raise GlueFormatError(f"{path}:{reader.line_num}: {err}") from None
    if not labels:
        raise GlueFormatError(f"{path}: no examples (only a header, or empty)")
    return Examples(texts[0], texts[1] if len(texts) > 1 else None, labels)


def _load_hub(spec: TaskSpec, hub_split: str) -> Examples:
    # Imported lazily: `datasets` is slow to import and not needed when reading local TSVs.
    import datasets

    try:
        ds = datasets.load_dataset(HUB_DATASET, spec.hub_config, split=hub_split)
    except OSError as err:  # ConnectionError and the hub's offline/HTTP errors are all OSErrors
        raise RuntimeError(
            f"cannot load GLUE {spec.name} ({HUB_DATASET}/{spec.hub_config}, split {hub_split!r}): "
            f"the Hugging Face hub is unreachable ({err}). Set `glue_dir` (top-level config key, or env "
            f"GLUE_DIR) to a folder with the classic GLUE TSVs "
            f"({spec.name}/train.tsv, {spec.name}/{spec.dev_file}, ...)."
        ) from err
    text_b = list(ds[spec.text_columns[1]]) if len(spec.text_columns) > 1 else None
    return Examples(list(ds[spec.text_columns[0]]), text_b, list(ds["label"]))


def load_split(task: str, split: str, glue_dir: str | os.PathLike[str] | None = None) -> Examples:
    """Load the ``"train"`` or ``"dev"`` split of ``task``.

    Reads ``glue_dir/{task}/`` TSVs when ``glue_dir`` (or else env ``GLUE_DIR``) is set,
    otherwise downloads from the hub.
    """
    spec = get_task(task)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (expected one of {', '.join(SPLITS)})")
    glue_dir = glue_dir or os.environ.get("GLUE_DIR") or None
    if glue_dir:
        file_name = "train.tsv" if split == "train" else spec.dev_file
        return read_tsv(task, Path(glue_dir) / spec.name / file_name)
    return _load_hub(spec, "train" if split == "train" else spec.dev_split)
