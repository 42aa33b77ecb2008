"""Training jobs: their records in the catalog (the truth any API replica answers from) and the Huey
queue that carries their ids to a worker (SqliteHuey file under the data home, or Redis at scale).

The queue only says "look at job X"; everything else is in the row. A task for a job that is no
longer queued does nothing, so a job enqueued twice (after a restart, say) still runs once, and a job
cancelled while queued never runs.

Cancelling a running job only sets `cancel_requested`: its worker sees it within a second, stops the
training process and ends the job `cancelled`. Every way a job ends is one conditional UPDATE on its
state, so a job cancelled as it finishes ends in exactly one terminal state, and a candidate is
registered only if the job is still running with no cancel requested (checked in the transaction that
registers it).

A job whose worker is lost (killed, evicted, restarted, or silent for longer than the lease) is queued
again, up to LEAFDOC_JOB_MAX_ATTEMPTS attempts (`attempts` counts the claims), and its next attempt
continues from the checkpoint saved after its last finished epoch. A job its own training failed is
not retried, nor a cancelled one. Every write of an attempt's worker or training process names the
attempt, so one that lost its job (and later wakes up) cannot change or end the next attempt.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import and_, case, func, select, true, update

from leafdoc.core.errors import ConfigError, Conflict, NotFound, ServerFault
from leafdoc.core.settings import Settings, without_password
from leafdoc.data.catalog import Catalog, TrainingJobRow, utcnow

JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = ("succeeded", "failed", "cancelled")
TASK_NAME = "leafdoc.train_job"
TRAINING_LEASE = "training"  # one training job at a time, across every worker
CANCELLED_QUEUED = "cancelled by an admin before it started."
CANCELLED_RUNNING = "cancelled by an admin while it ran: its training process was stopped and nothing was registered."


def make_huey(settings: Settings):
    from huey import RedisHuey, SqliteHuey

    url = settings.queue_url
    if not url:
        settings.home.mkdir(parents=True, exist_ok=True)
        return SqliteHuey("leafdoc", filename=str(settings.queue_path), results=False, timeout=30)
    if settings.redis_url:
        # A Redis that accepts and never answers holds each call (a /readyz probe, a /metrics scrape, a job's
        # submission) this long, then it counts as unreachable; redis-py 8 has the same defaults, 5.x had none
        # (forever). Options in the URL (?socket_timeout=...) win. A worker's wait for a task is 1 s, under it.
        from redis import ConnectionPool

        pool = ConnectionPool.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        return RedisHuey("leafdoc", connection_pool=pool, results=False)
    raise ConfigError(
        f"LEAFDOC_QUEUE_URL={url!r} is not supported.",
        hint="Use redis://host:port/db, or unset it for the embedded SQLite queue.",
    )


try:  # the errors of a Redis queue that cannot be reached (redis is installed with leafdoc[serve])
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    QUEUE_DOWN: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)
except ImportError:  # pragma: no cover - no Redis client, so no Redis queue
    QUEUE_DOWN = ()


def queue_unreachable(settings: Settings, exc: Exception) -> ServerFault:
    return ServerFault(
        f"the job queue at {without_password(settings.queue_url or str(settings.queue_path))} cannot be reached "
        f"({exc}).",
        hint="Check LEAFDOC_QUEUE_URL (host, port, database number, password) and that Redis runs and is reachable "
        "from here.",
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


class QueueCheck:
    """Whether the job queue answers, for /readyz: asked by one thread at a time (callers meanwhile share its answer),
    and a caller waits at most `wait` seconds for it. A Redis that accepts connections and never answers holds a
    call 5 s (make_huey), as long as a readiness probe's whole timeout: unbounded, the probe failed for that alone; and
    /readyz is public, so each caller would have held a thread 5 s. Now a slow queue counts as unreachable after `wait`,
    while the one call in flight finishes in the background."""

    def __init__(self, length: Callable[[], object], wait: float = 1.0):
        self.length, self.wait = length, wait
        self._lock = threading.Lock()
        self._asking: threading.Event | None = None  # set when the call in flight ends
        self._error: Exception | None = None

    def __call__(self) -> Exception | None:
        """None if the queue answered, else why not (its error, or TimeoutError)."""
        with self._lock:
            asking = self._asking
            if asking is None:
                asking = self._asking = threading.Event()
                threading.Thread(target=self._ask, args=(asking,), name="leafdoc-queue-check", daemon=True).start()
        if not asking.wait(self.wait):
            return TimeoutError(f"the job queue did not answer within {self.wait:g} s")
        return self._error

    def _ask(self, done: threading.Event) -> None:
        try:
            self.length()
            error = None
        except Exception as exc:
            error = exc
        with self._lock:
            self._error, self._asking = error, None
        done.set()


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
        "cancel_requested": row.cancel_requested.isoformat() if row.cancel_requested else None,
        "epoch": row.epoch,
        "epochs": row.epochs,
        "attempts": row.attempts or 0,
        "resumed_epoch": row.resumed_epoch,
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


def _no_job(job_id: str) -> NotFound:
    return NotFound(f"training job {job_id!r} does not exist.", hint="GET /v1/training-jobs lists them.")


def get_job(catalog: Catalog, job_id: str) -> TrainingJobRow:
    return catalog.row(TrainingJobRow, job_id, _no_job(job_id))


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


def _attempt_is(attempt: int | None):
    """The condition that the job is still running this attempt (None: any state, any attempt). A job put
    back in the queue, or running a later attempt, is out of reach of the attempt it left."""
    if attempt is None:
        return true()
    return and_(TrainingJobRow.attempts == attempt, TrainingJobRow.state == "running")


def update_job(catalog: Catalog, job_id: str, attempt: int | None = None, **values) -> bool:
    """Set columns; with `attempt`, only while the job runs that attempt. True if the row changed."""
    cond = _attempt_is(attempt)
    with catalog.Session.begin() as s:
        res = s.execute(update(TrainingJobRow).where(TrainingJobRow.id == job_id, cond).values(**values))
        return res.rowcount == 1


def holds(catalog: Catalog, job_id: str, attempt: int) -> bool:
    """Whether the job is still running this attempt (not ended, not queued again, not taken over)."""
    with catalog.Session() as s:
        row = s.execute(
            select(TrainingJobRow.state, TrainingJobRow.attempts).where(TrainingJobRow.id == job_id)
        ).first()
    return row is not None and row.state == "running" and row.attempts == attempt


def claim(catalog: Catalog, job_id: str, worker: str) -> int:
    """queued -> running, atomically: only one worker ever runs a job. Returns the attempt it starts
    (1 for the first), or 0 if the job was not queued."""
    now = utcnow()
    job = TrainingJobRow
    with catalog.Session.begin() as s:
        claimed = _from_queued(
            s,
            job_id,
            state="running",
            started=func.coalesce(job.started, now),
            heartbeat=now,
            worker=worker,
            error=None,
            attempts=job.attempts + 1,
            resumed_epoch=None,
        )
        if not claimed:
            return 0
        return int(s.scalar(select(job.attempts).where(job.id == job_id)))


def _from_queued(session, job_id: str, **values) -> bool:
    """Set `values` on the job only if it is still queued: one UPDATE, so the state is checked again under the
    row's write lock and a job leaves `queued` once (claimed by one worker, or cancelled). True if this call
    moved it."""
    job = TrainingJobRow
    res = session.execute(update(job).where(job.id == job_id, job.state == "queued").values(**values))
    return res.rowcount == 1


def fail(catalog: Catalog, job_id: str, error: str, attempt: int | None = None) -> bool:
    """Mark a job failed unless it already finished; `cancelled` instead if an admin asked to cancel it
    (however its process then ended). One statement, so a cancel request arriving meanwhile is not
    lost. With `attempt`, only if the job is still running that attempt. True if this call ended the job."""
    cancelling = TrainingJobRow.cancel_requested.is_not(None)
    with catalog.Session.begin() as s:
        res = s.execute(
            update(TrainingJobRow)
            .where(TrainingJobRow.id == job_id, TrainingJobRow.state.not_in(TERMINAL), _attempt_is(attempt))
            .values(
                state=case((cancelling, "cancelled"), else_="failed"),
                error=case((cancelling, CANCELLED_RUNNING), else_=error[:4000]),
                finished=utcnow(),
            )
        )
        return res.rowcount == 1


def retry_or_fail(catalog: Catalog, job: TrainingJobRow, max_attempts: int, why: str) -> str | None:
    """The worker of `job` (a row read while it ran) was lost, `why` says how. Queued again for its next
    attempt if attempts are left and no cancel was requested; else failed (or cancelled). Nothing happens
    if the job has meanwhile ended or moved on to another attempt. Returns the state it was put in, or None.
    The caller enqueues a job put back in `queued` (if that fails, a starting worker re-queues it)."""
    row = TrainingJobRow
    attempt = max(job.attempts or 0, 1)  # a row from before migration 0004 was in its first attempt
    if attempt < max_attempts:
        with catalog.Session.begin() as s:
            res = s.execute(
                update(row)
                .where(
                    row.id == job.id,
                    row.state == "running",
                    row.attempts == job.attempts,
                    row.cancel_requested.is_(None),
                )
                .values(
                    state="queued",
                    worker=None,
                    pid=None,
                    resumed_epoch=None,
                    progress={
                        "phase": f"queued again after attempt {attempt} of {max_attempts}, to continue from its "
                        f"last checkpoint: {why}"
                    },
                )
            )
            if res.rowcount == 1:
                return "queued"
        error = why  # a cancel was requested (fail() then ends it cancelled), or it moved on (then nothing)
    else:
        error = (
            f"gave up after attempt {attempt} of {max_attempts} (LEAFDOC_JOB_MAX_ATTEMPTS): each one lost "
            f"its worker. The last: {why}"
        )
    if fail(catalog, job.id, error, attempt=job.attempts):
        return get_job(catalog, job.id).state
    return None


class JobCancelled(Conflict):
    """The job was cancelled, or ended by a worker that lost it, before it could succeed."""


def cancel(catalog: Catalog, job_id: str) -> TrainingJobRow:
    """An admin's cancel: a queued job is cancelled at once; a running one gets `cancel_requested` and its
    worker ends it. Asking again while it runs changes nothing. Conflict if it already finished."""
    now = utcnow()
    job = TrainingJobRow
    with catalog.Session.begin() as s:
        # Each UPDATE re-checks the state under the row's write lock: a worker claiming the job or the
        # job finishing at the same moment makes the first one match nothing, never both.
        done = _from_queued(s, job_id, state="cancelled", cancel_requested=now, finished=now, error=CANCELLED_QUEUED)
        if not done:
            s.execute(
                update(job)
                .where(job.id == job_id, job.state == "running", job.cancel_requested.is_(None))
                .values(cancel_requested=now)
            )
        row = s.get(job, job_id, populate_existing=True)
        if row is None:
            raise _no_job(job_id)
        if row.state in TERMINAL and not done:
            raise Conflict(
                f"training job {job_id} has already {'been ' if row.state == 'cancelled' else ''}{row.state}; "
                "only a queued or running job can be cancelled.",
                hint="Start a new job to train again.",
            )
        return row


def cancel_requested(catalog: Catalog, job_id: str) -> bool:
    with catalog.Session() as s:
        return s.scalar(select(TrainingJobRow.cancel_requested).where(TrainingJobRow.id == job_id)) is not None


def succeed(session, job_id: str, attempt: int | None = None, **values) -> None:
    """Inside the transaction that registers the job's candidate: running -> succeeded, or JobCancelled
    (which rolls the registration back) if the job was cancelled, already ended or (with `attempt`) is no
    longer in that attempt."""
    res = session.execute(
        update(TrainingJobRow)
        .where(
            TrainingJobRow.id == job_id,
            TrainingJobRow.state == "running",
            TrainingJobRow.cancel_requested.is_(None),
            _attempt_is(attempt),
        )
        .values(state="succeeded", finished=utcnow(), **values)
    )
    if res.rowcount != 1:
        raise JobCancelled(
            f"training job {job_id} was cancelled (or ended by its worker, or taken over by another attempt) before "
            "its candidate was registered; "
            "nothing was registered."
        )


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
