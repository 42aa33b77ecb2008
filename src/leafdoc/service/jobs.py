"""Training jobs: their records in the catalog (the truth any API replica answers from) and the Huey
queue that carries their ids to a worker (SqliteHuey file under the data home, or Redis at scale).

The queue only says "look at job X"; everything else is in the row. A task for a job that is no
longer queued does nothing, so a job enqueued twice (after a restart, say) still runs once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select, update

from leafdoc.data.catalog import Catalog, TrainingJobRow, utcnow
from leafdoc.errors import ConfigError, NotFound
from leafdoc.settings import Settings

JOB_STATES = ("queued", "running", "succeeded", "failed")
TERMINAL = ("succeeded", "failed")
TASK_NAME = "leafdoc.train_job"
TRAINING_LEASE = "training"  # one training job at a time, across every worker


def make_huey(settings: Settings):
    from huey import RedisHuey, SqliteHuey

    url = settings.queue_url
    if not url:
        settings.home.mkdir(parents=True, exist_ok=True)
        return SqliteHuey("leafdoc", filename=str(settings.queue_path), results=False, timeout=30)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("leafdoc", url=url, results=False)
    raise ConfigError(
        f"LEAFDOC_QUEUE_URL={url!r} is not supported.",
        hint="Use redis://host:port/db, or unset it for the embedded SQLite queue.",
    )


class JobQueue:
    """The Huey instance and the one task it knows. Only a worker passes `runner`."""

    def __init__(self, settings: Settings, runner: Callable[[str], None] | None = None):
        self.settings = settings
        self.huey = make_huey(settings)
        self._runner = runner
        self.task = self.huey.task(name=TASK_NAME)(self._run)

    def _run(self, job_id: str) -> None:
        if self._runner is None:
            raise RuntimeError("this process does not run training jobs")
        self._runner(job_id)

    def enqueue(self, job_id: str) -> None:
        self.task(job_id)

    def schedule(self, job_id: str, delay: float) -> None:
        self.task.schedule((job_id,), delay=delay)

    def waiting_job_ids(self) -> set[str]:
        """Ids carried by tasks in the queue or its schedule."""
        ids = set()
        for task in list(self.huey.pending()) + list(self.huey.scheduled()):
            if task.args:
                ids.add(str(task.args[0]))
        return ids

    def length(self) -> int:
        return int(self.huey.pending_count())


# ---- records ---------------------------------------------------------------------------------------


def job_dict(row: TrainingJobRow) -> dict:
    return {
        "id": row.id,
        "state": row.state,
        "dataset": row.dataset,
        "dataset_version": row.dataset_version,
        "options": row.options,
        "warm_start": row.warm_start,
        "parent_version": row.parent_version,
        "upload_id": row.upload_id,
        "created": row.created.isoformat() if row.created else None,
        "started": row.started.isoformat() if row.started else None,
        "finished": row.finished.isoformat() if row.finished else None,
        "epoch": row.epoch,
        "epochs": row.epochs,
        "progress": row.progress,
        "metrics": row.metrics,
        "error": row.error,
        "candidate_version": row.candidate_version,
        "promotion": row.promotion,
    }


def create_job(
    catalog: Catalog,
    *,
    dataset: str,
    dataset_version: int | None,
    options: dict,
    warm_start: bool,
    parent_version: int | None,
    epochs: int,
    upload_id: str | None = None,
) -> TrainingJobRow:
    row = TrainingJobRow(
        id=uuid.uuid4().hex,
        state="queued",
        dataset=dataset,
        dataset_version=dataset_version,
        options=options,
        warm_start=warm_start,
        parent_version=parent_version,
        upload_id=upload_id,
        epoch=0,
        epochs=epochs,
        created=utcnow(),
    )
    with catalog.Session.begin() as s:
        s.add(row)
    return row


def get_job(catalog: Catalog, job_id: str) -> TrainingJobRow:
    with catalog.Session() as s:
        row = s.get(TrainingJobRow, job_id)
    if row is None:
        raise NotFound(f"training job {job_id!r} does not exist.", hint="GET /v1/training-jobs lists them.")
    return row


def list_jobs(catalog: Catalog, state: str | None = None, limit: int = 100) -> list[TrainingJobRow]:
    q = select(TrainingJobRow).order_by(TrainingJobRow.created.desc()).limit(limit)
    if state:
        q = q.where(TrainingJobRow.state == state)
    with catalog.Session() as s:
        return list(s.scalars(q))


def counts_by_state(catalog: Catalog) -> dict[str, int]:
    with catalog.Session() as s:
        rows = s.execute(select(TrainingJobRow.state, func.count()).group_by(TrainingJobRow.state)).all()
    out = {st: 0 for st in JOB_STATES}
    out.update({st: int(n) for st, n in rows})
    return out


def update_job(catalog: Catalog, job_id: str, **values) -> None:
    with catalog.Session.begin() as s:
        s.execute(update(TrainingJobRow).where(TrainingJobRow.id == job_id).values(**values))


def claim(catalog: Catalog, job_id: str, worker: str) -> bool:
    """queued -> running, atomically: only one worker ever runs a job."""
    now = utcnow()
    with catalog.Session.begin() as s:
        res = s.execute(
            update(TrainingJobRow)
            .where(TrainingJobRow.id == job_id, TrainingJobRow.state == "queued")
            .values(state="running", started=now, heartbeat=now, worker=worker, error=None)
        )
        return res.rowcount == 1


def fail(catalog: Catalog, job_id: str, error: str) -> bool:
    """Mark a job failed unless it already finished. True if this call marked it."""
    with catalog.Session.begin() as s:
        res = s.execute(
            update(TrainingJobRow)
            .where(TrainingJobRow.id == job_id, TrainingJobRow.state.not_in(TERMINAL))
            .values(state="failed", error=error[:4000], finished=utcnow())
        )
        return res.rowcount == 1


def stale_running(catalog: Catalog, lease_seconds: float) -> list[TrainingJobRow]:
    cutoff = utcnow() - timedelta(seconds=lease_seconds)
    with catalog.Session() as s:
        return list(
            s.scalars(
                select(TrainingJobRow).where(TrainingJobRow.state == "running", TrainingJobRow.heartbeat < cutoff)
            )
        )


def running_jobs(catalog: Catalog) -> list[TrainingJobRow]:
    with catalog.Session() as s:
        return list(s.scalars(select(TrainingJobRow).where(TrainingJobRow.state == "running")))


def queued_jobs(catalog: Catalog) -> list[TrainingJobRow]:
    with catalog.Session() as s:
        return list(
            s.scalars(select(TrainingJobRow).where(TrainingJobRow.state == "queued").order_by(TrainingJobRow.created))
        )
