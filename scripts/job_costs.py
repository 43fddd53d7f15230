"""Per-job costs of a finished study, from the benchmark files Snakemake writes for every compute job
(`{results}/benchmarks/`: wall seconds, peak memory) and the training seconds each job records: per rule, the
jobs' wall seconds, the seconds spent training (the teacher's and the students' optimisation steps, extraction's
teacher pass) and the rest (process start, imports, model build, store open, evaluation, writing), and the
peak resident memory. Prints a Markdown table and writes JSON:

    python scripts/job_costs.py results/paper-rehearsal --out results/bench/job_costs.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import pandas as pd

from hskd.common.io import write_json_atomic


def training_seconds(results: Path, benchmark: Path) -> tuple[str, float]:
    """The rule a benchmark file belongs to and the seconds its job spent in its main computation."""
    relative = benchmark.relative_to(results / "benchmarks")
    task = relative.parts[0]
    if relative.parts[1] == "runs":
        run = results / task / Path(*relative.parts[1:]).with_suffix("") / "metrics.json"
        metrics = json.loads(run.read_text(encoding="utf-8"))
        return "distill", metrics["stage2_seconds"] + (metrics["stage1_seconds"] or 0.0)
    if relative.name == "finetune_teacher.tsv":
        return "finetune_teacher", json.loads((results / task / "teacher/metrics.json").read_text())["train_seconds"]
    if relative.name == "extract.tsv":
        return "extract", json.loads((results / task / "hsk/manifest.json").read_text())["seconds"]
    return "init_student", 0.0


def job_costs(results: Path) -> pd.DataFrame:
    rows = []
    for benchmark in sorted((results / "benchmarks").rglob("*.tsv")):
        measured = pd.read_csv(benchmark, sep="\t").iloc[-1]
        rule, training = training_seconds(results, benchmark)
        rows.append({"rule": rule, "wall_s": float(measured["s"]), "training_s": training,
                     "max_rss_mb": float(measured["max_rss"])})  # fmt: skip
    table = pd.DataFrame(rows)
    table["outside_training_s"] = table["wall_s"] - table["training_s"]
    return table


def summary(table: pd.DataFrame) -> list[dict]:
    return [{
        "rule": rule, "jobs": len(group),
        **{f"median_{column}": statistics.median(group[column])
           for column in ("wall_s", "training_s", "outside_training_s", "max_rss_mb")},
        "outside_training_share": group["outside_training_s"].sum() / group["wall_s"].sum(),
    } for rule, group in table.groupby("rule", sort=False)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a finished study's results_dir")
    parser.add_argument("--out", default="", help="also write the summary as JSON here")
    args = parser.parse_args()
    rows = summary(job_costs(args.results))
    print("| rule | jobs | median wall s | median training s | median outside training s | share outside training "
          "| median peak RSS MB |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['rule']} | {row['jobs']} | {row['median_wall_s']:.1f} | {row['median_training_s']:.1f} | "
              f"{row['median_outside_training_s']:.1f} | {row['outside_training_share']:.0%} | "
              f"{row['median_max_rss_mb']:.0f} |")
    if args.out:
        write_json_atomic({"results": str(args.results), "rules": rows}, args.out)


if __name__ == "__main__":
    main()
