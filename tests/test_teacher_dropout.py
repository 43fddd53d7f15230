"""scripts/teacher_dropout.py: runs of two folders paired by cell and seed; per cell the mean paired difference
(online - stored) and its t interval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_script

CELL = {"depth": "all-top6", "length": "attention-1", "width": "all"}


def write_run(folder: Path, seed: int, kd_mode: str, after_stage1: float, final: float) -> None:
    run = folder / "SST-2/runs/pruned/depth=all-top6/length=attention-1/width=all/lr=5e-05" / f"seed={seed}"
    run.mkdir(parents=True)
    record = {"task": "SST-2", "student": "pruned", **CELL, "lr": 5e-05, "seed": seed, "kd_mode": kd_mode,
              "dev_after_stage1": after_stage1, "dev_final": final, "stage1_seconds": 10.0}  # fmt: skip
    (run / "metrics.json").write_text(json.dumps(record))


def test_paired_differences_and_their_interval(tmp_path):
    script = load_script("teacher_dropout")
    stored, online = tmp_path / "stored", tmp_path / "online"
    for seed, (base, shift) in enumerate([(0.80, 0.01), (0.70, 0.02), (0.90, 0.03)]):
        write_run(stored, seed, "cached", base, base)
        write_run(online, seed, "online", base + shift, base - shift)
    write_run(stored, 3, "cached", 0.5, 0.5)  # no online twin: left out
    table = script.compare(script.paired(script.collect_runs(stored), script.collect_runs(online)))
    after = table.set_index("value").loc["dev_after_stage1"]
    # differences 0.01, 0.02, 0.03: mean 0.02, sd 0.01, t(0.975, 2) = 4.302653 -> half width 0.0248414
    assert after["seeds"] == 3 and after["difference"] == pytest.approx(0.02)
    assert (after["ci_low"], after["ci_high"]) == pytest.approx((0.02 - 0.0248414, 0.02 + 0.0248414), abs=1e-6)
    assert after["stored"] == pytest.approx(0.8) and after["online_dropout"] == pytest.approx(0.82)
    final = table.set_index("value").loc["dev_final"]
    assert final["difference"] == pytest.approx(-0.02)


def test_runs_that_are_not_cached_against_online_are_refused(tmp_path):
    script = load_script("teacher_dropout")
    write_run(tmp_path / "a", 0, "cached", 0.8, 0.8)
    write_run(tmp_path / "b", 0, "cached", 0.8, 0.8)
    with pytest.raises(ValueError, match="1 paired runs are not cached vs online"):
        script.paired(script.collect_runs(tmp_path / "a"), script.collect_runs(tmp_path / "b"))
