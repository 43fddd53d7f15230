"""The adaptive search's planning (sequences, first round) and one round's decision on hand-made run files: what
the next round runs, and when the search is done."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from test_results import write_run

from hskd.cli import main
from hskd.planning.config import ConfigError
from hskd.planning.grid import runs as grid_runs
from hskd.planning.search import first_round_runs, search_sequences, search_spec
from hskd.planning.study import load as load_study
from hskd.report.runs import collect_runs
from hskd.report.search import decide_round, look_history, plot_search, search_markdown

FULL = "depth=all-top6/length=all/width=all"
CELLS = ["depth=all-top6/length=all/width=magnitude-0.5", "depth=all-top6/length=all/width=magnitude-0.1"]
SPEC = {"plan": {"n_min": 2, "n_max": 3, "step": 1, "margin": 0.01, "alpha": 0.05}, "select_on": "train_heldout",
        "value": "dev_final", "seeds": [0, 1, 2], "full_cell": FULL,
        "sequences": [{"name": "rte/s4/width=magnitude", "task": "rte", "student": "s4", "dimension": "width",
                       "scheme": "magnitude", "lr": 5e-05, "cells": CELLS}]}  # fmt: skip


def width(cell: str) -> str:
    return cell.split("width=")[1]


def study_runs(root: Path, cells: dict[str, list[float]]) -> list[str]:
    """Full HSK at seeds 0-2 (held-out 0.810, 0.811, 0.812) and the given cells' held-out values by seed."""
    paths = [write_run(root, depth="all-top6", seed=seed, dev_final=0.8, heldout_final=value)
             for seed, value in enumerate([0.810, 0.811, 0.812])]  # fmt: skip
    for cell, values in cells.items():
        paths += [write_run(root, depth="all-top6", width=width(cell), seed=seed, dev_final=0.8, heldout_final=value)
                  for seed, value in enumerate(values)]  # fmt: skip
    return [str(path) for path in paths]


def decide(root: Path, read: list[str]) -> dict:
    return decide_round(SPEC, collect_runs(root, read), str(root), read)


def test_an_undecided_first_look_asks_for_one_more_seed_of_the_same_cell(tmp_path):
    read = study_runs(tmp_path, {CELLS[0]: [0.80, 0.815]})  # 2 seeds: not clear enough at the first look
    decision = decide(tmp_path, read)
    assert not decision["done"]
    added = sorted(set(decision["runs"]) - set(read))
    run = "rte/runs/s4/depth=all-top6/length=all/width=magnitude-0.5/lr=5e-05/seed=2/metrics.json"
    assert added == [f"{tmp_path}/{run}"]
    assert [cell["decision"] for cell in decision["sequences"][0]["cells"]] == ["pending", "not tested"]


def test_a_cell_shown_opens_the_next_cell_and_the_search_ends_when_all_is_decided(tmp_path):
    read = study_runs(tmp_path, {CELLS[0]: [0.815, 0.816]})  # shown at 2 seeds
    decision = decide(tmp_path, read)
    added = sorted(set(decision["runs"]) - set(read))
    assert [Path(path).parts[-3:-1] for path in added] == [("lr=5e-05", "seed=0"), ("lr=5e-05", "seed=1")]
    assert all("magnitude-0.1" in path for path in added)
    read = study_runs(tmp_path, {CELLS[0]: [0.815, 0.816], CELLS[1]: [0.60, 0.61]})  # the smaller cell is futile
    decision = decide(tmp_path, read)
    assert decision["done"] and sorted(decision["runs"]) == sorted(set(read))
    cells = decision["sequences"][0]["cells"]
    assert [cell["decision"] for cell in cells] == ["non-inferior", "futile"]
    assert decision["sequences"][0]["minimum"] == CELLS[0]
    assert "Candidate runs read: 4 of the grid's 6 at 3 seeds (67%)" in search_markdown(decision, 3)


def test_sequences_run_from_the_most_hsk_kept_and_the_first_round_is_a_subset_of_the_grid(config):
    config["seeds"] = [0, 1, 2, 3, 4]
    config["grid"].update(search="adaptive", width={"schemes": ["magnitude"], "fractions": [0.01, 0.5, 0.1]})
    study = load_study(config)
    sequences = search_sequences(study)
    width_cells = [str(cell) for cell in next(s for s in sequences if s.dimension == "width").cells]
    assert [cell.split("width=")[1] for cell in width_cells] == ["magnitude-0.5", "magnitude-0.1", "magnitude-0.01"]
    first = first_round_runs(study)
    assert set(first) <= set(grid_runs(study))  # every run the search asks for has the grid's path
    first_cell_runs = [run for run in first if str(run.cell) == width_cells[0]]
    assert sorted(run.seed for run in first_cell_runs) == sorted([0, 1, 2] * len(study.students))  # n_min = 3
    assert search_spec(study)["seeds"] == [0, 1, 2, 3, 4]


def test_a_sweep_turned_off_has_no_sequence(config):
    config["seeds"] = [0, 1, 2, 3, 4]
    config["grid"].update(search="adaptive", depth={"maps": ["top6"], "keep": []})  # as no-sweeps.yaml does
    study = load_study(config)
    assert {sequence.dimension for sequence in search_sequences(study)} == {"length", "width"}
    assert set(first_round_runs(study)) <= set(grid_runs(study))


def test_an_adaptive_search_needs_n_max_seeds(config):
    config["grid"]["search"] = "adaptive"  # the default config has 3 seeds, n_max is 5
    with pytest.raises(ConfigError, match="^grid.adaptive.n_max: 5 > the 3 seeds"):
        load_study(config)


@pytest.mark.parametrize("student", ["pruned", "pretrained"])
def test_the_demonstrations_overlays_are_one_student_two_sequences_of_five_cells(student):
    from hskd.planning.layers import merge, read_layers

    root = Path(__file__).resolve().parents[1] / "workflow/configs"
    layers = [root / "search-demo.yaml", *([root / "search-demo-pretrained.yaml"] if student == "pretrained" else []),
              root / "search-demo-adaptive.yaml"]  # fmt: skip
    study = load_study(merge(read_layers(layers, {}, default=str(root.parents[1] / "config.yaml")))[0])
    assert list(study.students) == [student] and study.data.train_subset == 3000
    sequences = search_sequences(study)
    assert [(s.dimension, s.scheme, len(s.cells)) for s in sequences] == [("length", "attention", 5),
                                                                           ("width", "magnitude", 5)]  # fmt: skip
    # both baselines at 2 lrs x 5 seeds, and each sequence's first cell at n_min = 3 seeds
    assert len(first_round_runs(study)) == 2 * 2 * 5 + 2 * 3


def test_the_search_figure_draws_each_look_of_each_cell(tmp_path):
    # round 0: the first cell undecided after one look; round 1: shown at its second look, the next one futile
    read = study_runs(tmp_path, {CELLS[0]: [0.805, 0.815]})
    first = decide(tmp_path, read)
    read = study_runs(tmp_path, {CELLS[0]: [0.805, 0.815, 0.811], CELLS[1]: [0.60, 0.61]})
    last = decide(tmp_path, read)
    history = look_history([first, last])
    assert list(zip(history["cell"], history["looks"], strict=True)) == [(CELLS[0], 1), (CELLS[0], 2), (CELLS[1], 1)]
    fig = plot_search([first, last], margin=0.01)
    segments = [line for line in fig.axes[0].get_lines() if line.get_label().startswith("look")]
    assert [tuple(line.get_ydata()) for line in segments] == [
        (row.lower_bound, row.upper_bound) for row in history.itertuples()]  # fmt: skip
    decisions = [tmp_path / "round=0.json", tmp_path / "round=1.json"]
    for path, decision in zip(decisions, (first, last), strict=True):
        path.write_text(json.dumps(decision))
    main(["search-tables", "--rounds", *map(str, decisions), "--n-max", "3", "--margin", "0.01",
          "--out", str(tmp_path / "tables"), "--figures", str(tmp_path / "figures")])  # fmt: skip
    assert sorted(path.name for path in (tmp_path / "figures").iterdir()) == ["search.pdf", "search.png"]
    assert pd.read_csv(tmp_path / "tables/search.csv")["decision"].tolist() == ["non-inferior", "futile"]
