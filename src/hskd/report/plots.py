"""Figures from a `hskd.report.summary.summarize` table: marginal utility, per-dimension curves, joint configs.

Figures are built on `matplotlib.figure.Figure` with an Agg canvas (no pyplot state), sized for a
single paper column, coloured with seaborn's colour-blind-safe palette, and saved as PDF + PNG."""

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

from hskd.common.io import atomic_output
from hskd.report.summary import COMPRESSED_KINDS, baselines

COLUMN_WIDTH_IN = 3.4
FIGURE_WIDTH_IN = 5.0  # one column of plot plus a legend beside it, outside the data
PANEL_HEIGHT_IN = 2.4
MIN_Y_SPAN = 0.02  # metric units: a y-axis never magnifies differences smaller than this into the full height
LOG_X_MARGIN = 2.0  # log x-axes span [smallest / 2, largest * 2], so a single amount still gets a readable axis
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
FRACTION_LABELS = {
    "real": "share of the real tokens' HSK (log scale)",
    "nominal": "HSK fraction, padding counted (log scale)",
}
FRACTION_LABEL = FRACTION_LABELS["nominal"]
NONE_STYLE = {"linestyle": ":", "linewidth": 1.0}
FULL_STYLE = {"marker": "*", "markersize": 8, "linestyle": "none"}
TEACHER_STYLE = {"color": "0.0", "linestyle": "-", "linewidth": 0.8}
TRIVIAL_STYLE = {"color": "0.55", "linestyle": "-.", "linewidth": 0.8}


def _styled(plot: Callable[..., Figure]) -> Callable[..., Figure]:
    """Build the figure under the paper style (fonts are fixed when text artists are created)."""

    @functools.wraps(plot)
    def wrapper(*args, **kwargs) -> Figure:
        with mpl.rc_context(STYLE):
            return plot(*args, **kwargs)

    return wrapper


def _new_figure(n_panels: int = 1) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(FIGURE_WIDTH_IN, PANEL_HEIGHT_IN * n_panels), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, list(fig.subplots(n_panels, 1, squeeze=False)[:, 0])


def log_x_limits(xs: Iterable[float]) -> tuple[float, float] | None:
    """[min / LOG_X_MARGIN, max * LOG_X_MARGIN] of the positive finite `xs` (None if there are none)."""
    values = [x for x in xs if pd.notna(x) and x > 0]
    if not values:
        return None
    return min(values) / LOG_X_MARGIN, max(values) * LOG_X_MARGIN


def y_limits(values: Iterable[float], min_span: float = MIN_Y_SPAN) -> tuple[float, float] | None:
    """Limits around the finite `values`, at least `min_span` tall, with a 10% margin each side."""
    finite = [v for v in values if pd.notna(v)]
    if not finite:
        return None
    low, high = min(finite), max(finite)
    centre, span = (low + high) / 2, max(high - low, min_span)
    return centre - 0.6 * span, centre + 0.6 * span


def _reference(references: pd.DataFrame | None, task: str) -> pd.Series | None:
    if references is None:
        return None
    rows = references[references["task"] == task]
    return rows.iloc[0] if len(rows) else None


def _finish_axes(ax: Axes, xs: Iterable[float], ys: Iterable[float], ref: pd.Series | None, log_x: bool) -> None:
    """Axis limits that show every point (and the teacher), then the teacher and trivial-baseline lines;
    a trivial baseline far below the data is written at the bottom edge instead of squashing the axis."""
    if log_x and (limits := log_x_limits(xs)):
        ax.set_xlim(*limits)
    ys = list(ys)
    if ref is not None:
        ys.append(ref["teacher"])
    if limits := y_limits(ys):
        ax.set_ylim(*limits)
    if ref is None:
        return
    ax.axhline(ref["teacher"], **TEACHER_STYLE)
    low, high = ax.get_ylim()
    trivial = ref["trivial"]
    if pd.isna(trivial):
        return
    if low <= trivial <= high:
        ax.axhline(trivial, **TRIVIAL_STYLE)
    else:
        ax.text(0.01, 0.01, f"trivial baseline {trivial:.3f} (off the axis)", transform=ax.transAxes,
                ha="left", va="bottom", color=TRIVIAL_STYLE["color"], fontsize=5)  # fmt: skip


def _reference_handles(ref: pd.Series | None) -> list[Line2D]:
    if ref is None:
        return []
    return [
        Line2D([], [], label="teacher", **TEACHER_STYLE),
        Line2D([], [], label=f"trivial ({ref['trivial_rule']})", **TRIVIAL_STYLE),
    ]


def _outside_legend(ax: Axes, **kwargs) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kwargs)


def _plotted_values(rows: pd.DataFrame) -> list[float]:
    return [*rows["mean"], *rows["ci_low"], *rows["ci_high"]]


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


def interval_errors(mean: pd.Series, low: pd.Series, high: pd.Series) -> list[list[float]]:
    """Asymmetric error bars [below, above] of a 95% interval; 0 where there is none (a single seed)."""
    return [list((mean - low).fillna(0.0)), list((high - mean).fillna(0.0))]


def _errorbar(ax: Axes, rows: pd.DataFrame, x: str, **kwargs) -> None:
    ax.errorbar(rows[x], rows["mean"], yerr=interval_errors(rows["mean"], rows["ci_low"], rows["ci_high"]), **kwargs)


def _draw_baselines(ax: Axes, base: pd.Series, colour, with_star: bool) -> None:
    """Tuned prediction-only as a horizontal line; full HSK as a star at its fraction (1) if asked."""
    if pd.notna(base["none_mean"]):
        ax.axhline(base["none_mean"], color=colour, **NONE_STYLE)
    if with_star and pd.notna(base["full_mean"]):
        errors = interval_errors(*(pd.Series([base[f"full_{c}"]]) for c in ("mean", "ci_low", "ci_high")))
        ax.errorbar([1.0], [base["full_mean"]], yerr=errors, color=colour, **FULL_STYLE)


def _baseline_handles(with_star: bool = True) -> list[Line2D]:
    handles = [Line2D([], [], color="0.3", label="prediction-only (tuned lr)", **NONE_STYLE)]
    if with_star:
        handles.append(Line2D([], [], color="0.3", label="full HSK", **FULL_STYLE))
    return handles


@_styled
def plot_marginal_utility(
    summary: pd.DataFrame, task: str, references: pd.DataFrame | None = None, x_label: str = FRACTION_LABEL
) -> Figure:
    """Metric vs HSK fraction: per student (colour) one line per dimension and strategy (marker = dimension;
    joint cells as points), full HSK as a star at 1, prediction-only, teacher and trivial baseline as lines."""
    data = summary[summary["task"] == task]
    fig, (ax,) = _new_figure()
    ax.set_xscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(metric_label(data))
    ax.set_title(task)
    if data.empty:
        _no_runs(ax)
        return fig
    colours = student_colours(data)
    base = baselines(data).set_index("student")
    compressed = data[data["kind"].isin(COMPRESSED_KINDS) & (data["hsk_fraction"] > 0)]
    for student, colour in colours.items():
        mine = compressed[compressed["student"] == student]
        for (kind, _), rows in mine.groupby(["kind", "strategy"]):
            style = "none" if kind == "joint" else "-"
            _errorbar(ax, rows.sort_values("hsk_fraction"), "hsk_fraction", color=colour,
                      marker=KIND_MARKERS[kind], linestyle=style)  # fmt: skip
        _draw_baselines(ax, base.loc[student], colour, with_star=True)
    ref = _reference(references, task)
    full_and_none = [*base["full_ci_low"], *base["full_ci_high"], *base["full_mean"], *base["none_mean"]]
    _finish_axes(ax, [*compressed["hsk_fraction"], 1.0], [*_plotted_values(compressed), *full_and_none], ref,
                 log_x=True)  # fmt: skip
    kinds_seen = [kind for kind in KIND_MARKERS if (compressed["kind"] == kind).any()]
    handles = [Line2D([], [], color=c, marker="o", label=s) for s, c in colours.items()]
    handles += [
        Line2D([], [], color="0.3", marker=KIND_MARKERS[k], linestyle="none", label=k) for k in kinds_seen
    ]
    _outside_legend(ax, handles=handles + _baseline_handles() + _reference_handles(ref))
    return fig


@_styled
def plot_dimension(summary: pd.DataFrame, task: str, kind: str, references: pd.DataFrame | None = None) -> Figure:
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
    ref = _reference(references, task)
    for ax, student in zip(axes, students, strict=True):
        ax.set_title(f"{task}: {kind}, {student}")
        mine = rows[rows["student"] == student]
        if kind == "width" and (limits := log_x_limits(mine["amount"])):
            ax.set_xlim(*limits)  # before drawing: a single fraction would give a singular log axis
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
        _finish_axes(ax, mine["amount"], [*_plotted_values(mine), b["none_mean"], b["full_mean"]], ref,
                     log_x=kind == "width")  # fmt: skip
        handles, _ = ax.get_legend_handles_labels()
        _outside_legend(ax, handles=handles + _reference_handles(ref))
    return fig


@_styled
def plot_joint(
    summary: pd.DataFrame, task: str, references: pd.DataFrame | None = None, x_label: str = FRACTION_LABEL
) -> Figure:
    """Every joint configuration at its HSK fraction, labelled, with the baselines marked."""
    data = summary[summary["task"] == task]
    rows = data[(data["kind"] == "joint") & (data["hsk_fraction"] > 0)]
    fig, (ax,) = _new_figure()
    ax.set_xscale("log")
    ax.set_xlabel(x_label)
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
    ref = _reference(references, task)
    _finish_axes(ax, [*rows["hsk_fraction"], 1.0], [*_plotted_values(rows), *base["full_mean"], *base["none_mean"]],
                 ref, log_x=True)  # fmt: skip
    handles = [
        Line2D([], [], color=c, marker=KIND_MARKERS["joint"], linestyle="none", label=s)
        for s, c in colours.items()
    ]
    _outside_legend(ax, handles=handles + _baseline_handles() + _reference_handles(ref))
    return fig


def save_figure(fig: Figure, out_dir: str | Path, stem: str) -> list[Path]:
    """Save `fig` as ``{stem}.pdf`` and ``{stem}.png`` under `out_dir`, each via a temp file."""
    paths = [Path(out_dir) / f"{stem}.{ext}" for ext in ("pdf", "png")]
    for path in paths:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format=path.suffix[1:], dpi=300)
    return paths


def fraction_axis(summary: pd.DataFrame, fraction: str) -> tuple[pd.DataFrame, str]:
    """`summary` with the chosen fraction (``real`` or ``nominal``) in the plotted ``hsk_fraction`` column,
    and its axis label."""
    if fraction == "real":
        summary = summary.assign(hsk_fraction=summary["hsk_fraction_real"])
    return summary, FRACTION_LABELS[fraction]


def plot_all(
    summary: pd.DataFrame, out_dir: str | Path, tasks: Iterable[str] | None = None,
    references: pd.DataFrame | None = None, fraction: str = "real",
) -> list[Path]:  # fmt: skip
    """All figures for every task in `summary` (or in `tasks`, so missing tasks still get "no runs" files);
    `references` (``references.csv``) adds the teacher and trivial-baseline lines. `fraction` is the x-axis
    of the fraction plots: ``real`` (share of the real tokens' HSK) or ``nominal`` (padding counted)."""
    summary, x_label = fraction_axis(summary, fraction)
    written = []
    for task in sorted(set(summary["task"]) if tasks is None else set(tasks)):
        figures = {f"marginal_utility_{task}": plot_marginal_utility(summary, task, references, x_label)}
        figures |= {
            f"{kind}_{task}": plot_dimension(summary, task, kind, references) for kind in ("depth", "length", "width")
        }
        figures[f"joint_{task}"] = plot_joint(summary, task, references, x_label)
        for stem, fig in figures.items():
            written += save_figure(fig, out_dir, stem)
    return written
