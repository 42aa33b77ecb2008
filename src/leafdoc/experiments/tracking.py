"""MLflow tracking of experiment runs: a SQLite store under the experiment's data home by default
(MLflow 3 refuses new file stores unless MLFLOW_ALLOW_FILE_STORE is set; a `file:` URI sets it).

An explicit `MlflowClient` rather than mlflow's process-wide active run: the runner decides when a
run starts and ends, and nothing leaks into a caller that also uses mlflow.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

# Keys of the per-epoch record (trainer's on_event) that become MLflow metrics, with their names there.
EPOCH_METRICS = {
    "loss": "loss",
    "accuracy": "accuracy",
    "val_loss": "val_loss",
    "val_accuracy": "val_accuracy",
    "seconds": "epoch_seconds",
}


def default_tracking_uri(home: Path) -> str:
    return f"sqlite:///{(Path(home) / 'mlruns' / 'mlflow.db').resolve()}"


def _param(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


class Tracker:
    def __init__(self, uri: str, experiment: str, artifact_root: Path):
        if uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        if uri.startswith("sqlite:"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        from mlflow.tracking import MlflowClient

        # After the import: mlflow sets its loggers up when imported. Schema migrations log at INFO.
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)

        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            self.experiment_id = found.experiment_id
        else:
            # Without an explicit location, a SQLite store puts artifacts in ./mlruns of whatever the
            # current folder is; keep them beside the database.
            Path(artifact_root).mkdir(parents=True, exist_ok=True)
            self.experiment_id = self.client.create_experiment(
                experiment, artifact_location=Path(artifact_root).resolve().as_uri()
            )

    def start(self, name: str, params: dict, tags: dict[str, str], parent: str | None = None) -> str:
        from mlflow.entities import Param

        if parent:
            tags = {**tags, "mlflow.parentRunId": parent}
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        items = [Param(k, _param(v)) for k, v in sorted(params.items())]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(run.info.run_id, params=items[i : i + 100])
        return run.info.run_id

    def epoch(self, run_id: str, record: dict) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        step = int(record["epoch"])
        metrics = [Metric(name, float(record[key]), now, step) for key, name in EPOCH_METRICS.items() if key in record]
        if metrics:
            self.client.log_batch(run_id, metrics=metrics)

    def finish(
        self,
        run_id: str,
        metrics: dict[str, float],
        tags: dict[str, str] | None = None,
        artifacts: list[Path] = (),
        status: str = "FINISHED",
    ) -> None:
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
        )
        for path in artifacts:
            if Path(path).is_file():
                self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, status)

    def fail(self, run_id: str, reason: str) -> None:
        try:
            self.client.set_tag(run_id, "leafdoc.error", reason[:5000])
            self.client.set_terminated(run_id, "FAILED")
        except Exception:  # never hide the real error behind a tracking error
            pass
