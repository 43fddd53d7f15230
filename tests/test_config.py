"""Config validation: schema (types, ranges, unknown keys) and cross-field checks, one line naming the key."""

from __future__ import annotations

import dataclasses
import math

import pytest
import yaml

from hskd.planning.cells import parse_cell
from hskd.planning.config import (
    SCHEMA_PATH,
    BaselinesConfig,
    ConfigError,
    DataConfig,
    DepthSweep,
    GridConfig,
    HubConfig,
    JointConfig,
    LengthSweep,
    ReportConfig,
    ResourcesConfig,
    RuleResources,
    Shape,
    StageConfig,
    StudentConfig,
    StudyConfig,
    TeacherConfig,
    WidthSweep,
    typed,
)
from hskd.planning.grid import baseline_cells, runs, store_bytes_lower_bound, store_bytes_per_example
from hskd.planning.paths import format_lr
from hskd.planning.study import load


def test_default_config_is_valid(config):
    study = load(config)
    assert study.tasks == ["SST-2"]
    assert study.students["pruned"].layers == [2, 4, 6]
    assert study.stage1.schedule == "constant"
    assert study.results_dir == "results"


def test_a_student_set_to_null_is_not_in_the_study(config):
    config["students"]["pretrained"] = None  # an overlay's `students: {pretrained: null}`
    study = load(config)
    assert list(study.students) == ["pruned"]
    assert {run.student for run in runs(study)} == {"pruned"}
    config["students"] = {"pruned": None}
    with pytest.raises(ConfigError, match="config key 'students'"):
        load(config)


def test_results_dir_is_normalised(config):
    # the target a user types (results/smoke/...) must be the path a rule builds
    config["results_dir"] = "./results/smoke/"
    assert load(config).results_dir == "results/smoke"


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
    path = none_runs[0].metrics_path(study.results_dir)
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


def test_by_task_values_replace_the_study_values_for_that_task_only(config):
    config["tasks"] = ["SST-2", "CoLA"]
    config["by_task"] = {"CoLA": {"teacher": {"epochs": 7}, "data": {"max_seq_length": 32},
                                  "stage2": {"lr": 1e-4}, "baselines": {"lrs": [1e-4]}}}  # fmt: skip
    study = load(config)
    cola, sst2 = study.for_task("CoLA"), study.for_task("SST-2")
    assert (cola.teacher.epochs, cola.teacher.lr, cola.teacher.batch_size) == (7, 5e-5, 32)
    assert (sst2.teacher.epochs, sst2.data.max_seq_length, sst2.stage2.lr) == (3, 64, 5e-5)
    assert (cola.data.max_seq_length, cola.data.train_subset, cola.stage2.epochs) == (32, 6000, 2)
    assert study.teacher.epochs == 3  # the study-wide values stay
    lrs = {(run.task, run.cell in baseline_cells(study), run.lr) for run in runs(study)}
    # CoLA: baselines and compressed cells all at 1e-4; SST-2 keeps its two baseline lrs and stage2.lr
    assert lrs == {("CoLA", True, 1e-4), ("CoLA", False, 1e-4),
                   ("SST-2", True, 2e-5), ("SST-2", True, 5e-5), ("SST-2", False, 5e-5)}  # fmt: skip


@pytest.mark.parametrize(
    ("by_task", "message"),
    [({"CoLA": {"teacher": {"lr": -1.0}}}, "config key 'by_task.CoLA.teacher.lr'"),
     ({"CoLA": {"teacher": {"model": "bert-base-uncased"}}}, "by_task.CoLA.teacher.model: the teacher's model"),
     ({"CoLA": {"baselines": {"select_on": "dev"}}}, "config key 'by_task.CoLA.baselines': 'select_on'"),
     ({"CoLA": {"grid": {"none": False}}}, "config key 'by_task.CoLA': .*'grid' was unexpected"),
     ({"SST-3": {"teacher": {"epochs": 1}}}, "by_task.SST-3: unknown task 'SST-3'"),
     ({"CoLA": {"data": {"max_seq_length": 8}}}, r"grid \(CoLA, student pretrained\): .*max_seq_length is 8")],
    ids=["bad-value", "teacher-model", "select-on", "section", "task", "cross-check"],
)  # fmt: skip
def test_bad_by_task_values_name_their_key(config, by_task, message):
    config["tasks"] = ["SST-2", "CoLA"]
    config["grid"]["length"]["keep"] = [1, 16]
    config["by_task"] = by_task
    with pytest.raises(ConfigError, match=message) as err:
        load(config)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------------- one config model


def _schema_keys(section: dict) -> list[str]:
    return sorted(section["properties"])


def _fields(cls, *dropped: str) -> list[str]:
    return sorted(item.name for item in dataclasses.fields(cls) if item.name not in dropped)


def test_each_config_dataclass_has_the_keys_of_its_schema_section():
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    top, definitions = schema["properties"], schema["definitions"]
    grid = top["grid"]["properties"]
    student = top["students"]["additionalProperties"]
    pairs = [
        # the study: protocol_choices and by_task are folded into `protocol` and `for_task`
        (sorted(set(_schema_keys(schema)) - {"protocol_choices", "by_task"}), _fields(StudyConfig, "task_studies")),
        (_schema_keys(top["data"]), _fields(DataConfig)),
        (_schema_keys(top["teacher"]), _fields(TeacherConfig)),
        (_schema_keys(student), _fields(StudentConfig, "name")),  # the name is the key of the students map
        (_schema_keys(definitions["stage"]), _fields(StageConfig)),
        (_schema_keys(definitions["shape"]), _fields(Shape)),
        (_schema_keys(top["grid"]), _fields(GridConfig)),
        (_schema_keys(grid["depth"]), _fields(DepthSweep)),
        (_schema_keys(grid["length"]), _fields(LengthSweep)),
        (_schema_keys(grid["width"]), _fields(WidthSweep)),
        (_schema_keys(grid["joint"]), _fields(JointConfig)),
        (_schema_keys(top["baselines"]), _fields(BaselinesConfig)),
        (_schema_keys(top["report"]), _fields(ReportConfig)),
        (_schema_keys(top["resources"]), _fields(ResourcesConfig)),
        (_schema_keys(definitions["rule_resources"]), _fields(RuleResources)),
        (_schema_keys(top["hub"]), _fields(HubConfig)),
    ]
    for schema_keys, field_names in pairs:
        assert schema_keys == field_names


def test_typed_builds_nested_sections_and_names_a_bad_key():
    shape = {"layers": 2, "hidden": 8, "heads": 2, "ffn": 16}
    teacher = typed(TeacherConfig, {"model": "m", "random_init": shape, "epochs": 1, "lr": 1e-4, "batch_size": 8,
                                    "warmup_ratio": 0.0, "weight_decay": 0.0, "seed": 3, "hidden_size": None,
                                    "num_layers": None})  # fmt: skip
    assert teacher.random_init == Shape(layers=2, hidden=8, heads=2, ffn=16)
    assert dataclasses.asdict(typed(TeacherConfig, dataclasses.asdict(teacher))) == dataclasses.asdict(teacher)

def test_the_study_has_typed_sections(config):
    study = load(config)
    assert study.grid.depth == DepthSweep(maps=["top6"], keep=[1, 2])
    assert study.grid.joint == JointConfig(configs=["1l_4t_0.1h"], depth="top6", length="attention_nosep",
                                           width="magnitude")  # fmt: skip
    with pytest.raises(TypeError, match="StageConfig: unknown key 'learning_rate'"):
        typed(StageConfig, {"learning_rate": 1e-3})
