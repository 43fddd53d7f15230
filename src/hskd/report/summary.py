"""Summaries of runs: learning-rate selection, mean and interval per cell, gains over prediction-only and the share
of the full-HSK gain each cell keeps."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from hskd.report.runs import add_cell_columns
from hskd.report.stats import (
    share_interval,
    t_interval,
    welch_interval,
)

KEY = ["task", "student", "cell"]
COMPRESSED_KINDS = ("depth", "length", "width", "joint")
SELECTION_COLUMNS = {"train_heldout": "heldout_final", "dev": "dev_best"}
SELECTION_NOTES = {
    "train_heldout": "learning rate chosen on a held-out slice of the training data",
    "dev": "learning rate chosen on dev (optimistic: the paper's protocol)",
}
SUMMARY_COLUMNS = [
    "task", "student", "kind", "strategy", "amount", "cell", "lr", "n_seeds", "mean", "std",
    "hsk_fraction", "hsk_fraction_real", "hsk_bytes_per_example", "metric", "lrs_tried", "selection_score",
    "select_on", "value_column", "n_collapsed", "ci_low", "ci_high", "vs_none", "vs_none_low", "vs_none_high",
    "gain_share", "gain_share_low", "gain_share_high",
]  # fmt: skip
LR_SWEEP_COLUMNS = [
    "task", "student", "cell", "kind", "lr", "n_seeds", "mean", "std", "selection_score", "chosen", "select_on",
    "value_column",
]  # fmt: skip


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
    (seeds of the cell and of both tuned baselines resampled; `hskd.report.stats.share_interval`)."""
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
