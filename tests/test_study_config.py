"""A study config means what it says: layers merge as Snakemake merges them, a standalone file drops what came
before it, every value names its origin, and the paper study's effective config is the paper's recipe."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hskd.planning.layers import (
    RUN_ENVIRONMENT_KEYS,
    Layer,
    active_layers,
    effective_rows,
    format_rows,
    merge,
    read_layers,
)
from hskd.planning.protocol import PAPER_RECIPE, config_value, recipe_rows
from hskd.planning.study import load

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "workflow/configs/paper.yaml"


def test_layers_merge_key_by_key_and_remember_who_set_each_value():
    layers = [Layer("base.yaml", {"seeds": [0, 1], "stage2": {"lr": 1e-4, "epochs": 2}, "by_task": {"CoLA": {}}}),
              Layer("study.yaml", {"stage2": {"lr": 2e-5}, "seeds": [7]}),
              Layer("--config", {"threads": 3})]  # fmt: skip
    config, origins = merge(layers)
    assert config == {"seeds": [7], "stage2": {"lr": 2e-5, "epochs": 2}, "by_task": {"CoLA": {}}, "threads": 3}
    assert origins == {"seeds": "study.yaml", "stage2.lr": "study.yaml", "stage2.epochs": "base.yaml",
                       "by_task.CoLA": "base.yaml", "threads": "--config"}  # fmt: skip


def test_a_standalone_file_drops_the_layers_before_it():
    layers = [Layer("config.yaml", {"by_task": {"CoLA": {"stage2": {"lr": 2e-4}}}, "threads": 1}),
              Layer("paper.yaml", {"standalone": True, "tasks": ["CoLA"]}),
              Layer("overlay.yaml", {"threads": 2})]  # fmt: skip
    assert active_layers(layers) == layers[1:]
    config, origins = merge(layers)
    assert config == {"standalone": True, "tasks": ["CoLA"], "threads": 2}
    assert "by_task.CoLA.stage2.lr" not in origins
    assert "# not merged (a later file is standalone): config.yaml" in format_rows([], layers)


def test_a_replaced_section_forgets_the_origins_of_its_old_keys():
    _, origins = merge([Layer("a", {"hub": {"cache_dir": "x", "offline": True}}), Layer("b", {"hub": None})])
    assert origins == {"hub": "b"}


def test_effective_rows_name_schema_defaults_and_by_task_overlays():
    overlay = {"tasks": ["SST-2", "CoLA"], "by_task": {"CoLA": {"stage2": {"lr": 2e-4}}}}
    config, origins = merge([Layer("s.yaml", overlay), Layer("--config", {"threads": 2})])
    load(config)  # fills the schema's defaults in place
    rows = {(scope, key): (value, origin) for scope, key, value, origin in effective_rows(config, origins)}
    assert rows[("study", "threads")] == (2, "--config")
    assert rows[("study", "tasks")] == (["SST-2", "CoLA"], "s.yaml")
    assert rows[("study", "stage2.lr")] == (5e-5, "schema default")
    assert rows[("CoLA", "stage2.lr")] == (2e-4, "s.yaml")


def test_read_layers_puts_config_yaml_first_and_the_command_line_last(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("threads: 1\n")
    (tmp_path / "study.yaml").write_text("threads: 2\n")
    layers = read_layers([tmp_path / "study.yaml"], {"threads": 3})
    assert [(layer.name, layer.values) for layer in layers] == [
        ("config.yaml", {"threads": 1}), ("study.yaml", {"threads": 2}), ("--config", {"threads": 3})]


@pytest.fixture(scope="module")
def paper_study():
    config, _ = merge(read_layers([PAPER], default=str(ROOT / "config.yaml")))
    return load(config)


@pytest.mark.parametrize("task", yaml.safe_load(PAPER.read_text())["tasks"])
def test_the_paper_study_runs_the_papers_recipe_for_every_task(paper_study, task):
    departures = [(key, value, paper) for key, value, paper, _ in recipe_rows(paper_study, task) if value != paper]
    assert departures == []


def test_the_recipe_check_sees_the_cpu_studys_values(default_config):
    # config.yaml is the CPU study: under the paper's recipe check its CoLA learning rate departs
    study = load(default_config)
    departures = {key for key, value, paper, _ in recipe_rows(study, "SST-2") if value != paper}
    assert {"stage2.eval_every", "report.value", "freeze_word_embeddings", "protocol.hsk_padding"} <= departures
    cola = {key: value for key, value, _, _ in recipe_rows(study.__class__(**{**study.__dict__, "tasks": ["CoLA"]}),
                                                              "CoLA")}  # fmt: skip
    assert cola["stage2.lr"] == 2e-4 == config_value(study.for_task("CoLA"), "stage2.lr")
    assert {entry.key for entry in PAPER_RECIPE} >= {"baselines.lrs", "data.group_by_length", "precision"}


def test_the_prediction_only_stage_is_stage_2_with_its_own_epochs_batch_and_warmup(config):
    config.update(stage1={"epochs": 3}, stage2={"epochs": 2, "batch_size": 16, "warmup_ratio": 0.0, "lr": 1e-4})
    both = load(copy.deepcopy(config)).prediction_only_stage()
    assert (both.epochs, both.batch_size, both.warmup_ratio, both.lr) == (5, 16, 0.0, 1e-4)
    config["baselines"] = {"prediction_only": {"epochs": "stage1", "batch_size": 64, "warmup_ratio": 0.1}}
    paper = load(config).prediction_only_stage()
    assert (paper.epochs, paper.batch_size, paper.warmup_ratio, paper.lr) == (3, 64, 0.1, 1e-4)


def test_the_paper_study_gives_cola_and_sst2_64_tokens_and_the_rest_128(paper_study):
    lengths = {task: paper_study.for_task(task).data.max_seq_length for task in paper_study.tasks}
    assert lengths == {"CoLA": 64, "SST-2": 64, "QNLI": 128, "MNLI": 128}


def run_hskd(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hskd.cli", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_hskd_config_prints_each_value_with_its_origin():
    done = run_hskd("config", "--configfile", "workflow/configs/smoke.yaml", "--config", "threads=2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("# layers, each over the one before: config.yaml < workflow/configs/smoke.yaml < "
                               "--config")  # fmt: skip
    by_key = {line.split(" = ")[0]: line for line in lines if " = " in line}
    assert by_key["threads"].endswith("# --config") and " = 2 " in by_key["threads"]
    assert by_key["results_dir"].endswith("# workflow/configs/smoke.yaml")
    assert by_key["kd_mode"].endswith("# config.yaml")
    assert by_key["hub.offline"].endswith("# schema default")


def test_hskd_protocol_marks_departures_per_task():
    paper = run_hskd("protocol", "--configfile", "workflow/configs/paper.yaml")
    assert paper.returncode == 0, paper.stderr
    assert "[CoLA] 0 of" in paper.stdout and " != paper " not in paper.stdout
    assert "protocol.optimizer = 'bertadam' == paper 'bertadam'" in paper.stdout
    assert "\nTinyBERT projection weights: " in paper.stdout.split("# not reproduced")[1]
    default = run_hskd("protocol")
    assert "stage2.eval_every = 100 != paper 50" in default.stdout


def test_the_paper_dry_run_plans_the_papers_learning_rate_for_cola(tmp_path):
    from conftest import copy_workflow

    copy_workflow(tmp_path)
    done = subprocess.run(["snakemake", "-n", "--configfile", "workflow/configs/paper.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    cola_runs = [line for line in done.stdout.splitlines() if "output: results/paper/CoLA/runs/" in line]
    assert cola_runs and all("/lr=2e-05/" in line for line in cola_runs)


def test_the_recorded_config_ignores_values_that_rerun_no_job():
    base = [Layer("config.yaml", {"threads": 1, "seeds": [0]})]
    with_threads = [*base, Layer("--config", {"threads": 4, "checkpoint_minutes": 3})]
    texts = []
    for layers in (base, with_threads):
        config, origins = merge(layers)
        load(config)
        texts.append(format_rows(effective_rows(config, origins, RUN_ENVIRONMENT_KEYS), layers))
    assert texts[0] == texts[1] and "threads" not in texts[0] and "seeds = [0]" in texts[0]
    config, origins = merge(with_threads)
    load(config)
    assert "< --config" in format_rows(effective_rows(config, origins), with_threads)
