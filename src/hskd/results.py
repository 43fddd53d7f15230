"""Aggregate run metrics: tuned summaries, per-dimension tables and the minimum-HSK finding.

Runs are read from
``{results_dir}/{task}/runs/{student}/depth=../length=../width=../lr=../seed=../metrics.json``.
Everything below `collect_runs` is a pure function of pandas frames; writers go through `atomic_output`.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from hskd.cells import parse_cell
from hskd.io import atomic_output
from hskd.metrics import COLLAPSE_TOLERANCE
from hskd.stats import LEVEL, holm, noninferiority, seeds_for_noninferiority, share_interval, t_interval, welch_interval

CELL_FIELDS = ("task", "student", "depth", "length", "width", "lr", "seed")
PATH_SEGMENTS = ("depth", "length", "width", "lr", "seed")
KEY = ["task", "student", "cell"]
COMPRESSED_KINDS = ("depth", "length", "width", "joint")
SELECTION_COLUMNS = {"train_heldout": "heldout_final", "dev": "dev_best"}
SELECTION_NOTES = {
    "train_heldout": "learning rate chosen on a held-out slice of the training data",
    "dev": "learning rate chosen on dev (optimistic: the paper's protocol)",
}
JOINT_SUFFIX = {"depth": "l", "length": "t", "width": "h"}
SUMMARY_COLUMNS = [
    "task", "student", "kind", "strategy", "amount", "cell", "lr", "n_seeds", "mean", "std",
    "hsk_fraction", "hsk_fraction_real", "hsk_bytes_per_example", "metric", "lrs_tried", "selection_score",
    "select_on", "value_column", "n_collapsed", "ci_low", "ci_high", "vs_none", "vs_none_low", "vs_none_high",
    "gain_share", "gain_share_low", "gain_share_high",
]  # fmt: skip
TABLE_COLUMNS = [
    "task", "student", "strategy", "amount", "cell", "lr", "n_seeds", "n_collapsed", "mean", "std", "ci_low",
    "ci_high", "hsk_fraction", "hsk_fraction_real", "vs_none", "vs_none_low", "vs_none_high", "gain_share",
    "gain_share_low", "gain_share_high",
]  # fmt: skip
REFERENCE_COLUMNS = [
    "task", "metric", "teacher", "trivial", "trivial_rule", "train_examples", "train_requested",
    "train_available", "train_truncated", "dev_examples", "dev_truncated",
]  # fmt: skip
MINIMUM_COLUMNS = [
    "task", "student", "cell", "kind", "hsk_fraction", "hsk_fraction_real", "n_seeds", "mean", "ci_low", "ci_high",
    "gain_share", "gain_share_low", "gain_share_high", "decided_on", "diff_vs_full", "diff_lower_bound", "p_value",
    "decision", "minimum", "pooled_seed_std",
]  # fmt: skip
LR_SWEEP_COLUMNS = [
    "task", "student", "cell", "kind", "lr", "n_seeds", "mean", "std", "selection_score", "chosen", "select_on",
    "value_column",
]  # fmt: skip


# ---------------------------------------------------------------------------- output


def write_text(text: str, path: str | Path) -> Path:
    """Write `text` to `path` atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_runs_csv(runs: pd.DataFrame, path: str | Path) -> Path:
    """Write the per-run table (one row per metrics.json) as CSV."""
    return write_text(runs.to_csv(index=False), path)


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


# ---------------------------------------------------------------------------- lr selection and summary


def selection_column(select_on: str) -> str:
    """Column that learning rates are chosen on: held-out training slice, or dev (optimistic)."""
    if select_on not in SELECTION_COLUMNS:
        raise ValueError(f"select_on must be one of {sorted(SELECTION_COLUMNS)}, got {select_on!r}")
    return SELECTION_COLUMNS[select_on]


def select_lr(runs: pd.DataFrame, select_on: str = "train_heldout") -> pd.DataFrame:
    """Per (task, student, cell): the lr with the best seed-mean selection score (ties: smallest lr)."""
    column = selection_column(select_on)
    runs = add_cell_columns(runs)
    per_lr = runs.groupby([*KEY, "lr"], as_index=False).agg(selection_score=(column, "mean"))
    rows = []
    for key, group in per_lr.groupby(KEY, sort=True):
        group = group.sort_values("lr")
        scored = group.dropna(subset=["selection_score"])
        if scored.empty and len(group) > 1:
            raise ValueError(f"{'/'.join(key)}: no {column} values to choose among lrs {list(group['lr'])}")
        best = group.iloc[0] if scored.empty else scored.loc[scored["selection_score"].idxmax()]
        rows.append(
            {
                **dict(zip(KEY, key, strict=True)),
                "lr": best["lr"],
                "selection_score": best["selection_score"],
                "select_on": select_on,
                "lrs_tried": ",".join(str(lr) for lr in group["lr"]),
            }
        )
    return pd.DataFrame(rows, columns=[*KEY, "lr", "selection_score", "select_on", "lrs_tried"])


def lr_sweep(runs: pd.DataFrame, select_on: str = "train_heldout", value_column: str = "dev_final") -> pd.DataFrame:
    """Every learning rate of the cells that tried several (the tuned baselines): seed mean and std of
    `value_column`, the mean selection score, and whether `select_lr` chose it."""
    if runs.empty:
        return pd.DataFrame(columns=LR_SWEEP_COLUMNS)
    runs = add_cell_columns(runs)
    per_lr = runs.groupby([*KEY, "kind", "lr"], as_index=False).agg(
        n_seeds=(value_column, "count"),
        mean=(value_column, "mean"),
        std=(value_column, "std"),
        selection_score=(selection_column(select_on), "mean"),
    )
    per_lr = per_lr[per_lr.groupby(KEY)["lr"].transform("nunique") > 1]
    chosen = select_lr(runs, select_on)[[*KEY, "lr"]].assign(chosen=True)
    table = per_lr.merge(chosen, on=[*KEY, "lr"], how="left").fillna({"chosen": False})
    return table.assign(select_on=select_on, value_column=value_column)[LR_SWEEP_COLUMNS].reset_index(drop=True)


def baselines(summary: pd.DataFrame) -> pd.DataFrame:
    """Per (task, student) in `summary`: tuned prediction-only (``none_*``) and full-HSK (``full_*``) rows.

    If several full-HSK cells exist (e.g. two teacher layer maps), the one with most seeds wins,
    then the first by cell name.
    """
    picked = summary[["task", "student"]].drop_duplicates().set_index(["task", "student"])
    if "n_collapsed" not in summary:  # a summary.csv written before collapses were counted
        summary = summary.assign(n_collapsed=0)
    for column in ("ci_low", "ci_high"):  # filled by `add_intervals`, after the baselines are known
        if column not in summary:
            summary = summary.assign(**{column: math.nan})
    for kind in ("none", "full"):
        rows = summary[summary["kind"] == kind].sort_values(
            ["task", "student", "n_seeds", "cell"], ascending=[True, True, False, True]
        )
        rows = rows.drop_duplicates(["task", "student"]).set_index(["task", "student"])
        columns = ["cell", "lr", "mean", "std", "n_seeds", "n_collapsed", "ci_low", "ci_high"]
        picked = picked.join(rows[columns].add_prefix(f"{kind}_"))
    return picked.reset_index()


def hsk_gains(summary: pd.DataFrame) -> pd.DataFrame:
    """Per (task, student): the tuned full-HSK gain over prediction-only, its Welch 95% interval, and why
    no share of it is reported (empty when the gain is positive beyond its interval)."""
    rows = []
    for base in baselines(summary).itertuples():
        low, high = welch_interval(base.full_mean, base.full_std, base.full_n_seeds,
                                   base.none_mean, base.none_std, base.none_n_seeds)  # fmt: skip
        gain = base.full_mean - base.none_mean
        if pd.isna(gain):
            reason = "no prediction-only or no full-HSK baseline"
        elif base.none_n_collapsed or base.full_n_collapsed:
            reason = "a baseline run collapsed onto the trivial baseline"
        elif pd.isna(low):
            reason = "a baseline has fewer than 2 seeds, so the gain has no interval"
        elif low <= 0:
            reason = f"the HSK gain {gain:+.4f} is not above 0 beyond its 95% interval [{low:+.4f}, {high:+.4f}]"
        else:
            reason = ""
        rows.append({"task": base.task, "student": base.student, "gain": gain, "gain_low": low,
                     "gain_high": high, "no_share_reason": reason})  # fmt: skip
    return pd.DataFrame(rows, columns=["task", "student", "gain", "gain_low", "gain_high", "no_share_reason"])


def add_gain_share(summary: pd.DataFrame) -> pd.DataFrame:
    """``gain_share`` = (mean - none_mean) / (full_mean - none_mean), tuned baselines; NaN where the gain
    is not shown to be positive (`hsk_gains` says why)."""
    base = baselines(summary)[["task", "student", "none_mean"]]
    gains = hsk_gains(summary)
    merged = summary.drop(columns=["gain_share"], errors="ignore").merge(base, on=["task", "student"], how="left")
    merged = merged.merge(gains, on=["task", "student"], how="left")
    shown = merged["no_share_reason"] == ""
    merged["gain_share"] = ((merged["mean"] - merged["none_mean"]) / merged["gain"]).where(shown)
    return merged.drop(columns=["none_mean", *gains.columns.drop(["task", "student"])])


def collapsed_flags(runs: pd.DataFrame) -> pd.Series:
    """Each run's `collapsed` flag (False for metrics.json files written before it was recorded)."""
    if "collapsed" not in runs:
        return pd.Series(False, index=runs.index)
    return runs["collapsed"].astype("boolean").fillna(False).astype(bool)


def summarize(
    runs: pd.DataFrame, select_on: str = "train_heldout", value_column: str = "dev_final"
) -> pd.DataFrame:
    """One row per (task, student, cell): mean and sample std over seeds of `value_column` at the tuned lr."""
    if runs.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    runs = add_cell_columns(runs)
    if "hsk_fraction_real" not in runs:  # runs made before hskd recorded the real-token fraction
        runs = runs.assign(hsk_fraction_real=np.nan)
    chosen = select_lr(runs, select_on)
    at_lr = runs.merge(chosen[[*KEY, "lr"]], on=[*KEY, "lr"]).assign(collapsed=collapsed_flags)
    summary = at_lr.groupby(KEY, as_index=False).agg(
        kind=("kind", "first"),
        strategy=("strategy", "first"),
        amount=("amount", "first"),
        n_seeds=(value_column, "count"),
        mean=(value_column, "mean"),
        std=(value_column, "std"),
        hsk_fraction=("hsk_fraction", "first"),
        hsk_fraction_real=("hsk_fraction_real", "mean"),
        hsk_bytes_per_example=("hsk_bytes_per_example", "first"),
        metric=("metric", "first"),
        n_collapsed=("collapsed", "sum"),
    )
    summary = summary.merge(chosen, on=KEY)
    summary["value_column"] = value_column
    return add_intervals(add_vs_prediction_only(add_gain_share(summary)), at_lr, value_column)[SUMMARY_COLUMNS]


def add_vs_prediction_only(summary: pd.DataFrame) -> pd.DataFrame:
    """``vs_none`` = mean - tuned prediction-only mean, with its Welch 95% interval (NaN under 2 seeds a
    side): a cell that hurts the student shows as an interval below 0 whether or not a gain share is shown.
    Empty on the prediction-only row itself."""
    base = baselines(summary)[["task", "student", "none_mean", "none_std", "none_n_seeds"]]
    merged = summary.merge(base, on=["task", "student"], how="left")
    bounds = [welch_interval(row.mean, row.std, row.n_seeds, row.none_mean, row.none_std, row.none_n_seeds)
              for row in merged.itertuples()]  # fmt: skip
    own = (merged["kind"] == "none").to_numpy()
    out = summary.copy()
    out["vs_none"] = np.where(own, np.nan, (merged["mean"] - merged["none_mean"]).to_numpy())
    out[["vs_none_low", "vs_none_high"]] = np.where(own[:, None], np.nan, np.array(bounds, dtype=float).reshape(-1, 2))
    return out


def _values_by_cell(at_lr: pd.DataFrame, column: str) -> dict[tuple[str, str, str], np.ndarray]:
    return {key: group[column].dropna().to_numpy(dtype=float) for key, group in at_lr.groupby(KEY)}


def add_intervals(summary: pd.DataFrame, at_lr: pd.DataFrame, value_column: str) -> pd.DataFrame:
    """95% t interval of each cell's mean, and a bootstrap interval of its gain share where one is shown
    (seeds of the cell and of both tuned baselines resampled; `hskd.stats.share_interval`)."""
    values = _values_by_cell(at_lr, value_column)
    base = baselines(summary).set_index(["task", "student"])
    out = summary.copy()
    bounds, shares = [], []
    for row in summary.itertuples():
        bounds.append(t_interval(values[(row.task, row.student, row.cell)]))
        b = base.loc[(row.task, row.student)]
        if pd.isna(row.gain_share) or row.kind in ("none", "full"):  # 0 and 1 by definition
            shares.append((math.nan, math.nan))
            continue
        none, full = (values[(row.task, row.student, b[f"{kind}_cell"])] for kind in ("none", "full"))
        shares.append(share_interval(values[(row.task, row.student, row.cell)], none, full))
    out[["ci_low", "ci_high"]] = pd.DataFrame(bounds, index=summary.index, dtype=float)
    out[["gain_share_low", "gain_share_high"]] = pd.DataFrame(shares, index=summary.index, dtype=float)
    return out


# ---------------------------------------------------------------------------- tables


def reference_rows(references: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """The teacher and the trivial baseline as table rows, repeated for each (task, student) in `pairs`."""
    rows = []
    for pair in pairs.itertuples():
        for ref in references[references["task"] == pair.task].itertuples():
            for strategy, value in (("teacher", ref.teacher), (f"trivial ({ref.trivial_rule})", ref.trivial)):
                rows.append({"task": pair.task, "student": pair.student, "strategy": strategy, "mean": value,
                             "kind": "reference", "lr": math.nan, "n_seeds": 1, "n_collapsed": 0})  # fmt: skip
    return pd.DataFrame(rows, columns=[*TABLE_COLUMNS, "kind"])


def dimension_table(summary: pd.DataFrame, kind: str, references: pd.DataFrame | None = None) -> pd.DataFrame:
    """Cells of one kind next to their task x student's teacher, trivial baseline and tuned
    prediction-only and full-HSK rows."""
    rows = summary[summary["kind"] == kind]
    pairs = rows[["task", "student"]].drop_duplicates()
    base = baselines(summary).merge(pairs, on=["task", "student"])
    base_cells = pd.concat(
        [base[["task", "student", f"{name}_cell"]].set_axis(KEY, axis=1) for name in ("none", "full")]
    )
    base_rows = summary.merge(base_cells.dropna(), on=KEY)
    labels = {"none": "prediction-only", "full": "full HSK"}
    base_rows = base_rows.assign(
        strategy=[f"{labels[k]} (lr={lr})" for k, lr in zip(base_rows["kind"], base_rows["lr"], strict=True)]
    )
    refs = reference_rows(references if references is not None else pd.DataFrame(columns=REFERENCE_COLUMNS), pairs)
    parts = [part for part in (refs, base_rows, rows) if len(part)]
    table = pd.concat(parts, ignore_index=True) if parts else rows
    order = table["kind"].map({"reference": -1, "none": 0, "full": 1}).fillna(2)
    table = table.assign(_order=order).sort_values(["task", "student", "_order", "strategy", "amount"])
    return table[TABLE_COLUMNS].reset_index(drop=True)


def format_interval(mean: float, low: float, high: float, n: int, collapsed: int = 0) -> str:
    """``0.8123 [0.8023, 0.8223] (n=3)``, ``(n=3, 2 collapsed)`` when runs collapsed; no interval for one seed."""
    if pd.isna(mean):
        return ""
    interval = "" if pd.isna(low) else f" [{low:.4f}, {high:.4f}]"
    flag = f", {int(collapsed)} collapsed" if collapsed else ""
    return f"{mean:.4f}{interval} (n={int(n)}{flag})"


def format_difference(diff: float, low: float, high: float) -> str:
    """``-0.0412 [-0.0630, -0.0194] worse``: the word only where the interval excludes 0."""
    if pd.isna(diff):
        return ""
    if pd.isna(low):
        return f"{diff:+.4f}"
    verdict = " worse" if high < 0 else " better" if low > 0 else ""
    return f"{diff:+.4f} [{low:+.4f}, {high:+.4f}]{verdict}"


def format_share(share: float, low: float, high: float) -> str:
    """``0.59 [0.20, 0.95]``; empty when no share is shown."""
    if pd.isna(share):
        return ""
    return f"{share:.2f}" + ("" if pd.isna(low) else f" [{low:.2f}, {high:.2f}]")


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """Human-readable version of a `dimension_table` for Markdown/LaTeX."""
    return pd.DataFrame(
        {
            "task": table["task"],
            "student": table["student"],
            "strategy": table["strategy"],
            "amount": [f"{a:g}" if pd.notna(a) else "" for a in table["amount"]],
            "lr": [f"{lr:g}" if pd.notna(lr) else "" for lr in table["lr"]],
            "mean [95% CI] (n)": [
                format_interval(row.mean, row.ci_low, row.ci_high, row.n_seeds, row.n_collapsed)
                for row in table.itertuples()
            ],
            "HSK fraction": [f"{f:.3g}" if pd.notna(f) else "" for f in table["hsk_fraction"]],
            "of real tokens' HSK": [f"{f:.3g}" if pd.notna(f) else "" for f in table["hsk_fraction_real"]],
            "vs prediction-only [95% CI]": [
                format_difference(row.vs_none, row.vs_none_low, row.vs_none_high) for row in table.itertuples()
            ],
            "gain share [95% CI]": [
                format_share(row.gain_share, row.gain_share_low, row.gain_share_high) for row in table.itertuples()
            ],
        }
    )


def _note(summary: pd.DataFrame, statistic: str = "with its 95% t interval (none for a single seed)") -> str:
    select_on = summary["select_on"].iloc[0] if len(summary) else "train_heldout"
    value_column = summary["value_column"].iloc[0] if len(summary) else "dev_final"
    return f"Mean over seeds of `{value_column}` {statistic}; {SELECTION_NOTES[select_on]}."


def table_notes(summary: pd.DataFrame, references: pd.DataFrame | None = None) -> str:
    """The sentences under every table: statistic and selection, collapsed runs, gain shares not shown and
    why, and data warnings."""
    notes = [_note(summary)]
    collapsed = int(summary["n_collapsed"].sum()) if len(summary) else 0
    if collapsed:
        notes.append(f"**At the chosen learning rates {collapsed} run(s) collapsed** (constant dev predictions, or "
                     f"a metric within {COLLAPSE_TOLERANCE} of the trivial baseline): marked in the table, never "
                     "chosen as enough HSK.")
    notes.append(f"vs prediction-only = cell - tuned prediction-only, with its Welch {LEVEL:.0%} interval (2 seeds a "
                 "side); 'worse' or 'better' where the interval excludes 0.")
    notes.append(f"Gain share = (cell - prediction-only) / (full HSK - prediction-only), shown only where the "
                 f"full-HSK gain is above 0 beyond its Welch {LEVEL:.0%} interval; its interval is a percentile "
                 "bootstrap over the seeds of the cell and of both baselines (needs 2 seeds in each).")
    for gain in hsk_gains(summary).itertuples():
        if gain.no_share_reason:
            notes.append(f"{gain.task}/{gain.student}: no gain share: {gain.no_share_reason}.")
    if references is not None:
        notes += data_warnings(references)
    return "\n\n".join(notes)


def write_tables(summary: pd.DataFrame, out_dir: str | Path, references: pd.DataFrame | None = None) -> list[Path]:
    """Write ``{depth,length,width,joint}.{csv,md,tex}`` (header-only when a kind has no runs)."""
    out_dir = Path(out_dir)
    written = []
    notes = table_notes(summary, references)
    for kind in COMPRESSED_KINDS:
        table = dimension_table(summary, kind, references)
        pretty = format_table(table)
        written.append(write_text(table.to_csv(index=False), out_dir / f"{kind}.csv"))
        written.append(write_text(f"{pretty.to_markdown(index=False)}\n\n{notes}\n", out_dir / f"{kind}.md"))
        written.append(write_text(pretty.to_latex(index=False, escape=True), out_dir / f"{kind}.tex"))
    return written


# ---------------------------------------------------------------------------- minimum HSK


DEFAULT_MARGIN = 0.01
DEFAULT_ALPHA = 0.05


def _seed_values(runs: pd.DataFrame, row: pd.Series, column: str) -> np.ndarray:
    match = (
        (runs["task"] == row["task"]) & (runs["student"] == row["student"]) & (runs["cell"] == row["cell"])
    )
    return runs.loc[match & (runs["lr"] == row["lr"]), column].dropna().to_numpy(dtype=float)


def _decide(candidates: pd.DataFrame, p_values: list[float], rejected: list[bool]) -> list[str]:
    decisions = []
    for (_, cell), p_value, shown in zip(candidates.iterrows(), p_values, rejected, strict=True):
        if cell["n_collapsed"]:
            decisions.append("collapsed: never enough")
        elif cell["n_seeds"] < 2:
            decisions.append("indicative only (1 seed)")
        elif math.isnan(p_value):
            decisions.append("untestable")
        else:
            decisions.append("non-inferior" if shown else "not shown")
    return decisions


def minimum_hsk(
    runs: pd.DataFrame, summary: pd.DataFrame, alpha: float = DEFAULT_ALPHA, margin: float = DEFAULT_MARGIN
) -> pd.DataFrame:
    """Every compressed cell of each task x student with its non-inferiority decision against full HSK.

    The decision is taken on the selection split (the held-out slice, or dev with ``select_on: dev``):
    a one-sided Welch test of H0 "cell - full HSK <= -margin" per cell with at least two seeds, Holm's
    correction across the cells of the task x student at family-wise level `alpha`. The ``minimum`` row
    is the non-inferior cell with the smallest HSK fraction; its reported values (mean, interval, share)
    are the summary's, on the value column (dev)."""
    if summary.empty:
        return pd.DataFrame(columns=MINIMUM_COLUMNS)
    runs = add_cell_columns(runs)
    select_on = summary["select_on"].iloc[0]
    decided_on = summary["value_column"].iloc[0] if select_on == "dev" else selection_column(select_on)
    base = baselines(summary).set_index(["task", "student"])
    tables = []
    for (task, student), group in summary.groupby(["task", "student"], sort=True):
        candidates = group[group["kind"].isin(COMPRESSED_KINDS)].sort_values(["hsk_fraction", "cell"])
        if candidates.empty:
            continue
        b = base.loc[(task, student)]
        full = group[group["cell"] == b["full_cell"]]
        full_values = _seed_values(runs, full.iloc[0], decided_on) if len(full) else np.array([])
        cell_values = [_seed_values(runs, cell, decided_on) for _, cell in candidates.iterrows()]
        tests = [
            noninferiority(values, full_values, margin, alpha)
            if collapsed == 0 and not b["full_n_collapsed"] else (math.nan, math.nan)
            for values, collapsed in zip(cell_values, candidates["n_collapsed"], strict=True)
        ]
        p_values = [p for p, _ in tests]
        rejected = holm(p_values, alpha)
        table = candidates.assign(
            decided_on=decided_on,
            diff_vs_full=[values.mean() - full_values.mean() if len(full_values) else math.nan
                          for values in cell_values],
            diff_lower_bound=[bound for _, bound in tests],
            p_value=p_values,
            decision=_decide(candidates, p_values, rejected),
        )  # fmt: skip
        variances = [values.var(ddof=1) for values in (full_values, *cell_values) if len(values) >= 2]
        table["pooled_seed_std"] = math.sqrt(sum(variances) / len(variances)) if variances else math.nan
        shown = table["decision"] == "non-inferior"
        table["minimum"] = False
        if shown.any():
            table.loc[table[shown].index[0], "minimum"] = True
        tables.append(table)
    if not tables:
        return pd.DataFrame(columns=MINIMUM_COLUMNS)
    return pd.concat(tables, ignore_index=True)[MINIMUM_COLUMNS]


def minimum_sentences(table: pd.DataFrame, alpha: float, margin: float) -> list[str]:
    """Per task x student: the smallest non-inferior cell, or that none is shown and what would show one."""
    sentences = []
    for (task, student), rows in table.groupby(["task", "student"], sort=True):
        chosen = rows[rows["minimum"]]
        if len(chosen):
            cell = chosen.iloc[0]
            sentences.append(f"**{task}/{student}**: smallest cell shown non-inferior to full HSK: `{cell['cell']}` "
                             f"({cell['hsk_fraction']:.3%} of HSK), dev {cell['mean']:.4f}.")
            continue
        std, split = rows["pooled_seed_std"].iloc[0], rows["decided_on"].iloc[0]
        budget = (f" With the seed std pooled over full HSK and the cells with 2+ seeds on `{split}` ({std:.4f}), "
                  f"about {seeds_for_noninferiority(std, margin, alpha)} seeds per arm would give 80% power to show "
                  "a cell equal to full HSK.") if pd.notna(std) else ""
        sentences.append(f"**{task}/{student}**: no cell is shown non-inferior at margin {margin:g} with these "
                         f"seeds (not shown at this budget).{budget}")
    return sentences


def minimum_hsk_note(summary: pd.DataFrame, alpha: float = DEFAULT_ALPHA, margin: float = DEFAULT_MARGIN) -> str:
    """The Markdown sentences stating the test behind `minimum_hsk`."""
    select_on = summary["select_on"].iloc[0] if len(summary) else "train_heldout"
    split = ("dev (optimistic: the cells are chosen on the values reported)" if select_on == "dev"
             else "the held-out slice of the training data; dev values are reported")  # fmt: skip
    return (
        f"Non-inferiority to full HSK at margin {margin:g} (metric units): per cell, a one-sided Welch t-test "
        f"of H0 \"cell - full HSK <= -{margin:g}\", decided on {split}; `diff_lower_bound` is the one-sided "
        f"{1 - alpha:.0%} lower bound of that difference. Holm's correction across the cells of each task and "
        f"student keeps the family-wise error at {alpha}. Cells with one seed are indicative only, cells with a "
        "collapsed run are never enough; the minimum is the non-inferior cell with the smallest HSK fraction. "
        f"{_note(summary)}"
    )


def write_minimum_hsk(
    table: pd.DataFrame, summary: pd.DataFrame, out_dir: str | Path, alpha: float = DEFAULT_ALPHA,
    margin: float = DEFAULT_MARGIN,
) -> list[Path]:  # fmt: skip
    """Write ``minimum_hsk.csv`` and ``minimum_hsk.md`` (decisions, the sentence per task x student, the
    method)."""
    out_dir = Path(out_dir)
    sentences = "\n\n".join(minimum_sentences(table, alpha, margin))
    markdown = (f"{table.to_markdown(index=False, floatfmt='.4g')}\n\n{sentences}\n\n"
                f"{minimum_hsk_note(summary, alpha, margin)}\n")  # fmt: skip
    return [
        write_text(table.to_csv(index=False), out_dir / "minimum_hsk.csv"),
        write_text(markdown, out_dir / "minimum_hsk.md"),
    ]


# ---------------------------------------------------------------------------- driver


def missing_runs(expected: Iterable[str]) -> list[str]:
    """Expected metrics.json paths (relative to the working directory) that do not exist."""
    return [path for path in expected if not Path(path).is_file()]


def stray_runs(results_dir: str | Path, expected: Iterable[str]) -> list[str]:
    """Runs found under `results_dir` that `expected` does not name (left over from another config)."""
    wanted = {Path(path).resolve() for path in expected}
    return [str(path) for path in found_runs(results_dir) if path.resolve() not in wanted]


def aggregate(
    results_dir: str | Path,
    out_dir: str | Path,
    select_on: str = "train_heldout",
    value_column: str = "dev_final",
    expected: list[str] | None = None,
    alpha: float = DEFAULT_ALPHA,
    margin: float = DEFAULT_MARGIN,
) -> list[str]:
    """Write runs.csv, summary.csv, the dimension tables, lr_sweep and minimum_hsk; return (and print) the
    missing runs.

    With `expected` (the metrics.json paths a config asks for), the tables hold exactly those runs that
    exist; any other run under `results_dir` is listed as ignored. Without it, every run found is read.
    """
    if not Path(results_dir).is_dir():
        raise FileNotFoundError(f"results folder {results_dir} does not exist")
    out_dir = Path(out_dir)
    if expected is None:
        present = None
    else:
        present = [path for path in expected if Path(path).is_file()]
        for path in stray_runs(results_dir, expected):
            print(f"ignored (not in this config): {path}", file=sys.stderr)
    runs = add_cell_columns(collect_runs(results_dir, present))
    runs["collapsed"] = collapsed_flags(runs)
    summary = summarize(runs, select_on, value_column)
    references = read_references(results_dir, runs["task"])
    write_runs_csv(runs, out_dir / "runs.csv")
    write_text(summary.to_csv(index=False), out_dir / "summary.csv")
    write_text(references.to_csv(index=False), out_dir / "references.csv")
    write_tables(summary, out_dir, references)
    sweep = lr_sweep(runs, select_on, value_column)
    write_text(sweep.to_csv(index=False), out_dir / "lr_sweep.csv")
    sweep_note = _note(summary, "and its sample std")
    write_text(f"{sweep.to_markdown(index=False, floatfmt='.4g')}\n\n{sweep_note}\n", out_dir / "lr_sweep.md")
    write_minimum_hsk(minimum_hsk(runs, summary, alpha, margin), summary, out_dir, alpha, margin)
    for warning in data_warnings(references):
        print(f"warning: {warning}", file=sys.stderr)
    if runs["collapsed"].any():
        print(f"warning: {int(runs['collapsed'].sum())} of {len(runs)} runs collapsed onto the trivial baseline "
              "(collapsed=True in runs.csv); the tables mark them", file=sys.stderr)
    missing = missing_runs(expected or [])
    for path in missing:
        print(f"missing run: {path}", file=sys.stderr)
    return missing
