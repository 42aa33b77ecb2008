"""Locust load test of `leafdoc serve` with real leaf photos.

Each simulated user sends, with no pause between requests (a closed loop: the number of users is the
number of requests in flight), mostly single-photo diagnoses (`POST /v1/predict`), some batches of a few
photos (`POST /v1/predict/batch`), and a few catalogue and statistics reads (`/v1/datasets`,
`/v1/datasets/{name}/stats`, `/v1/models`, `/metrics`). Request names in Locust's statistics are the
request types the load-test report shows: `predict single`, `predict batch`, and the read routes.

    locust -f loadtest/locustfile.py --headless -u 8 -t 30s -H http://127.0.0.1:8000 [--images DIR]

Photos come from `--images DIR` or LEAFDOC_LOADTEST_IMAGES, else ../shared/datasets/plantvillage, else
examples/ (see loadtest/images.py). Tags select a workload: `--tags single` sends single diagnoses only.
`--phone` sends phone photos instead (real field photos of 1,500 px or more, and 12 MP JPEGs made from them);
`--only-12mp` keeps the 12 MP JPEGs alone. `--phone-share F` keeps the leaf photos and makes a share F of the single
diagnoses 12 MP JPEGs instead, named `predict 12 MP` in the statistics: both kinds of photo at the same load.

FastHttpUser (geventhttpclient) rather than HttpUser (requests): on a 2-core machine the client shares
the CPU with the server, and it costs several times less CPU per request.
"""

from __future__ import annotations

import json
import random
import resource
import time
from pathlib import Path

import gevent
from locust import FastHttpUser, constant, events, tag, task

try:  # run by Locust from the repository root or by the load-test runner
    from loadtest.images import image_dir, load_images, multipart, phone_photos
except ImportError:  # locust -f loadtest/locustfile.py with loadtest/ itself on sys.path
    from images import image_dir, load_images, multipart, phone_photos

SINGLE, BATCH, TWELVE_MP = "predict single", "predict batch", "predict 12 MP"
IMAGES: list[tuple[str, bytes]] = []
PHONE: list[tuple[str, bytes]] = []  # --phone-share: the 12 MP JPEGs sent among IMAGES
PHONE_SHARE = 0.0
BATCH_SIZE = 4


@events.init_command_line_parser.add_listener
def _options(parser):
    parser.add_argument("--images", default=None, help="Folder of leaf photos (default: see loadtest/images.py).")
    parser.add_argument("--image-limit", type=int, default=300, help="Photos to load from the folder (sampled).")
    parser.add_argument("--batch-size", type=int, default=4, help="Photos per /v1/predict/batch request.")
    parser.add_argument("--cpu-file", default=None, help="Write the CPU seconds Locust used during the test here.")
    parser.add_argument(
        "--phone",
        action="store_true",
        help="Send phone photos instead: real field photos of 1,500 px or more and 12 MP JPEGs made from them.",
    )
    parser.add_argument(
        "--phone-images", default=None, help="Folder of large photos for --phone (default: field-corn)."
    )
    parser.add_argument("--only-12mp", action="store_true", help="With --phone: the 12 MP JPEGs alone.")
    parser.add_argument(
        "--phone-share",
        type=float,
        default=0.0,
        help="Send this share of the single diagnoses as 12 MP JPEGs, the rest as the leaf photos.",
    )
    parser.add_argument(
        "--shrink",
        action="store_true",
        help="With --phone: send the photos as leafdoc's web page and desktop app do (1024 px long side, JPEG 90).",
    )


@events.init.add_listener
def _load(environment, **_):
    global BATCH_SIZE, PHONE_SHARE
    opts = environment.parsed_options
    folder = image_dir(getattr(opts, "images", None))
    phone_dir = getattr(opts, "phone_images", None)
    phone_dir = Path(phone_dir) if phone_dir else None
    if getattr(opts, "phone", False):
        shrink, only_12mp = getattr(opts, "shrink", False), getattr(opts, "only_12mp", False)
        IMAGES[:] = phone_photos(phone_dir, shrink=shrink, only_12mp=only_12mp)
    else:
        IMAGES[:] = load_images(folder, limit=getattr(opts, "image_limit", 300))
    PHONE_SHARE = min(1.0, max(0.0, getattr(opts, "phone_share", 0.0) or 0.0))
    if PHONE_SHARE:
        PHONE[:] = phone_photos(phone_dir, only_12mp=True)
    BATCH_SIZE = max(1, getattr(opts, "batch_size", 4))
    # gevent's loop caches "now": after a slow start-up (imports, reading photos on a busy machine) Locust's
    # --run-time timer, set right after this, would otherwise fire seconds early.
    gevent.get_hub().loop.update_now()


_CLOCKS: dict[str, float] = {}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@events.test_start.add_listener
def _start_clock(environment, **_):
    _CLOCKS.update(cpu=_cpu(), wall=time.monotonic())


@events.test_stop.add_listener
def _stop_clock(environment, **_):
    """The client's own CPU use while it sent requests (not its start-up): the load test reports it."""
    path = getattr(environment.parsed_options, "cpu_file", None)
    if path and _CLOCKS:
        cpu, wall = _cpu() - _CLOCKS["cpu"], time.monotonic() - _CLOCKS["wall"]
        with open(path, "w") as f:
            json.dump({"cpu_s": cpu, "wall_s": wall}, f)


class LeafdocUser(FastHttpUser):
    wait_time = constant(0)
    # A slow answer is a measurement, not a failure; a refused connection or a 5xx is a failure.
    network_timeout = 60.0
    connection_timeout = 10.0

    def on_start(self):
        self.rng = random.Random()
        self.dataset = None
        with self.client.get("/v1/datasets", name="/v1/datasets", catch_response=True) as r:
            if r.status_code == 200:
                names = [d["name"] for d in r.json().get("datasets", [])]
                self.dataset = names[0] if names else None

    def _photos(self, n: int) -> list[tuple[str, bytes]]:
        return [self.rng.choice(IMAGES) for _ in range(n)]

    @tag("single", "predict")
    @task(30)
    def predict_single(self):
        phone = PHONE_SHARE and self.rng.random() < PHONE_SHARE
        body, ctype = multipart("file", [self.rng.choice(PHONE)] if phone else self._photos(1))
        with self.client.post(
            "/v1/predict",
            data=body,
            headers={"Content-Type": ctype},
            name=TWELVE_MP if phone else SINGLE,
            catch_response=True,
        ) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}: {r.text[:200]}")
            elif b'"top_k"' not in r.content:
                r.failure(f"no top_k in the answer: {r.text[:200]}")

    @tag("batch", "predict")
    @task(3)
    def predict_batch(self):
        body, ctype = multipart("files", self._photos(BATCH_SIZE))
        with self.client.post(
            "/v1/predict/batch", data=body, headers={"Content-Type": ctype}, name=BATCH, catch_response=True
        ) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}: {r.text[:200]}")
                return
            results = json.loads(r.content)["results"]
            errors = [x["error"] for x in results if x["error"] or not x["prediction"]]
            if len(results) != BATCH_SIZE or errors:
                r.failure(f"{len(results)} results, errors: {errors[:2]}")

    @tag("reads")
    @task(1)
    def datasets(self):
        self.client.get("/v1/datasets", name="/v1/datasets")

    @tag("reads")
    @task(1)
    def models(self):
        self.client.get("/v1/models", name="/v1/models")

    @tag("reads")
    @task(1)
    def dataset_stats(self):
        if self.dataset:
            self.client.get(f"/v1/datasets/{self.dataset}/stats?sample=20", name="/v1/datasets/{name}/stats")

    @tag("reads")
    @task(1)
    def metrics(self):
        self.client.get("/metrics", name="/metrics")
