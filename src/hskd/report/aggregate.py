"""`hskd aggregate`: a study's runs (``{results_dir}/{task}/runs/{student}/depth=../length=../width=../lr=../
seed=../metrics.json``) into runs.csv, the summaries, the per-dimension tables and the minimum-HSK decision.
The pieces are pure functions of pandas frames in `runs`, `summary`, `tables` and `minimum`; writers go through
`atomic_output`."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from hskd.common.io import write_text
from hskd.report.minimum import DEFAULT_ALPHA, DEFAULT_MARGIN, minimum_hsk, write_minimum_hsk
from hskd.report.runs import add_cell_columns, collect_runs, data_warnings, missing_runs, read_references, stray_runs
from hskd.report.summary import collapsed_flags, lr_sweep, summarize
from hskd.report.tables import _note, write_tables


def write_runs_csv(runs: pd.DataFrame, path: str | Path) -> Path:
    """Write the per-run table (one row per metrics.json) as CSV."""
    return write_text(runs.to_csv(index=False), path)


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
