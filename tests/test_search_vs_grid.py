"""scripts/search_vs_grid.py: the search's decisions beside the grid's, cell by cell and sequence by sequence."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import load_script

SEQUENCE = "SST-2/pruned/length=attention"
CELLS = [f"depth=all-top6/length=attention-{keep}/width=all" for keep in (16, 8, 4, 1)]


def search_table() -> pd.DataFrame:
    """The search showed 16 and 8 tokens (3 and 4 seeds), stopped 4 tokens for futility (3 seeds) and so never
    tested 1 token."""
    return pd.DataFrame({
        "sequence": SEQUENCE, "task": "SST-2", "student": "pruned", "dimension": "length", "scheme": "attention",
        "cell": CELLS, "decision": ["non-inferior", "non-inferior", "futile", "not tested"], "looks": [1, 2, 1, 0],
        "seeds": [3, 4, 3, 0], "lower_bound": [-0.004, -0.008, -0.03, None], "upper_bound": [0.01, 0.01, -0.011, None],
        "minimum": [False, True, False, False],
    })  # fmt: skip


def grid_table() -> pd.DataFrame:
    """The grid (5 seeds a cell, Holm) showed 16 and 1 tokens, not 8 or 4; a joint cell the search does not have."""
    return pd.DataFrame({
        "task": "SST-2", "student": "pruned", "cell": [*CELLS, "depth=top6-1/length=attention_nosep-4/width=all"],
        "kind": ["length"] * 4 + ["joint"],
        "hsk_fraction": [0.25, 0.125, 0.0625, 0.015625, 0.001], "n_seeds": [5] * 5,
        "diff_lower_bound": [-0.003, -0.011, -0.02, -0.009, -0.002],
        "decision": ["non-inferior", "not shown", "not shown", "non-inferior", "non-inferior"],
    })  # fmt: skip


def test_cells_and_sequences_side_by_side():
    script = load_script("search_vs_grid")
    cells = script.compare_cells(search_table(), grid_table())
    assert cells["cell"].tolist() == CELLS
    # futile (search) and not shown (grid) are the same decision: neither shows the cell
    assert cells["same_decision"].tolist() == [True, False, True, False]
    assert cells["grid_lower_bound"].tolist() == [-0.003, -0.011, -0.02, -0.009]
    sequence = script.compare_sequences(cells).iloc[0]
    # the search's answer is the last cell it showed; the grid's its smallest-HSK cell shown (1 token)
    assert (sequence["search_answer"], sequence["grid_answer"]) == (CELLS[1], CELLS[3])
    assert not sequence["same_answer"]
    assert (sequence["search_runs"], sequence["grid_runs"]) == (10, 20)
    assert sequence["runs_share"] == pytest.approx(0.5)


def test_a_cell_the_grid_lacks_is_named():
    script = load_script("search_vs_grid")
    with pytest.raises(ValueError, match="no row for SST-2/pruned cell depth=all-top6/length=attention-1/width=all"):
        script.compare_cells(search_table(), grid_table().iloc[[0, 1, 2, 4]])


def test_the_script_writes_tables_and_figure(tmp_path):
    script = load_script("search_vs_grid")
    search_table().to_csv(tmp_path / "search.csv", index=False)
    grid_table().to_csv(tmp_path / "minimum_hsk.csv", index=False)
    out = tmp_path / "out" / "search_vs_grid"
    assert script.main([str(tmp_path / "search.csv"), str(tmp_path / "minimum_hsk.csv"), "--out", str(out)]) == 0
    assert "Candidate runs: search 10 of the grid's 20 (50%)." in out.with_suffix(".md").read_text()
    assert pd.read_csv(out.with_suffix(".csv"))["same_decision"].tolist() == [True, False, True, False]
    assert out.with_suffix(".png").stat().st_size > 0
