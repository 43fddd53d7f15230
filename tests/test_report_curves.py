"""The report's curve figures (hskd.report.curves): which runs they compare, the points read back from the runs'
event files, the mean line and the range band over seeds, and the flagged runs' own rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import seaborn as sns
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb
from test_results import write_run

from hskd.cli import main
from hskd.planning.paths import EVENTS_DIR
from hskd.report.curves import curve_points, curve_runs, flagged_runs, plot_curves
from hskd.report.runs import collect_runs
from hskd.report.summary import summarize
from hskd.training.curves import Curves, write_events

JOINT = {"depth": "top6-1", "length": "attention-4", "width": "magnitude-0.1"}


def with_curve(metrics_path: Path, stage2_losses: list[float]) -> None:
    """A run's event file: stage-2 loss at steps 10, 20, ... and a stage-1 loss for HSK runs."""
    curves = Curves()
    for index, value in enumerate(stage2_losses, start=1):
        curves.add("stage2/loss", 10 * index, value)
        curves.add("teacher/loss", 10 * index, 99.0)  # not a tag the figures draw
        if "depth=none" not in str(metrics_path):
            curves.add("stage1/loss", 10 * index, 2 * value)
    write_events(curves, metrics_path.parent / EVENTS_DIR)


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """Prediction-only at two lrs (2e-05 wins on the held-out slice), full HSK, a depth cell and a joint cell,
    two seeds each; the joint cell's seed 2 collapsed."""
    for lr, held in ((2e-05, 0.70), (5e-05, 0.60)):
        for seed in (1, 2):
            path = write_run(tmp_path, depth="none", lr=lr, seed=seed, dev_final=0.6, heldout_final=held)
            with_curve(path, [1.0 + seed, 0.5] if lr == 2e-05 else [9.0, 9.0])
    for seed in (1, 2):
        with_curve(write_run(tmp_path, depth="all-top6", seed=seed, dev_final=0.8), [0.4, 0.2 * seed])
        with_curve(write_run(tmp_path, depth="top6-1", seed=seed, dev_final=0.8, hsk_fraction=1 / 6), [7.0, 7.0])
        with_curve(write_run(tmp_path, **JOINT, seed=seed, dev_final=0.7, hsk_fraction=0.001,
                             overrides={"collapsed": seed == 2}), [0.3, 0.3])  # fmt: skip
    return tmp_path


def test_the_curves_compare_the_baselines_at_their_chosen_lr_and_the_joint_cells(study):
    runs = collect_runs(study)
    picked = curve_runs(runs, summarize(runs))
    assert sorted(set(zip(picked["arm"], picked["lr"], strict=True))) == [
        ("1l_4t_0.1h", 5e-05), ("full HSK", 5e-05), ("prediction-only", 2e-05)]  # fmt: skip
    assert len(picked) == 6  # two seeds each; not the depth cell, not prediction-only at 5e-05
    points = curve_points(picked)
    none_seed1 = points[(points["arm"] == "prediction-only") & (points["seed"] == 1)]
    assert list(zip(none_seed1["tag"], none_seed1["step"], none_seed1["value"], strict=True)) == [
        ("stage2/loss", 10, 2.0), ("stage2/loss", 20, 0.5)]  # fmt: skip
    assert set(points["tag"]) == {"stage1/loss", "stage2/loss"}


def test_a_curve_is_the_mean_over_seeds_with_their_range_as_band(study):
    runs = collect_runs(study)
    points = curve_points(curve_runs(runs, summarize(runs)))
    fig = plot_curves(points.assign(run_label=points["student"]), ["s4"], "title")
    stage2 = fig.axes[1]
    colours = dict(zip(("prediction-only", "full HSK", "1l_4t_0.1h"), sns.color_palette("colorblind"), strict=False))
    lines = {arm: list(zip(line.get_xdata(), line.get_ydata(), strict=True)) for line in stage2.get_lines()
             for arm, colour in colours.items() if to_rgb(line.get_color()) == pytest.approx(colour)}  # fmt: skip
    # full HSK: seeds 0.4, 0.4 at step 10 and 0.2, 0.4 at step 20; prediction-only: 2.0, 3.0 then 0.5, 0.5
    assert lines["full HSK"] == [(10, pytest.approx(0.4)), (20, pytest.approx(0.3))]
    assert lines["prediction-only"] == [(10, pytest.approx(2.5)), (20, pytest.approx(0.5))]
    bands = [collection for collection in stage2.collections if isinstance(collection, PolyCollection)]
    band_values = sorted({round(float(y), 6) for band in bands for path in band.get_paths()
                          for y in path.vertices[:, 1]})  # fmt: skip
    assert band_values == [0.2, 0.3, 0.4, 0.5, 2.0, 3.0]  # each arm's min and max at each step


def test_every_flagged_run_gets_its_own_row(study):
    flagged = flagged_runs(collect_runs(study))
    assert list(flagged["arm"]) == ["depth=top6-1/length=attention-4/width=magnitude-0.1 lr 5e-05 seed 2"]


def test_hskd_curves_writes_both_figures_per_task(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    tables = tmp_path_factory.mktemp("tables")
    runs = collect_runs(study)
    runs.to_csv(tables / "runs.csv", index=False)
    summarize(runs).to_csv(tables / "summary.csv", index=False)
    main(["curves", "--runs", str(tables / "runs.csv"), "--summary", str(tables / "summary.csv"), "--out", str(out)])
    assert sorted(path.name for path in out.iterdir()) == sorted(
        f"{stem}_rte.{ext}" for stem in ("curves", "curves_flagged") for ext in ("pdf", "png"))
    assert pd.read_csv(tables / "runs.csv")["collapsed"].sum() == 1
