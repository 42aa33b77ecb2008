"""Every knob in one place. Read from the environment (prefix LEAFDOC_) once, then passed down."""

from __future__ import annotations

import difflib
import re
import secrets
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from leafdoc.core.errors import ConfigError

MULTIPART_OVERHEAD = 256 * 1024  # bytes a request of one photo may add for its multipart framing
# The headers with which the web page names the visitor an API call is made for, beside `ui_page_key` (ui/where.py
# sends them, service/ratelimit.py believes them only with the key).
VISITOR_HEADER = "X-Leafdoc-Visitor"
PAGE_KEY_HEADER = "X-Leafdoc-Page-Key"
MAX_AUTO_API_WORKERS = 4  # `leafdoc serve` with no web page and no --workers: one worker per CPU, at most this


# LEAFDOC_* variables that are not settings: read by deploy/stack.sh and compose, the desktop app, the scripts, the
# tests and the notebooks. Any other LEAFDOC_* variable is named by `unknown_variables`.
NOT_SETTINGS = frozenset(
    "LEAFDOC_" + name
    for name in [
        "SHARED",
        "HTTP_PORT",
        "ENV_FILE",
        "ENGINE",
        "BUILD_ARGS",
        "REGISTRY_PYTHON",
        "REGISTRY_DEBIAN",
        "STACK_FILES",
        "STACK_TIMEOUT",
        "STACK_PROJECT",
        "STACK_IMAGES",
        "LOADTEST_IMAGES",
        "DESKTOP_SETTINGS",
        "CONTAINER_TESTS",
        "TEST_PROCESSES",
        "SCREENSHOTS",
        "NB_OOD",
        "NB_MODEL",
        "NB_LIMIT",
        "NB_DATA",
    ]
)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A line for each LEAFDOC_* variable no setting reads, with the setting it may have meant: a misspelt
    LEAFDOC_DATABASE_URL is otherwise ignored in silence, and every replica runs on a SQLite catalog of its own."""
    known = {f"LEAFDOC_{name.upper()}" for name in Settings.model_fields}
    lines = []
    for var in sorted(environ):
        name = var.upper()  # settings are read whatever their case
        if not name.startswith("LEAFDOC_") or name in known or name in NOT_SETTINGS:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        lines.append(f"{var} is not a setting and is ignored" + (f" (did you mean {close[0]}?)" if close else "."))
    return lines


MIN_ADMIN_TOKEN = 16  # characters: wrong guesses are limited per address, not for a client with many addresses


TOKEN_ADVICE = (
    f"{MIN_ADMIN_TOKEN} or more random characters, e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(24))'`"
)
PLACEHOLDER = "change-me"  # in deploy/leafdoc.env.example's and deploy/k8s/secret.yaml's values, to be replaced


def placeholder_admin_token(token: str | None) -> str | None:
    """Why `leafdoc serve` refuses to start with the admin token the shipped deployment files hold
    (`change-me-admin-token`: 21 characters, long enough for weak_admin_token, and known to everyone)."""
    if token is None or PLACEHOLDER not in token.lower():
        return None
    return (
        "LEAFDOC_ADMIN_TOKEN is still the placeholder of leafdoc's deployment files: anyone who has read them could "
        "upload photos, retrain and change which model answers."
    )


def weak_admin_token(token: str | None) -> str | None:
    """What `leafdoc serve` says of an admin token short enough to guess (it took any length in silence)."""
    if token is None or len(token) >= MIN_ADMIN_TOKEN:
        return None
    return (
        f"warning: LEAFDOC_ADMIN_TOKEN is {len(token)} characters: whoever guesses it can upload photos, retrain and "
        f"change which model answers. Use {TOKEN_ADVICE}."
    )


def without_password(url: str) -> str:
    """A URL as a log or a message may show it: the password it carries replaced by *** (postgresql://leafdoc:***@
    postgres/leafdoc), since container logs are read by more people than the secrets file."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("leafdoc", appauthor=False))


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")  # a LEAFDOC_QUEUE_URL that names a Redis


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEAFDOC_", extra="ignore")

    home: Path = Field(
        default_factory=_default_home,
        description="Data home: catalog, store, cache, models, queue.",
    )
    database_url: str | None = Field(None, description="SQLAlchemy URL of the catalog; default: SQLite under home.")
    store_url: str | None = Field(
        None, description="Blob store: a folder path or s3://bucket/prefix; default: home/store."
    )
    s3_endpoint_url: str | None = Field(None, description="Endpoint of an S3-compatible server (MinIO, moto...).")
    queue_url: str | None = Field(None, description="Job queue: redis://... at scale; default: SQLite under home.")
    admin_token: str | None = Field(
        None, description="Token for uploads, training and promotion; unset = admin routes refuse."
    )

    # Limits for anything that reads untrusted images.
    max_image_pixels: int = Field(
        40_000_000,
        description="Larger images are refused (decompression bombs); a JPEG decoded reduced, at that scale.",
    )
    max_image_bytes: int = Field(25 * 1024 * 1024, description="Largest single image file accepted.")
    max_request_bytes: int = Field(200 * 1024 * 1024, description="Largest HTTP request body (bulk uploads).")
    max_json_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Largest body of every route that takes JSON or nothing (feedback, review, jobs, promotion, the "
        "web page's events): refused while it is read, before it is parsed.",
    )
    admin_failures_per_minute: int = Field(
        10,
        ge=1,
        description="Wrong admin tokens one client address may send per minute, per API worker; after that every "
        "admin request from it, right token or not, is answered 429 until the minute has refilled.",
    )
    max_zip_members: int = Field(100_000, description="Most files accepted in one zip.")
    max_zip_uncompressed_bytes: int = Field(4 * 1024**3, description="Largest total size a zip may unpack to.")
    max_batch_images: int = Field(32, description="Most images in one /v1/predict/batch request.")
    shed_after_seconds: float = Field(
        1.0,
        ge=0,
        description="Predictions (/v1/predict, /v1/predict/batch, /v1/explain) that find their API worker's event loop "
        "this many seconds behind are answered 503 `busy` with Retry-After at once, instead of waiting for work their "
        "client would give up on; other routes (the probes, /metrics, feedback, admin, the web page) are never shed, "
        "and stay answered within a few times this. 0: never.",
    )
    client_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="A client of `leafdoc serve` must send a request's headers within this many seconds of opening "
        "its connection (or of the request's first byte), and may then go this long without sending any of its body; "
        "otherwise it is answered 408 `request_timeout` and its connection closed (nginx's client_header_timeout and "
        "client_body_timeout, with their default).",
    )
    body_min_bytes_per_second: int = Field(
        1024,
        ge=0,
        description="A request body must come at least this fast, on average over each window of "
        "body_rate_window_seconds (the first one too; time the server is not reading does not count); otherwise it "
        "is answered 408 `request_timeout` and its connection closed, so a client cannot hold what it sent by "
        "trickling the rest. 1 KiB/s is a third of a phone on GPRS. 0: no floor.",
    )
    body_rate_window_seconds: float = Field(
        30.0,
        gt=0,
        description="The window body_min_bytes_per_second is averaged over: a link may stall for most of one and "
        "catch up.",
    )
    max_body_bytes_in_flight: int = Field(
        256 * 1024 * 1024,
        ge=0,
        description="Bytes of request bodies one API worker takes in at once (each request's Content-Length; a "
        "chunked body counts as its route's limit; until its answer is sent): a request that would take it over is "
        "answered 503 `busy` with Retry-After before its body is read, and one larger than this is refused with 413. "
        "Keep it at least max_request_bytes. 0: no budget.",
    )
    max_concurrent_decodes: int = Field(
        4,
        ge=1,
        description="Photos decoded at once per API worker. Each may hold up to 3 bytes x max_image_pixels of "
        "decoded pixels, so a worker's photos never hold more than this many times that.",
    )

    # Serving behaviour.
    model_dir: Path | None = Field(None, description="Model folder to serve when the registry has none.")
    onnx_variant: Literal["fp32", "int8", "fp16"] | None = Field(
        None,
        description="Which ONNX file of a model folder predictions run on: model.onnx (fp32), or the copy that "
        "`leafdoc export --format onnx-int8|onnx-fp16` wrote beside it. The API serves a model version that has "
        "no such copy with model.onnx (and logs it); `leafdoc predict` refuses it. A retraining job makes this "
        "copy of its candidate before registering it. Unset: the API serves a version's int8 copy where its card "
        "says it gives model.onnx's top-1 on at least 99% of 125 or more validation photos and the CPU has VNNI, else "
        "model.onnx (modelfolder.default_variant); `leafdoc predict` and `evaluate` run model.onnx.",
    )
    api_workers: int | None = Field(
        None,
        ge=1,
        description="API worker processes `leafdoc serve` runs (its --workers). Unset: one per CPU this process may "
        "use (its "
        f"affinity, capped by a container's CPU quota), at most {MAX_AUTO_API_WORKERS}: each holds its own copy of "
        "the model (about 250-290 MB), so beyond that run more replicas or say how many. With several workers "
        "the web page runs in a process of its own, to which the workers forward /ui.",
    )
    predict_on_loop: bool | None = Field(
        None,
        description="Predict a single photo on the API worker's event loop rather than in its threadpool (no "
        "thread hand-off: less CPU per request). Unset: `leafdoc serve` turns it on when it runs at least one worker "
        "per CPU it may use, where a worker has no second core to give its threads anyway.",
    )
    loop_decode_bytes: int = Field(
        8 * 1024 * 1024,
        ge=0,
        description="With predict_on_loop, only photos whose decoding costs less than this go on the loop (a "
        "sequential JPEG's size, a PNG's pixels x 3 from its header); others, progressive JPEGs and any other format "
        "go to the threadpool, so one photo never holds up the worker's other requests for long.",
    )
    int8_any_cpu: bool = Field(
        False,
        description="Run a model's int8 copy on x86 CPUs without VNNI too, where its answers differ from "
        "model.onnx's and it is no faster (leafdoc/cpuflags.py): to measure it there. Off: such CPUs use model.onnx.",
    )
    top_k: int = 3
    promote_metric: str = "accuracy"
    promote_margin: float = Field(0.0, description="A candidate is promoted if metric >= serving metric - margin.")
    run_consumer: bool = Field(True, description="Run the job consumer beside the API (embedded mode).")
    default_dataset: str | None = Field(
        None,
        description="Dataset that uploads and retraining use when a request names none; "
        "default: the dataset of the serving model.",
    )
    nonleaf_dirs: str = Field(
        "",
        description="Folders of photos that are not leaves (separated by ':'): retraining jobs calibrate the "
        "not-a-leaf check with them when neither the job's options nor the serving model's card name any.",
    )
    field_dirs: str = Field(
        "",
        description="Folders of field photos (separated by ':'): retraining jobs calibrate the unlike-training check "
        "with them when neither the job's options nor the serving model's card say which (an empty list in either "
        "says: none, as for a model trained on field photos).",
    )
    advice_dir: Path | None = Field(
        None,
        description="A folder of knowledge files (*.toml, see leafdoc/advice/knowledge/README.md) that add advice "
        "for labels of your own or replace shipped entries, label by label.",
    )
    model_check_seconds: float = Field(1.0, description="How often each API worker checks the serving pointer.")
    job_lease_seconds: float = Field(
        60.0, description="A training job or lock not renewed for this long belongs to a dead process."
    )
    job_max_attempts: int = Field(
        3,
        ge=1,
        description="How many times a training job is run when its worker is lost (killed, evicted, restarted); "
        "each attempt continues from the checkpoint of the last finished epoch.",
    )
    worker_poll_seconds: float = Field(1.0, description="How often an idle worker looks at the queue.")
    upload_wait_seconds: float = Field(
        600.0, description="How long an upload waits for another upload to the same dataset to finish."
    )
    leftover_seconds: float = Field(
        3600.0,
        gt=0,
        description="A spooled upload or half-written store file untouched this long is a dead process's leftover "
        "and is removed (one of a process of this host that no longer runs goes at once): service/leftovers.py.",
    )

    # Predictions, feedback and monitoring (service/predictionlog.py, routes/feedback.py, routes/monitoring.py).
    keep_photos: bool = Field(
        False,
        description="Keep each predicted photo in the store (content-addressed, as uploads are) so an admin can "
        "review it and add it to a dataset. Off by default: only the answer and any feedback are recorded.",
    )
    prediction_buffer: int = Field(
        10_000,
        ge=1,
        description="Prediction records waiting to be written to the catalog, per API worker; when full, new "
        "records are dropped and counted (leafdoc_prediction_records_dropped).",
    )
    prediction_buffer_bytes: int = Field(
        64 * 1024 * 1024,
        ge=0,
        description="With keep_photos: bytes of photos waiting to be stored, per API worker; over it, a record "
        "is kept without its photo (counted).",
    )
    kept_photos_max_mb: float = Field(
        5000.0,
        gt=0,
        description="With keep_photos: most megabytes (MiB) kept photos may take in the store, counted in the catalog, "
        "so across every API worker and replica; over it, new photos are not kept (the answer is still given and "
        "recorded; counted in leafdoc_prediction_photos_dropped) and the log says so once. A photo a review adds to a "
        "dataset leaves the quota; kept_photos_days deletes old ones.",
    )
    kept_photos_per_client_hour: int = Field(
        100,
        ge=1,
        description="With keep_photos: photos kept per client address an hour (the address the feedback limit sees); "
        "past it, that client's photos are answered but not kept, so one client cannot take the whole quota. Shared "
        "by every API worker when the job queue is in Redis, else counted per worker.",
    )
    kept_photos_days: int = Field(
        0,
        ge=0,
        description="With keep_photos: delete a kept photo this many days after its last answer, unless a dataset "
        "holds it (an admin's review added it); checked every hour. 0: kept photos stay until deleted by hand "
        "(kept_photos_max_mb still bounds them).",
    )
    prediction_flush_seconds: float = Field(0.5, gt=0, description="How often buffered records are written.")
    monitoring_open: bool = Field(
        False,
        description="Let anyone read GET /v1/monitoring (answers per hour, the mix of diagnoses, feedback and drift: "
        "a business's volumes and what its growers see). Off by default: it needs the admin token.",
    )
    feedback_per_minute: int = Field(
        20, ge=1, description="Feedback requests one client address may send per minute (then 429)."
    )
    rate_limit_clients: int = Field(
        10_000, ge=1, description="Client addresses the feedback rate limiter remembers (oldest forgotten first)."
    )

    # The web page (Gradio, mounted at /ui).
    ui: bool = Field(True, description="Mount the web page at /ui (false: API only, and Gradio is never imported).")
    ui_api_url: str | None = Field(
        None,
        description="Base URL of the API the web page talks to; default: this same server (the address "
        "the request arrived on; in the page's own process, serve's --host and --port).",
    )
    ui_build_at_start: bool = Field(
        True,
        description="In the page's own process (serve with several API workers): build the page when the process "
        "starts, in a thread, so the first visitor does not wait the seconds Gradio takes to import and build "
        "(false: on the first visit; the process holds about 170 MB less until then).",
    )
    ui_folder_bytes: int = Field(
        1024**3,
        ge=0,
        description="Most bytes the web page's folder (visitors' uploads, the pictures it shows; cache/ui under the "
        "data home) may hold; an upload that would take it over is answered 507. Uploads are deleted after an hour.",
    )
    ui_events_per_visitor: int = Field(
        20,
        ge=1,
        description="Events (a diagnosis, a tab opening) one visitor's address may have in the web page's queue at "
        "once, waiting, running, or done but not yet read by its page; the next is answered 503 until they are read. "
        "A browser reads each as it is done; raise it only for many visitors behind one address.",
    )
    ui_events_total: int = Field(
        200,
        ge=1,
        description="Events all visitors together may have in the web page's queue at once (waiting, running, or "
        "done but not yet read), which bounds the page process's memory however many addresses send them; the next "
        "is answered 503 busy with Retry-After. 200: about 50 s of diagnoses at the page's 4 at a time.",
    )
    allowed_hosts: str = Field(
        "",
        description="Host names the web page may be visited by (separated by commas; `*`: any). Unset: the address a "
        "visitor reached this server by, localhost and this machine's host name only. Behind a reverse proxy, its "
        "public name. The page writes the name it was visited by into its own URLs, so a request naming any other "
        "(Host or X-Forwarded-Host) is answered 400.",
    )
    cors_origins: str = Field(
        "",
        pattern=r"^\s*(\*|https?://[^/\s,]+(\s*,\s*https?://[^/\s,]+)*)?\s*$",
        description="Web origins whose pages may call the API from the browser (`https://farm.example`, separated by "
        "commas; `*`: any), answered with CORS headers (Access-Control-Allow-Origin). Unset: none, and a page of "
        "another site cannot read the API's answers: call it from your app's server, or serve your page behind the "
        "same reverse proxy as leafdoc. No cookies are involved: an admin route still needs its token.",
    )
    ui_page_key: str = Field(
        default_factory=lambda: secrets.token_urlsafe(32),
        min_length=16,
        description="A secret the web page sends with each API call it makes for a visitor, beside that visitor's "
        "address, so the API's per-address limits (wrong admin tokens, feedback) count each visitor apart and not "
        "every visitor as the page's one address; a call without it counts against its own connection's address. "
        "Unset: a random one, which `leafdoc serve` hands to its API workers and the page's process. Set it (the same "
        "long random value on both) only when LEAFDOC_UI_API_URL names another server.",
    )
    ui_page_socket: Path | None = Field(
        None,
        description="Set by `leafdoc serve` with several API workers, not by hand: the Unix socket of the page's "
        "own process, to which every worker forwards /ui (src/leafdoc/ui/proxy.py).",
    )

    @cached_property
    def catalog_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'catalog.sqlite'}"

    @property
    def store_location(self) -> str:
        return self.store_url or str(self.home / "store")

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def queue_path(self) -> Path:
        return self.home / "queue.sqlite"

    @property
    def redis_url(self) -> str | None:
        """The job queue's URL when it is a Redis (the queue, and the limits shared through it); None otherwise."""
        url = self.queue_url or ""
        return url if url.startswith(REDIS_SCHEMES) else None

    @property
    def mlruns_dir(self) -> Path:
        return self.home / "mlruns"

    @classmethod
    def load(cls) -> Settings:
        """Settings from the environment; a bad LEAFDOC_* value is a ConfigError naming the variable."""
        try:
            return cls()
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                field = ".".join(str(part) for part in err["loc"]) or "?"
                shown = repr(err.get("input"))[:80]
                problems.append(f"LEAFDOC_{field.upper()}={shown}: {err['msg']}")
            raise ConfigError(
                "Bad setting in the environment: " + "; ".join(problems) + ".",
                hint="Fix or unset the variable (the README links the Settings table, docs/cli.md: what each takes).",
            ) from None

    def ensure_home(self) -> Path:
        for p in (self.home, self.cache_dir, self.models_dir):
            p.mkdir(parents=True, exist_ok=True)
        return self.home
