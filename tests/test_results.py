"""Tests for hskd.report.aggregate on synthetic metrics.json trees."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, SMOKE_RESULTS
from scipy import stats

from hskd.cli import main
from hskd.report.aggregate import aggregate
from hskd.report.minimum import minimum_hsk, minimum_sentences
from hskd.report.runs import add_cell_columns, classify_cell, collect_runs
from hskd.report.stats import holm, noninferiority, seeds_for_noninferiority, share_interval, t_interval, welch_interval
from hskd.report.summary import lr_sweep, select_lr, summarize

FULL = "depth=all-top6/length=all/width=all"
NONE = "depth=none/length=all/width=all"


def write_run(
    root: Path,
    *,
    depth: str,
    length: str = "all",
    width: str = "all",
    lr: float = 5e-05,
    seed: int = 1,
    dev_final: float,
    dev_best: float | None = None,
    heldout_final: float | None = None,
    hsk_fraction: float = 1.0,
    task: str = "rte",
    student: str = "s4",
    overrides: dict | None = None,
) -> Path:
    """Write one metrics.json at its hive-style path; `overrides` change what the file says."""
    path = root / task / "runs" / student / f"depth={depth}" / f"length={length}" / f"width={width}"
    path = path / f"lr={lr}" / f"seed={seed}" / "metrics.json"
    record = {
        "task": task,
        "student": student,
        "depth": depth,
        "length": length,
        "width": width,
        "lr": lr,
        "seed": seed,
        "hsk_fraction": 0.0 if depth == "none" else hsk_fraction,
        "hsk_bytes_per_example": round(1000 * hsk_fraction),
        "metric": "accuracy",
        "dev_best": dev_final if dev_best is None else dev_best,
        "dev_final": dev_final,
        "dev_after_stage1": None,
        "heldout_best": heldout_final,
        "heldout_final": dev_final if heldout_final is None else heldout_final,
        "stage1_steps": 10,
        "stage1_seconds": 1.0,
        "stage2_steps": 10,
        "stage2_seconds": 1.0,
        "kd_mode": "none" if depth == "none" else "cached",
        "teacher_loaded": False,
        "peak_rss_mb": 100.0,
        "threads": 1,
        "versions": {"torch": "2.4.0"},
        **(overrides or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def write_cell(root: Path, values: list[float], **cell) -> list[Path]:
    """One run per seed (1, 2, ...) with the given dev_final values."""
    return [write_run(root, seed=seed, dev_final=v, **cell) for seed, v in enumerate(values, start=1)]


@pytest.fixture
def lr_tree(tmp_path: Path) -> Path:
    """Full HSK at two lrs: 5e-05 wins on the held-out slice, 1e-4 wins on dev."""
    for seed, (held, best, final) in enumerate([(0.70, 0.60, 0.58), (0.72, 0.62, 0.60)], start=1):
        write_run(
            tmp_path,
            depth="all-top6",
            lr=5e-05,
            seed=seed,
            heldout_final=held,
            dev_best=best,
            dev_final=final,
        )
    for seed, (held, best, final) in enumerate([(0.65, 0.80, 0.79), (0.67, 0.82, 0.81)], start=1):
        write_run(
            tmp_path,
            depth="all-top6",
            lr=0.0001,
            seed=seed,
            heldout_final=held,
            dev_best=best,
            dev_final=final,
        )
    write_cell(tmp_path, [0.50, 0.52], depth="none")
    return tmp_path


@pytest.fixture
def minimum_tree(tmp_path: Path) -> Path:
    """A tiny cell clearly below full HSK, then a larger one equal to it, then an even larger one."""
    write_cell(tmp_path, [0.59, 0.61], depth="none")
    write_cell(tmp_path, [0.80, 0.81, 0.82], depth="all-top6")
    write_cell(tmp_path, [0.50, 0.51, 0.52], depth="all-top6", width="magnitude-0.01", hsk_fraction=0.01)
    write_cell(tmp_path, [0.80, 0.81, 0.82], depth="all-top6", length="attention-4", hsk_fraction=0.05)
    write_cell(tmp_path, [0.81, 0.80, 0.82], depth="top6-1", hsk_fraction=1 / 6)
    write_cell(tmp_path, [0.70, 0.72], depth="top6-1", length="attention-4", hsk_fraction=0.05 / 6)
    return tmp_path


@pytest.mark.parametrize(
    ("depth", "length", "width", "expected"),
    [
        ("none", "all", "all", ("none", "prediction-only", math.nan)),
        ("all-top6", "all", "all", ("full", "full HSK", math.nan)),
        ("top6-1", "all", "all", ("depth", "top6", 1.0)),
        ("all-top4", "attention_nosep-4", "all", ("length", "attention_nosep", 4.0)),
        ("all-top6", "all", "magnitude-0.1", ("width", "magnitude", 0.1)),
        ("all-top6", "all", "random-1e-05", ("width", "random", 1e-05)),
        ("top6-1", "attention-10", "magnitude-0.1", ("joint", "1l_10t_0.1h", math.nan)),
        ("all-top6", "cls-1", "uniform-0.5", ("joint", "1t_0.5h", math.nan)),
    ],
)
def test_classify_cell(depth: str, length: str, width: str, expected: tuple) -> None:
    kind, strategy, amount = classify_cell(depth, length, width)
    assert (kind, strategy) == expected[:2]
    assert amount == expected[2] or (math.isnan(amount) and math.isnan(expected[2]))


def test_classify_cell_refuses_compressed_prediction_only() -> None:
    with pytest.raises(ValueError, match="depth=none"):
        classify_cell("none", "attention-4", "all")


def test_collect_runs_reads_every_field(lr_tree: Path) -> None:
    runs = collect_runs(lr_tree)
    assert len(runs) == 6
    assert {"path", "versions_torch", "dev_after_stage1", "kd_mode"} <= set(runs.columns)
    assert "versions" not in runs.columns
    assert sorted(runs["lr"].unique()) == [5e-05, 0.0001]


@pytest.mark.parametrize(
    ("field", "value"), [("seed", 2), ("lr", 0.001), ("width", "random-0.5"), ("task", "sst2")]
)
def test_collect_runs_refuses_path_field_mismatch(tmp_path: Path, field: str, value: object) -> None:
    path = write_run(tmp_path, depth="all-top6", dev_final=0.8, overrides={field: value})
    with pytest.raises(ValueError, match=f"field '{field}'") as error:
        collect_runs(tmp_path)
    assert str(path) in str(error.value)


def test_select_lr_does_not_peek_at_dev(lr_tree: Path) -> None:
    runs = collect_runs(lr_tree)
    held = select_lr(runs).set_index("cell")
    dev = select_lr(runs, "dev").set_index("cell")
    assert held.loc[FULL, "lr"] == 5e-05
    assert held.loc[FULL, "selection_score"] == pytest.approx(0.71)
    assert dev.loc[FULL, "lr"] == 0.0001
    assert held.loc[FULL, "lrs_tried"] == "5e-05,0.0001"
    with pytest.raises(ValueError, match="select_on"):
        select_lr(runs, "test")


def test_lr_sweep_lists_every_lr_of_tuned_cells(lr_tree: Path) -> None:
    sweep = lr_sweep(collect_runs(lr_tree)).set_index("lr")
    assert sweep["cell"].unique().tolist() == [FULL]  # prediction-only ran one lr here: not a sweep
    assert sweep.loc[5e-05, "chosen"] and not sweep.loc[0.0001, "chosen"]
    assert sweep.loc[0.0001, "mean"] == pytest.approx(0.80)
    assert sweep.loc[0.0001, "selection_score"] == pytest.approx(0.66)
    assert sweep.loc[5e-05, "n_seeds"] == 2


def test_summarize_means_and_stds_by_hand(lr_tree: Path) -> None:
    runs = collect_runs(lr_tree)
    held = summarize(runs).set_index("cell")
    assert held.loc[FULL, "lr"] == 5e-05
    assert held.loc[FULL, "mean"] == pytest.approx(0.59)
    assert held.loc[FULL, "std"] == pytest.approx(math.sqrt(2 * 0.01**2))
    assert held.loc[FULL, "n_seeds"] == 2
    assert held.loc[NONE, "kind"] == "none"
    assert held.loc[FULL, "gain_share"] == pytest.approx(1.0)
    paper = summarize(runs, "dev", "dev_best").set_index("cell")
    assert paper.loc[FULL, "lr"] == 0.0001
    assert paper.loc[FULL, "mean"] == pytest.approx(0.81)


def test_summarize_gain_share(minimum_tree: Path) -> None:
    summary = summarize(collect_runs(minimum_tree)).set_index("cell")
    assert summary.loc["depth=all-top6/length=all/width=magnitude-0.01", "gain_share"] == pytest.approx(
        (0.51 - 0.60) / (0.81 - 0.60)
    )
    assert summary.loc["depth=all-top6/length=attention-4/width=all", "gain_share"] == pytest.approx(1.0)


def test_minimum_hsk_is_the_smallest_non_inferior_cell(minimum_tree: Path) -> None:
    runs = add_cell_columns(collect_runs(minimum_tree))
    table = minimum_hsk(runs, summarize(runs)).set_index("cell")
    # equal to full HSK (0.80 0.81 0.82): diff 0, se 0.008165, Welch df 4 -> p = P(T4 > 0.01 / 0.008165)
    attention = table.loc["depth=all-top6/length=attention-4/width=all"]
    assert attention["p_value"] == pytest.approx(stats.t.sf(0.01 / math.sqrt(2e-4 / 3), 4))
    assert attention["diff_lower_bound"] == pytest.approx(-2.131847 * math.sqrt(2e-4 / 3), rel=1e-5)
    assert attention["decided_on"] == "heldout_final"
    # far below full HSK; two seeds only but testable; never chosen
    assert table.loc["depth=all-top6/length=all/width=magnitude-0.01", "decision"] == "not shown"
    assert table.loc["depth=top6-1/length=attention-4/width=all", "decision"] == "not shown"
    # Holm over three testable cells: the two equal to full HSK have p = 0.0638 > 0.05 / 3 -> not shown
    assert attention["decision"] == "not shown" and not table["minimum"].any()
    # seed variances on the held-out slice: 1e-4 for full HSK and three cells, 2e-4 for the two-seed cell
    assert attention["pooled_seed_std"] == pytest.approx(math.sqrt(1.2e-4))
    # 2 (z_0.95 + z_0.8)^2 * 1.2e-4 / 0.01^2 = 14.84 -> 15 seeds per arm
    assert "about 15 seeds per arm would give 80% power" in minimum_sentences(table.reset_index(), 0.05, 0.01)[0]


def test_a_cell_just_inside_and_just_outside_the_margin() -> None:
    full = [0.80, 0.81, 0.82]
    # diff d, se = sqrt(2e-4 / 3), df 4, t(0.95, 4) = 2.131847: lower bound d - 0.017406; inside iff d > 0.007406
    _, inside = noninferiority([v + 0.0075 for v in full], full, 0.01, 0.05)
    _, outside = noninferiority([v + 0.0073 for v in full], full, 0.01, 0.05)
    assert inside == pytest.approx(0.0075 - 2.131847 * math.sqrt(2e-4 / 3), rel=1e-4) and inside > -0.01
    assert outside < -0.01
    assert all(math.isnan(v) for v in noninferiority([0.8], full, 0.01, 0.05))


def test_holm_on_three_p_values() -> None:
    # sorted 0.01 <= 0.05/3 rejects; 0.03 > 0.05/2 stops: 0.04 is not rejected although it is below 0.05
    assert holm([0.01, 0.04, 0.03], 0.05) == [True, False, False]
    assert holm([0.01, 0.02, 0.04], 0.05) == [True, True, True]
    assert holm([math.nan, 0.04], 0.05) == [False, True]  # an untestable cell is not in the family


def test_t_interval_by_hand_and_a_share_interval_that_includes_zero() -> None:
    low, high = t_interval([1.0, 2.0, 3.0])
    assert (low, high) == pytest.approx((2 - 4.302653 / math.sqrt(3), 2 + 4.302653 / math.sqrt(3)))
    low, high = share_interval([0.60, 0.62], [0.59, 0.63], [0.80, 0.82])
    assert low < 0 < high
    # no seed spread in any arm: every resample gives (0.7 - 0.6) / (0.8 - 0.6)
    assert share_interval([0.7, 0.7], [0.6, 0.6], [0.8, 0.8]) == pytest.approx((0.5, 0.5))


def _selection_tree(root: Path) -> Path:
    """`small` beats full HSK on dev but not on the held-out slice; `large` the other way round."""
    write_cell(root, [0.59, 0.60, 0.61], depth="none")
    write_cell(root, [0.80, 0.81, 0.82], depth="all-top6")
    for seed, value in enumerate([0.80, 0.81, 0.82], start=1):
        write_run(root, depth="top6-1", length="cls-1", hsk_fraction=0.001, seed=seed, dev_final=value + 0.02,
                  heldout_final=value - 0.05)  # fmt: skip
        write_run(root, depth="top6-1", hsk_fraction=1 / 6, seed=seed, dev_final=value - 0.05,
                  heldout_final=value + 0.02)  # fmt: skip
    return root


def test_the_minimum_is_chosen_on_the_held_out_slice_and_reported_on_dev(tmp_path: Path) -> None:
    runs = add_cell_columns(collect_runs(_selection_tree(tmp_path)))
    held = minimum_hsk(runs, summarize(runs, "train_heldout"))
    chosen = held[held["minimum"]].iloc[0]
    assert chosen["cell"] == "depth=top6-1/length=all/width=all"
    assert chosen["mean"] == pytest.approx(0.76)  # its dev value, not the held-out one it was chosen on
    optimistic = minimum_hsk(runs, summarize(runs, "dev"))
    assert optimistic[optimistic["minimum"]].iloc[0]["cell"] == "depth=top6-1/length=cls-1/width=all"
    assert (optimistic["decided_on"] == "dev_final").all()


def test_aggregate_writes_outputs_and_lists_missing(minimum_tree: Path, tmp_path_factory) -> None:
    out = tmp_path_factory.mktemp("out")
    present = [str(path) for path in minimum_tree.glob("*/runs/**/metrics.json")]
    absent = str(minimum_tree / "rte/runs/s4/depth=top6-2/length=all/width=all/lr=5e-05/seed=1/metrics.json")
    assert aggregate(minimum_tree, out, expected=[*present, absent]) == [absent]
    for kind in ("depth", "length", "width", "joint"):
        for ext in ("csv", "md", "tex"):
            assert (out / f"{kind}.{ext}").stat().st_size > 0
    depth = pd.read_csv(out / "depth.csv")
    assert depth["strategy"].tolist() == ["prediction-only (lr=5e-05)", "full HSK (lr=5e-05)", "top6"]
    assert "\\toprule" in (out / "depth.tex").read_text()
    assert "held-out slice of the training data" in (out / "depth.md").read_text()
    minimum = (out / "minimum_hsk.md").read_text()
    assert "Welch" in minimum and "Holm" in minimum and "not shown at this budget" in minimum
    assert (out / "lr_sweep.md").read_text().startswith("|")
    assert len(pd.read_csv(out / "minimum_hsk.csv")) == 4
    assert len(pd.read_csv(out / "runs.csv")) == 16
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))


def test_aggregate_reads_only_the_runs_it_is_given(minimum_tree: Path, tmp_path_factory, capsys) -> None:
    asked = sorted(str(path) for path in minimum_tree.glob("*/runs/**/metrics.json"))
    # a run left over from an earlier config, far better than anything asked for
    stale = write_run(minimum_tree, depth="top6-1", length="cls-1", hsk_fraction=0.001, seed=7, dev_final=0.99)
    out = tmp_path_factory.mktemp("out")
    aggregate(minimum_tree, out, expected=asked)
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 16 and 0.99 not in runs["dev_final"].tolist()
    assert f"ignored (not in this config): {stale}" in capsys.readouterr().err
    aggregate(minimum_tree, out)  # by hand, without a config: everything found
    assert 0.99 in pd.read_csv(out / "runs.csv")["dev_final"].tolist()


def test_aggregate_on_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="results folder .*nosuch does not exist"):
        aggregate(tmp_path / "nosuch", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_aggregate_on_empty_results_writes_headers(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (tmp_path / "results").mkdir()
    assert aggregate(tmp_path / "results", out) == []
    assert pd.read_csv(out / "width.csv").empty
    assert list(pd.read_csv(out / "minimum_hsk.csv").columns)[:3] == ["task", "student", "cell"]
    assert (out / "joint.md").read_text().startswith("|")


def test_aggregate_of_a_config_reads_and_writes_its_results_dir(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / SMOKE_RESULTS).mkdir(parents=True)
    main(["aggregate", "--configfile", str(ROOT / "workflow/configs/smoke.yaml")])
    assert (tmp_path / SMOKE_RESULTS / "tables/runs.csv").is_file() and not (tmp_path / "results/tables").exists()
    missing = capsys.readouterr().out.splitlines()
    assert missing[0] == "26 expected runs are missing:"
    assert all(line.startswith(f"  {SMOKE_RESULTS}/SST-2/runs/") for line in missing[1:])


def test_welch_interval_by_hand() -> None:
    # a = 1, 2, 3 (mean 2, std 1), b = 0, 0 (std 0): se = sqrt(1/3), Welch df = 2, t(0.975, 2) = 4.302653
    low, high = welch_interval(2.0, 1.0, 3, 0.0, 0.0, 2)
    assert (low, high) == pytest.approx((2 - 4.302653 * math.sqrt(1 / 3), 2 + 4.302653 * math.sqrt(1 / 3)))
    assert all(math.isnan(v) for v in welch_interval(2.0, 1.0, 3, 0.0, math.nan, 1))


def _aggregate_one_layer_cell(root: Path, one_layer: list[float]) -> Path:
    """Prediction-only 0.79 +- 0.02 and full HSK 0.80 +- 0.02 (a gain whose interval includes 0) beside a
    one-layer cell with `one_layer`, aggregated; returns the tables folder."""
    write_cell(root, [0.77, 0.79, 0.81], depth="none")
    write_cell(root, [0.78, 0.80, 0.82], depth="all-top6")
    write_cell(root, one_layer, depth="top6-1", hsk_fraction=1 / 6)
    out = root / "tables"
    aggregate(root, out)
    return out


def test_no_gain_share_from_a_gain_that_is_not_there(tmp_path: Path) -> None:
    out = _aggregate_one_layer_cell(tmp_path, [0.79, 0.80, 0.81])
    summary = pd.read_csv(out / "summary.csv")
    assert summary["gain_share"].isna().all()
    assert "rte/s4: no gain share: the HSK gain +0.0100 is not above 0" in (out / "depth.md").read_text()


def test_collapsed_runs_are_marked_and_never_enough(tmp_path: Path) -> None:
    write_cell(tmp_path, [0.59, 0.61], depth="none")
    write_cell(tmp_path, [0.80, 0.81, 0.82], depth="all-top6")
    # the smallest cell matches full HSK but one of its seeds collapsed: the next cell must be chosen
    for seed, value in enumerate([0.80, 0.81, 0.82], start=1):
        write_run(tmp_path, depth="top6-1", length="cls-1", hsk_fraction=0.001, seed=seed, dev_final=value,
                  overrides={"collapsed": seed == 2})  # fmt: skip
    # p = 0.04 on its own; were the collapsed cell (p = 0.064) in the Holm family, 0.04 > 0.05 / 2
    write_cell(tmp_path, [0.809, 0.819, 0.829], depth="top6-1", hsk_fraction=1 / 6)
    out = tmp_path / "tables"
    aggregate(tmp_path, out)
    summary = pd.read_csv(out / "summary.csv").set_index("cell")
    assert summary.loc["depth=top6-1/length=cls-1/width=all", "n_collapsed"] == 1
    minimum = pd.read_csv(out / "minimum_hsk.csv").set_index("cell")
    assert minimum.loc["depth=top6-1/length=cls-1/width=all", "decision"] == "collapsed: never enough"
    assert 0.025 < minimum.loc["depth=top6-1/length=all/width=all", "p_value"] < 0.05
    assert minimum[minimum["minimum"]].index.tolist() == ["depth=top6-1/length=all/width=all"]
    assert "0.8100 [0.7852, 0.8348] (n=3, 1 collapsed)" in (out / "joint.md").read_text()
    assert "**At the chosen learning rates 1 run(s) collapsed**" in (out / "depth.md").read_text()


def test_tables_show_the_teacher_the_trivial_baseline_and_data_warnings(minimum_tree: Path) -> None:
    teacher = {"metric": "accuracy", "dev": 0.9, "dev_trivial": 0.527,
               "data": {"train": {"examples": 90, "truncated": 0, "available": 90, "requested": 500},
                        "dev": {"examples": 40, "truncated": 10}}}  # fmt: skip
    (minimum_tree / "rte" / "teacher").mkdir()
    (minimum_tree / "rte" / "teacher" / "metrics.json").write_text(json.dumps(teacher))
    out = minimum_tree / "tables"
    aggregate(minimum_tree, out)
    depth = pd.read_csv(out / "depth.csv")
    assert depth["strategy"].tolist()[:2] == ["teacher", "trivial (always the majority training class)"]
    assert depth["mean"].tolist()[:2] == [0.9, 0.527]
    note = (out / "depth.md").read_text()
    assert "asks for 500 training examples but only 90 remain" in note
    assert "25.0% of dev examples (10 of 40) are longer than" in note
    references = pd.read_csv(out / "references.csv")
    assert references[["task", "teacher", "trivial"]].values.tolist() == [["rte", 0.9, 0.527]]


def test_summary_carries_the_mean_real_token_fraction(tmp_path: Path) -> None:
    write_cell(tmp_path, [0.6, 0.6], depth="none")
    for seed, real in ((1, 0.2), (2, 0.4)):
        write_run(tmp_path, depth="top6-1", hsk_fraction=1 / 6, seed=seed, dev_final=0.7,
                  overrides={"hsk_fraction_real": real})  # fmt: skip
    summary = summarize(collect_runs(tmp_path)).set_index("cell")
    assert summary.loc["depth=top6-1/length=all/width=all", "hsk_fraction_real"] == pytest.approx(0.3)
    assert summary.loc["depth=top6-1/length=all/width=all", "hsk_fraction"] == pytest.approx(1 / 6)


def test_a_cell_that_hurts_is_shown_as_worse_even_without_a_gain_share(tmp_path: Path) -> None:
    # prediction-only 0.79 +- 0.02, full HSK 0.80 +- 0.02 (no gain share), one layer 0.70 +- 0.01:
    # diff -0.09, se = sqrt(0.02^2/3 + 0.01^2/3), Welch df = (5e-4/3)^2 / ((4e-4/3)^2/2 + (1e-4/3)^2/2) = 2.94
    out = _aggregate_one_layer_cell(tmp_path, [0.69, 0.70, 0.71])
    summary = pd.read_csv(out / "summary.csv").set_index("cell")
    error, dof = math.sqrt(0.02**2 / 3 + 0.01**2 / 3), (5e-4 / 3) ** 2 / ((4e-4 / 3) ** 2 / 2 + (1e-4 / 3) ** 2 / 2)
    half = stats.t.ppf(0.975, dof) * error
    one_layer = summary.loc["depth=top6-1/length=all/width=all"]
    assert (one_layer["vs_none"], one_layer["vs_none_low"], one_layer["vs_none_high"]) == pytest.approx(
        (-0.09, -0.09 - half, -0.09 + half))
    assert math.isnan(summary.loc[NONE, "vs_none"]) and summary.loc[FULL, "vs_none"] == pytest.approx(0.01)
    table = (out / "depth.md").read_text()
    assert f"-0.0900 [{-0.09 - half:+.4f}, {-0.09 + half:+.4f}] worse" in table
    rows = [line for line in table.splitlines() if line.startswith("|")]
    full_row = next(row for row in rows if "full HSK" in row)
    assert "+0.0100 [-" in full_row and "worse" not in full_row and not any("better" in row for row in rows)


def test_interval_edges_two_seeds_and_no_spread() -> None:
    # two values are enough: [1, 3] has mean 2, std sqrt(2), half width t(0.975, 1) * sqrt(2) / sqrt(2)
    assert t_interval([1.0, 3.0]) == pytest.approx((2 - 12.706205, 2 + 12.706205))
    # no spread on either side: the difference itself, with no width
    assert welch_interval(0.8, 0.0, 2, 0.7, 0.0, 2) == pytest.approx((0.1, 0.1))
    # non-inferiority with two seeds a side is tested; one cell seed is not
    p_value, bound = noninferiority([0.80, 0.82], [0.80, 0.81], 0.01, 0.05)
    assert not math.isnan(p_value) and not math.isnan(bound)
    assert all(math.isnan(v) for v in noninferiority([0.8], [0.80, 0.81, 0.82], 0.01, 0.05))
    # no spread anywhere: the difference decides (p 0 inside the margin, 1 outside)
    assert noninferiority([0.8, 0.8], [0.8, 0.8], 0.01, 0.05) == (0.0, 0.0)
    assert noninferiority([0.78, 0.78], [0.8, 0.8], 0.01, 0.05) == (1.0, pytest.approx(-0.02))


def test_share_interval_is_reproducible() -> None:
    # six distinct seeds per arm: an unseeded bootstrap would move the percentiles between calls
    cell, none, full = [0.70, 0.72, 0.69, 0.71, 0.735, 0.68], [0.60, 0.62, 0.61, 0.64, 0.59, 0.615], \
        [0.80, 0.83, 0.81, 0.79, 0.845, 0.82]
    assert share_interval(cell, none, full) == share_interval(cell, none, full)


def test_boundaries_of_holm_noninferiority_and_the_seed_budget() -> None:
    # Holm rejects p <= alpha / k: 0.025 is exactly 0.05 / 2
    assert holm([0.025, 0.04], 0.05) == [True, True]
    # no spread and a difference exactly at -margin is not non-inferior (H0 is diff <= -margin)
    assert noninferiority([0.5, 0.5], [0.75, 0.75], 0.25, 0.05) == (1.0, -0.25)
    # at least 2 seeds, for no spread and for a spread that needs fewer
    assert seeds_for_noninferiority(0.0, 0.01, 0.05) == 2
    assert seeds_for_noninferiority(0.001, 0.01, 0.05) == 2


def test_share_interval_percentiles_and_resamples_without_a_gain() -> None:
    # none and full fixed at 0.6 and 0.8; the cell's resample mean is ~normal around 0.7 with standard
    # error s / sqrt(10) (s: population std of 10 evenly spaced values from 0.6 to 0.8), so the 95%
    # percentile interval of the share (mean - 0.6) / 0.2 is about 0.5 -+ 1.96 * se / 0.2
    cell = [0.6 + 0.2 * i / 9 for i in range(10)]
    half = 1.959964 * float(np.std(cell)) / math.sqrt(10) / 0.2
    low, high = share_interval(cell, [0.6, 0.6], [0.8, 0.8])
    assert (low, high) == pytest.approx((0.5 - half, 0.5 + half), abs=0.02)
    # full and prediction-only swap places between resamples: those with no gain are dropped, not inf
    low, high = share_interval([0.7, 0.7], [0.6, 0.8], [0.8, 0.6])
    assert math.isfinite(low) and math.isfinite(high)


def test_references_carry_every_data_fact_of_the_teacher_run(tmp_path: Path) -> None:
    from hskd.report.runs import data_warnings, read_references

    teacher = {"metric": "accuracy", "dev": 0.9, "dev_trivial": 0.5,
               "data": {"train": {"examples": 80, "truncated": 4, "available": 80, "requested": 80},
                        "dev": {"examples": 40, "truncated": 0}}}  # fmt: skip
    (tmp_path / "rte" / "teacher").mkdir(parents=True)
    (tmp_path / "rte" / "teacher" / "metrics.json").write_text(json.dumps(teacher))
    references = read_references(tmp_path, ["rte", "sst2"])  # sst2 has no teacher run: left out
    assert references.to_dict("records") == [{
        "task": "rte", "metric": "accuracy", "teacher": 0.9, "trivial": 0.5,
        "trivial_rule": "always the majority training class", "train_examples": 80, "train_requested": 80,
        "train_available": 80, "train_truncated": 4, "dev_examples": 40, "dev_truncated": 0,
    }]  # fmt: skip
    # 4 of 80 train examples truncated: 4 / 80 = 5.0%; no subset warning (80 requested, 80 available)
    assert data_warnings(references) == [
        "rte: 5.0% of train examples (4 of 80) are longer than data.max_seq_length and were truncated."
    ]


def test_format_interval_as_documented() -> None:
    from hskd.report.tables import format_interval

    assert format_interval(0.8123, 0.8023, 0.8223, 3) == "0.8123 [0.8023, 0.8223] (n=3)"
    assert format_interval(0.8123, 0.8023, 0.8223, 3, 2) == "0.8123 [0.8023, 0.8223] (n=3, 2 collapsed)"
    assert format_interval(0.8, math.nan, math.nan, 1) == "0.8000 (n=1)"  # one seed: no interval


def test_minimum_hsk_differences_share_intervals_and_one_seed_cells(minimum_tree: Path) -> None:
    write_cell(minimum_tree, [0.80], depth="top6-2", hsk_fraction=2 / 6)  # one seed only
    out = minimum_tree / "tables"
    aggregate(minimum_tree, out)
    minimum = pd.read_csv(out / "minimum_hsk.csv").set_index("cell")
    # cell mean - full HSK mean (0.81): 0.51 - 0.81 = -0.30, 0.71 - 0.81 = -0.10, 0.80 - 0.81 = -0.01
    diffs = minimum["diff_vs_full"]
    assert diffs["depth=all-top6/length=all/width=magnitude-0.01"] == pytest.approx(-0.30)
    assert diffs["depth=top6-1/length=attention-4/width=all"] == pytest.approx(-0.10)
    assert diffs["depth=top6-2/length=all/width=all"] == pytest.approx(-0.01)
    assert minimum.loc["depth=top6-2/length=all/width=all", "decision"] == "indicative only (1 seed)"
    assert (out / "minimum_hsk.md").read_text().startswith("| task")
    # one layer [0.81, 0.80, 0.82]: share (0.81 - 0.60) / (0.81 - 0.60) = 1, its bootstrap interval that of
    # the seeds of the cell, prediction-only [0.59, 0.61] and full HSK [0.80, 0.81, 0.82]
    one_layer = pd.read_csv(out / "summary.csv").set_index("cell").loc["depth=top6-1/length=all/width=all"]
    low, high = share_interval([0.81, 0.80, 0.82], [0.59, 0.61], [0.80, 0.81, 0.82])
    assert (one_layer["gain_share_low"], one_layer["gain_share_high"]) == pytest.approx((low, high))
    assert low < 1.0 < high
