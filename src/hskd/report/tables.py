"""Per-dimension tables in csv, md and tex, with their notes."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from hskd.common.io import write_text
from hskd.common.metrics import COLLAPSE_TOLERANCE
from hskd.report.runs import REFERENCE_COLUMNS, data_warnings
from hskd.report.stats import (
    LEVEL,
)
from hskd.report.summary import COMPRESSED_KINDS, KEY, SELECTION_NOTES, baselines, hsk_gains

TABLE_COLUMNS = [
    "task", "student", "strategy", "amount", "cell", "lr", "n_seeds", "n_collapsed", "mean", "std", "ci_low",
    "ci_high", "hsk_fraction", "hsk_fraction_real", "vs_none", "vs_none_low", "vs_none_high", "gain_share",
    "gain_share_low", "gain_share_high",
]  # fmt: skip


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
