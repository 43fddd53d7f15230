"""Bad input, table-driven: each case gets one line naming the key, file or CLI option, before any job runs."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT

from hskd.cli import main
from hskd.planning.config import ConfigError
from hskd.planning.study import load

DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())


def _set(config: dict, dotted: str, value) -> dict:
    *parents, last = dotted.split(".")
    node = config
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return config


# (config key to change, value, what the one-line error must contain)
CONFIG_CASES = [
    ("tasks", ["SST2"], "tasks"),
    ("tasks", [], "tasks"),
    ("threads", 0, "threads"),
    ("seeds", [], "seeds"),
    ("seeds", [1, 1], "seeds"),
    ("kd_mode", "always", "kd_mode"),
    ("cache_budget_gb", -1, "cache_budget_gb"),
    ("precision", "fp16", "precision"),
    ("checkpoint_minutes", -1, "checkpoint_minutes"),
    ("width_loss", "l1", "width_loss"),
    ("protocol", "tinybert", "protocol"),
    ("protocol_choices.hsk_padding", "some", "protocol_choices.hsk_padding"),
    ("protocol_choices.padding", "masked", "protocol_choices"),
    ("data.max_seq_length", 0, "data.max_seq_length"),
    ("data.heldout_size", 0, "data.heldout_size"),
    ("data.train_subset", -5, "data.train_subset"),
    ("teacher.model", "/no/such/model", "teacher.model"),
    ("teacher.lr", -1e-5, "teacher.lr"),
    ("teacher.learning_rate", 1e-5, "teacher"),
    ("students.pruned.layers", [2, 2, 6], "students.pruned.layers"),
    ("students.pruned.layers", [2, 4, 9], "students.pruned.layers"),
    ("students.pruned.heads", 24, "students.pruned.heads"),
    ("students.pruned.family", "distilled", "students.pruned.family"),
    ("students.pretrained.model", "/no/such/student", "students.pretrained.model"),
    ("students.pretrained.layers", 9, "students.pretrained.layers"),
    ("stage1.lr", 0, "stage1.lr"),
    ("stage1.schedule", "cosine", "stage1.schedule"),
    ("stage2.batch_size", 0, "stage2.batch_size"),
    ("stage2.temperature", 0, "stage2.temperature"),
    ("grid.full_map", "top0", "grid"),
    ("grid.full_map", "top99", "grid"),
    ("grid.sweep_seeds", 9, "grid.sweep_seeds"),
    ("grid.depth.keep", [0], "grid.depth.keep"),
    ("grid.depth.keep", [9], "grid"),
    ("grid.length.schemes", ["right"], "grid.length.schemes"),
    ("grid.length.keep", [999], "grid"),
    ("grid.width.schemes", ["topk"], "grid.width.schemes"),
    ("grid.width.fractions", [1.5], "grid.width.fractions"),
    ("grid.joint.configs", ["1l_4t_0h"], "grid.joint"),
    ("grid.joint.configs", ["0l_4t_0.1h"], "grid.joint"),
    ("grid.joint.configs", ["1l_4t"], "grid.joint.configs"),
    ("grid.joint.length", "cls", "grid.joint"),
    ("baselines.lrs", [], "baselines.lrs"),
    ("baselines.select_on", "test", "baselines.select_on"),
    ("report.margin", 0, "report.margin"),
    ("report.fraction", "both", "report.fraction"),
    ("glue_dir", "/no/such/glue", "glue_dir"),
    ("results_dir", "", "results_dir"),
    ("results_dir", "results/{task}", "results_dir"),
]


@pytest.mark.parametrize(("key", "value", "named"), CONFIG_CASES, ids=[f"{k}={v}" for k, v, _ in CONFIG_CASES])
def test_a_bad_config_value_gets_one_line_naming_its_key(key, value, named):
    config = _set(copy.deepcopy(DEFAULT), key, value)
    with pytest.raises(ConfigError) as err:
        load(config)
    message = str(err.value)
    assert named in message and "\n" not in message, message


def _settings(**changes) -> str:
    stage = {"epochs": 1, "lr": 1e-3, "batch_size": 16, "warmup_ratio": 0.0,
             "weight_decay": 0.0, "temperature": 1.0, "eval_every": 100, "schedule": "constant"}  # fmt: skip
    settings = {"task": "SST-2", "student": "s", "cell": "depth=all-top2/length=all/width=all", "lr": 1e-3,
                "seed": 0, "stage1": stage, "stage2": stage, "width_loss": "paper", "freeze_word_embeddings": True,
                "group_by_length": True, "threads": 1, "kd_mode": "cached"}  # fmt: skip
    return json.dumps({**settings, **changes})


DISTILL = ["distill", "--student-dir", "{tmp}", "--teacher-dir", "{tmp}", "--train", "{tmp}/t", "--heldout",
           "{tmp}/h", "--dev", "{tmp}/d", "--logits", "{tmp}/l", "--out", "{tmp}/m.json"]  # fmt: skip
EXTRACT = ["extract", "--teacher-dir", "{tmp}", "--train", "{tmp}/t", "--logits", "{tmp}/l", "--manifest",
           "{tmp}/m.json"]  # fmt: skip

# (argv, what the one-line error must contain)
CLI_CASES = [
    ([*DISTILL, "--settings", "notjson"], "--settings"),
    ([*DISTILL, "--settings", "{}"], "--settings"),
    ([*DISTILL, "--settings", _settings(cell="depth=top2")], "--settings"),
    ([*DISTILL, "--settings", _settings()], "--store"),  # cached mode without a store
    ([*DISTILL, "--settings", _settings(kd_mode="none")], "kd_mode"),
    ([*EXTRACT, "--stores", "notjson"], "--stores"),
    ([*EXTRACT, "--stores", "[{}]"], "--stores"),
    ([*EXTRACT, "--stores", "[]", "--protocol", "notjson"], "--protocol"),
    ([*EXTRACT, "--stores", "[]", "--protocol", "{}"], "--protocol"),
    (["prepare-data", "--task", "SST-2", "--tokenizer", "minilm-l6", "--max-seq-length", "0", "--out-dir", "{tmp}"],
     "--max-seq-length"),
    (["finetune-teacher", "--task", "SST-2", "--settings", "notjson", "--data-dir", "{tmp}", "--out-dir", "{tmp}"],
     "--settings"),
    (["init-student", "--task", "SST-2", "--settings", "{}", "--teacher-dir", "{tmp}", "--train", "{tmp}/t",
      "--out-dir", "{tmp}/s"], "--settings"),
    (["aggregate", "--results", "{tmp}/nosuch", "--out", "{tmp}/tables"], "nosuch"),
    (["plot", "--summary", "{tmp}/nosuch.csv", "--out", "{tmp}/figures"], "nosuch.csv"),
]


@pytest.mark.parametrize(("argv", "named"), CLI_CASES, ids=[" ".join(a[:1] + a[-2:])[:60] for a, _ in CLI_CASES])
def test_a_bad_cli_call_gets_one_line_naming_its_option(tmp_path, capsys, argv, named):
    argv = [part.replace("{tmp}", str(tmp_path)) for part in argv]
    with pytest.raises(SystemExit) as err:
        main(argv)
    # hskd's own checks exit with the message; argparse's print it (last line of stderr) and exit 2
    message = err.value.code if isinstance(err.value.code, str) else capsys.readouterr().err.strip().splitlines()[-1]
    assert named in message and "\n" not in message, message


def test_a_home_relative_model_folder_is_the_same_folder_for_the_check_and_the_loader(tmp_path, monkeypatch):
    from hskd.common.model_names import resolve_model_name
    from hskd.models.hub import load_tokenizer

    monkeypatch.setenv("HOME", str(tmp_path))
    load_tokenizer("minilm-l6").save_pretrained(tmp_path / "minilm")
    assert resolve_model_name("~/minilm") == str(tmp_path / "minilm")
    assert load_tokenizer("~/minilm").vocab_size == load_tokenizer("minilm-l6").vocab_size
    config = _set(copy.deepcopy(DEFAULT), "teacher.model", "~/minilm")
    with pytest.raises(ConfigError, match="teacher.model: folder '~/minilm' has no config.json"):
        load(config)  # found (expanded), but a tokenizer folder is not a model
    with pytest.raises(ConfigError, match="students.pretrained.model: folder '~/nosuch' does not exist"):
        load(_set(copy.deepcopy(DEFAULT), "students.pretrained.model", "~/nosuch"))


GOOD_ROWS = "sentence\tlabel\na fine film\t1\na dull film\t0\n"
# (which file, its content, what the one-line error must contain besides the file's path)
TSV_CASES = [
    ("train.tsv", "sentence\tlabel\n", "no examples"),
    ("dev.tsv", "sentence\tlabel\n", "no examples"),
    ("train.tsv", "", "header lacks"),
    ("train.tsv", b"\xff\xfe\x00 not text\n", "can't decode"),
    ("dev.tsv", "sentence\nonly text\n", "header lacks column(s) 'label'"),
    ("train.tsv", "sentence\tlabel\na film\tmaybe\n", "unknown label 'maybe'"),
]


@pytest.mark.parametrize(("name", "content", "named"), TSV_CASES, ids=[f"{n}:{m}" for n, _, m in TSV_CASES])
def test_a_bad_tsv_gets_one_line_naming_the_file(tmp_path, name, content, named):
    (tmp_path / "SST-2").mkdir()
    for file in ("train.tsv", "dev.tsv"):
        (tmp_path / "SST-2" / file).write_text(GOOD_ROWS)
    path = tmp_path / "SST-2" / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ConfigError) as err:
        load(_set(copy.deepcopy(DEFAULT), "glue_dir", str(tmp_path)))
    message = str(err.value)
    assert message.startswith(f"glue_dir: {path}") and named in message and "\n" not in message, message


def test_with_a_log_only_the_one_line_error_reaches_the_terminal(tmp_path):
    # the job's whole output goes to its log; the terminal (Snakemake's) gets the error's one line, once
    argv = [part.replace("{tmp}", str(tmp_path)) for part in [*EXTRACT, "--stores", "notjson"]]
    log = tmp_path / "logs" / "extract.log"  # its folder is made
    done = subprocess.run([sys.executable, "-m", "hskd.cli", *argv, "--log", str(log)], capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("hskd extract: error: --stores")
    logged = log.read_text().splitlines()
    assert logged[0].startswith("hskd extract --teacher-dir") and logged[-1] == line


def test_a_bug_names_its_exception_and_the_log_holding_its_traceback(tmp_path):
    log = tmp_path / "plot.log"
    code = ("import sys; from hskd import cli\n"
            "def broken(args): raise RuntimeError('boom\\nsecond line')\n"
            "cli.cmd_plot = broken\n"
            "cli.main(sys.argv[1:])")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, "plot", "--summary", "s.csv", "--out", "f", "--log", str(log)],
                          capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"hskd plot: RuntimeError: boom (traceback in {log})"]
    assert "Traceback" in log.read_text() and "second line" in log.read_text()


def test_arguments_come_from_an_args_file_one_per_line(tmp_path, capsys):
    # what the workflow passes as @file: the same error as the same arguments inline
    argv = [part.replace("{tmp}", str(tmp_path)) for part in [*EXTRACT, "--stores", '[{"student": "s"}]']]
    (tmp_path / "job.args").write_text("".join(f"{part}\n" for part in argv[1:]))
    with pytest.raises(SystemExit) as err:
        main(["extract", f"@{tmp_path / 'job.args'}"])
    assert str(err.value.code).startswith("hskd extract: error: --stores: KeyError")
