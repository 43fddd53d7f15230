"""The minimum-HSK decision: Holm-corrected non-inferiority of compressed cells against full HSK."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from hskd.common.io import write_text
from hskd.report.runs import add_cell_columns
from hskd.report.stats import (
    holm,
    noninferiority,
    seeds_for_noninferiority,
)
from hskd.report.summary import COMPRESSED_KINDS, baselines, selection_column
from hskd.report.tables import _note

MINIMUM_COLUMNS = [
    "task", "student", "cell", "kind", "hsk_fraction", "hsk_fraction_real", "n_seeds", "mean", "ci_low", "ci_high",
    "gain_share", "gain_share_low", "gain_share_high", "decided_on", "diff_vs_full", "diff_lower_bound", "p_value",
    "decision", "minimum", "pooled_seed_std",
]  # fmt: skip


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
