"""Figures from a `hskd.results.summarize` table: marginal utility, per-dimension curves, joint configs.

Figures are built on `matplotlib.figure.Figure` with an Agg canvas (no pyplot state), sized for a
single paper column, coloured with seaborn's colour-blind-safe palette, and saved as PDF + PNG.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from pathlib import Path

import matplotlib as mpl
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from hskd.io import atomic_output
from hskd.results import COMPRESSED_KINDS, baselines

COLUMN_WIDTH_IN = 3.4
PANEL_HEIGHT_IN = 2.4
STYLE = {
    "font.size": 7,
    "axes.titlesize": 7,
    "axes.labelsize": 7,
    "xtick.labelsize": 6,
    "ytick.labelsize": 6,
    "legend.fontsize": 5.5,
    "lines.linewidth": 1.0,
    "lines.markersize": 3.5,
    "errorbar.capsize": 1.5,
}
KIND_MARKERS = {"depth": "o", "length": "s", "width": "^", "joint": "D"}
AMOUNT_LABELS = {"depth": "layers kept", "length": "tokens kept", "width": "width fraction (log scale)"}
FRACTION_LABEL = "HSK fraction (log scale)"
NONE_STYLE = {"linestyle": ":", "linewidth": 1.0}
FULL_STYLE = {"marker": "*", "markersize": 8, "linestyle": "none"}


def _styled(plot: Callable[..., Figure]) -> Callable[..., Figure]:
    """Build the figure under the paper style (fonts are fixed when text artists are created)."""

    @functools.wraps(plot)
    def wrapper(*args, **kwargs) -> Figure:
        with mpl.rc_context(STYLE):
            return plot(*args, **kwargs)

    return wrapper


def _new_figure(n_panels: int = 1) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(COLUMN_WIDTH_IN, PANEL_HEIGHT_IN * n_panels), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, list(fig.subplots(n_panels, 1, squeeze=False)[:, 0])


def _no_runs(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center", va="center", color="0.4")


def metric_label(data: pd.DataFrame) -> str:
    """Y-axis label such as ``dev accuracy``, from the summary's metric and value column."""
    metric = data["metric"].dropna()
    split = data["value_column"].dropna()
    prefix = split.iloc[0].split("_")[0] if len(split) else "dev"
    return f"{prefix} {metric.iloc[0] if len(metric) else 'metric'}"


def student_colours(data: pd.DataFrame) -> dict[str, tuple[float, float, float]]:
    """A fixed colour per student (sorted), from the colour-blind-safe palette."""
    students = sorted(data["student"].unique())
    return dict(zip(students, sns.color_palette("colorblind", max(len(students), 1)), strict=False))


def _errorbar(ax: Axes, rows: pd.DataFrame, x: str, **kwargs) -> None:
    ax.errorbar(rows[x], rows["mean"], yerr=rows["std"].fillna(0.0), **kwargs)


def _draw_baselines(ax: Axes, base: pd.Series, colour, with_star: bool) -> None:
    """Tuned prediction-only as a horizontal line; full HSK as a star at its fraction (1) if asked."""
    if pd.notna(base["none_mean"]):
        ax.axhline(base["none_mean"], color=colour, **NONE_STYLE)
    if with_star and pd.notna(base["full_mean"]):
        std = 0.0 if pd.isna(base["full_std"]) else base["full_std"]
        ax.errorbar([1.0], [base["full_mean"]], yerr=[std], color=colour, **FULL_STYLE)


def _baseline_handles(with_star: bool = True) -> list[Line2D]:
    handles = [Line2D([], [], color="0.3", label="prediction-only (tuned lr)", **NONE_STYLE)]
    if with_star:
        handles.append(Line2D([], [], color="0.3", label="full HSK", **FULL_STYLE))
    return handles


@_styled
def plot_marginal_utility(summary: pd.DataFrame, task: str) -> Figure:
    """Metric vs HSK fraction over all compressed cells, one colour per student, baselines marked."""
    data = summary[summary["task"] == task]
    fig, (ax,) = _new_figure()
    ax.set_xscale("log")
    ax.set_xlabel(FRACTION_LABEL)
    ax.set_ylabel(metric_label(data))
    ax.set_title(task)
    if data.empty:
        _no_runs(ax)
        return fig
    colours = student_colours(data)
    base = baselines(data).set_index("student")
    compressed = data[data["kind"].isin(COMPRESSED_KINDS) & (data["hsk_fraction"] > 0)]
    for student, colour in colours.items():
        rows = compressed[compressed["student"] == student].sort_values("hsk_fraction")
        ax.plot(rows["hsk_fraction"], rows["mean"], color=colour, alpha=0.4)
        for kind, marker in KIND_MARKERS.items():
            _errorbar(ax, rows[rows["kind"] == kind], "hsk_fraction", color=colour, fmt=marker)
        _draw_baselines(ax, base.loc[student], colour, with_star=True)
    kinds_seen = [kind for kind in KIND_MARKERS if (compressed["kind"] == kind).any()]
    handles = [Line2D([], [], color=c, marker="o", label=s) for s, c in colours.items()]
    handles += [
        Line2D([], [], color="0.3", marker=KIND_MARKERS[k], linestyle="none", label=k) for k in kinds_seen
    ]
    ax.legend(handles=handles + _baseline_handles(), loc="best", ncols=2)
    return fig


@_styled
def plot_dimension(summary: pd.DataFrame, task: str, kind: str) -> Figure:
    """Strategies of one dimension as the kept amount varies; one panel per student, baselines as lines."""
    data = summary[summary["task"] == task]
    rows = data[data["kind"] == kind]
    students = sorted(rows["student"].unique())
    fig, axes = _new_figure(max(len(students), 1))
    for ax in axes:
        ax.set_ylabel(metric_label(data))
        if kind == "width":
            ax.set_xscale("log")
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlabel(AMOUNT_LABELS[kind])
    if not students:
        axes[0].set_title(f"{task}: {kind}")
        _no_runs(axes[0])
        return fig
    strategies = sorted(rows["strategy"].unique())
    palette = dict(zip(strategies, sns.color_palette("colorblind", len(strategies)), strict=True))
    base = baselines(data).set_index("student")
    for ax, student in zip(axes, students, strict=True):
        ax.set_title(f"{task}: {kind}, {student}")
        mine = rows[rows["student"] == student]
        for strategy, group in mine.groupby("strategy"):
            _errorbar(
                ax, group.sort_values("amount"), "amount", color=palette[strategy], fmt="-o", label=strategy
            )
        b = base.loc[student]
        if pd.notna(b["none_mean"]):
            ax.axhline(
                b["none_mean"], color="0.3", label=f"prediction-only (lr={b['none_lr']:g})", **NONE_STYLE
            )
        if pd.notna(b["full_mean"]):
            ax.axhline(b["full_mean"], color="0.0", linestyle="--", label=f"full HSK (lr={b['full_lr']:g})")
        ax.legend(loc="best")
    return fig


@_styled
def plot_joint(summary: pd.DataFrame, task: str) -> Figure:
    """Every joint configuration at its HSK fraction, labelled, with the baselines marked."""
    data = summary[summary["task"] == task]
    rows = data[(data["kind"] == "joint") & (data["hsk_fraction"] > 0)]
    fig, (ax,) = _new_figure()
    ax.set_xscale("log")
    ax.set_xlabel(FRACTION_LABEL)
    ax.set_ylabel(metric_label(data))
    ax.set_title(f"{task}: joint compression")
    if rows.empty:
        _no_runs(ax)
        return fig
    colours = student_colours(data)
    base = baselines(data).set_index("student")
    for student, colour in colours.items():
        mine = rows[rows["student"] == student]
        _errorbar(ax, mine, "hsk_fraction", color=colour, fmt=KIND_MARKERS["joint"])
        for x, y, label in zip(mine["hsk_fraction"], mine["mean"], mine["strategy"], strict=True):
            ax.annotate(label, (x, y), xytext=(2, 2), textcoords="offset points", fontsize=4.5)
        _draw_baselines(ax, base.loc[student], colour, with_star=True)
    handles = [
        Line2D([], [], color=c, marker=KIND_MARKERS["joint"], linestyle="none", label=s)
        for s, c in colours.items()
    ]
    ax.legend(handles=handles + _baseline_handles(), loc="best")
    return fig


def save_figure(fig: Figure, out_dir: str | Path, stem: str) -> list[Path]:
    """Save `fig` as ``{stem}.pdf`` and ``{stem}.png`` under `out_dir`, each via a temp file."""
    paths = [Path(out_dir) / f"{stem}.{ext}" for ext in ("pdf", "png")]
    for path in paths:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format=path.suffix[1:], dpi=300)
    return paths


def plot_all(summary: pd.DataFrame, out_dir: str | Path, tasks: Iterable[str] | None = None) -> list[Path]:
    """All figures for every task in `summary` (or in `tasks`, so missing tasks still get "no runs" files)."""
    written = []
    for task in sorted(set(summary["task"]) if tasks is None else set(tasks)):
        figures = {f"marginal_utility_{task}": plot_marginal_utility(summary, task)}
        figures |= {
            f"{kind}_{task}": plot_dimension(summary, task, kind) for kind in ("depth", "length", "width")
        }
        figures[f"joint_{task}"] = plot_joint(summary, task)
        for stem, fig in figures.items():
            written += save_figure(fig, out_dir, stem)
    return written
