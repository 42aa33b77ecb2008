"""Run the locust load test headless against several serving setups and write a report.

    python -m loadtest.run [--workers 1,2,4] [--lb off,on] [--workloads mixed,single] [--repeats 3]
                           [--duration 40] [--warmup 10] [--users 8] [--images DIR] [--out DIR]

Setups: `leafdoc serve --workers N` on its own (uvicorn's workers share one listening socket), and
nginx in front of N replicas of `leafdoc serve --workers 1` on their own ports sharing one data home
(the way replicas on several machines share one catalog and store; nginx balances each request, where
a shared socket balances connections). `--setups stack1,stack2,stack4` also runs deploy/compose.yaml's stack
(deploy/stack.sh: the images as built, nginx in front of N API replicas in containers, PostgreSQL, Redis, the S3
store and the worker beside them), each replica limited to `--stack-cpus` CPUs (compose.yaml's 2 unless set: an
API replica runs a worker per CPU of its limit). The runner starts and stops every process itself, ingests a
small dataset first so the catalogue routes have something to read, and measures in each setup:

- per request type (Locust's statistics): requests/s, p50/p95/p99 latency, errors;
- the serving processes' memory: peak RSS of the largest process, and peak RSS summed over the
  `leafdoc serve` processes (API workers and their supervisor) and over nginx, sampled every 0.5 s;
- CPU: seconds used by the server processes, by the client, and by everything else on the machine.

Each setup is started once, warmed up, then measured `--repeats` times for `--duration` seconds; the
report shows medians. Raw ONNX Runtime throughput on the same photos (loadtest/onnx_bench.py) is
measured at the start and the end of the run. With the `single` workload, the in-process serving path (the
service's throughput target is a share of it) is also timed before the first measured slice and after each one,
for as long (`--paired-seconds`), with the servers idle: the machine's speed drifts by 10-20% within minutes, so
each run's service rate is compared with the mean of the in-process rates timed just before and just after it,
and the report gives the median of those ratios.

`--variant NAME` (repeatable; see loadtest/variants.py) also serves a copy of this checkout with a
fast-path knob turned back, `--variant NAME=SRC` the leafdoc package of another `src/` folder (e.g. a
worktree of an earlier commit). A change is then measured side by side: the variants' servers of a
setup run at the same time (all idle but the one measured) and are measured in turns, A B A B..., so
the background load hits them alike.
Writes loadtest/reports/<date>[-<name>]/{report.md,latency.png,results.json}.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import io
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil

from loadtest.images import REPO, image_dir
from loadtest.nginx import Nginx, find_nginx, start_nginx
from loadtest.report import cpu_count, setup_key, setup_label
from loadtest.variants import VARIANTS, make_variant

SINGLE, BATCH = "predict single", "predict batch"
WORKLOAD_TAGS = {
    "mixed": [],
    "single": ["--tags", "single"],
    "phone": ["--tags", "single", "--phone"],
    "phone-sent": ["--tags", "single", "--phone", "--shrink"],  # as the web page and desktop app send them
    "12mp": ["--tags", "single", "--phone", "--only-12mp"],  # 12 MP baseline JPEGs alone, as phones write them
    "phone-mix": ["--tags", "single", "--phone-share", "0.1"],  # one diagnosis in ten a 12 MP JPEG, the rest 256 px
}
TARGET_RPS, TARGET_P95_MS, TARGET_RSS_MB = 150.0, 100.0, 400.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


# ---- the servers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    workers: int  # with `stack`: API replicas
    lb: bool
    variant: str = "current"
    stack: bool = False  # deploy/compose.yaml's stack in containers (deploy/stack.sh)
    cpus: str = ""  # with `stack`: each API replica's CPU limit ("" = compose.yaml's)

    @property
    def label(self) -> str:
        return setup_label(asdict(self))

    @property
    def key(self) -> str:
        return setup_key(asdict(self))


class Deployment:
    """The processes of one setup: `leafdoc serve` instances, and nginx in front when load-balanced."""

    def __init__(self, setup: Setup, root: Path, env: dict[str, str], log_level: str, server_cpus: str | None):
        self.setup, self.root, self.env = setup, root, env
        self.serves: list[subprocess.Popen] = []
        self.nginx: Nginx | None = None
        self.model_file: str | None = None  # what /readyz says is served
        self.log_level, self.server_cpus = log_level, server_cpus
        self.ports: list[int] = []
        self.base = ""

    def _serve(self, port: int, workers: int, i: int) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "leafdoc.cli.main", "serve", "--port", str(port), "--workers", str(workers)]
        cmd += ["--no-consumer", "--log-level", self.log_level]
        if self.server_cpus:
            cmd = ["taskset", "-c", self.server_cpus, *cmd]
        out = open(self.root / f"serve-{i}.log", "wb")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, timeout: float = 240) -> str:
        s = self.setup
        replicas = s.workers if s.lb else 1
        self.ports = [free_port() for _ in range(replicas)]
        for i, port in enumerate(self.ports):
            self.serves.append(self._serve(port, 1 if s.lb else s.workers, i))
        bases = [f"http://127.0.0.1:{p}" for p in self.ports]
        if s.lb:
            self.nginx = start_nginx(self.root / "nginx", free_port(), self.ports)
            bases.append(self.nginx.base)
        deadline = time.monotonic() + timeout
        for base in bases:
            while True:
                dead = [p for p in self.serves if p.poll() is not None]
                if dead:
                    raise RuntimeError(f"{s.label}: leafdoc serve exited:\n{self.logs()}")
                try:
                    ready = httpx.get(f"{base}/readyz", timeout=5)
                    if ready.status_code == 200:
                        self.model_file = ready.json().get("model_file")  # the file served (fp32 / int8 copy)
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{s.label}: not ready after {timeout:.0f} s:\n{self.logs()}")
                time.sleep(0.5)
        return bases[-1]

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in sorted(self.root.glob("serve-*.log")))

    def serve_processes(self) -> list[psutil.Process]:
        procs = []
        for p in self.serves:
            try:
                root = psutil.Process(p.pid)
                procs += [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        return procs

    def nginx_processes(self) -> list[psutil.Process]:
        if self.nginx is None:
            return []
        try:
            root = psutil.Process(self.nginx.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self.nginx:
            self.nginx.stop()
        for p in self.serves:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.serves:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)  # the group this runner started for that serve
                p.wait()


class StackDeployment:
    """deploy/compose.yaml's stack, started by deploy/stack.sh under a project name of its own: nginx in front of
    `setup.workers` API replicas (each limited to `setup.cpus` CPUs when set), with the page, the worker,
    PostgreSQL, Redis and the S3 store beside them. The containers' processes are this machine's processes, so
    memory and CPU are read from them as from local servers (API replicas as `serve`, nginx as nginx)."""

    def __init__(self, setup: Setup, root: Path, env: dict[str, str], images: Path, timeout: float):
        self.setup, self.root, self.images, self.timeout = setup, root, images, timeout
        self.env = {k: v for k, v in env.items() if not k.startswith("LEAFDOC_")}
        self.project = f"leafdoc-load-{os.getpid()}-{setup.workers}"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.model_file: str | None = None
        self.pids: dict[str, list[int]] = {}  # service -> its containers' main processes, read once started
        self.token = os.urandom(16).hex()
        self.args = ["--project", self.project, "--port", str(self.port), "--env-file", str(root / "stack.env")]
        self.args += ["--file", str(root / "stack-override.yaml")]

    def _stack(self, *cmd: str, timeout: float = 1800) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(REPO / "deploy" / "stack.sh"), *cmd, *self.args],
            env=self.env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def start(self, timeout: float | None = None) -> str:
        s = self.setup
        (self.root / "stack.env").write_text(
            f"POSTGRES_PASSWORD={os.urandom(16).hex()}\nAWS_ACCESS_KEY_ID=leafdoc\n"
            f"AWS_SECRET_ACCESS_KEY={os.urandom(16).hex()}\nLEAFDOC_ADMIN_TOKEN={self.token}\n"
        )
        limits = f', resources: {{limits: {{cpus: "{s.cpus}"}}}}' if s.cpus else ""
        (self.root / "stack-override.yaml").write_text(
            "# python -m loadtest.run: the API replicas of this setup\n"
            f"services:\n  api:\n    deploy: {{mode: replicated, replicas: {s.workers}{limits}}}\n"
        )
        up = self._stack("up", "--timeout", str(int(timeout or self.timeout)))
        (self.root / "stack-up.log").write_text(up.stdout + up.stderr)
        if up.returncode != 0:
            raise RuntimeError(f"{s.label}: deploy/stack.sh up failed:\n{(up.stdout + up.stderr)[-3000:]}")
        ready = httpx.get(f"{self.base}/readyz", timeout=30).json()
        self.model_file = ready.get("model_file")
        self.pids = {service: self._container_pids(service) for service in ("api", "nginx")}
        # A small dataset for the catalogue routes (as prepare_home gives the local setups), uploaded as users do.
        classes = sorted(p for p in self.images.iterdir() if p.is_dir())[:3]
        members = {f"leaves/{c.name}/{f.name}": f.read_bytes() for c in classes for f in sorted(c.glob("*.jp*g"))[:10]}
        if members:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                for name, data in members.items():
                    z.writestr(name, data)
            r = httpx.post(
                f"{self.base}/v1/uploads", params={"dataset": "loadtest"}, timeout=600,
                headers={"Authorization": f"Bearer {self.token}"},
                files={"file": ("leaves.zip", buf.getvalue(), "application/zip")},
            )  # fmt: skip
            if r.status_code != 201:
                raise RuntimeError(f"{s.label}: the dataset upload failed: {r.status_code} {r.text[:500]}")
        return self.base

    def _container_pids(self, service: str) -> list[int]:
        names = subprocess.run(
            ["podman", "ps", "--filter", f"label=com.docker.compose.project={self.project}",
             "--filter", f"label=com.docker.compose.service={service}", "--format", "{{.Names}}"],
            env=self.env, capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        pids = []
        for name in names:
            pid = subprocess.run(
                ["podman", "inspect", "--format", "{{.State.Pid}}", name], env=self.env, capture_output=True, text=True
            ).stdout.strip()
            if pid.isdigit() and int(pid) > 0:
                pids.append(int(pid))
        return pids

    def _processes(self, service: str) -> list[psutil.Process]:
        """The processes of a service's containers (podman is asked once, at start: asking it every half second
        would cost the CPU being measured)."""
        procs: list[psutil.Process] = []
        for pid in self.pids.get(service, []):
            try:
                root = psutil.Process(pid)
                procs += [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        return procs

    def serve_processes(self) -> list[psutil.Process]:
        return self._processes("api")

    def nginx_processes(self) -> list[psutil.Process]:
        return self._processes("nginx")

    def logs(self) -> str:
        out = self._stack("logs", "api", timeout=120)
        return (out.stdout + out.stderr)[-4000:]

    def stop(self) -> None:
        down = self._stack("down", "--volumes", timeout=600)
        if down.returncode != 0:
            log(f"{self.setup.label}: deploy/stack.sh down failed: {(down.stdout + down.stderr)[-1000:]}")


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


class MemorySampler(threading.Thread):
    """Peak RSS of the largest serving process and of the sums, every `interval` seconds."""

    def __init__(self, deployment: Deployment, interval: float = 0.5):
        super().__init__(daemon=True)
        self.deployment, self.interval = deployment, interval
        self.peak_process = self.peak_serve = self.peak_nginx = 0
        self.n_processes = 0
        self._halt = threading.Event()

    def sample(self) -> None:
        rss = []
        for p in self.deployment.serve_processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                rss.append(p.memory_info().rss)
        ng = 0
        for p in self.deployment.nginx_processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                ng += p.memory_info().rss
        if rss:
            self.peak_process = max(self.peak_process, max(rss))
            self.peak_serve = max(self.peak_serve, sum(rss))
            self.n_processes = max(self.n_processes, len(rss))
        self.peak_nginx = max(self.peak_nginx, ng)

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.sample()


# ---- the client ----------------------------------------------------------------------------------


@dataclass
class Options:
    users: int
    duration: float
    warmup: float
    images: Path
    client_cpus: str | None
    batch_size: int


def run_locust(base: str, workload: str, seconds: float, opts: Options, csv_prefix: Path | None) -> str:
    cmd = [sys.executable, "-m", "locust", "-f", str(REPO / "loadtest" / "locustfile.py"), "--headless"]
    cmd += ["-u", str(opts.users), "-r", str(opts.users), "-t", f"{int(seconds)}s", "-H", base]
    cmd += ["--only-summary", "--stop-timeout", "10", "--images", str(opts.images)]
    cmd += ["--batch-size", str(opts.batch_size), *WORKLOAD_TAGS[workload]]
    if csv_prefix is not None:
        cmd += ["--csv", str(csv_prefix), "--cpu-file", f"{csv_prefix}_cpu.json"]
    if opts.client_cpus:
        cmd = ["taskset", "-c", opts.client_cpus, *cmd]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO, timeout=seconds + 120)
    return done.stdout + done.stderr


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:  # "N/A": Locust has no percentile for a row without successful requests
        return float("nan")


def read_stats(prefix: Path) -> dict[str, dict]:
    rows = {}
    with open(f"{prefix}_stats.csv", newline="") as f:
        for r in csv.DictReader(f):
            name = r["Name"]
            rows[name] = {
                "requests": int(r["Request Count"]),
                "failures": int(r["Failure Count"]),
                "rps": _number(r["Requests/s"]),
                "p50": _number(r["50%"]),
                "p95": _number(r["95%"]),
                "p99": _number(r["99%"]),
                "avg": _number(r["Average Response Time"]),
            }
    return rows


def read_failures(prefix: Path, limit: int = 5) -> list[str]:
    path = Path(f"{prefix}_failures.csv")
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [f"{r['Name']}: {r['Error'][:200]} (x{r['Occurrences']})" for r in csv.DictReader(f)][:limit]


# ---- one measurement -----------------------------------------------------------------------------


@dataclass
class Measurement:
    setup: Setup
    workload: str
    repeat: int
    stats: dict[str, dict]
    failures: list[str]
    seconds: float
    loadavg_before: float
    server_cpu_s: float
    client_cpu_s: float
    other_cpu_s: float
    peak_process_mb: float
    peak_serve_mb: float
    peak_nginx_mb: float
    n_processes: int
    batch_size: int
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["setup"] = {**asdict(self.setup), "label": self.setup.label}
        return d


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def machine_busy_seconds() -> float:
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)


def start_deployment(
    setup: Setup, workload: str, env: dict, root: Path, opts: Options, args
) -> Deployment | StackDeployment:
    folder = root / f"{setup.key}-{workload}"
    folder.mkdir(parents=True)
    dep: Deployment | StackDeployment
    if setup.stack:
        dep = StackDeployment(setup, folder, env, opts.images, args.stack_timeout)
    else:
        dep = Deployment(setup, folder, env, args.log_level, args.server_cpus)
    try:
        dep.base = dep.start()
        served = dep.model_file
        if args.onnx_variant != "fp32" and args.onnx_variant not in (served or ""):
            raise SystemExit(
                f"--onnx-variant {args.onnx_variant}: the server serves {served}, not that copy (the server log says "
                f"why): make it with `leafdoc export {args.model} --format onnx-{args.onnx_variant} --data DIR`, or, "
                "on a CPU without VNNI, where leafdoc does not run int8 copies, set LEAFDOC_INT8_ANY_CPU=true"
            )
    except BaseException:
        dep.stop()
        raise
    return dep


def measure(dep: Deployment | StackDeployment, workload: str, repeat: int, opts: Options) -> Measurement:
    """One measured slice of `opts.duration` seconds on a running, warmed-up deployment."""
    folder = dep.root / f"r{repeat}"
    folder.mkdir()
    sampler = MemorySampler(dep)
    loadavg = os.getloadavg()[0]
    procs = dep.serve_processes() + dep.nginx_processes()
    s0, c0, m0, t0 = cpu_seconds(procs), children_cpu(), machine_busy_seconds(), time.monotonic()
    sampler.start()
    out = run_locust(dep.base, workload, opts.duration, opts, folder / "locust")
    sampler.stop()
    s1, c1, m1, t1 = cpu_seconds(procs), children_cpu(), machine_busy_seconds(), time.monotonic()
    (folder / "locust.out").write_text(out)
    cpu_file = folder / "locust_cpu.json"
    client = json.loads(cpu_file.read_text()) if cpu_file.is_file() else {}
    try:
        stats = read_stats(folder / "locust")
    except FileNotFoundError:
        raise RuntimeError(f"locust wrote no statistics:\n{out[-3000:]}") from None
    return Measurement(
        setup=dep.setup,
        workload=workload,
        repeat=repeat,
        stats=stats,
        failures=read_failures(folder / "locust"),
        seconds=round(t1 - t0, 2),
        loadavg_before=loadavg,
        server_cpu_s=round(s1 - s0, 2),
        client_cpu_s=round(client.get("cpu_s", c1 - c0), 2),
        other_cpu_s=round(max(0.0, (m1 - m0) - (s1 - s0) - (c1 - c0)), 2),
        peak_process_mb=round(sampler.peak_process / 2**20, 1),
        peak_serve_mb=round(sampler.peak_serve / 2**20, 1),
        peak_nginx_mb=round(sampler.peak_nginx / 2**20, 1),
        n_processes=sampler.n_processes,
        batch_size=opts.batch_size,
    )


# ---- preparation ---------------------------------------------------------------------------------


def prepare_home(root: Path, model: Path, images: Path, env: dict) -> None:
    """A data home with a small dataset (up to 3 class folders x 10 photos) for the catalogue routes."""
    data = root / "dataset"
    classes = sorted(p for p in images.iterdir() if p.is_dir())[:3]
    sources = [(c.name, sorted(c.glob("*.jp*g"))[:10]) for c in classes] or [("leaves", sorted(images.glob("*.jp*g")))]
    for name, files in sources:
        (data / name).mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy2(f, data / name / f.name)
    cmd = [sys.executable, "-m", "leafdoc.cli.main", "ingest", str(data), "--dataset", "loadtest", "--json"]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)


def raw_onnx(
    model: Path,
    images: Path,
    seconds: float,
    server_cpus: str | None,
    src: str | None,
    variant: str = "fp32",
    extra: tuple = (),
) -> dict:
    """loadtest.onnx_bench in a child process, on the servers' CPUs, importing `src`'s leafdoc package, timing the
    ONNX copy the servers serve (`variant`)."""
    cmd = [sys.executable, "-m", "loadtest.onnx_bench", "--json", "--model", str(model), "--images", str(images)]
    cmd += ["--seconds", str(seconds), "--onnx-variant", variant, *extra]
    if server_cpus:
        cmd = ["taskset", "-c", server_cpus, *cmd]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, str(REPO)) if p)}
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, cwd=REPO, timeout=900)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["loadavg_before"] = os.getloadavg()[0]
    return result


def in_process_path(
    model: Path, images: Path, seconds: float, server_cpus: str | None, src: str | None, variant: str = "fp32"
) -> dict:
    """The in-process serving path for `seconds`, where the servers run: in 2 processes on the whole machine, in 1
    pinned to one CPU (report.throughput_reference says why)."""
    processes = 1 if cpu_count(server_cpus) == 1 else 2
    return raw_onnx(model, images, seconds, server_cpus, src, variant, ("--path-processes", str(processes)))


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src", "loadtest"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except OSError:
        return "unknown"


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
    }


# ---- main ----------------------------------------------------------------------------------------


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def setup_list(args: argparse.Namespace) -> list[tuple[str, int]]:
    """(kind, workers) of each setup, kind `direct`, `lb` or `stack`: --setups if given (w2 = serve -w2, lb2 = nginx +
    2 replicas, stack2 = the compose stack with 2 API replicas)."""
    if args.setups:
        out = []
        for item in _csv_list(args.setups):
            kind = next((k for k in ("stack", "lb", "w") if item.startswith(k)), "")
            n = item.removeprefix(kind)
            if not kind or not n.isdigit() or int(n) < 1:
                raise SystemExit(
                    f"--setups {item}: expected wN (serve --workers N), lbN (nginx + N replicas) or stackN "
                    "(the compose stack with N API replicas)"
                )
            out.append(({"w": "direct"}.get(kind, kind), int(n)))
        return out
    return [("lb" if lb == "on" else "direct", int(w)) for lb in _csv_list(args.lb) for w in _csv_list(args.workers)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m loadtest.run", description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2,4", help="Worker counts (comma-separated).")
    ap.add_argument("--lb", default="off,on", help="off: serve --workers N; on: nginx + N replicas (or both).")
    ap.add_argument(
        "--setups", default=None, help="Instead of --workers/--lb: e.g. w1,w2,lb2, or stack1,stack2,stack4 (compose)."
    )
    ap.add_argument(
        "--stack-cpus",
        default="",
        help="stackN setups: each API replica's CPU limit (default: compose.yaml's); several: comma-separated.",
    )
    ap.add_argument("--stack-timeout", type=float, default=900, help="stackN setups: seconds per start-up step.")
    ap.add_argument(
        "--workloads",
        default="mixed,single",
        help="mixed: the locustfile's mix; single: /v1/predict; phone: /v1/predict with phone photos; "
        "phone-sent: the same photos as the web page and desktop app send them (1024 px, JPEG 90); "
        "12mp: 12 MP JPEGs alone; phone-mix: one diagnosis in ten a 12 MP JPEG, the rest 256-px photos.",
    )
    ap.add_argument("--repeats", type=int, default=3, help="Measurements per setup (medians reported).")
    ap.add_argument("--duration", type=float, default=40, help="Measured seconds per setup.")
    ap.add_argument("--warmup", type=float, default=10, help="Seconds of load before measuring.")
    ap.add_argument("--users", type=int, default=8, help="Locust users (requests in flight; no think time).")
    ap.add_argument("--batch-size", type=int, default=4, help="Photos per batch request.")
    ap.add_argument("--images", default=None, help="Folder of leaf photos (default: see loadtest/images.py).")
    ap.add_argument("--model", type=Path, default=REPO / "models" / "starter")
    ap.add_argument(
        "--onnx-variant",
        choices=("fp32", "int8", "fp16"),
        default="fp32",
        help="LEAFDOC_ONNX_VARIANT of every server: the model folder's copy to serve (card.json onnx_variants).",
    )
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=SRC",
        help="Also serve the leafdoc package of another src/ folder, alternating with the current one.",
    )
    ap.add_argument("--no-current", action="store_true", help="With --variant: measure only the variants.")
    ap.add_argument("--onnx-seconds", type=float, default=4, help="Seconds per raw ONNX Runtime configuration.")
    ap.add_argument(
        "--paired-seconds",
        type=float,
        default=None,
        help="With the single workload: seconds of the in-process path timed before and after each measured slice "
        "(default: --duration; 0: not measured).",
    )
    ap.add_argument("--client-cpus", default=None, help="taskset CPU list for locust (default: not pinned).")
    ap.add_argument("--server-cpus", default=None, help="taskset CPU list for the servers (default: not pinned).")
    ap.add_argument("--log-level", default="info", help="leafdoc serve --log-level (info: uvicorn's access log).")
    ap.add_argument("--out", type=Path, default=None, help="Report folder (default: loadtest/reports/<date>).")
    ap.add_argument("--name", default="", help="Suffix of the default report folder name.")
    ap.add_argument("--keep", action="store_true", help="Keep the temp folder (server and locust logs).")
    args = ap.parse_args(argv)
    if args.paired_seconds is None:
        args.paired_seconds = args.duration
    return args


def run_group(
    group: list[Setup],
    workload: str,
    variants: dict,
    base_env: dict,
    root: Path,
    opts: Options,
    args,
    results: dict,
    out_dir: Path,
) -> None:
    """One setup in each variant: all started side by side, warmed up, then measured in turns (A B A B...)."""
    deployments: list[Deployment | StackDeployment] = []
    try:
        for setup in group:
            env = dict(base_env)
            if variants[setup.variant]:
                env["PYTHONPATH"] = variants[setup.variant]
            log(f"starting {setup.label} for the {workload} workload")
            deployments.append(start_deployment(setup, workload, env, root, opts, args))
        if opts.warmup > 0:
            for dep in deployments:
                run_locust(dep.base, workload, opts.warmup, opts, None)
        paired = workload == "single" and args.paired_seconds > 0

        def in_process(dep: Deployment | StackDeployment) -> dict:
            src = variants[dep.setup.variant]
            return in_process_path(
                args.model.resolve(), opts.images, args.paired_seconds, args.server_cpus, src, args.onnx_variant
            )

        before = {id(dep): in_process(dep) for dep in deployments} if paired else {}
        for repeat in range(1, args.repeats + 1):
            for dep in deployments:
                log(f"run {repeat}/{args.repeats}: {dep.setup.label}, {workload} (load {os.getloadavg()[0]:.2f})")
                m = measure(dep, workload, repeat, opts)
                if paired:  # the in-process path timed just before and just after this slice
                    m.extra["in_process_before"], m.extra["in_process"] = before[id(dep)], in_process(dep)
                    before[id(dep)] = m.extra["in_process"]
                single = m.stats.get(SINGLE, {})
                bracket = [m.extra[k]["img_per_s"] for k in ("in_process_before", "in_process") if k in m.extra]
                log(
                    f"  single {single.get('rps', 0):.1f}/s p95 {single.get('p95', 0):.0f} ms; "
                    + (f"in-process path before, after: {bracket[0]:.1f}, {bracket[1]:.1f}/s; " if bracket else "")
                    + f"failures {sum(r['failures'] for n, r in m.stats.items() if n != 'Aggregated')}; "
                    f"peak RSS {m.peak_process_mb:.0f} MB/process, {m.peak_serve_mb:.0f} MB total"
                )
                results["measurements"].append(m.to_dict())
                (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    finally:
        for dep in deployments:
            dep.stop()


def _stop_on_signal(signum, frame):
    raise SystemExit(128 + signum)  # unwinds through the `finally`s that stop the servers


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    # Started in the background, a process may inherit SIGINT ignored; SIGTERM would skip the clean-up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    setups = setup_list(args)
    if find_nginx() is None and any(kind == "lb" for kind, _ in setups):
        raise SystemExit("nginx is not installed (Debian: apt-get install nginx); or pass --lb off")
    if any(kind == "stack" for kind, _ in setups) and (args.variant or args.no_current):
        raise SystemExit("--variant measures this checkout's code; stackN setups run the images as built")
    images = image_dir(args.images).resolve()
    model = args.model.resolve()
    date = dt.date.today().isoformat()
    out_dir = args.out or REPO / "loadtest" / "reports" / (date + (f"-{args.name}" if args.name else ""))
    out_dir.mkdir(parents=True, exist_ok=True)
    opts = Options(args.users, args.duration, args.warmup, images, args.client_cpus, args.batch_size)
    command = "python -m loadtest.run " + shlex.join(argv if argv is not None else sys.argv[1:])
    root = Path(tempfile.mkdtemp(prefix="leafdoc-loadtest-"))
    # Every server of the run imports one snapshot of this checkout's src/, taken now: edits made meanwhile
    # (other people work in this repository too) do not change the code half-way through a run.
    variants: dict[str, str | None] = {} if args.no_current else {"current": str(make_variant("current", root))}
    described: dict[str, str] = {} if args.no_current else {"current": "this checkout"}
    for v in args.variant:
        name, _, src = v.partition("=")
        if src:
            if not (Path(src) / "leafdoc").is_dir():
                raise SystemExit(f"--variant {v}: {src} has no leafdoc package")
            variants[name], described[name] = str(Path(src).resolve()), f"the leafdoc package in {src}"
        else:
            variants[name], described[name] = str(make_variant(name, root / "variants")), VARIANTS[name][0]
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("LEAFDOC_") and k != "PYTHONPATH"}
    base_env.update(LEAFDOC_HOME=str(root / "home"), LEAFDOC_MODEL_DIR=str(model))
    base_env["LEAFDOC_ONNX_VARIANT"] = args.onnx_variant
    started = dt.datetime.now()
    log(f"temp folder {root}; images {images}; report {out_dir}")
    results: dict = {
        "command": command,
        "commit": git_commit(),
        "started": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "variants": described,
        "raw_onnx": [],
        "measurements": [],
    }
    try:
        prepare_home(root, model, images, base_env)
        log("raw ONNX Runtime throughput (start)")
        results["raw_onnx"].append(
            raw_onnx(model, images, args.onnx_seconds, args.server_cpus, variants.get("current"), args.onnx_variant)
        )
        for kind, workers in setups:
            cpu_limits = (_csv_list(args.stack_cpus) or [""]) if kind == "stack" else [""]
            for cpus in cpu_limits:
                for workload in _csv_list(args.workloads):
                    group = [Setup(workers, kind != "direct", v, kind == "stack", cpus) for v in variants]
                    run_group(group, workload, variants, base_env, root, opts, args, results, out_dir)
        log("raw ONNX Runtime throughput (end)")
        results["raw_onnx"].append(
            raw_onnx(model, images, args.onnx_seconds, args.server_cpus, variants.get("current"), args.onnx_variant)
        )
    finally:
        results["finished"] = dt.datetime.now().isoformat(timespec="seconds")
        (out_dir / "results.json").write_text(json.dumps(results, indent=1))
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    from loadtest.report import write_report

    path = write_report(results, out_dir)
    log(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
