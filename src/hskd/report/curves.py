"""Training-curve figures from the runs' TensorBoard event files (`tracking: tensorboard`): per task, the
prediction-only, full-HSK and joint cells at the learning rates the tables use (mean over seeds, the band their
range), and every run the guard rails flag (collapsed onto the trivial baseline) with its own curves."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hskd.planning.paths import EVENTS_DIR
from hskd.report.plots import STYLE, _styled, save_figure
from hskd.report.runs import add_cell_columns
from hskd.report.summary import baselines

TAGS = ("stage1/loss", "stage2/loss", "stage2/dev")  # the panels of a row, left to right
MAX_FLAGGED = 12  # flagged runs drawn per task; runs.csv lists them all
PANEL_IN = (2.4, 1.8)  # width, height
POINT_COLUMNS = ["task", "student", "arm", "seed", "run", "tag", "step", "value"]


def read_events(folder: str | Path) -> pd.DataFrame:
    """The scalars of one TensorBoard event folder: columns tag, step, value (empty if there is none)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not Path(folder).is_dir():
        return pd.DataFrame(columns=["tag", "step", "value"])
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})  # 0: keep every point
    events.Reload()
    rows = [(tag, event.step, event.value) for tag in events.Tags()["scalars"] for event in events.Scalars(tag)]
    return pd.DataFrame(rows, columns=["tag", "step", "value"])


def curve_runs(runs: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """The runs the curve figures compare, with an ``arm`` column: per task and student the prediction-only
    and full-HSK cells at the learning rates `baselines` picks, and every joint cell at its summary's lr."""
    picks = []
    for base in baselines(summary).itertuples():
        picks += [(base.task, base.student, base.none_cell, base.none_lr, "prediction-only"),
                  (base.task, base.student, base.full_cell, base.full_lr, "full HSK")]  # fmt: skip
    joint = summary[summary["kind"] == "joint"]
    picks += list(zip(joint["task"], joint["student"], joint["cell"], joint["lr"], joint["strategy"], strict=True))
    picked = pd.DataFrame(picks, columns=["task", "student", "cell", "lr", "arm"]).dropna(subset=["cell"])
    return add_cell_columns(runs).merge(picked, on=["task", "student", "cell", "lr"])


def flagged_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs the guard rails flag (``collapsed``), each named by its cell, lr and seed in ``arm``."""
    flagged = add_cell_columns(runs)
    flagged = flagged[flagged["collapsed"].fillna(False).astype(bool)]
    return flagged.assign(arm=[f"{row.cell} lr {row.lr:g} seed {row.seed}" for row in flagged.itertuples()])


def curve_points(runs: pd.DataFrame) -> pd.DataFrame:
    """Every point of the `runs`' event files (beside each run's metrics.json), one row per point."""
    frames = []
    for row in runs.itertuples():
        events = read_events(Path(row.path).parent / EVENTS_DIR)
        frames.append(events.assign(task=row.task, student=row.student, arm=row.arm, seed=row.seed, run=row.path))
    points = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=POINT_COLUMNS)
    return points[points["tag"].isin(TAGS)][POINT_COLUMNS]


@_styled
def plot_curves(points: pd.DataFrame, rows: list[str], title: str) -> Figure:
    """One row of panels (`TAGS`) per entry of `rows` (a student, or a flagged run's ``arm``): each arm's mean
    over seeds at every logged step, the band the range over seeds. Loss panels have a log y-axis."""
    row_column = "run_label"
    fig = Figure(figsize=(PANEL_IN[0] * len(TAGS), PANEL_IN[1] * max(len(rows), 1) + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(max(len(rows), 1), len(TAGS), squeeze=False)
    fig.suptitle(title, fontsize=STYLE["axes.titlesize"])
    arms = sorted(set(points["arm"]), key=lambda arm: (arm != "prediction-only", arm != "full HSK", arm))
    palette = dict(zip(arms, sns.color_palette("colorblind", max(len(arms), 1)), strict=False))
    if not rows:
        axes[0][1].text(0.5, 0.5, "no runs", transform=axes[0][1].transAxes, ha="center", color="0.4")
    for row_axes, label in zip(axes, rows, strict=False):
        for ax, tag in zip(row_axes, TAGS, strict=True):
            data = points[(points[row_column] == label) & (points["tag"] == tag)]
            ax.set_title(f"{label}\n{tag}" if len(rows) > 1 else tag, fontsize=STYLE["xtick.labelsize"])
            ax.set_xlabel("step")
            if data.empty:
                ax.text(0.5, 0.5, "no points", transform=ax.transAxes, ha="center", va="center", color="0.4")
                continue
            sns.lineplot(data=data, x="step", y="value", hue="arm", hue_order=arms, palette=palette,
                         errorbar=("pi", 100), estimator="mean", ax=ax, legend=tag == TAGS[-1])  # fmt: skip
            ax.set_ylabel("loss (log scale)" if tag.endswith("loss") else "dev metric")
            if tag.endswith("loss") and (data["value"] > 0).all():
                ax.set_yscale("log")
        if row_axes[-1].get_legend() is not None:
            row_axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    return fig


def plot_task_curves(runs: pd.DataFrame, summary: pd.DataFrame, out_dir: str | Path, task: str) -> list[Path]:
    """`curves_{task}` (the compared cells, a row per student) and `curves_flagged_{task}` (a row per flagged
    run, at most `MAX_FLAGGED`) as PDF and PNG."""
    runs = runs[runs["task"] == task]
    compared = curve_points(curve_runs(runs, summary))
    students = sorted(set(runs["student"]))
    written = save_figure(plot_curves(compared.assign(run_label=compared["student"]), students,
                                      f"{task}: training curves, mean over seeds (band: their range)"),
                          out_dir, f"curves_{task}")  # fmt: skip
    flagged = flagged_runs(runs)
    labels = [f"{row.student} {row.arm}" for row in flagged.itertuples()][:MAX_FLAGGED]
    points = curve_points(flagged.head(MAX_FLAGGED))
    points = points.assign(run_label=points["student"] + " " + points["arm"])
    title = f"{task}: runs the guard rails flag ({len(flagged)}" + (f", first {MAX_FLAGGED} drawn)" if len(
        flagged) > MAX_FLAGGED else ")")  # fmt: skip
    written += save_figure(plot_curves(points, labels, title), out_dir, f"curves_flagged_{task}")
    return written
