"""A small client for the leafdoc API, shared by the web page (/ui) and the desktop app.

Both apps talk to the service through this one class, so they show the same answers, datasets and model
versions. Every failure is an `ApiError` whose message a person can read (server down, wrong token,
bad photo), with the server's own hint when it sent one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
UPLOAD_TIMEOUT = httpx.Timeout(600.0, connect=5.0)
BUSY_RETRIES = 3  # a prediction the server shed as `busy` (503, nothing done) is sent again after its Retry-After
BUSY_WAIT_MAX_SECONDS = 5.0


log = logging.getLogger(__name__)


READY_CHECKS, READY_CHARS = 6, 200  # of a not-ready server's /readyz `checks`, what the app shows


class ApiError(Exception):
    """What went wrong talking to the server, in plain words."""

    def __init__(self, message: str, hint: str | None = None, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message, self.hint, self.status, self.code = message, hint, status, code

    def __str__(self) -> str:
        return self.message + (f"\n{self.hint}" if self.hint else "")


class LeafdocClient:
    def __init__(
        self,
        base_url: str,
        admin_token: str | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        headers: dict[str, str] | None = None,
    ):
        """`headers`: sent with every request (the web page's, naming the visitor it calls for: ui/where.py)."""
        self.base_url = base_url.rstrip("/")
        self.admin_token = admin_token or None
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LeafdocClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- plumbing ----------------------------------------------------------------------------

    def _headers(self, admin: bool) -> dict[str, str]:
        if not admin:
            return {}
        if not self.admin_token:
            raise ApiError("This needs the admin token.", hint="Enter the server's admin token (LEAFDOC_ADMIN_TOKEN).")
        return {"Authorization": f"Bearer {self.admin_token}"}

    def request(
        self,
        method: str,
        path: str,
        *,
        admin: bool = False,
        headers: dict | None = None,
        accept: tuple[int, ...] = (),
        **kwargs,
    ) -> httpx.Response:
        """The server's answer, sent again while it says it is busy; an error status raises ApiError unless `accept`
        names it."""
        headers = {**self._headers(admin), **(headers or {})}
        r = self._send(method, path, headers, kwargs)
        for _ in range(BUSY_RETRIES):
            if not _busy(r):
                break
            time.sleep(_retry_after(r))
            r = self._send(method, path, headers, kwargs)
        if r.status_code >= 400 and r.status_code not in accept:
            raise _error_from(r)
        return r

    def _send(self, method: str, path: str, headers: dict, kwargs: dict) -> httpx.Response:
        try:
            return self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TimeoutException:
            raise ApiError(
                f"The leafdoc server at {self.base_url} did not answer in time.",
                hint="It may be busy (training?); try again in a moment.",
            ) from None
        except httpx.TransportError as exc:
            raise ApiError(
                f"Cannot reach the leafdoc server at {self.base_url} ({exc.__class__.__name__}).",
                hint="Check that it is running (`leafdoc serve`) and that the address is right.",
            ) from None
        except httpx.InvalidURL:  # a name typed into a form, tens of thousands of characters long (security round 8)
            raise ApiError(
                "The request was not sent: a name or class in it is far too long.",
                hint="Dataset names and classes are at most 200 characters.",
            ) from None

    def get_json(self, path: str, *, admin: bool = False, **params) -> Any:
        params = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, admin=admin, params=params).json()

    # ---- diagnosis ---------------------------------------------------------------------------

    def predict(
        self, image: bytes, filename: str = "photo.jpg", top_k: int | None = None, crop: str | None = None
    ) -> dict:
        """The diagnosis of one photo. `crop`: the crop the leaf is of (`tomato`, as `models()` lists it under
        `crops`), if known: the answer then chooses among that crop's labels only; None: among all."""
        return self._post_image("/v1/predict", image, filename, top_k, crop)

    def explain(
        self,
        image: bytes,
        filename: str = "photo.jpg",
        top_k: int | None = None,
        crop: str | None = None,
        lang: str | None = None,
    ) -> dict:
        """The diagnosis plus `overlay_png` (base64): the heat map of where the model looked (`crop`: as `predict`;
        `lang`: the language of its words, en, es, fr or hi)."""
        return self._post_image("/v1/explain", image, filename, top_k, crop, lang)

    def predict_batch(self, images: list[tuple[str, bytes]], top_k: int | None = None, crop: str | None = None) -> dict:
        """Several photos of one crop (`crop`: as `predict`) in one request."""
        files = [("files", (name, data, "application/octet-stream")) for name, data in images]
        params = {"top_k": top_k} if top_k else {}
        data = {"crop": crop} if crop else None
        return self.request("POST", "/v1/predict/batch", files=files, data=data, params=params).json()

    def _post_image(
        self, path: str, image: bytes, filename: str, top_k: int | None, crop: str | None, lang: str | None = None
    ) -> dict:
        params: dict = {"top_k": top_k} if top_k else {}
        if lang:
            params["lang"] = lang
        files = {"file": (Path(filename).name or "photo.jpg", image, "application/octet-stream")}
        data = {"crop": crop} if crop else None
        return self.request("POST", path, files=files, data=data, params=params).json()

    def crops(self) -> list[str]:
        """The crops the serving model knows, as the API names them (`tomato`, `bell pepper`): what `crop` takes.
        Empty when no version serves."""
        from leafdoc.words.photo_guide import serving_crops

        return serving_crops(self.models())

    def advice(self, label: str, lang: str | None = None) -> dict:
        """A label's full knowledge entry: symptoms, look-alikes, what to do, sources (GET /v1/advice/{label}), in
        `lang` as far as it is translated (its `untranslated` fields are English)."""
        return self.get_json("/v1/advice/" + quote(label, safe=""), lang=lang)

    def advice_for(self, answer: dict) -> dict | None:
        """The full entry behind a prediction answer's `advice`, or None: abstained, no entry for its label,
        or the server could not give it (the answer's summary still stands)."""
        advice = answer.get("advice")
        if answer.get("abstained") or not advice or not advice.get("available"):
            return None
        try:
            return self.advice(advice["label"], answer.get("language"))
        except ApiError as exc:
            log.warning("the advice for %r could not be fetched: %s", advice["label"], exc)
            return None

    def feedback(self, prediction_id: str, correct: bool, label: str | None = None) -> dict:
        """Was this answer right? (and, when not, what the leaf actually has: one of the model's labels)"""
        body = {"correct": correct, **({"label": label} if label else {})}
        return self.request("POST", f"/v1/predictions/{prediction_id}/feedback", json=body).json()

    def monitoring(self, period: str = "hour", hours: int | None = None) -> dict:
        """The figures need the admin token, sent when this client has one: without, only a server that opened
        them (LEAFDOC_MONITORING_OPEN) answers (401 otherwise)."""
        return self.get_json("/v1/monitoring", admin=bool(self.admin_token), period=period, hours=hours)

    # ---- service state -----------------------------------------------------------------------

    def ready(self) -> dict:
        """GET /readyz's answer, ready or not: a server not ready answers 503 with the same body, whose `checks` say
        which part is not (the app showed that body as text, cut at 200 characters). Only what the app shows is kept
        of it, each part cut short, either way: a server is not trusted to send a sensible body (security rounds 8
        and 9: a 200 with a 5 MB `model_version` took 4.9 s a paint of the status bar)."""
        r = self.request("GET", "/readyz", accept=(503,))
        try:
            body = r.json()
        except (json.JSONDecodeError, ValueError):
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("checks"), dict):
            if r.status_code == 503:
                raise _error_from(r)
            raise ApiError(
                "the server's /readyz answer is not leafdoc's.",
                hint="Check the server's address.",
                status=r.status_code,
            )
        checks = list(body["checks"].items())[:READY_CHECKS]
        version = body.get("model_version")
        return {
            "ready": r.status_code != 503 and body.get("ready") is True,
            "status": str(body.get("status"))[:40],
            "checks": {str(k)[:40]: str(v)[:READY_CHARS] for k, v in checks},
            "model_version": version if type(version) is int and 0 < version < 10**9 else None,  # a number, or none
            "keep_photos": body.get("keep_photos") is True,
        }

    def datasets(self) -> list[dict]:
        return self.get_json("/v1/datasets")["datasets"]

    def dataset_stats(self, name: str, version: int | None = None, sample: int | None = None) -> dict:
        return self.get_json(f"/v1/datasets/{name}/stats", version=version, sample=sample)

    def dataset_plot(self, name: str, kind: str, version: int | None = None, sample: int | None = None) -> bytes:
        """PNG bytes; kind is class_distribution, sizes, colour, sharpness or samples."""
        params = {k: v for k, v in {"version": version, "sample": sample}.items() if v is not None}
        return self.request("GET", f"/v1/datasets/{name}/plots/{kind}.png", params=params).content

    def models(self) -> dict:
        """{serving_version, models: [...], history: [...]}"""
        return self.get_json("/v1/models")

    def model(self, version: int) -> dict:
        return self.get_json(f"/v1/models/{version}")

    # ---- admin -------------------------------------------------------------------------------

    def check_token(self) -> None:
        """Raises ApiError if the admin token is missing or wrong."""
        self.get_json("/v1/uploads", admin=True, limit=1)

    def upload(
        self,
        path: Path,
        dataset: str | None = None,
        label: str | None = None,
        retrain: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
        learn_field: bool = False,
    ) -> dict:
        """Send a zip of class folders (or a folder, zipped on the fly) as one bulk upload.

        `on_progress(sent_bytes, total_bytes)` is called while the body goes out. `learn_field` (with `retrain`):
        the photos include field photos the new model should learn, so it gets no unlike-training check.
        """
        path = Path(path)
        if path.is_dir():
            data = zip_folder(path)
            name = path.name + ".zip"
        elif path.is_file():
            data = path.read_bytes()
            name = path.name
        else:
            raise ApiError(f"{path}: no such file or folder.", hint="Pick a zip of class folders, or a folder.")
        params = {k: v for k, v in {"dataset": dataset, "label": label}.items() if v}
        if retrain:
            params["retrain"] = "true"
        if retrain and learn_field:
            params["learn_field"] = "true"
        boundary = "leafdoc-upload-boundary-7f3a"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/zip\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        total = len(head) + len(data) + len(tail)

        def body() -> Iterator[bytes]:
            sent = 0
            for chunk in (head, *(data[i : i + 256 * 1024] for i in range(0, len(data), 256 * 1024)), tail):
                yield chunk
                sent += len(chunk)
                if on_progress:
                    on_progress(sent, total)

        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(total)}
        r = self.request(
            "POST", "/v1/uploads", admin=True, params=params, content=body(), headers=headers, timeout=UPLOAD_TIMEOUT
        )
        return r.json()

    def start_training(self, dataset: str | None = None, warm_start: bool = True, options: dict | None = None) -> dict:
        body: dict[str, Any] = {"warm_start": warm_start, "options": options or {}}
        if dataset:
            body["dataset"] = dataset
        return self.request("POST", "/v1/training-jobs", admin=True, json=body).json()

    def jobs(self, limit: int = 20) -> list[dict]:
        return self.get_json("/v1/training-jobs", admin=True, limit=limit)["jobs"]

    def job(self, job_id: str) -> dict:
        return self.get_json(f"/v1/training-jobs/{job_id}", admin=True)

    def cancel_job(self, job_id: str) -> dict:
        """Cancel a queued job (at once) or a running one (its state stays `running`, with `cancel_requested`,
        until its worker has stopped it: then `cancelled`). ApiError 409 if it already finished."""
        return self.request("POST", f"/v1/training-jobs/{job_id}/cancel", admin=True).json()

    def review(self, limit: int = 50, with_photo: bool = False) -> dict:
        """{keep_photos, items}: answers with feedback or abstentions, the most informative first."""
        return self.get_json("/v1/review", admin=True, limit=limit, with_photo=with_photo or None)

    def review_photo(self, prediction_id: str) -> bytes:
        return self.request("GET", f"/v1/review/{prediction_id}/photo", admin=True).content

    def review_label(self, prediction_id: str, label: str, dataset: str | None = None) -> dict:
        """The admin's label: the kept photo joins a new dataset version. {prediction, upload}"""
        body = {"label": label, **({"dataset": dataset} if dataset else {})}
        return self.request("POST", f"/v1/review/{prediction_id}", admin=True, json=body).json()

    def review_dismiss(self, prediction_id: str) -> dict:
        """Out of the review queue, into no dataset (not a leaf, unusable)."""
        return self.request("POST", f"/v1/review/{prediction_id}/dismiss", admin=True).json()

    def promote(self, version: int, reason: str | None = None) -> dict:
        return self.request("POST", f"/v1/models/{version}/promote", admin=True, json={"reason": reason}).json()

    def rollback(self, reason: str | None = None, to_version: int | None = None) -> dict:
        """Serve the version that served before; with `to_version`, only if that is still the one (else ApiError,
        409)."""
        body = {"reason": reason} | ({"to_version": to_version} if to_version is not None else {})
        return self.request("POST", "/v1/models/rollback", admin=True, json=body).json()


def _busy(r: httpx.Response) -> bool:
    """The server turned the request away unread as busy (load shedding): sending it again is safe."""
    if r.status_code != 503:
        return False
    try:
        return r.json().get("error") == "busy"
    except (json.JSONDecodeError, ValueError, AttributeError):
        return False


def _retry_after(r: httpx.Response) -> float:
    try:
        return min(max(float(r.headers.get("retry-after", "1")), 0.0), BUSY_WAIT_MAX_SECONDS)
    except ValueError:
        return 1.0


def _error_from(r: httpx.Response) -> ApiError:
    try:
        body = r.json()
    except (json.JSONDecodeError, ValueError):
        body = {}
    if isinstance(body, dict) and "message" in body:
        return ApiError(body["message"], body.get("hint"), r.status_code, body.get("error"))
    text = r.text.strip()[:200] or r.reason_phrase
    return ApiError(f"The server answered {r.status_code}: {text}", status=r.status_code)


def zip_folder(folder: Path) -> bytes:
    """A folder of class folders as zip bytes (relative paths only; symlinks are not followed)."""
    import io
    import zipfile

    folder = Path(folder)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file() and not p.is_symlink():
                zf.write(p, p.relative_to(folder).as_posix())
    return buf.getvalue()
