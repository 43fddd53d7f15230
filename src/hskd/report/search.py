"""One round of the adaptive minimum-HSK search: read the finished runs, decide every sequence
(hskd.report.sequential), and name the runs the next round needs; the last round's decisions as a table."""

from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hskd.planning.cells import parse_cell
from hskd.planning.paths import RUN_METRICS, cell_wildcards, format_lr
from hskd.report.plots import FIGURE_WIDTH_IN, PANEL_HEIGHT_IN, STYLE, _styled
from hskd.report.runs import add_cell_columns
from hskd.report.sequential import PENDING, SearchPlan, decide_sequence, minimum_of
from hskd.report.summary import SELECTION_COLUMNS, select_lr

SEARCH_COLUMNS = ["sequence", "task", "student", "dimension", "scheme", "cell", "decision", "looks", "seeds",
                  "lower_bound", "upper_bound", "minimum"]  # fmt: skip


def _metrics_path(results: str, task: str, student: str, cell: str, lr: float, seed: int) -> str:
    return RUN_METRICS.format(results=results, task=task, student=student, lr=format_lr(lr), seed=seed,
                              **cell_wildcards(parse_cell(cell)))  # fmt: skip


def _values(runs: pd.DataFrame, task: str, student: str, cell: str, lr: float, seeds: list[int], column: str):
    """A cell's values on `column` in seed order (up to the first seed it lacks), and whether a run collapsed."""
    mine = runs[(runs["task"] == task) & (runs["student"] == student) & (runs["cell_path"] == cell)
                & (runs["lr"] == lr)].set_index("seed")  # fmt: skip
    values = []
    for seed in seeds:
        if seed not in mine.index:
            break
        values.append(float(mine.loc[seed, column]))
    collapsed = bool(mine["collapsed"].fillna(False).astype(bool).any()) if "collapsed" in mine else False
    return values, collapsed


def decide_round(spec: dict, runs: pd.DataFrame, results: str, read: list[str]) -> dict:
    """Every sequence's decisions from `runs` (the finished runs read, `read` their paths) and what the next
    round must run: {"done", "runs": every run read plus those the open looks need, "sequences": ...}."""
    plan = SearchPlan(**spec["plan"])
    column = spec["value"] if spec["select_on"] == "dev" else SELECTION_COLUMNS[spec["select_on"]]
    runs = add_cell_columns(runs).assign(cell_path=lambda frame: [
        f"depth={row.depth}/length={row.length}/width={row.width}" for row in frame.itertuples()])  # fmt: skip
    seeds, needed, sequences = spec["seeds"], list(read), []
    per_family = pd.Series([(s["task"], s["student"]) for s in spec["sequences"]]).value_counts().to_dict()
    full_runs = runs[runs["cell_path"] == spec["full_cell"]]
    full_lr = {(row.task, row.student): row.lr for row in select_lr(full_runs, spec["select_on"]).itertuples()}
    for sequence in spec["sequences"]:
        task, student = sequence["task"], sequence["student"]
        reference = (_values(runs, task, student, spec["full_cell"], full_lr[task, student], seeds, column)[0]
                     if (task, student) in full_lr else [])  # fmt: skip
        cells = [(cell, *_values(runs, task, student, cell, sequence["lr"], seeds, column))
                 for cell in sequence["cells"]]  # fmt: skip
        decisions = decide_sequence(cells, reference, plan, n_sequences=per_family[task, student])
        for decision in decisions:
            if decision.decision == PENDING:
                needed += [_metrics_path(results, task, student, decision.cell, sequence["lr"], seed)
                           for seed in seeds[: decision.seeds]]  # fmt: skip
        sequences.append({**{key: sequence[key] for key in ("name", "task", "student", "dimension", "scheme")},
                          "minimum": minimum_of(decisions),
                          "cells": [decision.__dict__ for decision in decisions]})  # fmt: skip
    needed, read = sorted(set(needed)), sorted(set(read))
    return {"done": needed == read, "runs": needed, "sequences": sequences, "runs_read": len(read),
            "read": read}  # fmt: skip


def search_table(decision: dict) -> pd.DataFrame:
    """The last round's decisions: one row per candidate cell of every sequence."""
    rows = [{"sequence": sequence["name"], **{key: sequence[key] for key in ("task", "student", "dimension",
                                                                             "scheme")},
             **{key: cell[key] for key in ("cell", "decision", "looks", "seeds", "lower_bound", "upper_bound")},
             "minimum": cell["cell"] == sequence["minimum"]}
            for sequence in decision["sequences"] for cell in sequence["cells"]]  # fmt: skip
    return pd.DataFrame(rows, columns=SEARCH_COLUMNS)


def runs_used(decision: dict, n_max: int) -> pd.DataFrame:
    """Per sequence: its answer, and the candidate runs the search read against the grid's at `n_max` seeds."""
    rows = [{"sequence": sequence["name"], "minimum": sequence["minimum"],
             "runs": sum(cell["seeds"] for cell in sequence["cells"]), "grid_runs": len(sequence["cells"]) * n_max}
            for sequence in decision["sequences"]]  # fmt: skip
    return pd.DataFrame(rows, columns=["sequence", "minimum", "runs", "grid_runs"])


def search_markdown(decision: dict, n_max: int) -> str:
    table = search_table(decision)
    used = runs_used(decision, n_max)
    total, grid = int(used["runs"].sum()), int(used["grid_runs"].sum())
    share = f" ({total / grid:.0%})" if grid else ""
    return (
        "# Adaptive minimum-HSK search\n\n"
        f"Candidate runs read: {total} of the grid's {grid} at {n_max} seeds{share}; baselines and joint cells "
        "are run as the grid runs them.\n\n"
        f"{used.to_markdown(index=False)}\n\n{table.to_markdown(index=False, floatfmt='.4f')}\n"
    )


def look_history(decisions: list[dict]) -> pd.DataFrame:
    """Every look the rounds saw: per sequence and cell, its bounds at that look (one row per look)."""
    rows = [{"sequence": sequence["name"], "position": position, "cell": cell["cell"], "looks": cell["looks"],
             "lower_bound": cell["lower_bound"], "upper_bound": cell["upper_bound"]}
            for decision in decisions for sequence in decision["sequences"]
            for position, cell in enumerate(sequence["cells"]) if cell["looks"] > 0]  # fmt: skip
    table = pd.DataFrame(rows, columns=["sequence", "position", "cell", "looks", "lower_bound", "upper_bound"])
    return table.drop_duplicates(["sequence", "cell", "looks"], keep="last")


@_styled
def plot_search(decisions: list[dict], margin: float) -> Figure:
    """One panel per sequence: each candidate cell (most HSK first) with, look by look, the interval from its
    lower bound (the look's boundary) to its upper bound (futility) of cell - full HSK, against -margin."""
    history = look_history(decisions)
    sequences = [sequence["name"] for sequence in decisions[-1]["sequences"]]
    fig = Figure(figsize=(FIGURE_WIDTH_IN, PANEL_HEIGHT_IN * max(len(sequences), 1)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(max(len(sequences), 1), 1, squeeze=False)[:, 0]
    colours = sns.color_palette("colorblind", int(history["looks"].max()) if len(history) else 1)
    for ax, (name, sequence) in zip(axes, ((s["name"], s) for s in decisions[-1]["sequences"]), strict=False):
        labels = [cell["cell"].replace("/", "\n") for cell in sequence["cells"]]
        for row in history[history["sequence"] == name].itertuples():
            x = row.position + 0.12 * (row.looks - 1)
            ax.plot([x, x], [row.lower_bound, row.upper_bound], color=colours[row.looks - 1], linewidth=1.5,
                    label=f"look {row.looks}")  # fmt: skip
        ax.axhline(-margin, color="0.3", linestyle="--", linewidth=0.8, label="-margin")
        ax.axhline(0.0, color="0.6", linewidth=0.6)
        ax.set_xticks(range(len(labels)), labels, fontsize=STYLE["xtick.labelsize"] - 1)
        ax.set_ylabel("cell - full HSK")
        ax.set_title(f"{name}: answer {sequence['minimum'] or 'none shown'}")
        handles = dict(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
        ax.legend(handles.values(), handles.keys(), loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    return fig
