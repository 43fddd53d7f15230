"""Check `hskd plan` against a finished study: its store bytes (logical and on disk) per task against the bytes the
extraction manifests record, and its per-run training multiply-adds against the training seconds the runs
record (the throughput each run reached). Exits 1 if a store's bytes differ.

    python scripts/check_plan.py --configfile workflow/configs/paper.yaml workflow/configs/paper-rehearsal.yaml
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from hskd.planning.layers import merge, read_layers
from hskd.planning.plan import Plan, plan_json, plan_study, throughput_from_bench
from hskd.planning.study import load


def store_rows(results: str, study, plan: dict) -> list[dict]:
    rows = []
    for task in study.tasks:
        path = Path(results, task, "hsk", "manifest.json")
        if not path.exists():  # not extracted yet
            continue
        manifest = json.loads(path.read_text(encoding="utf-8"))
        planned = {(row["student"], row["cell"]): (row["bytes"], row["shared"]) for row in plan[task]["stores"]}
        written = {(row["student"], row["cell"]): (row["bytes"], row["same_file_as"] is not None)
                   for row in manifest["stores"]}  # fmt: skip
        rows.append({
            "task": task, "stores": len(written), "every_store_equal": planned == written,
            "planned_bytes": plan[task]["bytes_total"], "manifest_bytes": manifest["bytes_total"],
            "planned_on_disk": plan[task]["bytes_on_disk"], "manifest_on_disk": manifest["bytes_on_disk"],
        })  # fmt: skip
    return rows


def run_rates(results: str, plan: Plan) -> list[float]:
    """The plan's training multiply-adds (evaluation excluded) per training second each finished run recorded
    (evaluation excluded there too)."""
    rates = []
    for job in plan.jobs:
        path = Path(job.run.metrics_path(results)) if job.run else None
        if path is None or not path.exists():
            continue
        metrics = json.loads(path.read_text(encoding="utf-8"))
        seconds = metrics["stage2_seconds"] + (metrics["stage1_seconds"] or 0.0)
        rates.append((job.macs - job.eval_macs) / seconds)
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", nargs="+", default=[], help="the study's config files, as for snakemake")
    parser.add_argument("--bench", default="", help="speed.json of `hskd bench` on the machine that ran the study")
    args = parser.parse_args(argv)
    study = load(merge(read_layers(args.configfile))[0])
    plan = plan_study(study)
    rows = store_rows(study.results_dir, study, plan_json(plan))
    print("| task | stores | planned bytes | manifest bytes | planned on disk | manifest on disk | every store equal |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for row in rows:
        print(f"| {row['task']} | {row['stores']} | {row['planned_bytes']:,} | {row['manifest_bytes']:,} | "
              f"{row['planned_on_disk']:,} | {row['manifest_on_disk']:,} | {row['every_store_equal']} |")
    rates = run_rates(study.results_dir, plan)
    if rates:
        print(f"\n{len(rates)} runs: training multiply-adds per second, median {statistics.median(rates):.3g}, "
              f"range {min(rates):.3g} - {max(rates):.3g}")
    if rates and args.bench:
        rate, source = throughput_from_bench(args.bench)
        ratios = sorted(run_rate / rate for run_rate in rates)  # the plan's seconds over the measured seconds
        print(f"plan at {rate:.3g} multiply-adds/s ({source}): predicted / measured training seconds per run, "
              f"median {statistics.median(ratios):.2f}, 10th-90th percentile {ratios[len(ratios) // 10]:.2f} - "
              f"{ratios[len(ratios) * 9 // 10]:.2f}")
    equal = all(row["every_store_equal"] and row["planned_bytes"] == row["manifest_bytes"]
                and row["planned_on_disk"] == row["manifest_on_disk"] for row in rows)  # fmt: skip
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
