"""Offline compute nodes (`hub` section): what a study fetches from the hub, the environment of its jobs, the
download with the hub calls replaced (this machine cannot reach the hub), and the DAG with `hub.offline`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, SMOKE_RESULTS, copy_workflow
from snakemake.utils import update_config
from test_planning import planned_jobs

from hskd.cli import main
from hskd.common.glue import HUB_DATASET
from hskd.common.model_names import resolve_model_name
from hskd.common.synthetic import write_synthetic_tsv
from hskd.planning import paths
from hskd.planning.config import HubConfig
from hskd.planning.download import MODEL_FILES, DownloadError, download, hub_downloads, hub_environment, merge_manifests
from hskd.planning.study import load

PAPER_MODELS = ["bert-base-uncased", "huawei-noah/TinyBERT_General_4L_312D"]
PAPER_TASKS = ["CoLA", "SST-2", "QNLI", "MNLI"]
HUB_VARIABLES = ("HF_HOME", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


@pytest.fixture(autouse=True)
def no_glue_dir_env(monkeypatch):
    monkeypatch.delenv("GLUE_DIR", raising=False)  # it would stand in for a null glue_dir


def merged(*files: str, overlay: dict | None = None) -> dict:
    config: dict = {}
    for path in files:
        update_config(config, yaml.safe_load((ROOT / path).read_text()))
    update_config(config, overlay or {})
    return config


def test_the_paper_study_fetches_its_two_hub_models_and_every_task():
    study = load(merged("config.yaml", "workflow/configs/paper.yaml"))
    assert hub_downloads(study) == (PAPER_MODELS, PAPER_TASKS)


def test_the_default_study_fetches_no_model_and_glue_only_without_glue_dir(tmp_path, monkeypatch):
    # minilm-l6 is an offline short name (a folder inside a PyPI package); glue_dir null = GLUE from the hub
    assert hub_downloads(load(merged("config.yaml"))) == ([], ["SST-2"])
    write_synthetic_tsv(tmp_path / "glue", n_train=32, n_dev=8)
    assert hub_downloads(load(merged("config.yaml", overlay={"glue_dir": str(tmp_path / "glue")}))) == ([], [])
    monkeypatch.setenv("GLUE_DIR", str(tmp_path / "glue"))  # env GLUE_DIR is a glue_dir too
    assert hub_downloads(load(merged("config.yaml"))) == ([], [])


def test_the_smoke_study_fetches_nothing():
    # random-weight teacher and student, tokenizer from the offline minilm-l6, generated data
    assert hub_downloads(load(merged("config.yaml", "workflow/configs/smoke.yaml"))) == ([], [])


def test_local_folders_and_random_students_are_not_fetched_a_random_teachers_tokenizer_is():
    local = resolve_model_name("minilm-l6")  # a real HF model folder, as an absolute path
    students = {
        "local": {"family": "pretrained", "model": local, "layers": 2},
        "random": {"family": "pretrained", "model": "org/random-student", "layers": 2,
                   "random_init": {"layers": 2, "hidden": 16, "heads": 2, "ffn": 32}},
        "hub": {"family": "pretrained", "model": "org/hub-student", "layers": 2},
        "same": {"family": "pretrained", "model": "org/hub-student", "layers": 2},
        "pruned": {"family": "pruned", "layers": [1, 2], "heads": 1, "ffn": 32},
    }  # fmt: skip
    smoke = ("config.yaml", "workflow/configs/smoke.yaml")
    overlay = {"students": students, "glue_dir": None, "synthetic_data": False}
    study = load(merged(*smoke, overlay={**overlay, "teacher": {"model": "org/tokenizer"}}))
    # the random_init teacher still loads its tokenizer from teacher.model; one id is fetched once
    assert hub_downloads(study) == (["org/tokenizer", "org/hub-student"], ["SST-2"])
    study = load(merged(*smoke, overlay={**overlay, "teacher": {"model": local}}))
    assert hub_downloads(study) == (["org/hub-student"], ["SST-2"])


def test_hub_environment():
    assert hub_environment(HubConfig(cache_dir=None, offline=False)) == {}
    assert hub_environment(HubConfig(cache_dir="/shared/hf", offline=False)) == {"HF_HOME": "/shared/hf"}
    assert hub_environment(HubConfig(cache_dir=None, offline=True)) == {"HF_HUB_OFFLINE": "1",
                                                                       "HF_DATASETS_OFFLINE": "1"}  # fmt: skip
    assert hub_environment(HubConfig(cache_dir="~/hf", offline=True)) == {
        "HF_HOME": str(Path.home() / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}  # fmt: skip


@pytest.fixture
def hub_calls(monkeypatch, tmp_path):
    """huggingface_hub.snapshot_download and datasets.load_dataset replaced: each call is recorded with the
    offline switches it saw (environment and the libraries' flags), in a study's offline environment."""
    import datasets
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    calls: list[dict] = []
    failing: set[str] = set()

    def switches() -> dict:
        return {"env": [os.environ.get(name) for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")],
                "flags": [huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE]}  # fmt: skip

    def snapshot_download(repo_id, **kwargs):
        calls.append({"call": "snapshot_download", "args": [repo_id], "kwargs": kwargs, **switches()})
        if repo_id in failing:
            raise OSError("[Errno -2] Name or service not known")
        return str(tmp_path / "snapshots" / repo_id.replace("/", "--"))

    def load_dataset(*args, **kwargs):
        calls.append({"call": "load_dataset", "args": list(args), "kwargs": kwargs, **switches()})
        if args[1] in failing:
            raise ConnectionError(f"Couldn't reach '{args[0]}' on the Hub")
        return {"train": [], "validation": []}

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls, failing


def test_download_fetches_every_model_and_task_with_the_hub_online_and_writes_a_manifest(hub_calls, tmp_path):
    import huggingface_hub

    calls, _ = hub_calls
    out = tmp_path / "hub" / "download.json"
    manifest = download(PAPER_MODELS, ["SST-2", "MNLI"], out)
    assert [(call["call"], call["args"], call["kwargs"]) for call in calls] == [
        ("snapshot_download", [PAPER_MODELS[0]], {"allow_patterns": MODEL_FILES}),
        ("snapshot_download", [PAPER_MODELS[1]], {"allow_patterns": MODEL_FILES}),
        ("load_dataset", [HUB_DATASET, "sst2"], {}),  # no split: every split of the task
        ("load_dataset", [HUB_DATASET, "mnli"], {}),
    ]
    assert {"*.json", "*.txt", "*.safetensors", "*.bin"} <= set(MODEL_FILES)  # config, tokenizer, weights
    for call in calls:  # the study's HF_HUB_OFFLINE=1 is overridden for the download only
        assert call["env"] == ["0", "0"] and call["flags"] == [False, False], call
    assert json.loads(out.read_text()) == manifest
    assert manifest["models"] == {model: str(tmp_path / "snapshots" / model.replace("/", "--"))
                                  for model in PAPER_MODELS}  # fmt: skip
    assert manifest["glue_tasks"] == {"SST-2": {"dataset": HUB_DATASET, "config": "sst2"},
                                      "MNLI": {"dataset": HUB_DATASET, "config": "mnli"}}  # fmt: skip
    assert manifest["hf_home"] == huggingface_hub.constants.HF_HOME and manifest["seconds"] >= 0
    # and put back afterwards: the rest of the process is as offline as before
    assert os.environ["HF_HUB_OFFLINE"] == "1" and huggingface_hub.constants.HF_HUB_OFFLINE is True


def test_a_failed_download_names_the_model_or_task_and_writes_no_manifest(hub_calls, tmp_path, capsys):
    calls, failing = hub_calls
    out = tmp_path / "download.json"
    failing.add("org/missing")
    with pytest.raises(DownloadError, match=r"cannot download model 'org/missing' .*Name or service not known"
                       r".*on a machine with internet"):  # fmt: skip
        download(["bert-base-uncased", "org/missing"], ["SST-2"], out)
    assert not out.exists() and [call["args"][0] for call in calls] == ["bert-base-uncased", "org/missing"]
    failing.add("cola")
    with pytest.raises(SystemExit) as info:
        main(["download", "--glue-tasks", "SST-2", "CoLA", "--out", str(out)])
    message = str(info.value)
    assert message.startswith("hskd download: error: cannot download GLUE task CoLA (nyu-mll/glue/cola)")
    assert "on a machine with internet" in message and "\n" not in message and not out.exists()
    with pytest.raises(SystemExit, match="unknown task 'NOPE'"):
        main(["download", "--glue-tasks", "NOPE", "--out", str(out)])
    assert len(calls) == 4  # the unknown task stopped it before any download


def test_merge_manifests():
    one = {"models": {"a": "/hf/a"}, "glue_tasks": {}, "hf_home": "/hf", "seconds": 1.25}
    two = {"models": {}, "glue_tasks": {"RTE": {"dataset": HUB_DATASET, "config": "rte"}}, "hf_home": "/hf",
           "seconds": 2.5}  # fmt: skip
    assert merge_manifests([one, two]) == {"models": {"a": "/hf/a"}, "glue_tasks": two["glue_tasks"],
                                           "hf_home": ["/hf"], "seconds": 3.75}  # fmt: skip
    assert merge_manifests([]) == {"models": {}, "glue_tasks": {}, "hf_home": [], "seconds": 0}


SMOKE = ("--configfile", "workflow/configs/smoke.yaml")
TOKENIZER, HUB_STUDENT = "org/tokenizer", "org/hub-student"
MODEL_ITEM = {model: paths.HUB_MODEL.format(results=SMOKE_RESULTS, model=model) for model in (TOKENIZER, HUB_STUDENT)}
GLUE_ITEM = paths.HUB_GLUE.format(results=SMOKE_RESULTS, task="SST-2")


def write_yaml(path: Path, values: dict) -> str:
    path.write_text(yaml.safe_dump(values))
    return path.name


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    work = copy_workflow(tmp_path_factory.mktemp("download"))
    students = yaml.safe_load((ROOT / "workflow/configs/smoke.yaml").read_text())["students"]
    # the smoke study reading from the hub: the tokenizer of its random teacher, a pretrained student, GLUE
    write_yaml(work / "hub.yaml", {
        "teacher": {"model": TOKENIZER}, "glue_dir": None, "synthetic_data": False,
        "students": {**students, "hub": {"family": "pretrained", "model": HUB_STUDENT, "layers": 2}},
    })  # fmt: skip
    write_yaml(work / "offline.yaml", {"hub": {"offline": True, "cache_dir": "/shared/hf cache"}})
    return work


def dry_run(workdir: Path, *args: str) -> list[dict]:
    result = subprocess.run(["snakemake", "-n", "-p", *args], cwd=workdir, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return planned_jobs(result.stdout)


def hub_inputs(jobs: list[dict]) -> list[tuple[str, list[str]]]:
    """(rule, hub manifests among its inputs) of each job that has any, sorted."""
    items = sorted((job["rule"], sorted(path for path in job["input"] if f"{SMOKE_RESULTS}/hub/" in path))
                   for job in jobs)  # fmt: skip
    return [item for item in items if item[1]]


def test_offline_jobs_wait_for_the_downloads_of_what_they_read(workdir):
    offline = dry_run(workdir, "all", *SMOKE, "hub.yaml", "offline.yaml")
    downloads = sorted((job["rule"], job["output"], job["shell"].split(" --log ")[0]) for job in offline
                       if job["rule"].startswith("download"))  # fmt: skip
    fetch = {model: f"hskd download --models {model} --out {item}" for model, item in MODEL_ITEM.items()}
    assert downloads == [
        ("download_glue", [GLUE_ITEM], f"hskd download --glue-tasks SST-2 --out {GLUE_ITEM}"),
        ("download_model", [MODEL_ITEM[HUB_STUDENT]], fetch[HUB_STUDENT]),
        ("download_model", [MODEL_ITEM[TOKENIZER]], fetch[TOKENIZER]),
    ]
    for job in offline:
        if job["rule"].startswith("download"):
            assert len(job["log"]) == 1 and job["log"][0].startswith(f"{SMOKE_RESULTS}/logs/download/"), job
    # the data job: the tokenizer and GLUE; the teacher: its model (tokenizer); the hub student's init: its model
    # (the random-weight and the pruned students' inits: nothing)
    assert hub_inputs(offline) == [
        ("finetune_teacher", [MODEL_ITEM[TOKENIZER]]),
        ("init_student", [MODEL_ITEM[HUB_STUDENT]]),
        ("prepare_data", [GLUE_ITEM, MODEL_ITEM[TOKENIZER]]),
    ]
    online = dry_run(workdir, "all", *SMOKE, "hub.yaml")
    assert hub_inputs(online) == [] and not [job for job in online if job["rule"].startswith("download")]
    assert sorted(job["rule"] for job in online) == sorted(
        job["rule"] for job in offline if not job["rule"].startswith("download"))


def test_an_offline_study_with_nothing_to_fetch_plans_as_online(workdir):
    # the smoke study: random weights, the offline minilm-l6 tokenizer, generated data
    offline = dry_run(workdir, "all", *SMOKE, "offline.yaml")
    # the same jobs (Snakemake may list jobs it can run in either order in any order)
    assert sorted(map(json.dumps, offline)) == sorted(map(json.dumps, dry_run(workdir, "all", *SMOKE)))


def test_the_download_target_fetches_every_model_and_task_with_or_without_offline(workdir):
    for overlays in (["hub.yaml"], ["hub.yaml", "offline.yaml"]):
        jobs = dry_run(workdir, "download", *SMOKE, *overlays)
        assert sorted(job["rule"] for job in jobs) == ["download", "download_glue", "download_model", "download_model"]
        [download_job] = [job for job in jobs if job["rule"] == "download"]
        assert download_job["output"] == [paths.HUB_DOWNLOAD.format(results=SMOKE_RESULTS)]
        assert sorted(download_job["input"]) == sorted([GLUE_ITEM, *MODEL_ITEM.values()])


FAKE_HSKD = r"""#!/usr/bin/env bash
# records each call with the hub variables it sees, and writes the outputs the rule expects
command=$1; shift
hub="HF_HOME=${HF_HOME-unset} HF_HUB_OFFLINE=${HF_HUB_OFFLINE-unset} HF_DATASETS_OFFLINE=${HF_DATASETS_OFFLINE-unset}"
echo "$command $* | $hub" >> "$HSKD_CALLS"
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift ;;
    --out-dir) out_dir=$2; shift ;;
    --models) model=$2; shift ;;
  esac
  shift
done
# a manifest differs each time, as the real ones do (their seconds): Snakemake would skip an identical one
manifest='{"models": {"%s": "snapshots/%s"}, "glue_tasks": {}, "hf_home": "%s", "seconds": 1, "fetched": "%s"}'
case $command in
  download) mkdir -p "$(dirname "$out")" && printf "$manifest" "$model" "$model" "$HF_HOME" "$(date +%s%N)" > "$out" ;;
  make-smoke-data) mkdir -p "$out_dir/SST-2" && touch "$out_dir/SST-2/train.tsv" "$out_dir/SST-2/dev.tsv" ;;
  prepare-data) mkdir -p "$out_dir" && touch "$out_dir"/{train,heldout,dev}.safetensors ;;
esac
"""


def test_jobs_run_after_the_download_with_the_hub_cache_and_offline_switches(tmp_path):
    # real Snakemake runs with `hskd` replaced by a script that records what each job sees
    (tmp_path / "work").mkdir()
    work = copy_workflow(tmp_path / "work")
    offline = write_yaml(work / "offline.yaml", {"hub": {"offline": True, "cache_dir": "/shared/hf cache"},
                                                 "teacher": {"model": TOKENIZER}})  # fmt: skip
    fake = tmp_path / "bin" / "hskd"
    fake.parent.mkdir()
    fake.write_text(FAKE_HSKD)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    calls = tmp_path / "calls.log"
    environment = {name: value for name, value in os.environ.items() if name not in HUB_VARIABLES}
    environment.update(PATH=f"{fake.parent}{os.pathsep}{os.environ['PATH']}", HSKD_CALLS=str(calls))

    def snakemake(*args: str, overlays: tuple[str, ...] = ()) -> str:
        done = subprocess.run(["snakemake", *args, *SMOKE, offline, *overlays], cwd=work, env=environment,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout

    data = paths.DATA.format(results=SMOKE_RESULTS, task="SST-2", split="train")
    snakemake("--cores", "1", data)
    lines = calls.read_text().splitlines()
    commands = [line.split()[0] for line in lines]
    assert sorted(commands) == ["download", "make-smoke-data", "prepare-data"]
    assert commands.index("download") < commands.index("prepare-data")
    assert lines[commands.index("download")].startswith(f"download --models {TOKENIZER} --out {MODEL_ITEM[TOKENIZER]}")
    for line in lines:  # every job, the download's too (`hskd download` turns the hub on for itself)
        assert line.endswith(" | HF_HOME=/shared/hf cache HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1"), line
    # fetching again (say into a moved cache) reruns no job that waited for it: the manifests are `ancient` inputs
    snakemake("--cores", "1", "download", "--forcerun", "download_model")
    assert [line.split()[0] for line in calls.read_text().splitlines()[len(lines):]] == ["download"]
    assert json.loads((work / paths.HUB_DOWNLOAD.format(results=SMOKE_RESULTS)).read_text()) == {
        "models": {TOKENIZER: f"snapshots/{TOKENIZER}"}, "glue_tasks": {}, "hf_home": ["/shared/hf cache"],
        "seconds": 1}  # fmt: skip
    assert "Nothing to be done" in snakemake("-n", data)
    # a new hub model is fetched alone: the one in the cache is not fetched again
    more = write_yaml(work / "student.yaml", {"students": {"hub": {"family": "pretrained", "model": HUB_STUDENT,
                                                                    "layers": 2}}})  # fmt: skip
    jobs = planned_jobs(snakemake("-n", "-p", "download", overlays=(more,)))
    assert sorted((job["rule"], job["output"][0]) for job in jobs) == [
        ("download", paths.HUB_DOWNLOAD.format(results=SMOKE_RESULTS)), ("download_model", MODEL_ITEM[HUB_STUDENT])]
