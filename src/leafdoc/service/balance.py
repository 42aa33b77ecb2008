"""Hand new connections to `leafdoc serve`'s worker processes in turn, not to whichever wakes first.

uvicorn's workers share one listening socket, and each worker's event loop waits for it with epoll: a new
connection wakes them all and the first to run takes it, and every connection already waiting with it. Kept-alive
connections then stay where they landed, so 8 clients over 4 workers were split 4/2/1/1 as often as 2/2/2/2
(`loadtest`: at 8 users the server used 1.66 of its 2 cores in some runs and 1.88 in others).

Here each worker accepts in a thread of its own with a blocking `accept()`. Linux wakes one blocked acceptor per
connection, the one that has waited longest, so connections go round the workers in turn, as they do for
pre-forked servers. The thread hands the connection to the worker's event loop, where uvicorn serves it as if its
own server had accepted it. Clients that open their connections all at once (a load test starting its users) find
no acceptor waiting after the first few: the connections queue, and whichever acceptor comes back to `accept()`
first takes them. So after each connection an acceptor waits a little for every connection its worker already
holds (ACCEPT_PAUSE_SECONDS each, at most ACCEPT_PAUSE_MAX_SECONDS) before accepting again, and the least loaded
worker comes back first (nginx's `accept_mutex` and `ngx_accept_disabled` do the like). Without it, 8 connections
opened at once were held 6/2 or 7/1 by 2 workers, leaving a core idle in some load-test runs.

uvicorn's supervisor (replacing a dead worker, SIGHUP, SIGTERM) is unchanged but for two things. First, its health
check. Every half second it pings each worker in turn and waits for the answer up to the health check's timeout (a
minute here, see run.py). The supervisor holds its own copy of the pipe's other end, so a worker killed before it
answered never closes the pipe: the wait ran the whole minute, and no worker was replaced meanwhile (CI: no new
worker 60 s after one was killed under load; a worker slow to answer held it the same way). TurnProcess waits at
most PING_SECONDS for an answer, goes on to the next worker, and calls a worker hung once it has not answered for
the whole timeout: a dead worker is replaced within a second or two.

Second, a worker that dies before it ever served (its start failed: the catalog unreachable, a PostgreSQL
restarting) is not started again at once: uvicorn did, twice a second, each attempt importing leafdoc again and
printing its traceback (a crash loop that took half a core from the worker still serving and ~5 kB of log a try).
The next one starts after 1 s, then 2, 4, ... up to RETRY_MAX_SECONDS, while the others serve; once a worker serves,
at once again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import socket
import threading
import time
from contextlib import suppress

import uvicorn
from uvicorn.supervisors import multiprocess

from leafdoc.runtime.parentwatch import on_parent_exit
from leafdoc.service.prometheus import multiprocess_dir

logger = logging.getLogger("uvicorn.error")
ACCEPT_PAUSE_SECONDS = 0.003  # per connection the worker holds, after each accept (see the module's docstring)
ACCEPT_PAUSE_MAX_SECONDS = 0.02
PING_SECONDS = 0.5  # how long the supervisor waits for one worker's answer before it looks at the next one
SLOW_SECONDS = 5  # a worker unanswered this long is logged
RETRY_MAX_SECONDS = 30  # the longest wait before another start, after starts that failed in a row


def retry_delay(failed: int) -> float:
    """Seconds to wait before starting a worker after `failed` workers in a row died before serving."""
    return 0.0 if failed <= 0 else float(min(2 ** (failed - 1), RETRY_MAX_SECONDS))


class TurnServer(uvicorn.Server):
    """A uvicorn server whose connections come from an accepting thread (see the module's docstring)."""

    accepted = 0  # by the accepting thread; `adopted` by the event loop: the difference is on its way to the loop
    adopted = 0
    supervisor_pid: int | None = None  # set by TurnProcess, which knows it before the worker starts

    def held(self) -> int:
        """The connections this worker serves or is about to."""
        return len(self.server_state.connections) + self.accepted - self.adopted

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the app's startup and uvicorn's state, listening on nothing
        if self.should_exit or not self.started:
            return
        # uvicorn's supervisor stops its workers, unless it is killed outright: then each shuts down by itself. Its pid
        # comes from before this worker started: one killed while the worker was still loading is noticed too.
        on_parent_exit(lambda: setattr(self, "should_exit", True), self.supervisor_pid)
        loop = asyncio.get_running_loop()
        config = self.config

        def protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # as uvicorn's own server makes it
                config=config, server_state=self.server_state, app_state=self.lifespan.state, _loop=loop
            )

        for sock in sockets or []:
            sock.listen(config.backlog)
            sock.setblocking(True)  # the socket is every worker's: all of them wait in accept()
            threading.Thread(
                target=self._accept_forever, args=(sock, loop, protocol), name="leafdoc-accept", daemon=True
            ).start()

    def _accept_forever(self, sock: socket.socket, loop: asyncio.AbstractEventLoop, protocol) -> None:
        while not self.should_exit:
            try:
                conn, _ = sock.accept()
            except OSError as exc:
                if sock.fileno() == -1:  # closed at shutdown
                    return
                logger.warning("accepting a connection failed: %s", exc)  # EMFILE and the like: try again
                threading.Event().wait(0.1)
                continue
            conn.setblocking(False)
            with suppress(OSError):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.accepted += 1
            try:
                loop.call_soon_threadsafe(self._adopt, loop, conn, protocol)
            except RuntimeError:  # the loop has closed: this worker is gone
                conn.close()
                return
            time.sleep(min(ACCEPT_PAUSE_SECONDS * self.held(), ACCEPT_PAUSE_MAX_SECONDS))

    def _adopt(self, loop: asyncio.AbstractEventLoop, conn: socket.socket, protocol) -> None:
        task = loop.create_task(loop.connect_accepted_socket(protocol, sock=conn))
        self.server_state.tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self.adopted += 1  # now in server_state.connections (or closed)
            self.server_state.tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                logger.warning("serving an accepted connection failed: %s", t.exception())
                conn.close()

        task.add_done_callback(done)


class TurnProcess(multiprocess.Process):
    """uvicorn's worker process, running a TurnServer."""

    failed_starts = 0  # in the supervisor: workers that died before they served, since one last served

    def __init__(self, *args, **kwargs):
        self.supervisor_pid = os.getpid()  # made in the supervisor, then sent to the new process with the rest
        self.unanswered_since: float | None = None  # kept by the supervisor: see is_alive
        self.said_slow = False
        self.served = False  # it has said its server started (kept by the supervisor)
        self.start_at: float | None = None  # a start put off (see start)
        super().__init__(*args, **kwargs)

    def start(self) -> None:
        """Start the process, or, after workers that died before serving, put the start off (see the module's
        docstring): is_alive starts it when the time comes."""
        delay = retry_delay(TurnProcess.failed_starts)
        if not delay:
            super().start()
            return
        self.start_at = time.monotonic() + delay
        failed = TurnProcess.failed_starts
        logger.warning("the next API worker starts in %.0f s (%d failed to start in a row)", delay, failed)

    def _died(self) -> None:
        if self.served:
            return
        TurnProcess.failed_starts += 1
        code = self.exitcode or 0
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}; its error is above"
        logger.error("worker [%s] stopped before it served (%s)", self.pid, how)

    def is_alive(self, timeout: float = 5) -> bool:
        """Whether the worker runs and has answered a ping within the last `timeout` seconds (the supervisor asks
        every half second). Each look waits at most PING_SECONDS, so the supervisor soon gets to the other workers; an
        answer that comes later is read by the next look. A start put off counts as alive until it is made."""
        if self.start_at is not None:
            if time.monotonic() >= self.start_at:
                self.start_at = None
                super().start()
            return True
        if not self.process.is_alive():
            self._died()
            return False
        answer = self._newest_answer(min(PING_SECONDS, timeout))
        if answer and not self.served:  # it has started serving: the next start is made at once again
            self.served, TurnProcess.failed_starts = True, 0
        if answer is not None:
            if self.said_slow:  # set only while unanswered_since is
                took = time.monotonic() - self.unanswered_since
                logger.info("worker [%s] answers again after %.0f s", self.pid, took)
            self.unanswered_since, self.said_slow = None, False
            return True
        now = time.monotonic()
        self.unanswered_since = self.unanswered_since or now
        if now - self.unanswered_since >= SLOW_SECONDS and not self.said_slow:
            self.said_slow = True
            logger.warning(
                "worker [%s] has not answered the supervisor for %.0f s: it is replaced if it does not within %.0f s",
                *(self.pid, now - self.unanswered_since, timeout),
            )
        return now - self.unanswered_since < timeout

    def _newest_answer(self, timeout: float) -> bool | None:
        """Ping the worker and wait up to `timeout` for an answer: None if none came, else whether its server has
        started, as of its newest answer. Answers to earlier pings that came after their look are read too (uvicorn
        reads one answer a ping: pings a worker could not answer while loading stay queued, and every look after read
        an answer that many looks old, saying "not started" seconds after it had)."""
        try:
            self.parent_conn.send(b"ping")
            if not self.parent_conn.poll(timeout):
                return None
            answer = self.parent_conn.recv()
            while self.parent_conn.poll(0):
                answer = self.parent_conn.recv()
            return bool(answer)
        except (OSError, EOFError, pickle.UnpicklingError):
            return None

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = TurnServer(config=self.config)
            self._server.supervisor_pid = self.supervisor_pid
        return self._server

    def terminate(self) -> None:
        self.start_at = None  # a start put off is not made
        if self.process.pid is not None:
            super().terminate()

    def kill(self) -> None:
        self.start_at = None
        if self.process.pid is not None:
            super().kill()

    def join(self) -> None:
        """The supervisor waits here for every worker that ends (stopped, replaced, or dead and replaced): its
        gauges that count only live workers (the event loop's lag) are dropped with it, not kept at their last
        value."""
        if self.process.pid is None:  # never started (a start put off, then the server stopped)
            return
        super().join()
        if self.pid is not None and multiprocess_dir():
            from prometheus_client import multiprocess as prometheus_multiprocess

            prometheus_multiprocess.mark_process_dead(self.pid)


def run_workers(config: uvicorn.Config) -> None:
    """What `uvicorn.run` does for `workers > 1`, with each worker a TurnProcess, until SIGTERM or SIGINT."""
    sock = config.bind_socket()
    made = multiprocess.Process
    multiprocess.Process = TurnProcess  # what the supervisor starts, replaces and adds
    try:
        multiprocess.Multiprocess(config, sockets=[sock]).run()
    finally:
        multiprocess.Process = made
        sock.close()
