"""Where a finished training job's curves go (`tracking`): a TensorBoard event file in the job's folder, one
MLflow run, or nowhere. Like the event file, the MLflow run is written once, when the job has finished, so a
killed job leaves no half-logged run marked finished, and a rerun of the job replaces its earlier run."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from hskd.planning.paths import EVENTS_DIR
from hskd.training.curves import Curves, write_events

RUN_TAG = "hskd.run"  # an MLflow run's job folder, by which a rerun finds and replaces it
DEFAULT_EXPERIMENT = "hskd"  # when MLFLOW_EXPERIMENT_NAME is unset (the workflow sets it to the results folder)


def publish(curves: Curves, folder: str | os.PathLike, tracking: str, params: dict) -> None:
    """Send a finished job's curves where `tracking` says; `params` (its task, cell, lr, seed, ...) name an
    MLflow run's parameters."""
    if tracking == "tensorboard":
        write_events(curves, Path(folder) / EVENTS_DIR)
    elif tracking == "mlflow":
        log_mlflow_run(curves, Path(os.path.relpath(folder)).as_posix(), params)


def log_mlflow_run(curves: Curves, name: str, params: dict) -> str:
    """Log one finished run named `name` (its job folder) to the tracking server MLflow's own settings name
    (MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME): every curve point as a metric at its step, `params` as
    parameters. An earlier run of the same name is deleted first. Returns the new run's id."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    uri = os.environ.get("MLFLOW_TRACKING_URI")
    with _sqlite_writer_lock(uri):
        client = MlflowClient(tracking_uri=uri)
        experiment_id = _experiment_id(client, os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT)
        for earlier in client.search_runs([experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{name}'"):
            client.delete_run(earlier.info.run_id)
        run_id = client.create_run(experiment_id, run_name=name, tags={RUN_TAG: name}).info.run_id
        now = int(time.time() * 1000)
        client.log_batch(  # MLflow splits it into calls of at most 1,000 metrics itself
            run_id, metrics=[Metric(tag, value, now, step) for tag, step, value in curves.points],
            params=[Param(key, str(value)) for key, value in params.items()],
        )  # fmt: skip
        client.set_terminated(run_id, "FINISHED")
    return run_id


def _experiment_id(client, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        from mlflow.exceptions import MlflowException

        try:
            return client.create_experiment(name)
        except MlflowException:  # another job created it in the meantime
            experiment = client.get_experiment_by_name(name)
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


@contextlib.contextmanager
def _sqlite_writer_lock(uri: str | None) -> Iterator[None]:
    """One writer at a time on a SQLite store: parallel jobs creating its tables, or writing at once, would
    otherwise fail on SQLite's database lock. A tracking server orders its writers itself."""
    if not (uri or "").startswith("sqlite:///"):
        yield
        return
    from filelock import FileLock

    database = Path(uri.removeprefix("sqlite:///"))
    database.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{database}.lock"):
        yield
