"""Tests for hskd.plots: every figure is written and carries the expected axis labels."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from hskd.plots import plot_all, plot_dimension, plot_joint, plot_marginal_utility


def row(student: str, kind: str, strategy: str, amount: float, fraction: float, mean: float) -> dict:
    """A summary row as `hskd.results.summarize` would produce it (only the columns plots read)."""
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


def test_marginal_utility_axes(summary: pd.DataFrame) -> None:
    (ax,) = plot_marginal_utility(summary, "rte").axes
    assert ax.get_xlabel() == "HSK fraction (log scale)"
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


def test_joint_axes(summary: pd.DataFrame) -> None:
    (ax,) = plot_joint(summary, "rte").axes
    assert ax.get_xlabel() == "HSK fraction (log scale)"
    assert "1l_4t" in {t.get_text() for t in ax.texts}


def test_empty_figures_say_no_runs(summary: pd.DataFrame) -> None:
    for fig in (
        plot_marginal_utility(summary, "sst2"),
        plot_dimension(summary, "sst2", "width"),
        plot_joint(summary.iloc[0:0], "rte"),
    ):
        assert "no runs" in {t.get_text() for t in fig.axes[0].texts}


def test_plot_all_writes_every_file(summary: pd.DataFrame, tmp_path: Path) -> None:
    written = plot_all(summary, tmp_path, tasks=["rte", "sst2"])
    stems = {
        f"{name}_{task}"
        for name in ("marginal_utility", "depth", "length", "width", "joint")
        for task in ("rte", "sst2")
    }
    assert {p.name for p in written} == {f"{stem}.{ext}" for stem in stems for ext in ("pdf", "png")}
    assert all(p.stat().st_size > 0 for p in written)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)
