"""Tests for hskd.bench: row and storage arithmetic, targets, and a tiny end-to-end benchmark."""

from __future__ import annotations

import json

import pytest

from hskd.bench import (
    BenchSettings,
    StudentShape,
    TeacherShape,
    check_targets,
    paper_cells,
    run_bench,
    speed_row,
    storage_row,
)
from hskd.planning.cells import parse_cell

FULL = parse_cell("depth=all-top12/length=all/width=all")


def test_speed_row_takes_medians_and_ratios():
    times = {
        "online": [(9.0, 7.0), (10.0, 8.0), (30.0, 9.0)],
        "cached": [(2.0, 0.1), (2.5, 0.2), (2.0, 0.3)],
        "student_only": [(1.0, 0.0), (2.0, 0.0), (1.6, 0.0)],
    }
    row = speed_row("s", "full", FULL, 128, 32, times)
    assert (row["online_s"], row["cached_s"], row["student_only_s"]) == (10.0, 2.0, 1.6)
    assert (row["teacher_and_compress_s"], row["store_read_s"], row["reps"]) == (8.0, 0.2, 3)
    assert row["online_over_cached"] == pytest.approx(5.0)
    assert row["cached_over_student_only"] == pytest.approx(1.25)
    assert row["cell_path"] == str(FULL)


def test_storage_row_arithmetic():
    manifest = {"cell": "c", "bytes_per_example": 1000, "expected_bytes_per_example": 1000,
                "kept_values_per_example": 400, "bytes_over_fp16_kept": 1.25}  # fmt: skip
    row = storage_row("s", "full", FULL, 4, 128, 768, manifest, {"SST-2": 67349, "MNLI": 392702})
    assert row["full_fp32_bytes_per_example"] == 5 * 128 * 768 * 4
    assert row["fp16_kept_bytes_per_example"] == 800
    # full HSK over 4 student layers: 5 x 128 x 768 fp16 values and nothing else, against 800 kept bytes
    assert row["lower_bound_over_fp16_kept"] == pytest.approx(5 * 128 * 768 * 2 / 800)
    assert row["store_gb_SST-2"] == pytest.approx(67349 * 1000 / 1e9)
    assert row["store_gb_MNLI"] == pytest.approx(392702 * 1000 / 1e9)


def test_check_targets():
    rows = [
        {"student": "a", "cell": "full", "seq_len": 128, "online_over_cached": 4.0, "cached_over_student_only": 1.2},
        {"student": "a", "cell": "full", "seq_len": 64, "online_over_cached": 2.0, "cached_over_student_only": 1.0},
    ]
    storage = [{"student": "a", "cell": "1l_10t_0.1h", "seq_len": 128, "store_over_fp16_kept": 1.6,
                "lower_bound_over_fp16_kept": 1.29}]  # fmt: skip
    met = {(t["target"], t["seq_len"]): t["met"] for t in check_targets(rows, storage)}
    assert met == {
        ("online_over_cached_min", 128): True,
        ("cached_over_student_only_max", 128): False,
        ("cached_over_student_only_max", 64): True,
        ("store_over_fp16_kept_max", 128): False,
    }


def test_tiny_benchmark_end_to_end(tmp_path):
    teacher = TeacherShape(layers=12, hidden=32, heads=2, ffn=64, vocab_size=200)
    students = {
        "tiny_pretrained": StudentShape("pretrained", layers=2, heads=2, ffn=32, hidden=16),
        "tiny_pruned": StudentShape("pruned", layers=2, heads=1, ffn=16, emb_rank=8),
    }
    settings = BenchSettings(teacher, students, paper_cells(), (16,), batch_size=4, store_examples=12,
                             warmup=1, reps=1, extrapolate={"SST-2": 67349})  # fmt: skip
    run_bench(settings, tmp_path, threads=1, quick=True)
    result = json.loads((tmp_path / "bench" / "speed.json").read_text())
    assert len(result["rows"]) == len(result["storage"]) == 2 * 3
    for row in result["rows"]:
        for key in ("online_s", "cached_s", "student_only_s", "online_over_cached", "cached_over_student_only"):
            assert row[key] > 0
        assert row["batch_size"] == 4 and row["seq_len"] == 16
    for row in result["storage"]:
        assert row["store_bytes_per_example"] == row["expected_bytes_per_example"] > 0
        assert row["store_gb_SST-2"] > 0
    targets = {t["target"] for t in result["targets"]}  # the online target is only checked at seq 128
    assert targets == {"cached_over_student_only_max", "store_over_fp16_kept_max", "tracking_overhead_max"}
    tracking = result["tracking"]  # the first student, timed with and without curves
    assert (tracking["student"], tracking["steps"], tracking["reps"]) == ("tiny_pretrained", 20, 1)
    assert tracking["overhead"] == pytest.approx(tracking["tracked_s"] / tracking["untracked_s"] - 1)
    assert 0 < tracking["write_s"] < tracking["tracked_s"]
    assert "Training curves: a 20-step prediction-distillation run" in (tmp_path / "tables/speed.md").read_text()
    assert result["machine"]["torch_threads"] == 1 and result["quick"] is True
    for name in ("tables/speed.csv", "tables/speed.md", "figures/speedup.pdf", "figures/speedup.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert [p.name for p in (tmp_path / "bench").iterdir()] == ["speed.json"]  # temp stores removed
