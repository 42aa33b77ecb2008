"""The job consumer (`leafdoc worker`, or the one `leafdoc serve` starts beside the API).

One loop, one job at a time: take a task from the Huey queue, take the cluster-wide training lease,
claim the job, and run it in a child process (`python -m leafdoc.service.training JOB ATTEMPT`). The
child can crash, run out of memory or be killed without harming the worker or the API. While the child
runs, the worker renews the lease and the job's heartbeat; it also looks every second for an admin's
cancel request: then it stops the child and the job ends `cancelled` (the child registers a candidate
only if no cancel was requested).

A lost worker costs the job an attempt, not its progress: a job whose child was killed by a signal, or
whose worker was stopped (SIGTERM: a pod evicted), is queued again at once; one whose worker died
(SIGKILL, a lost machine) is queued again by any worker once its heartbeat is older than the lease (or
at once by a worker starting on the same host). The next attempt continues from the checkpoint in the
store; after LEAFDOC_JOB_MAX_ATTEMPTS the job fails. A child that failed by itself (an exception in
training, bad data) fails the job for good. A worker that finds its job taken from it (queued again
while it could not reach the catalog) stops its child and leaves the job alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from leafdoc.core.errors import NotFound
from leafdoc.core.settings import Settings
from leafdoc.data import leases
from leafdoc.data.catalog import TrainingJobRow, utcnow
from leafdoc.lifecycle.workspace import Workspace
from leafdoc.runtime.parentwatch import on_parent_exit
from leafdoc.service import checkpoints
from leafdoc.service.jobs import (
    CANCELLED_RUNNING,
    QUEUE_DOWN,
    TERMINAL,
    TRAINING_LEASE,
    JobQueue,
    cancel_requested,
    claim,
    fail,
    get_job,
    queue_unreachable,
    queued_jobs,
    retry_or_fail,
    running_jobs,
    stale_running,
    update_job,
)
from leafdoc.service.training import job_of, jobs_root, remove_job_files

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 10.0
CANCEL_CHECK_SECONDS = 1.0
LOG_TAIL_LINES = 8


def _describe_exit(rc: int) -> str:
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        if -rc == signal.SIGKILL:  # not one of leafdoc's own stops (those are described by their cause)
            name += (
                ": often the kernel's out-of-memory killer, see `dmesg`;"
                " a smaller batch_size or image_size needs less memory"
            )
        return f"the training process was killed ({name})"
    return f"the training process exited with code {rc}"


def _tail(path: Path, n: int = LOG_TAIL_LINES) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return "\n".join(lines[-n:])


class Worker:
    def __init__(self, settings: Settings, *, parent_pid: int | None = None):
        settings.ensure_home()
        self.settings = settings
        self.workspace = Workspace.open(settings)  # the catalog of jobs, the store of their checkpoints
        self.catalog = self.workspace.catalog
        self.queue = JobQueue(settings, runner=self.run_job)
        self.stop_event = threading.Event()
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.parent_pid = parent_pid
        if parent_pid is not None:  # `leafdoc serve` started it: stop with it (a running job's process too)
            on_parent_exit(self._parent_gone, parent_pid, every=0.5)
        self.child: subprocess.Popen | None = None
        self.logs_dir = settings.home / "jobs"

    # ---- housekeeping --------------------------------------------------------------------------

    def recover(self) -> None:
        """Retry (or fail) jobs whose worker is gone; put queued jobs the queue lost back into it."""
        for job in running_jobs(self.catalog):
            if leases.gone_here(job.worker):
                self.worker_lost(job, f"interrupted: its worker ({job.worker}) stopped before it finished.")
        self.retry_stale()
        self.requeue_lost()
        try:
            self.remove_leftovers()
        except Exception:  # a leftover costs only space; never fail a worker over it
            log.exception("could not remove what ended jobs left in %s", jobs_root(self.settings))

    def requeue_lost(self) -> None:
        """Queued jobs the queue does not hold go back into it: Redis lost them (restarted without its data), or the
        API that took them could not reach it (their progress says so). Also run every half lease, not only after
        this worker saw the queue down: an API replica cut off from Redis while the worker was not, or an outage
        shorter than a poll, left such a job queued until a worker restarted. A job queued twice still runs once."""
        waiting = self.queue.waiting_job_ids()
        for job in queued_jobs(self.catalog):
            if job.id not in waiting:
                log.info("re-queueing job %s, which the queue did not hold", job.id)
                self.queue.enqueue(job.id)

    def remove_leftovers(self) -> None:
        """Folders on this machine of jobs that have ended (a worker killed mid-job cleans up nothing). Only
        ended ones: a worker beside this one, on the same models_dir, may be running or about to run the rest."""
        root = jobs_root(self.settings)
        names = [p.name for p in root.iterdir()] if root.is_dir() else []
        for job_id in sorted({job_of(name) for name in names}):
            try:
                ended = get_job(self.catalog, job_id).state in TERMINAL
            except NotFound:
                ended = True
            if ended:
                log.info("removing what job %s left in %s", job_id, root)
                remove_job_files(self.settings, job_id)

    def retry_stale(self) -> None:
        """Retry (or fail) running jobs whose heartbeat is older than the lease. Checked at start and then
        every half lease: a worker replaced at once (a restarted pod) finds its predecessor's job still fresh."""
        for job in stale_running(self.catalog, self.settings.job_lease_seconds):
            self.worker_lost(
                job,
                f"interrupted: no sign of life from its worker ({job.worker}) for over "
                f"{self.settings.job_lease_seconds:.0f} s.",
            )

    def worker_lost(self, job: TrainingJobRow, why: str) -> None:
        """The attempt `job` (a row read while it ran) lost its worker: queue it again, or end it."""
        state = retry_or_fail(self.catalog, job, self.settings.job_max_attempts, why)
        log.warning("job %s: %s -> %s", job.id, why, state or "already moved on")
        if state == "queued":
            try:
                self.queue.enqueue(job.id)
            except Exception:  # the row says queued: a starting worker puts it back in the queue
                log.exception("could not enqueue job %s again", job.id)
        elif state in TERMINAL:
            self.discard_checkpoint(job.id)

    def discard_checkpoint(self, job_id: str) -> None:
        try:
            checkpoints.discard(self.workspace.store, job_id)
        except Exception:  # a leftover costs only space; never fail a worker over it
            log.exception("could not delete the checkpoint of job %s from the store", job_id)

    # ---- the loop ------------------------------------------------------------------------------

    def run_once(self) -> bool:
        """Move due scheduled tasks to the queue, then run one task. False if there was none."""
        huey = self.queue.huey
        for task in huey.read_schedule():
            huey.enqueue(task)
        task = huey.dequeue()
        if task is None:
            return False
        try:
            huey.execute(task)
        except Exception:
            log.exception("task %s failed", task.id)
        return True

    def run(self, burst: bool = False) -> int:
        """Until stop() (or, with burst, until the queue and schedule are empty); returns how many tasks it ran.

        A queue that cannot be reached (Redis restarting, failing over, not up yet) is waited for, said once in the
        log, not a crash; once it answers, the jobs it lost meanwhile are queued again (recover). With burst it is
        a ServerFault: there is nothing to wait for."""
        checked = time.monotonic()
        ran = 0
        recovered = False
        queue_down = False
        while not self.stop_event.is_set():
            if time.monotonic() - checked >= self.settings.job_lease_seconds / 2:
                checked = time.monotonic()
                try:
                    self.retry_stale()
                    self.requeue_lost()
                except QUEUE_DOWN:  # the loop below says so (once) and waits for it
                    pass
                except Exception:  # the catalog may be briefly unreachable: look again next time
                    log.exception("could not check for jobs whose worker is gone")
            try:
                if not recovered:
                    self.recover()
                    recovered = True
                had_task = self.run_once()
                done = burst and not had_task and self.queue.huey.scheduled_count() == 0
            except QUEUE_DOWN as exc:
                if burst:
                    raise queue_unreachable(self.settings, exc) from None
                if not queue_down:
                    log.warning("%s Waiting for it.", queue_unreachable(self.settings, exc))
                queue_down, recovered = True, False
                self.stop_event.wait(self.settings.worker_poll_seconds)
                continue
            if queue_down:
                log.info("the job queue answers again")
                queue_down = False
            if had_task:
                ran += 1
                continue
            if done:
                break
            self.stop_event.wait(self.settings.worker_poll_seconds)
        return ran

    def stop(self) -> None:
        self.stop_event.set()

    def _parent_gone(self) -> None:
        log.warning("parent process %s is gone; stopping", self.parent_pid)
        self.stop()

    def close(self) -> None:
        self.workspace.close()

    # ---- one job -------------------------------------------------------------------------------

    def run_job(self, job_id: str) -> None:
        try:
            state = get_job(self.catalog, job_id).state
        except NotFound:
            state = None
        if state != "queued":  # cancelled while queued, already run, or gone: nothing to wait for
            log.info("job %s: %s, skipped", job_id, state or "not in the catalog")
            if state in TERMINAL:  # cancelled between two attempts: its checkpoint is of no more use
                self.discard_checkpoint(job_id)
                remove_job_files(self.settings, job_id)
            return
        holder = f"{self.name}:{job_id}"
        ttl = self.settings.job_lease_seconds
        if not leases.try_acquire(self.catalog, TRAINING_LEASE, holder, ttl):
            # Another worker is training: look again later, the job stays queued.
            self.queue.schedule(job_id, delay=max(1.0, self.settings.worker_poll_seconds * 5))
            return
        try:
            attempt = claim(self.catalog, job_id, self.name)
            if not attempt:
                return  # already run, failed, or taken by another worker
            self._run_child(job_id, holder, ttl, attempt)
        finally:
            leases.release(self.catalog, TRAINING_LEASE, holder)

    def _run_child(self, job_id: str, holder: str, ttl: float, attempt: int) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.logs_dir / f"{job_id}.log"
        cmd = [sys.executable, "-m", "leafdoc.service.training", job_id, str(attempt)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        of = f"attempt {attempt} of {self.settings.job_max_attempts}"
        interrupted = cancelled = taken = False
        try:
            with open(log_path, "ab") as logf:
                logf.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {of}, by worker {self.name}\n".encode())
                logf.flush()
                child = subprocess.Popen(
                    cmd, stdin=subprocess.PIPE, stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )
                self.child = child
                update_job(self.catalog, job_id, attempt=attempt, pid=child.pid)
                log.info(
                    "job %s: claimed by worker %s (%s); training in process %s (log %s)",
                    job_id,
                    self.name,
                    of,
                    child.pid,
                    log_path,
                )
                try:
                    child.stdin.write(self.settings.model_dump_json().encode())
                    child.stdin.close()
                except BrokenPipeError:
                    pass
                beat = looked = time.monotonic()
                while True:
                    try:
                        rc = child.wait(timeout=0.5)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                    if self.stop_event.is_set():
                        interrupted = True
                        rc = self._stop_child(child)
                        break
                    if time.monotonic() - looked >= CANCEL_CHECK_SECONDS:
                        looked = time.monotonic()
                        try:
                            cancelled = cancel_requested(self.catalog, job_id)
                        except Exception:  # the catalog may be briefly unreachable: look again next time
                            log.exception("could not check whether job %s was cancelled", job_id)
                        if cancelled:
                            log.info("job %s: cancelled by an admin; stopping process %s", job_id, child.pid)
                            rc = self._stop_child(child)
                            break
                    if time.monotonic() - beat >= min(10.0, ttl / 4):
                        beat = time.monotonic()
                        try:
                            leases.renew(self.catalog, TRAINING_LEASE, holder, ttl)
                            if not update_job(self.catalog, job_id, attempt=attempt, heartbeat=utcnow()):
                                # Ended (the child is finishing: let it) or no longer this attempt's (stop it).
                                taken = get_job(self.catalog, job_id).state not in TERMINAL
                        except Exception:
                            log.exception("could not renew the heartbeat of job %s", job_id)
                        if taken:  # queued again (this worker looked lost), ended, or another attempt runs it
                            log.warning(
                                "job %s: %s is no longer running here; stopping process %s", job_id, of, child.pid
                            )
                            rc = self._stop_child(child)
                            break
        except OSError as exc:
            fail(self.catalog, job_id, f"could not start the training process ({exc}).", attempt=attempt)
            return
        finally:
            self.child = None
        job = get_job(self.catalog, job_id)
        if job.state == "running" and job.attempts == attempt and not taken:
            if cancelled:
                fail(self.catalog, job_id, CANCELLED_RUNNING, attempt=attempt)  # ends `cancelled`: it was requested
            elif interrupted:
                self.worker_lost(job, "interrupted: the worker was stopped while this job ran.")
            else:
                error = _describe_exit(rc) + " before it finished."
                tail = _tail(log_path)
                if tail:
                    error += f" Last lines of its log ({log_path}):\n{tail}"
                if rc < 0:  # killed by a signal (the OOM killer, an operator): not a failure of its own
                    self.worker_lost(job, error)
                else:
                    fail(self.catalog, job_id, error, attempt=attempt)
        job = get_job(self.catalog, job_id)
        if job.state in TERMINAL:
            self.discard_checkpoint(job_id)
        log.info(
            "job %s: %s%s", job_id, job.state, f" (candidate v{job.candidate_version})" if job.candidate_version else ""
        )
        remove_job_files(self.settings, job_id)  # half-written folders too: the process may have died saving

    def _stop_child(self, child: subprocess.Popen) -> int:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        try:
            return child.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            return child.wait()


def serve_forever(settings: Settings, *, burst: bool = False, parent_pid: int | None = None) -> int:
    """`leafdoc worker`: run until SIGTERM/SIGINT (a running job's process is stopped and the job queued again), or with
    `burst` until the queue is empty; returns how many tasks it ran."""
    worker = Worker(settings, parent_pid=parent_pid)

    def on_signal(signum, frame) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return worker.run(burst=burst)
    finally:
        worker.close()
