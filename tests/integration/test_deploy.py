"""deploy/ agrees with the code. There is no Docker engine or cluster here, so what can be checked without
one is: the compose file and the Kubernetes manifests parse; every LEAFDOC_ variable they set is a real
setting and its value validates; every probe and health check asks a route the app has, on the port the
container's command listens on; every command they run is a real `leafdoc` command with real options;
the Dockerfiles copy only what their .dockerignore sends; the serving lock has no TensorFlow yet holds
every package the serving path imports; nginx accepts the load balancer's config, and in front of a real
`leafdoc serve` it proxies, and answers an oversized upload with the service's JSON error."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import typer
import yaml
from tests.live_server import free_port, wait_for

from leafdoc.cli.main import app as cli_app
from leafdoc.core.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILES = {"serve": DEPLOY / "serve.Dockerfile", "worker": DEPLOY / "worker.Dockerfile"}
NGINX_CONF = DEPLOY / "nginx" / "nginx.conf"
TF_PACKAGES = {"tensorflow", "tensorflow-cpu", "keras", "tf2onnx", "tf-keras"}


# ---- reading deploy/ ---------------------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def k8s_docs() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def k8s_kind(kind: str) -> list[dict]:
    return [d for d in k8s_docs() if d.get("kind") == kind]


def containers() -> list[dict]:
    return [c for d in k8s_kind("Deployment") for c in d["spec"]["template"]["spec"]["containers"]]


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final stage's and earlier stages' lines, continuations joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def lock_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;]+)", line)
        if m:
            pins[canonical(m.group(1))] = m.group(3)
    return pins


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def all_env() -> dict[str, str]:
    """Every environment variable deploy/ sets for a leafdoc process, with its value."""
    env: dict[str, str] = {}
    c = compose()
    for svc in c["services"].values():
        if str(svc.get("image", "")).startswith("leafdoc") or "build" in svc:
            env.update({k: str(v) for k, v in (svc.get("environment") or {}).items()})
    env.update(env_file(DEPLOY / "leafdoc.env.example"))
    for doc in k8s_kind("ConfigMap"):
        env.update(doc["data"])
    for doc in k8s_kind("Secret"):
        env.update(doc["stringData"])
    for c_ in containers():
        env.update({e["name"]: e["value"] for e in c_.get("env", [])})
    for name in DOCKERFILES:
        env.update(image_env(name))
    return env


def image_env(name: str) -> dict[str, str]:
    """The ENV of a Dockerfile."""
    env = {}
    for word, rest in dockerfile(DOCKERFILES[name]):
        if word == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(rest)))
    return env


# ---- settings ----------------------------------------------------------------------------------------


def settings_as_deployed(env: dict, monkeypatch, home) -> Settings:
    """The Settings a leafdoc process reads from `env` alone (no LEAFDOC_ variable of this test run's; compose's
    ${...} filled in as compose does), with its data home at `home`."""
    for key in [k for k in os.environ if k.startswith("LEAFDOC_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("LEAFDOC_"):
            monkeypatch.setenv(key, re.sub(r"\$\{[^}]*\}", "secret", str(value)))
    monkeypatch.setenv("LEAFDOC_HOME", str(home))
    return Settings()


def test_every_leafdoc_variable_deploy_sets_is_a_setting_and_its_value_is_valid(monkeypatch, tmp_path):
    env = all_env()
    fields = {f"LEAFDOC_{name.upper()}" for name in Settings.model_fields}
    leafdoc_vars = {k for k in env if k.startswith("LEAFDOC_")}
    assert leafdoc_vars, "deploy/ sets no LEAFDOC_ variable at all?"
    assert leafdoc_vars <= fields, f"not settings: {sorted(leafdoc_vars - fields)}"
    # The values validate as the processes would read them (compose's ${...} filled in as compose does).
    s = settings_as_deployed(env, monkeypatch, tmp_path)
    assert s.queue_url.startswith("redis://") and s.store_location.startswith("s3://")
    assert s.run_consumer is False


WORKER_RSS = 300e6  # an API worker serving photos (measured 239-290 MB)
PAGE_RSS = 350e6  # the web page's process with several workers, Gradio built (measured 258 MB)
SERVE_RSS = 200e6  # serve's own process and multiprocessing's resource tracker (measured 167 + 12 MB)


def quantity(text: str) -> float:
    """A Kubernetes or compose quantity: "500m" CPUs, "1536Mi" or "2g" bytes."""
    units = {"m": 1e-3, "k": 1e3, "K": 1e3, "Ki": 2**10, "M": 1e6, "Mi": 2**20, "g": 1e9, "G": 1e9, "Gi": 2**30}
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    return float(m.group(1)) * units.get(m.group(2), 1)


def serve_containers() -> list[tuple[str, dict[str, str], float, float]]:
    """Every container deploy/ runs `leafdoc serve` in: (name, its LEAFDOC_ environment, CPU limit, memory limit)."""
    out = []
    c = compose()
    for name in ("api", "ui"):
        limits = c["services"][name]["deploy"]["resources"]["limits"]
        out.append((f"compose {name}", c["services"][name]["environment"], limits["cpus"], limits["memory"]))
    [configmap] = k8s_kind("ConfigMap")
    for d in k8s_kind("Deployment"):
        for c_ in d["spec"]["template"]["spec"]["containers"]:
            if c_["command"][:2] == ["leafdoc", "serve"]:
                env = {**configmap["data"], **{e["name"]: e["value"] for e in c_.get("env", [])}}
                limits = c_["resources"]["limits"]
                out.append((f"k8s {d['metadata']['name']}", env, limits["cpu"], limits["memory"]))
    return out


def test_serving_containers_memory_limits_hold_their_workers_at_the_decoding_bound(monkeypatch, tmp_path):
    """`leafdoc serve` picks its workers from the container's CPU limit (one per CPU), and each
    worker may hold max_concurrent_decodes photos of max_image_pixels decoded at once: the memory limit must hold
    that, or a burst of large PNGs gets the container killed. API containers predict on their workers' loops."""
    from leafdoc.service.run import choose_predict_on_loop, choose_workers

    found = serve_containers()
    assert {name for name, *_ in found} >= {"compose api", "compose ui", "k8s leafdoc-api", "k8s leafdoc-ui"}
    for name, env, cpu, memory in found:
        s = settings_as_deployed(env, monkeypatch, tmp_path)
        cpus = -(-quantity(cpu) // 1)
        workers = choose_workers(s, int(cpus))[0]
        page = PAGE_RSS if s.ui and workers > 1 else 0  # the web page in a process of its own (ui/server.py)
        worst = SERVE_RSS + page + workers * (WORKER_RSS + s.max_concurrent_decodes * 3 * s.max_image_pixels)
        assert quantity(memory) >= worst, f"{name}: {workers} workers may take {worst / 2**30:.2f} GiB"
        assert workers == cpus and choose_predict_on_loop(s, workers, int(cpus))[0], name


def test_api_replicas_share_catalog_queue_and_store_and_run_no_consumer():
    c = compose()
    anchor = c["services"]["api"]["environment"]
    for name in ("api", "ui", "worker"):
        env = c["services"][name]["environment"]
        for key in ("LEAFDOC_DATABASE_URL", "LEAFDOC_QUEUE_URL", "LEAFDOC_STORE_URL", "LEAFDOC_S3_ENDPOINT_URL"):
            assert env[key] == anchor[key], (name, key)
    assert c["services"]["api"]["deploy"]["replicas"] > 1
    assert c["services"]["api"]["environment"]["LEAFDOC_UI"] == "false"
    assert c["services"]["ui"]["deploy"]["replicas"] == 1  # Gradio's queue lives in its process
    # The bucket the minio-bucket job creates is the one LEAFDOC_STORE_URL names.
    bucket = anchor["LEAFDOC_STORE_URL"].removeprefix("s3://").split("/")[0]
    assert f"store/{bucket}" in " ".join(c["services"]["minio-bucket"]["command"])
    assert (DEPLOY / ".gitignore").read_text().split() == ["leafdoc.env"]  # secrets stay out of git
    for d in k8s_kind("Deployment"):
        sources = {
            next(iter(e.values()))["name"] for c_ in d["spec"]["template"]["spec"]["containers"] for e in c_["envFrom"]
        }
        assert sources == {"leafdoc-settings", "leafdoc-secrets"}, d["metadata"]["name"]
    [cm] = k8s_kind("ConfigMap")
    assert cm["data"]["LEAFDOC_RUN_CONSUMER"] == "false"
    [secret] = k8s_kind("Secret")
    assert "LEAFDOC_DATABASE_URL" in secret["stringData"] and "LEAFDOC_ADMIN_TOKEN" in secret["stringData"]


# ---- commands, ports, probes -------------------------------------------------------------------------


def check_leafdoc_command(argv: list[str]) -> dict[str, str | bool]:
    """argv is `leafdoc CMD --opt value...` for a real command and real options; returns the options."""
    assert argv[0] == "leafdoc", argv
    group = typer.main.get_command(cli_app)
    cmd = group.commands.get(argv[1])
    assert cmd is not None, f"`leafdoc {argv[1]}` is not a command"
    ctx = cmd.make_context(f"leafdoc {argv[1]}", list(argv[2:]), resilient_parsing=False)
    return ctx.params


def served_port(argv: list[str]) -> int:
    return int(check_leafdoc_command(argv)["port"])


@pytest.fixture(scope="module")
def app_routes(tmp_path_factory) -> set[tuple[str, str]]:
    """(METHOD, path) of every route of the app `leafdoc serve` runs (serving the starter model)."""
    from leafdoc.service.app import create_app

    app = create_app(Settings(home=tmp_path_factory.mktemp("routes"), run_consumer=False))
    try:
        paths = app.openapi()["paths"]
        return {(method.upper(), path) for path, ops in paths.items() for method in ops}
    finally:
        app.state.leafdoc.catalog.dispose()


def test_dockerfiles_run_real_commands_and_check_real_routes(app_routes):
    for name, path in DOCKERFILES.items():
        steps = dockerfile(path)
        [cmd] = [json.loads(rest) for word, rest in steps if word == "CMD"]
        params = check_leafdoc_command(cmd)
        if name == "serve":
            assert cmd[1] == "serve" and params["host"] == "0.0.0.0" and params["consumer"] is False
            [expose] = [rest for word, rest in steps if word == "EXPOSE"]
            assert int(expose) == served_port(cmd)
            [health] = [rest for word, rest in steps if word == "HEALTHCHECK"]
            url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", health)
            assert int(url.group(1)) == served_port(cmd) and ("GET", url.group(2)) in app_routes
        else:
            assert cmd[1:] == ["worker"]
        assert ("USER", "leafdoc") in steps, f"{path.name} must not run as root"


def test_dockerfiles_copy_only_what_their_dockerignore_sends():
    for path in DOCKERFILES.values():
        lines = [ln.strip() for ln in Path(f"{path}.dockerignore").read_text().splitlines()]
        ignore = [ln for ln in lines if ln and not ln.startswith("#")]
        assert ignore[0] == "*", f"{path.name}.dockerignore: an allow-list (everything out, then !path) expected"
        allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
        for word, rest in dockerfile(path):
            if word == "COPY" and not rest.startswith("--from"):
                *sources, _dest = rest.split()
                for src in sources:
                    assert src.rstrip("/") in allowed, f"{path.name}: COPY {src} is not sent by the .dockerignore"
                    assert (REPO / src).exists(), f"{path.name}: COPY {src}: no such file"


def test_kubernetes_probes_ask_real_routes_on_the_served_port(app_routes):
    deployments = {d["metadata"]["name"]: d for d in k8s_kind("Deployment")}
    assert set(deployments) == {"leafdoc-api", "leafdoc-ui", "leafdoc-worker"}
    for name in ("leafdoc-api", "leafdoc-ui"):
        [c] = deployments[name]["spec"]["template"]["spec"]["containers"]
        port = served_port(c["command"])
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports == {"http": port}
        assert check_leafdoc_command(c["command"])["consumer"] is False
        probes = {k: c[k] for k in ("startupProbe", "livenessProbe", "readinessProbe")}
        assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
        for probe in probes.values():
            assert ("GET", probe["httpGet"]["path"]) in app_routes
            assert ports[probe["httpGet"]["port"]] == port
        assert c["resources"]["requests"] and c["resources"]["limits"]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert "/tmp" in mounts and image_env("serve")["LEAFDOC_HOME"] in mounts
    [worker] = deployments["leafdoc-worker"]["spec"]["template"]["spec"]["containers"]
    assert check_leafdoc_command(worker["command"]) is not None and worker["command"][1] == "worker"
    assert image_env("worker")["LEAFDOC_HOME"] in {m["mountPath"] for m in worker["volumeMounts"]}
    for d in deployments.values():
        assert d["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    # Services and the ingress point at those pods and ports.
    services = {s["metadata"]["name"]: s for s in k8s_kind("Service")}
    for name in ("leafdoc-api", "leafdoc-ui"):
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert services[name]["spec"]["selector"].items() <= pod_labels.items()
    backends = {p["path"]: p["backend"]["service"]["name"] for i in k8s_kind("Ingress") for p in ingress_paths(i)}
    api, ui = "leafdoc-api", "leafdoc-ui"
    assert backends == {"/": api, "/v1/uploads": api, "/ui": ui, "/app": ui, "/metrics": api}


def ingress_paths(ingress: dict) -> list[dict]:
    return [p for r in ingress["spec"]["rules"] for p in r["http"]["paths"]]


def test_the_ingress_reads_predictions_whole_and_streams_only_uploads_and_the_page(tmp_path):
    """As the compose balancer does (nginx.conf: request buffering off only for /v1/uploads and /ui): a client that
    sends a photo slowly ties up the controller, not an API worker, while bulk uploads stream to the API."""
    by_path = {p["path"]: i["metadata"]["annotations"] for i in k8s_kind("Ingress") for p in ingress_paths(i)}
    key = "nginx.ingress.kubernetes.io/"
    assert {path for path, a in by_path.items() if a.get(key + "proxy-request-buffering") == "off"} == {
        "/v1/uploads",
        "/ui",
    }
    assert by_path["/"].get(key + "proxy-request-buffering", "on") == "on"
    s = Settings(home=tmp_path)
    assert int(by_path["/v1/uploads"][key + "proxy-read-timeout"]) >= s.upload_wait_seconds
    conf = NGINX_CONF.read_text()
    assert "proxy_request_buffering off" in conf.split("location = /v1/uploads")[1].split("}")[0]
    assert "proxy_request_buffering" not in conf.split("location /v1/predict")[1].split("}")[0]


def test_hpa_scales_the_api_deployment_on_cpu_requests():
    [hpa] = k8s_kind("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "leafdoc-api")
    assert 1 < hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    [api] = [c for c in containers() if c["name"] == "api"]
    assert "cpu" in api["resources"]["requests"]  # utilisation is measured against the request
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed <= on_disk and on_disk - listed == {"store-pvc.yaml", "secret.yaml"}  # both documented


def test_compose_health_checks_and_commands(app_routes):
    c = compose()
    for name in ("api", "ui"):
        svc = c["services"][name]
        path = re.search(r"http://127\.0\.0\.1:8000(/\w+)", " ".join(svc["healthcheck"]["test"])).group(1)
        assert ("GET", path) in app_routes
    check_leafdoc_command(c["services"]["worker"]["command"])
    assert c["services"]["nginx"]["depends_on"]["api"]["condition"] == "service_healthy"
    # The only published port: nginx's 8080, on the host's LEAFDOC_HTTP_PORT (8080 unless set).
    assert list(c["services"]["nginx"]["ports"]) == ["${LEAFDOC_HTTP_PORT:-8080}:8080"]
    # nginx's command puts the container's DNS server in the config (Docker's 127.0.0.11, podman's at the gateway).
    assert c["services"]["nginx"]["command"] == ["sh", "/etc/nginx/leafdoc-start.sh"]
    assert "./nginx/start.sh:/etc/nginx/leafdoc-start.sh:ro" in c["services"]["nginx"]["volumes"]
    assert all("ports" not in s for n, s in c["services"].items() if n != "nginx")


# ---- the locks: a serving image without TensorFlow that still has everything serving imports ------------


def test_deploy_locks_pin_the_same_versions_as_requirements_lock():
    main = lock_pins(REPO / "requirements.lock")
    serve, worker = lock_pins(DEPLOY / "requirements-serve.lock"), lock_pins(DEPLOY / "requirements-worker.lock")
    for name, pins in (("serve", serve), ("worker", worker)):
        drift = {k: (v, main.get(k)) for k, v in pins.items() if main.get(k) != v}
        assert not drift, f"requirements-{name}.lock differs from requirements.lock (re-run its uv command): {drift}"
    assert not TF_PACKAGES & set(serve)
    assert {"tensorflow", "tf2onnx", "onnxruntime", "huey", "redis", "psycopg", "boto3"} <= set(worker)
    assert set(serve) <= set(worker)


def pins_without_hashes(path: Path) -> list[str]:
    """The pins of a lock that name no sha256: pip and uv then take whatever file the package index serves."""
    bare, current = [], None
    for line in [*path.read_text().splitlines(), ""]:
        if re.match(r"^[A-Za-z0-9_.\-]+(\[[^\]]*\])?==", line) or not line.startswith(" "):
            if current is not None:
                bare.append(current)
            current = line.split(" ")[0] if "==" in line else None
        elif "--hash=sha256:" in line:
            current = None
    return bare


@pytest.mark.parametrize(
    "lock", ["requirements.lock", "deploy/requirements-serve.lock", "deploy/requirements-worker.lock"]
)
def test_every_lock_pins_each_file_by_its_hash(lock):
    """Each pinned package lists its files' sha256 (`--generate-hashes`), so an install refuses a file the package
    index changed (security round 10; the images' locks since session 72)."""
    path = REPO / lock
    assert lock_pins(path), f"{lock}: no pins read"
    assert not pins_without_hashes(path), f"{lock}: pins without --hash (re-run its uv command with --generate-hashes)"


def test_the_serving_image_environment_serves_without_tensorflow(tmp_path):
    """What the serving image installs, built here without Docker: a fresh venv with exactly
    deploy/requirements-serve.lock (uv, from the cache scripts/install.sh filled) and leafdoc's
    sources. `leafdoc serve` runs in it as the image's CMD does: ready, predicts, explains, shows the page."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed (scripts/install.sh installs it)")
    venv = tmp_path / "venv"
    made = subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    lock = DEPLOY / "requirements-serve.lock"
    # From uv's cache; uv may still ask the registry whether a cached entry is fresh (it has been offline
    # refused to use one it had not revalidated), so offline first, then with the package registry.
    for mode in (["--offline"], []):
        installed = subprocess.run(
            [uv, "pip", "install", "-q", *mode, "--python", str(python), "-r", str(lock)],
            capture_output=True,
            text=True,
        )
        if installed.returncode == 0:
            break
    else:
        pytest.skip(f"the serving lock cannot be installed (no cache, no registry): {installed.stderr[-500:]}")
    env = {
        **image_env("serve"),  # the image's environment, with its paths moved here
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
        "PYTHONPATH": str(REPO / "src"),  # the image installs these same sources
        "LEAFDOC_HOME": str(tmp_path / "home"),
        "LEAFDOC_MODEL_DIR": str(REPO / "models" / "starter"),
        "MPLCONFIGDIR": str(tmp_path / "mpl"),
    }
    no_tf = subprocess.run([str(python), "-c", "import tensorflow"], capture_output=True, text=True, env=env)
    assert "No module named 'tensorflow'" in no_tf.stderr
    [cmd] = [json.loads(rest) for word, rest in dockerfile(DOCKERFILES["serve"]) if word == "CMD"]
    port = free_port()
    argv = [str(python), "-m", "leafdoc.cli.main", *cmd[1:]]
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: httpx.get(f"{base}/readyz", timeout=5).json()["ready"], 180, "the server to be ready")
        photo = REPO / "examples" / "apple_cedar_rust.jpg"
        r = httpx.post(f"{base}/v1/predict", files={"file": (photo.name, photo.read_bytes())}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["top_k"][0]["label"] == "Apple___Cedar_apple_rust"
        r = httpx.post(f"{base}/v1/explain", files={"file": (photo.name, photo.read_bytes())}, timeout=60)
        assert r.status_code == 200 and r.json()["overlay_png"], r.text
        # The same photo as an iPhone stores it (HEIC): the image reads it with the [heic] extra of its lock.
        import pillow_heif
        from PIL import Image

        heic = io.BytesIO()
        pillow_heif.from_pillow(Image.open(photo).convert("RGB")).save(heic, quality=92)
        r = httpx.post(f"{base}/v1/predict", files={"file": ("IMG_0001.HEIC", heic.getvalue())}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["top_k"][0]["label"] == "Apple___Cedar_apple_rust"
        page = httpx.get(f"{base}/ui/", timeout=300, follow_redirects=True)
        assert page.status_code == 200 and "<html" in page.text.lower()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    except BaseException:
        print((tmp_path / "serve.log").read_text()[-3000:])
        raise
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log_text = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log_text, log_text[-3000:]


# ---- nginx ---------------------------------------------------------------------------------------------


def nginx() -> str:
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if exe is None:
        pytest.skip("nginx is not installed (scripts/system-packages.sh installs it)")
    return exe


@contextlib.contextmanager
def nginx_in_front(tmp_path, upstream: str):
    """deploy/nginx/nginx.conf run by nginx on 127.0.0.1, with only what ties it to Docker changed (listen port,
    upstream names, pid and temp files): its base URL."""
    port = free_port()
    conf = NGINX_CONF.read_text()
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    conf = conf.replace("http://api:8000", f"http://{upstream}").replace("http://ui:8000", f"http://{upstream}")
    conf = conf.replace("pid /tmp/nginx.pid;", f"pid {tmp_path}/nginx.pid;")
    for kind in ("client-body", "proxy", "fastcgi", "uwsgi", "scgi"):
        conf = conf.replace(f"/tmp/nginx-{kind}", f"{tmp_path}/temp-{kind}")
    user = "" if os.geteuid() != 0 else "user root;\n"  # as root, workers would become `nobody`
    (tmp_path / "nginx.conf").write_text(user + "daemon off;\n" + conf)
    with open(tmp_path / "nginx.log", "wb") as log:
        proc = subprocess.Popen(
            [nginx(), "-e", "stderr", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{base}/nginx-healthz", timeout=2).status_code == 200, 30, "nginx")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def nginx_size(value: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    return int(value[:-1]) * units[value[-1].lower()] if value[-1].isalpha() else int(value)


def directive(conf: str, name: str, block: str | None = None) -> list[str]:
    text = conf
    if block:
        start = conf.index(block)
        text = conf[start : conf.index("}", start)]
    return re.findall(rf"^\s*{name}\s+([^;]+);", text, re.M)


def test_nginx_accepts_the_config_and_its_limits_match_the_service(tmp_path):
    result = subprocess.run(
        [nginx(), "-t", "-q", "-e", "stderr", "-p", str(tmp_path), "-c", str(NGINX_CONF)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    conf = NGINX_CONF.read_text()
    s = Settings(home=tmp_path)
    [body] = directive(conf, "client_max_body_size")
    assert nginx_size(body) == s.max_request_bytes
    [upload_timeout] = directive(conf, "proxy_read_timeout", "location = /v1/uploads")
    assert int(upload_timeout.rstrip("s")) >= s.upload_wait_seconds
    for ingress in k8s_kind("Ingress"):
        if {p["path"] for p in ingress_paths(ingress)} == {"/metrics"}:
            continue  # GET only, at the controller's default body size (1 MiB): private ranges only, tested apart
        size = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
        assert nginx_size(size) == s.max_request_bytes, ingress["metadata"]["name"]
    [cm] = k8s_kind("ConfigMap")
    assert int(cm["data"]["LEAFDOC_MAX_REQUEST_BYTES"]) == s.max_request_bytes


def test_the_offline_page_is_sent_where_the_web_page_runs(tmp_path):
    """/app (the page that diagnoses in the browser) is mounted only with LEAFDOC_UI=true; both deployments sent it to
    the API replicas, which run without it: a 404 for every grower installing the offline page."""
    from fastapi.testclient import TestClient

    from leafdoc.service.app import create_app

    conf = NGINX_CONF.read_text()
    block = conf[conf.index("location /app {") :]
    assert re.search(r"proxy_pass\s+\$ui;", block[: block.index("}")]), "nginx sends /app to the API replicas"
    # and does not spool the 14 MB model to its disk for a client that reads slowly (security round 8)
    assert directive(conf, "proxy_max_temp_file_size", "location /app {") == ["0"]
    assert compose()["services"]["ui"]["environment"]["LEAFDOC_UI"] == "true"
    assert compose()["services"]["api"]["environment"]["LEAFDOC_UI"] == "false"
    by_path = {p["path"]: p["backend"]["service"]["name"] for i in k8s_kind("Ingress") for p in ingress_paths(i)}
    [service] = [s for s in k8s_kind("Service") if s["metadata"]["name"] == by_path["/app"]]
    chosen = service["spec"]["selector"].items()
    pods = [d for d in k8s_kind("Deployment") if chosen <= d["spec"]["template"]["metadata"]["labels"].items()]
    envs = [
        {e["name"]: e.get("value") for e in c.get("env", [])}
        for d in pods
        for c in d["spec"]["template"]["spec"]["containers"]
    ]
    assert envs and all(env.get("LEAFDOC_UI") == "true" for env in envs), "the ingress sends /app to pods without it"
    # and what each side serves: the page's pods have /app, the API's do not
    for ui, status in (("true", 200), ("false", 404)):
        settings = Settings(home=tmp_path / ui, ui=ui == "true", run_consumer=False)
        with TestClient(create_app(settings)) as client:
            assert client.get("/app/").status_code == status, ui


def test_client_addresses_come_from_the_proxy_only():
    """nginx replaces X-Forwarded-For and X-Forwarded-Host with what it saw ($proxy_add_x_forwarded_for appended the
    client's own, which uvicorn read), and the serving image believes forwarded headers from loopback and private
    networks only (it had `*`: any client could name its address and reset its wrong-token limit).
    tests/integration/test_client_addresses.py checks both on a real server."""
    import ipaddress

    conf = NGINX_CONF.read_text()
    headers = dict(h.split(None, 1) for h in directive(conf, "proxy_set_header"))
    assert headers["X-Forwarded-For"] == "$remote_addr"
    assert headers["X-Forwarded-Host"] == "$host" and headers["Host"] == "$host"
    code = re.sub(r"#.*", "", conf)
    assert "$proxy_add_x_forwarded_for" not in code and "$http_x_forwarded" not in code
    trusted = image_env("serve")["FORWARDED_ALLOW_IPS"].split(",")
    assert "*" not in trusted
    networks = [ipaddress.ip_network(t.strip()) for t in trusted]
    assert all(n.is_private for n in networks), trusted
    # A client on the machine that is not the proxy (another loopback address) is not believed.
    assert not any(ipaddress.ip_address("127.0.0.2") in n for n in networks)
    assert any(ipaddress.ip_address("127.0.0.1") in n for n in networks)  # nginx on the same machine


def raw_request(port: int, head: str) -> tuple[int, dict, bytes]:
    """Send only a request head (no body) and read the answer: what nginx says before any body arrives."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head_bytes, _, body = data.partition(b"\r\n\r\n")
        lines = head_bytes.decode().split("\r\n")
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
        while len(body) < int(headers.get("content-length", 0)):
            body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, body


def test_nginx_in_front_of_a_real_server(tmp_path, live_server):
    """The deploy config, run by nginx, with only what ties it to Docker changed: the listen port, the
    upstream names (Docker DNS) and the pid file."""
    with nginx_in_front(tmp_path, live_server.base.removeprefix("http://")) as base:
        port = int(base.rsplit(":", 1)[1])
        assert httpx.get(f"{base}/readyz", timeout=30).json()["ready"] is True
        photo = next((REPO / "examples").glob("*.jpg")).read_bytes()
        r = httpx.post(f"{base}/v1/predict", files={"file": ("leaf.jpg", photo, "image/jpeg")}, timeout=60)
        assert r.status_code == 200 and r.json()["top_k"], r.text
        # Over the limit: refused from the declared length, before any byte of the body, in the API's format.
        too_big = Settings(home=tmp_path).max_request_bytes + 1
        status, headers, body = raw_request(
            port,
            f"POST /v1/uploads HTTP/1.1\r\nHost: x\r\nContent-Type: application/zip\r\n"
            f"Content-Length: {too_big}\r\nConnection: close\r\n\r\n",
        )
        assert status == 413 and headers["content-type"] == "application/json"
        answer = json.loads(body)
        assert answer["error"] == "request_too_large" and answer["message"] and answer["hint"]
        # Just under the limit: nginx passes it on and the API itself judges the body.
        status, headers, body = raw_request(
            port,
            "POST /v1/uploads HTTP/1.1\r\nHost: x\r\nContent-Type: application/zip\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n",
        )
        assert status == 401 and json.loads(body)["error"] == "unauthorized"  # the API's answer: no token
        metrics = httpx.get(f"{base}/metrics", timeout=30)
        assert metrics.status_code == 200  # from loopback, a private address


def test_alert_rules_parse_and_ask_metrics_the_service_exports(tmp_path, tiny_model):
    """deploy/prometheus: every metric an alert asks for is one a serving leafdoc exports (after it has
    answered and had feedback), so no alert silently watches nothing."""
    import io

    from fastapi.testclient import TestClient
    from PIL import Image

    from leafdoc.service.app import create_app

    rules = yaml.safe_load((DEPLOY / "prometheus" / "leafdoc-alerts.yaml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert len(exprs) >= 5
    asked = {m for e in exprs for m in re.findall(r"\b(leafdoc_[a-z_]+)", e)}
    from tests.conftest import PLANTVILLAGE

    from leafdoc.inference.baseline import write_baseline

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    photos = sorted((PLANTVILLAGE / "Apple___healthy").iterdir())[:8]
    write_baseline(model, photos)  # the validation baseline the drift gauges compare with
    s = Settings(home=tmp_path / "home", model_dir=model, ui=False)
    with TestClient(create_app(s)) as client:
        a = client.post("/v1/predict", files={"file": ("leaf.jpg", photos[0].read_bytes(), "image/jpeg")}).json()
        assert client.post(f"/v1/predictions/{a['prediction_id']}/feedback", json={"correct": True}).status_code == 200
        grey = io.BytesIO()
        Image.new("RGB", (300, 300), (128, 128, 128)).save(grey, "PNG")  # a poor photo: an abstention
        assert client.post("/v1/predict", files={"file": ("grey.png", grey.getvalue(), "image/png")}).json()[
            "abstained"
        ]
        client.app.state.leafdoc.prediction_log.flush()
        exported = set(
            re.findall(r"^(leafdoc_[a-z_]+?)(?:_total|_bucket|_count|_sum)?[{ ]", client.get("/metrics").text, re.M)
        )
    asked = {re.sub(r"_total$", "", m) for m in asked}
    assert asked <= exported, asked - exported
