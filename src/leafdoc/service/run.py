"""The serve runtime: `leafdoc serve` and the desktop app's own server run the API through here.

uvicorn serves `create_app` (one or several worker processes); embedded, one training-job consumer
(`leafdoc worker`) runs beside it as a child process and stops with it.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from leafdoc.core.errors import ConfigError
from leafdoc.core.settings import (
    MAX_AUTO_API_WORKERS,
    TOKEN_ADVICE,
    Settings,
    placeholder_admin_token,
    weak_admin_token,
    without_password,
)
from leafdoc.runtime.parentwatch import on_parent_exit, stop_child
from leafdoc.runtime.serverlog import log_config

APP = "leafdoc.service.app:create_app"
HTTP_PROTOCOL = "leafdoc.service.protocol:ReadAheadProtocol"  # bodies read ahead: service/protocol.py
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_CPU = Path("/sys/fs/cgroup/cpu")  # cgroup v1 (hosts in hybrid mode): cpu.cfs_quota_us, cpu.cfs_period_us


def usable_cpus(cpu_max: Path = CGROUP_CPU_MAX, v1_cpu: Path = CGROUP_V1_CPU) -> int:
    """The CPUs this process may use: its affinity (taskset), capped by a cgroup CPU quota (a container's
    `--cpus`, a Kubernetes CPU limit), rounded up: cgroup v2's cpu.max, else cgroup v1's CFS quota (-1: none)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    try:
        if cpu_max.is_file():
            quota, period = cpu_max.read_text().split()[:2]
        else:
            quota = (v1_cpu / "cpu.cfs_quota_us").read_text().strip()
            period = (v1_cpu / "cpu.cfs_period_us").read_text().strip()
        if quota not in ("max", "-1"):
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return n


def choose_workers(settings: Settings, cpus: int) -> tuple[int, str]:
    """How many API workers `serve` runs when not told by --workers: LEAFDOC_API_WORKERS, else one per CPU it may
    use, at most MAX_AUTO_API_WORKERS. One worker is bound by its own GIL (1.3 of 2 cores in the load tests), and
    with a worker per CPU predictions run on the workers' event loops: on 2 CPUs, 2 workers answered 186
    predictions/s where 1 answered 136 (README, "Load tests"). With several workers the web page runs in a
    process of its own (ui/server.py)."""
    if settings.api_workers is not None:
        return settings.api_workers, f"LEAFDOC_API_WORKERS={settings.api_workers}"
    n = min(cpus, MAX_AUTO_API_WORKERS)
    capped = f", at most {MAX_AUTO_API_WORKERS}" if cpus > MAX_AUTO_API_WORKERS else ""
    return n, f"one per CPU{capped}; --workers or LEAFDOC_API_WORKERS to choose"


def choose_predict_on_loop(settings: Settings, workers: int, cpus: int) -> tuple[bool, str]:
    """Settings.predict_on_loop as set, or on when there are at least as many workers as CPUs: a worker's
    threadpool only pays when it has a second core to run on (docs/load-tests.md, "Predictions on the loop")."""
    if settings.predict_on_loop is not None:
        why = f"LEAFDOC_PREDICT_ON_LOOP={str(settings.predict_on_loop).lower()}"
        return settings.predict_on_loop, why
    on = workers >= cpus
    return on, f"{workers} worker{'s' * (workers > 1)} for {cpus} CPU{'s' * (cpus > 1)}"


class _StopServing(Exception):
    pass


def _stop_serving(signum, frame) -> None:
    raise _StopServing(signum)


# How long uvicorn's supervisor waits for a worker to answer its health check before it kills and replaces it
# ("Child process [N] died"). uvicorn's 5 s is shorter than a worker's start on a busy 2-core machine (importing,
# loading the ONNX model and answering a warm-up photo hold the GIL for seconds): workers were killed while
# starting, over and over. A worker that is really hung is still replaced, a minute later.
WORKER_HEALTHCHECK_SECONDS = 60
PAGE_KEY_ENV = "LEAFDOC_UI_PAGE_KEY"  # Settings.ui_page_key


def uvicorn_options(host: str, port: int, workers: int, log_level: str) -> dict:
    """What `serve` runs uvicorn with: the app factory, leafdoc's logging, request bodies read ahead."""
    return dict(
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        log_config=log_config(log_level),
        http=HTTP_PROTOCOL,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )


def check_port_free(host: str, port: int) -> None:
    """ConfigError when another program listens on host:port, before anything starts: uvicorn said only "[Errno 98]
    Address already in use" after the workers and the page had started, and a script waiting for /readyz was then
    answered by the other program. Bound as uvicorn binds (SO_REUSEADDR), and let go at once."""
    import errno
    import socket

    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn's Config.bind_socket chooses
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return  # anything else is uvicorn's to say, as before
            raise ConfigError(
                f"port {port} on {host} is in use by another program (another `leafdoc serve`?): nothing was started.",
                hint=f"Pass another port with --port, or stop that program (`ss -ltnp 'sport = :{port}'` names it).",
            ) from None


def offer_shipped_starter(registry) -> str | None:
    """Registry.offer_starter, and what `serve` says about it (None: nothing was registered)."""
    offered = registry.offer_starter()
    if offered is None:
        return None
    candidate, serving = offered
    return (
        f"the starter shipped with this leafdoc differs from version {serving}, the starter this data home was "
        f"seeded with, which still serves; it is registered as version {candidate}, a candidate: to serve it, "
        f"promote it (the models table of the web page or the desktop app, `leafdoc models add models/starter "
        f"--promote`, or POST /v1/models/{candidate}/promote)"
    )


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int | None = None,
    consumer: bool | None = None,
    log_level: str = "info",
    say: Callable[[str], None] = print,
    parent_pid: int | None = None,
) -> None:
    """Run the API until SIGTERM or SIGINT (then return normally), with a consumer beside it if asked; `workers`
    unset, as many API workers as `choose_workers` says. With `parent_pid` (the process that started this one: the
    desktop app, a test run), a SIGTERM to itself once that process is gone, so a killed parent leaves no server (nor
    its consumer) behind."""
    import uvicorn

    from leafdoc.service.announce import announce_when_up
    from leafdoc.service.app import build_state
    from leafdoc.service.balance import run_workers

    # Check the settings and the port, and seed the registry once, before any worker starts.
    if placeholder := placeholder_admin_token(settings.admin_token):
        raise ConfigError(placeholder, hint=f"Set it to {TOKEN_ADVICE}, in the secret or env file you deploy with.")
    check_port_free(host, port)
    state = build_state(settings)
    offered = offer_shipped_starter(state.registry)
    state.catalog.dispose()
    if offered:
        say(offered)
    if weak := weak_admin_token(settings.admin_token):
        say(weak)
    cpus = usable_cpus()
    if workers is None:
        workers, why = choose_workers(settings, cpus)
        say(f"{workers} API worker{'s' * (workers > 1)} ({why})")
    if workers > 1:  # one /metrics scrape sums every worker (prometheus-client's multiprocess mode)
        metrics_dir = settings.home / "prometheus" / str(os.getpid())
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    on_loop, why = choose_predict_on_loop(settings, workers, cpus)
    where = "on each worker's event loop" if on_loop else "in each worker's threadpool"
    say(f"single predictions run {where} ({why})")
    loop_was = os.environ.get("LEAFDOC_PREDICT_ON_LOOP")
    os.environ["LEAFDOC_PREDICT_ON_LOOP"] = str(on_loop).lower()  # what the workers' create_app() reads
    # One page key for the workers and the page's process (each made its own random one otherwise), so the API believes
    # the visitor the page names on whichever worker its call lands (Settings.ui_page_key).
    key_was = os.environ.get(PAGE_KEY_ENV)
    os.environ[PAGE_KEY_ENV] = settings.ui_page_key
    run_consumer = settings.run_consumer if consumer is None else consumer
    child = None
    if run_consumer:
        cmd = [sys.executable, "-m", "leafdoc.cli.main", "worker", "--parent-pid", str(os.getpid())]
        child = subprocess.Popen(cmd)
        queue = settings.queue_url or settings.queue_path
        say(f"training consumer started (pid {child.pid}); queue: {without_password(str(queue))}")
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal: turn that into an
    # exception so the consumer is stopped below and the command exits 0.
    previous = {sig: signal.signal(sig, _stop_serving) for sig in (signal.SIGTERM, signal.SIGINT)}
    if parent_pid is not None and os.name == "posix":
        on_parent_exit(lambda: os.kill(os.getpid(), signal.SIGTERM), parent_pid)
    options = uvicorn_options(host, port, workers, log_level)
    page = announced = None
    try:
        if workers > 1 and settings.ui:  # Gradio keeps a visit in one process: the page gets its own (ui/server.py)
            from leafdoc.ui.server import SOCKET_ENV, PageProcess, local_api_url

            page = PageProcess(local_api_url(host, port), log_level, say)
            if not page.wait_ready():
                say("warning: the web page's process did not start; /ui answers 503 (its error is above)")
            say(f"the web page runs in a process of its own (pid {page.proc.pid}); every API worker forwards /ui to it")
            os.environ[SOCKET_ENV] = str(page.socket)  # what the workers' create_app() reads
        announced = announce_when_up(host, port, settings.ui, say)  # where it serves, once it answers
        if workers > 1:  # connections handed to the workers in turn: service/balance.py
            run_workers(uvicorn.Config(APP, **options))
        else:
            uvicorn.run(APP, **options)
    except _StopServing:
        pass
    finally:
        if announced is not None:
            announced.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child is not None:
            stop_child(child, 30)
        if page is not None:
            os.environ.pop(SOCKET_ENV, None)
            page.stop()
        if workers > 1:
            shutil.rmtree(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"), ignore_errors=True)
        if loop_was is None:
            os.environ.pop("LEAFDOC_PREDICT_ON_LOOP", None)
        else:
            os.environ["LEAFDOC_PREDICT_ON_LOOP"] = loop_was
        if key_was is None:
            os.environ.pop(PAGE_KEY_ENV, None)
        else:
            os.environ[PAGE_KEY_ENV] = key_was
