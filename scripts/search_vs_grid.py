"""Does the adaptive search reach the grid's decision, and with how many runs? Compares the search's last decision
(`tables/search.csv` of a `grid.search: adaptive` study) with the grid's (`tables/minimum_hsk.csv` of the same
study run as a grid, whose runs include every run the search read). Per candidate cell: each decision, the seeds
each read and each one-sided lower bound of cell - full HSK; per sequence: each answer (the grid's is its
smallest-HSK cell shown non-inferior) and the runs each read. Writes `<out>.md`, `<out>.csv` and a figure
`<out>.png|pdf`:

    python scripts/search_vs_grid.py results/search-demo/tables-adaptive/search.csv \\
        results/search-demo/tables/minimum_hsk.csv --out results/search-demo/tables/search_vs_grid
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from hskd.common.io import write_text
from hskd.report.plots import FIGURE_WIDTH_IN, PANEL_HEIGHT_IN, _styled, save_figure
from hskd.report.sequential import SHOWN

CELL_COLUMNS = ["sequence", "cell", "hsk_fraction", "grid_decision", "grid_seeds", "grid_lower_bound",
                "search_decision", "search_seeds", "search_lower_bound", "same_decision"]  # fmt: skip


def compare_cells(search: pd.DataFrame, grid: pd.DataFrame) -> pd.DataFrame:
    """One row per candidate cell of the search, beside the grid's row of the same task, student and cell.
    `same_decision`: both show it non-inferior, or neither does. ValueError if the grid lacks a cell."""
    grid = grid.rename(columns={"decision": "grid_decision", "n_seeds": "grid_seeds",
                                "diff_lower_bound": "grid_lower_bound"})  # fmt: skip
    search = search.rename(columns={"decision": "search_decision", "seeds": "search_seeds",
                                    "lower_bound": "search_lower_bound"})  # fmt: skip
    both = search.merge(grid, on=["task", "student", "cell"], how="left", validate="one_to_one")
    missing = both[both["grid_decision"].isna()]
    if not missing.empty:
        raise ValueError(f"the grid's table has no row for {missing.iloc[0]['task']}/{missing.iloc[0]['student']} "
                         f"cell {missing.iloc[0]['cell']}")  # fmt: skip
    both["same_decision"] = (both["grid_decision"] == SHOWN) == (both["search_decision"] == SHOWN)
    return both[CELL_COLUMNS]


def compare_sequences(cells: pd.DataFrame) -> pd.DataFrame:
    """Per sequence: the search's answer (the last cell it showed down the sequence) and the grid's (its
    smallest-HSK cell shown), and the candidate runs each read."""
    rows = []
    for name, rows_of in cells.groupby("sequence", sort=False):
        search_shown = rows_of[rows_of["search_decision"] == SHOWN]
        grid_shown = rows_of[rows_of["grid_decision"] == SHOWN].sort_values("hsk_fraction")
        rows.append({
            "sequence": name,
            "search_answer": search_shown["cell"].iloc[-1] if len(search_shown) else "none shown",
            "grid_answer": grid_shown["cell"].iloc[0] if len(grid_shown) else "none shown",
            "search_runs": int(rows_of["search_seeds"].sum()), "grid_runs": int(rows_of["grid_seeds"].sum()),
        })  # fmt: skip
    table = pd.DataFrame(rows)
    table["same_answer"] = table["search_answer"] == table["grid_answer"]
    table["runs_share"] = table["search_runs"] / table["grid_runs"]
    return table


@_styled
def plot_runs_used(cells: pd.DataFrame, margin: float) -> Figure:
    """Per sequence, two panels: each cell's one-sided lower bound of cell - full HSK under the grid and under
    the search against -margin (filled: shown non-inferior), and the runs each read."""
    sequences = list(dict.fromkeys(cells["sequence"]))
    fig = Figure(figsize=(FIGURE_WIDTH_IN * 1.6, PANEL_HEIGHT_IN * len(sequences)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(sequences), 2, squeeze=False)
    grid_colour, search_colour = sns.color_palette("colorblind", 2)
    for (bound_ax, runs_ax), name in zip(axes, sequences, strict=True):
        rows = cells[cells["sequence"] == name].reset_index(drop=True)
        labels = [cell.split("/")[1 if "length=all" not in cell else 2].split("=")[1] for cell in rows["cell"]]
        for offset, who, colour in ((-0.12, "grid", grid_colour), (0.12, "search", search_colour)):
            for position, row in rows.iterrows():
                shown = row[f"{who}_decision"] == SHOWN
                bound_ax.plot(position + offset, row[f"{who}_lower_bound"], "o", color=colour,
                              markerfacecolor=colour if shown else "white")  # fmt: skip
            runs_ax.bar([position + offset for position in rows.index], rows[f"{who}_seeds"], width=0.24,
                        color=colour, label=f"{who}: {int(rows[f'{who}_seeds'].sum())} runs")  # fmt: skip
        bound_ax.axhline(-margin, color="0.3", linestyle="--", linewidth=0.8)
        bound_ax.set_ylabel("lower bound of\ncell - full HSK")
        bound_ax.set_title(f"{name} (filled: non-inferior)")
        runs_ax.set_ylabel("runs (seeds)")
        runs_ax.set_title(name)
        for ax in (bound_ax, runs_ax):
            ax.set_xticks(range(len(labels)), labels)
        bound_ax.legend(handles=[*(Line2D([], [], marker="o", linestyle="", color=colour, label=who)
                                   for who, colour in (("grid", grid_colour), ("search", search_colour))),
                                 Line2D([], [], color="0.3", linestyle="--", linewidth=0.8, label="-margin")],
                        loc="best", frameon=False)  # fmt: skip
        runs_ax.legend(loc="upper right", frameon=False)
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("search", type=Path, help="tables/search.csv of the adaptive study")
    parser.add_argument("grid", type=Path, help="tables/minimum_hsk.csv of the same study run as a grid")
    parser.add_argument("--margin", type=float, default=0.01, help="report.margin of both (default 0.01)")
    parser.add_argument("--out", type=Path, default=Path("results/search-demo/tables/search_vs_grid"))
    args = parser.parse_args(argv)
    try:
        cells = compare_cells(pd.read_csv(args.search), pd.read_csv(args.grid))
    except (OSError, ValueError) as error:
        parser.error(str(error))
    sequences = compare_sequences(cells)
    total_search, total_grid = sequences["search_runs"].sum(), sequences["grid_runs"].sum()
    text = (f"Candidate runs: search {total_search} of the grid's {total_grid} ({total_search / total_grid:.0%}).\n\n"
            f"{sequences.to_markdown(index=False, floatfmt='.2f')}\n\n"
            f"{cells.to_markdown(index=False, floatfmt='.4f')}\n")
    print(text)
    write_text(text, args.out.with_suffix(".md"))
    write_text(cells.to_csv(index=False), args.out.with_suffix(".csv"))
    save_figure(plot_runs_used(cells, args.margin), args.out.parent, args.out.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
