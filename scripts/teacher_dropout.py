"""Does the teacher's dropout matter? Compares the same runs (task, student, cell, lr, seed) of two results folders:
HSK read from stores written once by the eval-mode teacher, and HSK computed online by a teacher in train mode
(the paper's code never puts its teacher in eval mode). Seeds pair the runs: a seed fixes the student's start,
its data order and its dropout, so the paired difference isolates the targets. Per cell and value (the dev metric
after stage 1 and at the end), prints the means, the mean paired difference (online - stored) with its 95% t
interval, and writes JSON:

    python scripts/teacher_dropout.py results/teacher-dropout/stored results/teacher-dropout/online
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from hskd.common.io import write_text
from hskd.report.runs import collect_runs
from hskd.report.stats import t_interval

KEYS = ["task", "student", "depth", "length", "width", "lr", "seed"]
VALUES = ("dev_after_stage1", "dev_final")


def paired(stored: pd.DataFrame, online: pd.DataFrame) -> pd.DataFrame:
    """The runs both folders hold, side by side (suffixes _stored and _online); ValueError if the online runs
    did not run online or the stored ones did not read stores."""
    both = stored.merge(online, on=KEYS, suffixes=("_stored", "_online"))
    if both.empty:
        raise ValueError("the two folders share no run (task, student, cell, lr, seed)")
    wrong = both[(both["kd_mode_stored"] != "cached") | (both["kd_mode_online"] != "online")]
    if not wrong.empty:
        raise ValueError(f"{len(wrong)} paired runs are not cached vs online, e.g. {wrong.iloc[0]['path_stored']}")
    return both


def compare(both: pd.DataFrame) -> pd.DataFrame:
    """One row per cell and value: seeds, the two means and the mean paired difference with its 95% interval."""
    rows = []
    for (task, student, depth, length, width, lr), runs in both.groupby(KEYS[:-1], sort=False):
        for value in VALUES:
            difference = runs[f"{value}_online"] - runs[f"{value}_stored"]
            low, high = t_interval(difference.tolist())
            rows.append({
                "task": task, "student": student, "cell": f"depth={depth}/length={length}/width={width}", "lr": lr,
                "value": value, "seeds": len(runs), "stored": runs[f"{value}_stored"].mean(),
                "online_dropout": runs[f"{value}_online"].mean(), "difference": difference.mean(),
                "ci_low": low, "ci_high": high,
                "stage1_seconds_stored": runs["stage1_seconds_stored"].mean(),
                "stage1_seconds_online": runs["stage1_seconds_online"].mean(),
            })  # fmt: skip
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stored", type=Path, help="results folder of the runs that read stores")
    parser.add_argument("online", type=Path, help="results folder of the same runs online, teacher in train mode")
    parser.add_argument("--out", type=Path, default=Path("results/teacher-dropout/comparison.json"))
    args = parser.parse_args(argv)
    try:
        table = compare(paired(collect_runs(args.stored), collect_runs(args.online)))
    except ValueError as error:
        parser.error(str(error))
    print(table.to_markdown(index=False, floatfmt=["g" if column == "lr" else ".4f" for column in table.columns]))
    write_text(json.dumps(table.to_dict("records"), indent=1), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
