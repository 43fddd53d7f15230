"""scripts/job_costs.py: a job's seconds outside training are its wall seconds (Snakemake's benchmark file) less
the training seconds the job itself recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_script

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_outside_training_is_wall_less_recorded_training(tmp_path):
    run = "SST-2/runs/pruned/depth=top2-1/length=all/width=all/lr=0.001/seed=0"
    write(tmp_path / f"benchmarks/{run}.tsv", HEADER + "10.0\t0:00:10\t100.0\t1\t1\t1\t0\t0\t0\t9\n")
    write(tmp_path / f"{run}/metrics.json", json.dumps({"stage1_seconds": 2.0, "stage2_seconds": 3.0}))
    none = "SST-2/runs/pruned/depth=none/length=all/width=all/lr=0.001/seed=0"
    write(tmp_path / f"benchmarks/{none}.tsv", HEADER + "6.0\t0:00:06\t80.0\t1\t1\t1\t0\t0\t0\t5\n")
    write(tmp_path / f"{none}/metrics.json", json.dumps({"stage1_seconds": None, "stage2_seconds": 4.0}))
    write(tmp_path / "benchmarks/SST-2/finetune_teacher.tsv", HEADER + "20.0\t0:00:20\t300.0\t1\t1\t1\t0\t0\t0\t19\n")
    write(tmp_path / "SST-2/teacher/metrics.json", json.dumps({"train_seconds": 15.0}))
    script = load_script("job_costs")
    rows = {row["rule"]: row for row in script.summary(script.job_costs(tmp_path))}
    assert rows["distill"]["jobs"] == 2
    assert rows["distill"]["median_outside_training_s"] == pytest.approx((5.0 + 2.0) / 2)
    assert rows["distill"]["outside_training_share"] == pytest.approx(7.0 / 16.0)
    assert (rows["finetune_teacher"]["median_outside_training_s"], rows["finetune_teacher"]["median_max_rss_mb"]) == (
        5.0, 300.0)
