"""Config validation: schema (types, ranges, unknown keys) and cross-field checks, one line naming the key."""

from __future__ import annotations

import math

import pytest

from hskd.compression import parse_cell
from hskd.config import ConfigError, load
from hskd.grid import runs, store_bytes_lower_bound, store_bytes_per_example
from hskd.paths import format_lr


def test_default_config_is_valid(config):
    study = load(config)
    assert study.tasks == ["SST-2"]
    assert study.students["pruned"].layers == [2, 4, 6]
    assert study.stage1.schedule == "constant"


def test_unknown_key_is_an_error(config):
    config["teacher"]["learning_rate"] = 1e-5
    with pytest.raises(ConfigError, match="teacher") as err:
        load(config)
    assert "\n" not in str(err.value)


def test_unknown_precision_is_an_error(config):
    config["precision"] = "fp16"
    with pytest.raises(ConfigError, match="precision"):
        load(config)


def test_negative_learning_rate_is_an_error(config):
    config["stage2"]["lr"] = -1e-5
    with pytest.raises(ConfigError, match="stage2.lr"):
        load(config)


def test_unknown_task_is_an_error(config):
    config["tasks"] = ["SST-3"]
    with pytest.raises(ConfigError, match="tasks: unknown task 'SST-3'"):
        load(config)


def test_missing_glue_dir_is_an_error(config, tmp_path):
    config["glue_dir"] = str(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="glue_dir: folder .*nowhere' does not exist"):
        load(config)


def test_bad_tsv_label_stops_before_any_job(config, tmp_path):
    (tmp_path / "SST-2").mkdir()
    (tmp_path / "SST-2" / "train.tsv").write_text("sentence\tlabel\ngood film\t1\nbad film\t7\n")
    (tmp_path / "SST-2" / "dev.tsv").write_text("sentence\tlabel\nfine\t1\n")
    config["glue_dir"] = str(tmp_path)
    with pytest.raises(ConfigError, match=r"train.tsv:3: "):
        load(config)


def test_length_amount_above_max_seq_length_is_an_error(config):
    config["grid"]["length"]["keep"] = [1, 128]
    with pytest.raises(ConfigError, match="grid"):
        load(config)


def test_depth_keep_above_student_layers_is_an_error(config):
    config["grid"]["depth"]["keep"] = [5]  # 3-layer students have hidden states 0..3
    with pytest.raises(ConfigError, match="student pretrained"):
        load(config)


def test_missing_teacher_folder_is_an_error(config):
    config["teacher"]["model"] = "./no/such/teacher"
    with pytest.raises(ConfigError, match="teacher.model"):
        load(config)


def test_default_grid_expansion(config):
    study = load(config)
    all_runs = runs(study)
    # per student: none and full x 2 lrs x 3 seeds, the joint cell x 3 seeds, 5 sweep cells x 1 seed
    assert len(all_runs) == 2 * (2 * 2 * 3 + 3 + 5)
    none_runs = [r for r in all_runs if r.cell.is_none and r.student == "pretrained"]
    assert {r.lr for r in none_runs} == {2e-5, 5e-5} and {r.seed for r in none_runs} == {0, 1, 2}
    path = none_runs[0].metrics_path()
    assert path.startswith("results/SST-2/runs/pretrained/depth=none/length=all/width=all/lr=2e-05/seed=")


def test_lr_search_gives_compressed_cells_the_baselines_learning_rates(config):
    config["grid"]["lr_search"] = True
    all_runs = runs(load(config))
    # every cell now runs at both baseline lrs: twice the compressed runs of the default grid
    assert len(all_runs) == 2 * (2 * 2 * 3 + 2 * (3 + 5))
    joint = [r for r in all_runs if r.student == "pruned" and str(r.cell).startswith("depth=top6-1/length=attention")]
    assert sorted({r.lr for r in joint}) == [2e-5, 5e-5] and {r.seed for r in joint} == {0, 1, 2}


def test_lr_path_segment_round_trips():
    for lr in (2e-5, 5e-5, 1e-4, 3.3e-5):
        assert float(format_lr(lr)) == lr
    assert format_lr(5e-5) == "5e-05"


def test_store_bytes_formula_by_hand():
    cell = parse_cell("depth=top6-1/length=attention_nosep-10/width=magnitude-0.1")
    # 10 int16 token positions + 1 layer x (384 fp16 values + 10*384/8 bitmask bytes)
    assert store_bytes_per_example(cell, 3, 384, 64) == 20 + 768 + 480
    full = parse_cell("depth=all-top6/length=all/width=all")
    assert store_bytes_per_example(full, 3, 384, 64) == 128 + 4 * 64 * 384 * 2


def test_store_lower_bound_by_hand():
    # T=4, K=2 attention tokens: C(4, 2) = 6 choices; D=2, so K*D = 4 values of which 2 kept: C(4, 2) = 6
    cell = parse_cell("depth=top2-1/length=attention-2/width=magnitude-0.5")
    assert store_bytes_lower_bound(cell, 2, 2, 4) == pytest.approx(2 * 2 + 2 * math.log2(6) / 8)
    # left tokens and static width: positions are known in advance, so only the values count
    static = parse_cell("depth=top2-2/length=left-2/width=uniform-0.5")
    assert store_bytes_lower_bound(static, 2, 2, 4) == 2 * 2 * 2 * 1
    full = parse_cell("depth=all-top6/length=all/width=all")
    assert store_bytes_lower_bound(full, 3, 384, 64) == 4 * 64 * 384 * 2 < store_bytes_per_example(full, 3, 384, 64)
