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
from scipy import stats

from hskd.io import atomic_output
from hskd.metrics import COLLAPSE_TOLERANCE

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
    "hsk_fraction", "hsk_bytes_per_example", "metric", "lrs_tried", "selection_score",
    "select_on", "value_column", "n_collapsed", "gain_share",
]  # fmt: skip
TABLE_COLUMNS = [
    "task", "student", "strategy", "amount", "cell", "lr", "n_seeds", "n_collapsed", "mean", "std",
    "hsk_fraction", "gain_share",
]  # fmt: skip
REFERENCE_COLUMNS = [
    "task", "metric", "teacher", "trivial", "trivial_rule", "train_examples", "train_requested",
    "train_available", "train_truncated", "dev_examples", "dev_truncated",
]  # fmt: skip
GAIN_LEVEL = 0.95
MINIMUM_COLUMNS = [
    "task", "student", "cell", "hsk_fraction", "mean", "std", "n", "full_mean", "full_std", "none_mean",
    "p_value", "test", "gain_share",
]  # fmt: skip
LR_SWEEP_COLUMNS = [
    "task", "student", "cell", "kind", "lr", "n_seeds", "mean", "std", "selection_score", "chosen", "select_on",
    "value_column",
]  # fmt: skip
NONE_QUALIFIES = "none qualifies"


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


def collect_runs(results_dir: str | Path) -> pd.DataFrame:
    """One row per ``*/runs/**/metrics.json`` under `results_dir`, every (flattened) field a column, plus ``path``."""
    results_dir = Path(results_dir)
    records = [read_run(path, results_dir) for path in sorted(results_dir.glob("*/runs/**/metrics.json"))]
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


def _scheme_amount(segment: str) -> tuple[str, str]:
    # Split on the first dash: amounts such as "1e-05" contain one, scheme names do not.
    scheme, sep, amount = segment.partition("-")
    if not sep or not scheme or not amount:
        raise ValueError(f"cannot read '<scheme>-<amount>' from {segment!r}")
    return scheme, amount


def classify_cell(depth: str, length: str, width: str) -> tuple[str, str, float]:
    """(kind, strategy, amount) of a cell, e.g. ("depth", "top6", 1.0) or ("joint", "1l_10t_0.1h", nan)."""
    if depth == "none":
        if length != "all" or width != "all":
            raise ValueError(f"depth=none needs length=all and width=all, got length={length} width={width}")
        return "none", "prediction-only", math.nan
    compressed: dict[str, tuple[str, float]] = {}
    if not depth.startswith("all-"):
        layer_map, layers = _scheme_amount(depth)
        compressed["depth"] = (layer_map, float(int(layers)))
    if length != "all":
        scheme, tokens = _scheme_amount(length)
        compressed["length"] = (scheme, float(int(tokens)))
    if width != "all":
        scheme, fraction = _scheme_amount(width)
        compressed["width"] = (scheme, float(fraction))
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
    for kind in ("none", "full"):
        rows = summary[summary["kind"] == kind].sort_values(
            ["task", "student", "n_seeds", "cell"], ascending=[True, True, False, True]
        )
        rows = rows.drop_duplicates(["task", "student"]).set_index(["task", "student"])
        picked = picked.join(rows[["cell", "lr", "mean", "std", "n_seeds", "n_collapsed"]].add_prefix(f"{kind}_"))
    return picked.reset_index()


def welch_interval(
    mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int, level: float = GAIN_LEVEL
) -> tuple[float, float]:
    """Two-sided `level` t interval of mean_a - mean_b with Welch-Satterthwaite degrees of freedom;
    (NaN, NaN) when either side has fewer than two values."""
    if not (n_a >= 2 and n_b >= 2):
        return math.nan, math.nan
    var_a, var_b = std_a**2 / n_a, std_b**2 / n_b
    diff, error = mean_a - mean_b, math.sqrt(var_a + var_b)
    if error == 0:
        return diff, diff
    dof = (var_a + var_b) ** 2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * error
    return diff - half, diff + half


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
        hsk_bytes_per_example=("hsk_bytes_per_example", "first"),
        metric=("metric", "first"),
        n_collapsed=("collapsed", "sum"),
    )
    summary = summary.merge(chosen, on=KEY)
    summary["value_column"] = value_column
    return add_gain_share(summary)[SUMMARY_COLUMNS]


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


def format_mean_std(mean: float, std: float, n: int, collapsed: int = 0) -> str:
    """``0.8123 ± 0.0040 (n=3)``, ``(n=3, 2 collapsed)`` when runs collapsed; no std for a single seed."""
    if pd.isna(mean):
        return ""
    spread = "" if pd.isna(std) else f" ± {std:.4f}"
    flag = f", {int(collapsed)} collapsed" if collapsed else ""
    return f"{mean:.4f}{spread} (n={int(n)}{flag})"


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """Human-readable version of a `dimension_table` for Markdown/LaTeX."""
    return pd.DataFrame(
        {
            "task": table["task"],
            "student": table["student"],
            "strategy": table["strategy"],
            "amount": [f"{a:g}" if pd.notna(a) else "" for a in table["amount"]],
            "lr": [f"{lr:g}" if pd.notna(lr) else "" for lr in table["lr"]],
            "mean ± std (n)": [
                format_mean_std(m, s, n, c)
                for m, s, n, c in zip(table["mean"], table["std"], table["n_seeds"], table["n_collapsed"], strict=True)
            ],
            "HSK fraction": [f"{f:.3g}" if pd.notna(f) else "" for f in table["hsk_fraction"]],
            "gain share": [f"{g:.2f}" if pd.notna(g) else "" for g in table["gain_share"]],
        }
    )


def _note(summary: pd.DataFrame) -> str:
    select_on = summary["select_on"].iloc[0] if len(summary) else "train_heldout"
    value_column = summary["value_column"].iloc[0] if len(summary) else "dev_final"
    return f"Mean ± sample std over seeds of `{value_column}`; {SELECTION_NOTES[select_on]}."


def table_notes(summary: pd.DataFrame, references: pd.DataFrame | None = None) -> str:
    """The sentences under every table: statistic and selection, collapsed runs, gain shares not shown and
    why, and data warnings."""
    notes = [_note(summary)]
    collapsed = int(summary["n_collapsed"].sum()) if len(summary) else 0
    if collapsed:
        notes.append(f"**At the chosen learning rates {collapsed} run(s) collapsed** (constant dev predictions, or "
                     f"a metric within {COLLAPSE_TOLERANCE} of the trivial baseline): marked in the table, never "
                     "chosen as enough HSK.")
    notes.append(f"Gain share = (cell - prediction-only) / (full HSK - prediction-only), shown only where the "
                 f"full-HSK gain is above 0 beyond its Welch {GAIN_LEVEL:.0%} interval.")
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


def compare_to_full(cell: np.ndarray, full: np.ndarray) -> tuple[float, str]:
    """One-sided p-value for "cell mean < full-HSK mean" and the name of the test used."""
    if len(cell) >= 2 and len(full) >= 2:
        return float(stats.ttest_ind(cell, full, equal_var=False, alternative="less").pvalue), "welch"
    if len(cell) == 1 and len(full) >= 2:
        return float(stats.ttest_1samp(full, popmean=cell[0], alternative="greater").pvalue), "one-sample"
    return math.nan, "untestable"


def _not_below(p_value: float, test: str, cell_mean: float, full_mean: float, alpha: float) -> bool:
    if test == "untestable":
        return False
    # Zero variance on both sides leaves the t statistic undefined; the means then decide exactly.
    if math.isnan(p_value):
        return cell_mean >= full_mean
    return p_value >= alpha


def _seed_values(runs: pd.DataFrame, row: pd.Series, value_column: str) -> np.ndarray:
    match = (
        (runs["task"] == row["task"]) & (runs["student"] == row["student"]) & (runs["cell"] == row["cell"])
    )
    return runs.loc[match & (runs["lr"] == row["lr"]), value_column].dropna().to_numpy(dtype=float)


def minimum_hsk(runs: pd.DataFrame, summary: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per task x student: the compressed cell of smallest HSK fraction not significantly below full HSK."""
    if summary.empty:
        return pd.DataFrame(columns=MINIMUM_COLUMNS)
    runs = add_cell_columns(runs)
    value_column = summary["value_column"].iloc[0]
    base = baselines(summary).set_index(["task", "student"])
    rows = []
    for (task, student), group in summary.groupby(["task", "student"], sort=True):
        b = base.loc[(task, student)]
        context = {"task": task, "student": student, "full_mean": b["full_mean"], "full_std": b["full_std"]}
        context["none_mean"] = b["none_mean"]
        fallback = {**context, "cell": NONE_QUALIFIES, "test": "no compressed cell qualifies"}
        if pd.isna(b["full_cell"]):
            rows.append({**fallback, "test": "no full-HSK baseline"})
            continue
        if b["full_n_collapsed"]:
            rows.append({**fallback, "test": "full-HSK runs collapsed"})
            continue
        full_row = group[group["cell"] == b["full_cell"]].iloc[0]
        full_values = _seed_values(runs, full_row, value_column)
        candidates = group[group["kind"].isin(COMPRESSED_KINDS) & (group["n_collapsed"] == 0)].sort_values(
            ["hsk_fraction", "mean"], ascending=[True, False]
        )
        for _, cell in candidates.iterrows():
            p_value, test = compare_to_full(_seed_values(runs, cell, value_column), full_values)
            if _not_below(p_value, test, cell["mean"], b["full_mean"], alpha):
                rows.append(
                    {
                        **context,
                        **cell[["cell", "hsk_fraction", "mean", "std", "gain_share"]].to_dict(),
                        "n": cell["n_seeds"],
                        "p_value": p_value,
                        "test": test,
                    }
                )
                break
        else:
            rows.append(fallback)
    return pd.DataFrame(rows).reindex(columns=MINIMUM_COLUMNS)


def minimum_hsk_note(summary: pd.DataFrame, alpha: float = 0.05) -> str:
    """The Markdown sentence stating the test behind `minimum_hsk`."""
    return (
        "Per task and student, the compressed cell with the smallest HSK fraction whose mean is not "
        "significantly below full HSK: one-sided Welch t-test (H1: cell < full HSK) at alpha = "
        f"{alpha} when both have at least two seeds; a one-sided one-sample t-test of the full-HSK "
        "seeds against the cell value when the cell has one seed; otherwise untestable and never "
        "chosen (with zero variance on both sides the means decide). Cells with a collapsed run are never chosen. "
        f"{_note(summary)}"
    )


def write_minimum_hsk(
    table: pd.DataFrame, summary: pd.DataFrame, out_dir: str | Path, alpha: float = 0.05
) -> list[Path]:
    """Write ``minimum_hsk.csv`` and ``minimum_hsk.md`` (table plus the sentence stating the test)."""
    out_dir = Path(out_dir)
    markdown = f"{table.to_markdown(index=False, floatfmt='.4g')}\n\n{minimum_hsk_note(summary, alpha)}\n"
    return [
        write_text(table.to_csv(index=False), out_dir / "minimum_hsk.csv"),
        write_text(markdown, out_dir / "minimum_hsk.md"),
    ]


# ---------------------------------------------------------------------------- driver


def missing_runs(expected: Iterable[str]) -> list[str]:
    """Expected metrics.json paths (relative to the working directory) that do not exist."""
    return [path for path in expected if not Path(path).is_file()]


def aggregate(
    results_dir: str | Path,
    out_dir: str | Path,
    select_on: str = "train_heldout",
    value_column: str = "dev_final",
    expected: list[str] | None = None,
    alpha: float = 0.05,
) -> list[str]:
    """Write runs.csv, summary.csv, the dimension tables, lr_sweep and minimum_hsk; return (and print) the
    missing runs."""
    out_dir = Path(out_dir)
    runs = add_cell_columns(collect_runs(results_dir))
    runs["collapsed"] = collapsed_flags(runs)
    summary = summarize(runs, select_on, value_column)
    references = read_references(results_dir, runs["task"])
    write_runs_csv(runs, out_dir / "runs.csv")
    write_text(summary.to_csv(index=False), out_dir / "summary.csv")
    write_text(references.to_csv(index=False), out_dir / "references.csv")
    write_tables(summary, out_dir, references)
    sweep = lr_sweep(runs, select_on, value_column)
    write_text(sweep.to_csv(index=False), out_dir / "lr_sweep.csv")
    write_text(f"{sweep.to_markdown(index=False, floatfmt='.4g')}\n\n{_note(summary)}\n", out_dir / "lr_sweep.md")
    write_minimum_hsk(minimum_hsk(runs, summary, alpha), summary, out_dir, alpha)
    for warning in data_warnings(references):
        print(f"warning: {warning}", file=sys.stderr)
    if runs["collapsed"].any():
        print(f"warning: {int(runs['collapsed'].sum())} of {len(runs)} runs collapsed onto the trivial baseline "
              "(collapsed=True in runs.csv); the tables mark them", file=sys.stderr)
    missing = missing_runs(expected or [])
    for path in missing:
        print(f"missing run: {path}", file=sys.stderr)
    return missing
