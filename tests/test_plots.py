"""Tests for hskd.report.plots: every figure is written and carries the expected axis labels."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from hskd.report.plots import plot_all, plot_dimension, plot_joint, plot_marginal_utility


def row(student: str, kind: str, strategy: str, amount: float, fraction: float, mean: float) -> dict:
    """A summary row as `hskd.report.summary.summarize` would produce it (only the columns plots read)."""
    return {
        "task": "rte",
        "student": student,
        "kind": kind,
        "strategy": strategy,
        "amount": amount,
        "cell": f"{kind}/{strategy}/{amount}",
        "lr": 5e-05,
        "n_seeds": 3,
        "mean": mean,
        "std": 0.01,
        "ci_low": mean - 0.02,
        "ci_high": mean + 0.03,
        "hsk_fraction": fraction,
        "metric": "accuracy",
        "value_column": "dev_final",
    }


@pytest.fixture
def summary() -> pd.DataFrame:
    rows = []
    for student, shift in (("s4", 0.0), ("s6", 0.02)):
        rows += [
            row(student, "none", "prediction-only", math.nan, 0.0, 0.60 + shift),
            row(student, "full", "full HSK", math.nan, 1.0, 0.80 + shift),
            row(student, "depth", "top6", 1, 1 / 6, 0.78 + shift),
            row(student, "depth", "top6", 2, 2 / 6, 0.79 + shift),
            row(student, "length", "attention", 4, 0.03, 0.77 + shift),
            row(student, "length", "left", 4, 0.03, 0.72 + shift),
            row(student, "width", "magnitude", 0.1, 0.1, 0.76 + shift),
            row(student, "joint", "1l_4t", math.nan, 0.005, 0.74 + shift),
        ]
    return pd.DataFrame(rows)


REFERENCES = pd.DataFrame(
    [{"task": "rte", "metric": "accuracy", "teacher": 0.85, "trivial": 0.50,
      "trivial_rule": "always the majority training class"}]
)  # fmt: skip


def _curves(ax) -> list[tuple[tuple[float, ...], tuple[float, ...]]]:
    """(x, y) data of every line drawn in data coordinates (errorbar lines included)."""
    return [(tuple(line.get_xdata()), tuple(line.get_ydata())) for line in ax.get_lines()
            if line.get_transform() == ax.transData and len(line.get_xdata())]  # fmt: skip


def _horizontal_lines(ax) -> set[float]:
    """The y of every axhline (drawn across the axes, not in data coordinates)."""
    return {line.get_ydata()[0] for line in ax.get_lines() if line.get_transform() != ax.transData}


def test_width_figure_with_one_fraction_draws_it_on_a_readable_axis(summary: pd.DataFrame) -> None:
    (ax, _) = plot_dimension(summary, "rte", "width").axes
    assert ((0.1,), (0.76,)) in _curves(ax)
    low, high = ax.get_xlim()
    assert low == pytest.approx(0.05) and high == pytest.approx(0.2)


def test_marginal_utility_draws_one_line_per_dimension_and_strategy(summary: pd.DataFrame) -> None:
    (ax,) = plot_marginal_utility(summary, "rte").axes
    joined = [line for line in ax.get_lines() if line.get_transform() == ax.transData and line.get_linestyle() == "-"]
    multi_point = sorted(tuple(line.get_xdata()) for line in joined if len(line.get_xdata()) > 1)
    # per student: depth top6 joins its two amounts; no line joins cells of different dimensions
    assert multi_point == [(1 / 6, 2 / 6), (1 / 6, 2 / 6)]


def test_teacher_line_and_trivial_baseline_off_the_axis(summary: pd.DataFrame) -> None:
    (ax,) = plot_marginal_utility(summary, "rte", REFERENCES).axes
    horizontal = _horizontal_lines(ax)
    assert 0.85 in horizontal  # the teacher
    assert 0.50 not in horizontal  # 0.5 is far below every run (0.72-0.82): written, not drawn
    assert "trivial baseline 0.500 (off the axis)" in {t.get_text() for t in ax.texts}
    low, high = ax.get_ylim()
    assert low < 0.60 and high > 0.85


def test_y_axis_never_magnifies_identical_values() -> None:
    from hskd.report.plots import MIN_Y_SPAN, y_limits

    low, high = y_limits([0.8, 0.8, 0.8])
    assert high - low == pytest.approx(1.2 * MIN_Y_SPAN) and (low + high) / 2 == pytest.approx(0.8)


def test_marginal_utility_axes(summary: pd.DataFrame) -> None:
    (ax,) = plot_marginal_utility(summary, "rte").axes
    assert ax.get_xlabel() == "HSK fraction, padding counted (log scale)"
    assert ax.get_ylabel() == "dev accuracy"
    assert ax.get_xscale() == "log"
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"s4", "s6", "full HSK"}


@pytest.mark.parametrize(
    ("kind", "xlabel", "xscale"),
    [
        ("depth", "layers kept", "linear"),
        ("length", "tokens kept", "linear"),
        ("width", "width fraction (log scale)", "log"),
    ],
)
def test_dimension_axes(summary: pd.DataFrame, kind: str, xlabel: str, xscale: str) -> None:
    axes = plot_dimension(summary, "rte", kind).axes
    assert len(axes) == 2  # one panel per student
    assert axes[-1].get_xlabel() == xlabel
    assert all(ax.get_ylabel() == "dev accuracy" and ax.get_xscale() == xscale for ax in axes)
    labels = {t.get_text() for t in axes[0].get_legend().get_texts()}
    assert {"prediction-only (lr=5e-05)", "full HSK (lr=5e-05)"} <= labels
    for ax in axes:  # the legend sits outside the data, right of the axes
        assert ax.get_legend().get_bbox_to_anchor().x0 > ax.get_window_extent().x1


def test_joint_axes(summary: pd.DataFrame) -> None:
    (ax,) = plot_joint(summary, "rte").axes
    assert ax.get_xlabel() == "HSK fraction, padding counted (log scale)"
    assert "1l_4t" in {t.get_text() for t in ax.texts}


def test_empty_figures_say_no_runs(summary: pd.DataFrame) -> None:
    for fig in (
        plot_marginal_utility(summary, "sst2"),
        plot_dimension(summary, "sst2", "width"),
        plot_joint(summary.iloc[0:0], "rte"),
    ):
        assert "no runs" in {t.get_text() for t in fig.axes[0].texts}


def test_fraction_axis_plots_the_real_or_the_nominal_fraction(summary: pd.DataFrame) -> None:
    from hskd.report.plots import fraction_axis

    summary = summary.assign(hsk_fraction_real=summary["hsk_fraction"] * 3)
    real, label = fraction_axis(summary, "real")
    assert real["hsk_fraction"].tolist() == pytest.approx((summary["hsk_fraction"] * 3).tolist())
    assert label == "share of the real tokens' HSK (log scale)"
    nominal, label = fraction_axis(summary, "nominal")
    assert nominal["hsk_fraction"].tolist() == summary["hsk_fraction"].tolist() and "padding counted" in label


def test_plot_all_writes_every_file(summary: pd.DataFrame, tmp_path: Path) -> None:
    written = plot_all(summary.assign(hsk_fraction_real=summary["hsk_fraction"]), tmp_path, tasks=["rte", "sst2"])
    stems = {
        f"{name}_{task}"
        for name in ("marginal_utility", "depth", "length", "width", "joint")
        for task in ("rte", "sst2")
    }
    assert {p.name for p in written} == {f"{stem}.{ext}" for stem in stems for ext in ("pdf", "png")}
    assert all(p.stat().st_size > 0 for p in written)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)
