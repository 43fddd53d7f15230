"""The strategy registries are the one vocabulary: the schema's enums and the table in docs/cells.md equal them, and a
strategy added there (the seeded `random` tokens) works everywhere: grammar, planning, extraction, online."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from conftest import SMOKE_RESULTS, copy_workflow

from hskd.hsk.compression import select_tokens
from hskd.planning.cells import parse_cell
from hskd.planning.strategies import LENGTH_STRATEGIES, WIDTH_STRATEGIES

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "src" / "hskd" / "planning" / "schemas" / "config.schema.yaml"
SEP = 102


def test_the_schema_enums_are_the_registries():
    definitions = yaml.safe_load(SCHEMA.read_text())["definitions"]
    assert definitions["length_scheme"]["enum"] == list(LENGTH_STRATEGIES)
    assert definitions["width_scheme"]["enum"] == list(WIDTH_STRATEGIES)


def test_the_docs_table_is_the_registries():
    rows = [f"| length | `{name}` | {entry.description} |" for name, entry in LENGTH_STRATEGIES.items()]
    rows += [f"| width | `{name}` | {entry.description} |" for name, entry in WIDTH_STRATEGIES.items()]
    readme = ROOT.joinpath("docs", "cells.md").read_text()
    table = [line for line in readme.splitlines() if line.startswith(("| length | `", "| width | `"))
             and "=" not in line.split("|")[2]]  # fmt: skip  (not the grammar table's rows)
    assert table == rows


@pytest.mark.parametrize("name", [*LENGTH_STRATEGIES, *WIDTH_STRATEGIES])
def test_names_fit_the_path_grammar(name):
    # a cell segment is "<scheme>-<amount>", split on its first dash
    assert name.isidentifier() and "-" not in name


# --------------------------------------------------------------------------------------- random tokens

# Real-token counts 4, 6 and 3, padded to 6. The draws torch.rand(6) with manual_seed(example id):
# example 0: .4963 .7682 .0885 .1320 | .3074 .6341 -> real top 2: positions 0, 1
# example 1: .7576 .2793 .4031 .7347 .0293 .7999 -> positions 5, 0
# example 2: .6147 .3810 .6371 | .4745 .7136 .6190 -> positions 2, 0 (the padding's .7136 never counts)
IDS = torch.tensor([[101, 5, 6, SEP, 0, 0], [101, 5, 6, 7, 8, SEP], [101, 5, SEP, 0, 0, 0]])
MASK = (IDS != 0).long()


def random_tokens(ids, mask, example_ids, keep=2):
    return select_tokens("random", keep, ids, mask, None, SEP, example_ids=torch.tensor(example_ids)).tolist()


def test_random_tokens_are_drawn_per_example_from_its_seed():
    assert random_tokens(IDS, MASK, [0, 1, 2]) == [[0, 1], [0, 5], [0, 2]]
    # the same text as another example draws other tokens: example 1's draws over 4 real tokens
    assert random_tokens(IDS[:1], MASK[:1], [1]) == [[0, 3]]


def test_random_tokens_do_not_depend_on_the_batch():
    # alone, padded to its own length, in another order: the picks of each example stay
    assert random_tokens(IDS[2:, :3], MASK[2:, :3], [2]) == [[0, 2]]
    assert random_tokens(IDS[[2, 0]], MASK[[2, 0]], [2, 0]) == [[0, 2], [0, 1]]


def test_random_tokens_take_padding_only_when_real_tokens_run_out():
    assert random_tokens(IDS[:1], MASK[:1], [0], keep=5) == [[0, 1, 2, 3, 5]]  # padding .6341 over .3074


def test_random_tokens_need_example_ids():
    with pytest.raises(ValueError, match="'random' draws per example"):
        select_tokens("random", 2, IDS, MASK, None, SEP)


def test_a_random_tokens_cell_parses_and_is_sized_per_example():
    from hskd.planning.grid import store_bytes_lower_bound

    cell = parse_cell("depth=all-top2/length=random-2/width=all")
    assert cell.length.per_example and not cell.length.needs_attention
    # positions of 2 of 6 tokens cost log2 C(6, 2) = log2 15 bits, as for attention-ranked tokens
    left = store_bytes_lower_bound(parse_cell("depth=all-top2/length=left-2/width=all"), 2, 4, 6)
    assert store_bytes_lower_bound(cell, 2, 4, 6) == pytest.approx(left + 3.9068906 / 8)
    for scheme in ("attention", "attention_nosep"):  # ranked per example as well
        ranked = parse_cell(f"depth=all-top2/length={scheme}-2/width=all")
        assert store_bytes_lower_bound(ranked, 2, 4, 6) == store_bytes_lower_bound(cell, 2, 4, 6)


def test_a_random_tokens_sweep_plans(tmp_path):
    workdir = copy_workflow(tmp_path)
    (workdir / "random.yaml").write_text("grid:\n  length: {schemes: [random], keep: [2]}\n")
    target = f"{SMOKE_RESULTS}/SST-2/runs/pruned/depth=all-top2/length=random-2/width=all/lr=0.001/seed=0/metrics.json"
    result = subprocess.run(["snakemake", "-n", target, "--configfile", "workflow/configs/smoke.yaml", "random.yaml"],
                            cwd=workdir, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
    assert "distill" in result.stdout
