"""nginx (Debian's package, run as a plain foreground process with a generated config) in front of two
`leafdoc serve` replicas sharing one data home: predictions through nginx reach both replicas, and when
one replica dies the other answers every request."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from loadtest.nginx import find_nginx, start_nginx
from tests.live_server import answering_copy, free_port, start_server

from leafdoc.core.settings import Settings
from leafdoc.data.catalog import Catalog

pytestmark = pytest.mark.skipif(find_nginx() is None, reason="nginx is not installed (Debian: apt-get install nginx)")

PREDICTED = re.compile(r'^leafdoc_http_requests_total\{(?=[^}]*route="/v1/predict")(?=[^}]*status="200")[^}]*\} (\S+)$')


def predictions_answered(base: str) -> int:
    """/v1/predict requests this replica answered with 200, from its own /metrics."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return int(sum(float(m.group(1)) for line in text.splitlines() if (m := PREDICTED.match(line))))


def predict(base: str, photo: bytes) -> httpx.Response:
    return httpx.post(f"{base}/v1/predict", files={"file": ("leaf.jpg", photo, "image/jpeg")}, timeout=30)


def test_nginx_balances_predictions_over_two_replicas_and_survives_losing_one(tmp_path, tiny_model, leaf_folder):
    model = answering_copy(tiny_model, tmp_path / "model")
    settings = Settings(home=tmp_path / "home")  # one data home: catalog, store and queue shared by both replicas
    settings.ensure_home()
    Catalog(settings.catalog_url).dispose()  # the schema, once, before both start
    home = str(settings.home)
    photos = [p.read_bytes() for p in sorted(leaf_folder.rglob("*.jpg"))[:6]]
    with ThreadPoolExecutor(2) as pool:  # start together (seeding the registry takes a lock)
        starting = [
            pool.submit(start_server, tmp_path / "r1", model, LEAFDOC_HOME=home),
            pool.submit(start_server, tmp_path / "r2", model, LEAFDOC_HOME=home, LEAFDOC_RUN_CONSUMER="false"),
        ]
    replicas = [f.result() for f in starting if f.exception() is None]
    nginx = None
    try:
        assert len(replicas) == 2, "\n".join(str(f.exception()) for f in starting if f.exception())
        first = replicas[0]
        ports = [int(r.base.rsplit(":", 1)[1]) for r in replicas]
        nginx = start_nginx(tmp_path / "nginx", free_port(), ports)

        answers = [predict(nginx.base, photos[i // 2]) for i in range(12)]  # each photo twice in a row
        assert [r.status_code for r in answers] == [200] * 12, [r.text for r in answers if r.status_code != 200]
        assert all(r.json()["top_k"] and r.json()["model_version"] == 1 for r in answers)
        # Whichever replica answered (round robin: the other one, the second time), a photo gets the same
        # answer: both serve the one registered model.
        for i in range(len(photos)):
            assert answers[2 * i].json()["top_k"] == answers[2 * i + 1].json()["top_k"], i
        counts = [predictions_answered(r.base) for r in replicas]
        assert sum(counts) == 12 and min(counts) >= 3, f"requests per replica: {counts}"

        first.proc.kill()  # a crash, not a clean shutdown
        first.proc.wait(timeout=30)
        survivor = replicas[1]
        before = predictions_answered(survivor.base)
        answers = [predict(nginx.base, photos[i % len(photos)]) for i in range(8)]
        assert [r.status_code for r in answers] == [200] * 8, [r.text for r in answers if r.status_code != 200]
        assert predictions_answered(survivor.base) - before == 8
        assert httpx.get(f"{nginx.base}/readyz", timeout=10).json()["ready"] is True
    finally:
        if nginx is not None:
            nginx.stop()
        for r in replicas:
            r.stop()
