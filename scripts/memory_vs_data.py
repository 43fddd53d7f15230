"""Peak memory against the amount of data, at the paper's shapes: the paper rehearsal's SST-2 (random-weight
bert-base teacher, TinyBERT-4L-312 and ROSITA students, synthetic data) at two training-set sizes, through the
real workflow. For the extraction job and the full-HSK and joint runs of each student it reads the job's own
peak resident memory (`peak_rss_mb`: the process's high-water mark, which Snakemake's sampled benchmark files
can miss in a short job) from its manifest or metrics.json, and prints how much it grows with 4x the data.

    python scripts/memory_vs_data.py --sizes 128 512 --out results/bench/memory_vs_data.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import yaml

from hskd.common.io import write_json_atomic
from hskd.planning.cells import expand_joint

CONFIGS = ["workflow/configs/paper.yaml", "workflow/configs/paper-rehearsal.yaml"]
JOINT = "1l_10t_0.1h"


def overlay(results: str, size: int) -> dict:
    """SST-2 only, `size` training examples, the full-HSK and one joint cell (no sweeps), one seed."""
    return {
        "results_dir": f"{results}/n{size}", "glue_dir": f"{results}/glue", "tasks": ["SST-2"],
        "data": {"train_subset": size},
        "grid": {"none": False, "depth": {"maps": [], "keep": []}, "length": {"schemes": [], "keep": []},
                 "width": {"schemes": [], "fractions": []}, "joint": {"configs": [JOINT]}},
    }  # fmt: skip


def run_targets(results_dir: str) -> dict[str, str]:
    """The files holding the measured jobs' `peak_rss_mb`, by label."""
    joint = expand_joint(JOINT, {"depth": "top8", "length": "attention_nosep", "width": "magnitude_batch"})
    cells = {"full HSK": "depth=all-top10/length=all/width=all", JOINT: str(joint)}
    targets = {"extract (teacher pass, every store)": f"{results_dir}/SST-2/hsk/manifest.json"}
    for student in ("pretrained", "pruned"):
        for label, cell in cells.items():
            targets[f"{student}: {label}"] = f"{results_dir}/SST-2/runs/{student}/{cell}/lr=2e-05/seed=0/metrics.json"
    return targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[128, 512], help="two training-set sizes")
    parser.add_argument("--results", default="results/memory", help="folder of the two studies")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", default="", help="also write the table as JSON here")
    args = parser.parse_args()
    measured = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"n{size}.yaml"
            path.write_text(yaml.safe_dump(overlay(args.results, size)))
            targets = run_targets(f"{args.results}/n{size}")
            subprocess.run(["snakemake", *targets.values(), "--cores", str(args.cores), "--quiet", "all",
                            "--configfile", *CONFIGS, str(path)], check=True)  # fmt: skip
            measured[size] = {label: json.loads(Path(path).read_text())["peak_rss_mb"]
                              for label, path in targets.items()}  # fmt: skip
    small, large = args.sizes
    rows = [{"job": label, f"peak_rss_mb_{small}": measured[small][label],
             f"peak_rss_mb_{large}": measured[large][label],
             "growth": measured[large][label] / measured[small][label] - 1} for label in measured[small]]  # fmt: skip
    print(f"| job | peak RSS MB, {small} examples | peak RSS MB, {large} examples | growth |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['job']} | {row[f'peak_rss_mb_{small}']:.0f} | {row[f'peak_rss_mb_{large}']:.0f} | "
              f"{row['growth']:+.1%} |")
    if args.out:
        write_json_atomic({"sizes": args.sizes, "rows": rows}, args.out)


if __name__ == "__main__":
    main()
