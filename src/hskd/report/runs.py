"""Collect finished runs: parse run paths, read metrics.json files and the tasks' reference rows, name and classify
each cell, list missing and stray runs."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from hskd.planning.cells import parse_cell

CELL_FIELDS = ("task", "student", "depth", "length", "width", "lr", "seed")
PATH_SEGMENTS = ("depth", "length", "width", "lr", "seed")
JOINT_SUFFIX = {"depth": "l", "length": "t", "width": "h"}
REFERENCE_COLUMNS = [
    "task", "metric", "teacher", "trivial", "trivial_rule", "train_examples", "train_requested",
    "train_available", "train_truncated", "dev_examples", "dev_truncated",
]  # fmt: skip


# ---------------------------------------------------------------------------- reading runs


def parse_run_path(path: Path, results_dir: Path) -> dict[str, str]:
    """Read task, student and the hive-style ``key=value`` segments from a metrics.json path."""
    parts = path.relative_to(results_dir).parts
    if len(parts) < 9 or parts[1] != "runs" or parts[-1] != "metrics.json":
        raise ValueError(
            f"{path}: not a {{task}}/runs/{{student}}/depth=../length=../width=../lr=../seed=.. path"
        )
    fields = {"task": parts[0], "student": "/".join(parts[2:-6])}
    for key, segment in zip(PATH_SEGMENTS, parts[-6:-1], strict=True):
        name, sep, value = segment.partition("=")
        if name != key or not sep:
            raise ValueError(f"{path}: expected a '{key}=...' segment, got {segment!r}")
        fields[key] = value
    return fields


def _same_value(field: str, from_path: str, from_file: object) -> bool:
    try:
        if field == "lr":
            return float(from_path) == float(from_file)
        if field == "seed":
            return int(from_path) == int(from_file)
    except (TypeError, ValueError):
        return False
    return from_path == from_file


def read_run(path: Path, results_dir: Path) -> dict:
    """One metrics.json as a record, checked against its path (nested fields are flattened later)."""
    from_path = parse_run_path(path, results_dir)
    record = json.loads(path.read_text(encoding="utf-8"))
    for field in CELL_FIELDS:
        if not _same_value(field, from_path[field], record.get(field)):
            raise ValueError(
                f"{path}: field {field!r} is {record.get(field)!r} in the file"
                f" but {from_path[field]!r} in the path"
            )
    record["path"] = str(path)
    return record


def found_runs(results_dir: str | Path) -> list[Path]:
    """Every ``*/runs/**/metrics.json`` under `results_dir`, sorted."""
    return sorted(Path(results_dir).glob("*/runs/**/metrics.json"))


def collect_runs(results_dir: str | Path, run_paths: Iterable[str | Path] | None = None) -> pd.DataFrame:
    """One row per metrics.json, every (flattened) field a column, plus ``path``: the files `run_paths` names,
    or, without it, every run found under `results_dir`."""
    results_dir = Path(results_dir)
    paths = found_runs(results_dir) if run_paths is None else sorted(Path(path) for path in run_paths)
    records = [read_run(path, results_dir) for path in paths]
    if not records:
        return pd.DataFrame(columns=[*CELL_FIELDS, "path"])
    # nested fields become columns: versions.torch -> versions_torch, settings.stage1.lr -> settings_stage1_lr
    runs = pd.json_normalize(records, sep="_")
    return runs.astype({"lr": float, "seed": int})


def trivial_rule(metric: str) -> str:
    return "always the training mean" if metric in ("pearson", "spearman") else "always the majority training class"


def read_references(results_dir: str | Path, tasks: Iterable[str]) -> pd.DataFrame:
    """Per task: the teacher's dev metric, the trivial baseline's and the data facts, from the teacher's
    metrics.json (tasks without one are left out)."""
    rows = []
    for task in sorted(set(tasks)):
        path = Path(results_dir) / task / "teacher" / "metrics.json"
        if not path.is_file():
            continue
        teacher = json.loads(path.read_text(encoding="utf-8"))
        data = teacher.get("data", {})
        train, dev = data.get("train", {}), data.get("dev", {})
        rows.append({
            "task": task, "metric": teacher["metric"], "teacher": teacher["dev"],
            "trivial": teacher.get("dev_trivial", math.nan), "trivial_rule": trivial_rule(teacher["metric"]),
            "train_examples": train.get("examples"), "train_requested": train.get("requested"),
            "train_available": train.get("available"), "train_truncated": train.get("truncated"),
            "dev_examples": dev.get("examples"), "dev_truncated": dev.get("truncated"),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=REFERENCE_COLUMNS)


def data_warnings(references: pd.DataFrame) -> list[str]:
    """One sentence per data fact a reader must know: a training subset larger than the data, truncation."""
    notes = []
    for ref in references.itertuples():
        if pd.notna(ref.train_requested) and ref.train_requested > ref.train_available:
            notes.append(f"{ref.task}: data.train_subset asks for {int(ref.train_requested)} training examples "
                         f"but only {int(ref.train_available)} remain after the held-out slice; all are used.")
        for split in ("train", "dev"):
            truncated, examples = getattr(ref, f"{split}_truncated"), getattr(ref, f"{split}_examples")
            if pd.notna(truncated) and truncated > 0:
                notes.append(f"{ref.task}: {truncated / examples:.1%} of {split} examples ({int(truncated)} of "
                             f"{int(examples)}) are longer than data.max_seq_length and were truncated.")
    return notes


# ---------------------------------------------------------------------------- cells


def classify_cell(depth: str, length: str, width: str) -> tuple[str, str, float]:
    """(kind, strategy, amount) of a cell, e.g. ("depth", "top6", 1.0) or ("joint", "1l_10t_0.1h", nan)."""
    cell = parse_cell(cell_name(depth, length, width))
    if cell.is_none:
        return "none", "prediction-only", math.nan
    compressed: dict[str, tuple[str, float]] = {}
    if cell.depth.keep is not None:
        compressed["depth"] = (f"top{cell.depth.map_top}", float(cell.depth.keep))
    if cell.length.scheme is not None:
        compressed["length"] = (cell.length.scheme, float(cell.length.keep))
    if cell.width.scheme is not None:
        compressed["width"] = (cell.width.scheme, cell.width.fraction)
    if not compressed:
        return "full", "full HSK", math.nan
    if len(compressed) == 1:
        ((kind, (strategy, amount)),) = compressed.items()
        return kind, strategy, amount
    label = "_".join(f"{amount:g}{JOINT_SUFFIX[kind]}" for kind, (_, amount) in compressed.items())
    return "joint", label, math.nan


def cell_name(depth: str, length: str, width: str) -> str:
    """The cell as its path fragment, e.g. ``depth=top6-1/length=all/width=all``."""
    return f"depth={depth}/length={length}/width={width}"


def add_cell_columns(runs: pd.DataFrame) -> pd.DataFrame:
    """Add ``kind``, ``strategy``, ``amount`` and ``cell`` computed from depth/length/width."""
    cells = [classify_cell(*cell) for cell in zip(runs["depth"], runs["length"], runs["width"], strict=True)]
    out = runs.copy()
    classified = pd.DataFrame(cells, columns=["kind", "strategy", "amount"], index=runs.index)
    out[["kind", "strategy", "amount"]] = classified.astype({"amount": float})
    out["cell"] = [
        cell_name(*cell) for cell in zip(runs["depth"], runs["length"], runs["width"], strict=True)
    ]
    return out


# ---------------------------------------------------------------------------- driver


def missing_runs(expected: Iterable[str]) -> list[str]:
    """Expected metrics.json paths (relative to the working directory) that do not exist."""
    return [path for path in expected if not Path(path).is_file()]


def stray_runs(results_dir: str | Path, expected: Iterable[str]) -> list[str]:
    """Runs found under `results_dir` that `expected` does not name (left over from another config)."""
    wanted = {Path(path).resolve() for path in expected}
    return [str(path) for path in found_runs(results_dir) if path.resolve() not in wanted]
