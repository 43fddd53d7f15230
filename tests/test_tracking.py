"""`tracking: mlflow`: a run's curves and cell parameters reach a real MLflow tracking server (started on
loopback by the `mlflow_server` fixture), equal to what the TensorBoard file of the same run holds; parallel
writers lose nothing, on the server and on the default SQLite file; a rerun replaces its earlier run; the
workflow's jobs get MLflow's variables."""

from __future__ import annotations

import subprocess
import sys

import mlflow  # a test dependency (pyproject's `test` extra)
import pytest
from test_curves import scalars
from test_wiring import FULL, run, setup  # noqa: F401  (setup: the module fixture)

from hskd.planning.config import ConfigError
from hskd.planning.paths import EVENTS_DIR
from hskd.planning.study import load as load_study
from hskd.training.curves import Curves
from hskd.training.tracking import RUN_TAG, log_mlflow_run


def logged_runs(uri: str, experiment: str) -> dict[str, object]:
    """The experiment's active runs by name."""
    client = mlflow.MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id]) if found else []
    assert len({run.info.run_name for run in runs}) == len(runs), "two active runs of one name"
    return {run.info.run_name: run for run in runs}


def history(uri: str, run_id: str, tag: str) -> list[tuple[int, float]]:
    return sorted((point.step, point.value) for point in mlflow.MlflowClient(uri).get_metric_history(run_id, tag))


def test_a_run_logs_its_cell_and_the_same_curves_as_its_tensorboard_file(tiny_task, setup, mlflow_server,  # noqa: F811
                                                                         monkeypatch):  # fmt: skip
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "one-run")
    monkeypatch.chdir(setup["out"])
    for name in ("tb", "ml"):
        (setup["out"] / name).mkdir(exist_ok=True)
    metrics = run(tiny_task, setup, FULL, "tb/metrics.json", log_every=3)
    logged_metrics = run(tiny_task, setup, FULL, "ml/metrics.json", log_every=3, tracking="mlflow")
    assert logged_metrics["dev_final"] == metrics["dev_final"]  # the same run (seeded, CPU), logged elsewhere
    assert not (setup["out"] / "ml" / EVENTS_DIR).exists()  # mlflow instead of, not besides, the event file
    logged = logged_runs(mlflow_server, "one-run")["ml"]  # named by its folder
    assert logged.info.status == "FINISHED" and logged.data.tags[RUN_TAG] == "ml"
    assert {key: logged.data.params[key] for key in ("task", "cell", "lr", "seed", "depth", "protocol")} == {
        "task": "SST-2", "cell": metrics["cell"], "lr": "0.001", "seed": "1", "depth": "all-top2",
        "protocol": metrics["protocol"]}  # fmt: skip
    assert logged.data.params["protocol.soft_ce"] == str(metrics["protocol_choices"]["soft_ce"])
    events = scalars(setup["out"] / "tb" / EVENTS_DIR)
    assert sorted(logged.data.metrics) == sorted(events)
    for tag, points in events.items():
        assert history(mlflow_server, logged.info.run_id, tag) == [(step, pytest.approx(value)) for step, value in
                                                                   points], tag  # fmt: skip
    assert logged.data.metrics["final/dev_final"] == pytest.approx(metrics["dev_final"])


def test_a_rerun_replaces_its_earlier_run(mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "rerun")
    for value in (1.0, 2.0):
        curves = Curves()
        curves.add("stage2/loss", 10, value)
        log_mlflow_run(curves, "SST-2/runs/a/seed=0", {"seed": 0})
    runs = logged_runs(mlflow_server, "rerun")
    assert list(runs) == ["SST-2/runs/a/seed=0"] and runs["SST-2/runs/a/seed=0"].data.metrics["stage2/loss"] == 2.0


WRITER = """
import sys
from hskd.training.curves import Curves
from hskd.training.tracking import log_mlflow_run
index = int(sys.argv[1])
curves = Curves()
for step in range(1, 2501):  # more points than one call to the server takes
    curves.add("stage1/loss", step, index + step / 10000)
log_mlflow_run(curves, f"run-{index}", {"index": index})
"""


@pytest.mark.parametrize("store", ["server", "sqlite"])
def test_parallel_writers_lose_no_run_and_no_point(store, mlflow_server, tmp_path, monkeypatch):
    uri = mlflow_server if store == "server" else f"sqlite:///{tmp_path}/results/mlflow.db"  # the workflow's default
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", f"parallel-{store}")  # created by whichever writer comes first
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(index)], stderr=subprocess.PIPE, text=True)
               for index in range(6)]  # fmt: skip
    for writer in writers:
        assert writer.wait(timeout=300) == 0, writer.stderr.read()[-3000:]
    runs = logged_runs(uri, f"parallel-{store}")
    assert sorted(runs) == [f"run-{index}" for index in range(6)]
    for name, logged in runs.items():
        index = int(name.split("-")[1])
        assert logged.info.status == "FINISHED" and logged.data.params == {"index": str(index)}
        points = history(uri, logged.info.run_id, "stage1/loss")
        assert points == [(step, pytest.approx(index + step / 10000)) for step in range(1, 2501)]


def test_the_workflow_gives_every_job_mlflows_variables(config, tmp_path):
    config.update(results_dir=str(tmp_path / "study"), tracking="mlflow")
    assert load_study(config).tracking_environment() == {
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/study/mlflow.db", "MLFLOW_EXPERIMENT_NAME": f"{tmp_path}/study"}
    config["tracking_uri"] = "http://127.0.0.1:5000"
    assert load_study(config).tracking_environment()["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"
    config["tracking"] = "tensorboard"
    assert load_study(config).tracking_environment() == {}


def test_tracking_mlflow_without_mlflow_installed_is_a_config_error(config, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == "mlflow" else real(name))
    config["tracking"] = "mlflow"
    with pytest.raises(ConfigError, match="^tracking: mlflow needs the mlflow package"):
        load_study(config)
