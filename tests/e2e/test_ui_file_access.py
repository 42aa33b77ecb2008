"""The web page hands out no file of the server (security issue 18, D1), against a real `leafdoc serve`.

A visitor does not send Gradio a file but a description of one, `{"path": ..., "meta": {"_type":
"gradio.FileData"}}`, and Gradio used to copy whatever path it named into its cache and serve the copy at
`gradio_api/file=`. Here every event of the page (from its config: every fn_index, and every api_name)
gets such a description in every one of its inputs, for files outside the data home, inside it, in the
system temp dir, planted in or linked from the page's own folder, and named by the alias the page gives that
folder but climbing out of it; then `file=` is asked for each of them and for every copy that turned up in a
Gradio cache on this machine. No answer may contain a secret or name a server path, not even the one sent (the
page names files by aliases: ui/aliases.py). And the page still works: a photo uploaded through Gradio's upload
route, an example photo and a zip uploaded on the Retrain tab get their answers.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from tests.conftest import PLANTVILLAGE, TINY_CLASSES

TIMEOUT = httpx.Timeout(180, connect=10)
TEMP = Path(tempfile.gettempdir())


@dataclass(frozen=True)
class Target:
    """A server file a visitor must not get: `secret` is text from it that no answer may contain."""

    path: Path
    secret: str


def _secret_file(path: Path) -> Target:
    secret = f"leafdoc-secret-{uuid.uuid4().hex}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{secret}\npassword=hunter2\n")
    return Target(path, secret)


# ---- talking to the page as a hostile client --------------------------------------------------------


def file_data(path: str | Path, name: str | None = None) -> dict:
    return {"path": str(path), "orig_name": name, "meta": {"_type": "gradio.FileData"}}


@pytest.fixture(scope="module")
def live_server(page_server):
    """Probed as `leafdoc serve` runs on two CPUs: every request to /ui through a worker's forwarding (ui/proxy.py)."""
    return page_server


@pytest.fixture(scope="module")
def ui(live_server) -> str:
    base = f"{live_server.base}/ui"
    httpx.get(f"{base}/", timeout=300).raise_for_status()  # the page is built on its first visit
    return base


@pytest.fixture(scope="module")
def config(ui) -> dict:
    return httpx.get(f"{ui}/config", timeout=TIMEOUT).json()


def run_event(ui: str, dep: dict, data: list) -> list[str]:
    """Run one event the way the page's own client does (the queue, or /run/predict for queue=False events);
    returns the raw text of every answer."""
    api = f"{ui}/gradio_api"
    session = uuid.uuid4().hex
    body = {"data": data, "fn_index": dep["id"], "session_hash": session, "event_data": None}
    if not dep.get("queue", True):
        r = httpx.post(f"{api}/run/predict", json=body, timeout=TIMEOUT)
        return [r.text]
    joined = httpx.post(f"{api}/queue/join", json=body, timeout=TIMEOUT)
    answers = [joined.text]
    if joined.status_code != 200:
        return answers
    event_id = joined.json()["event_id"]
    with httpx.stream("GET", f"{api}/queue/data", params={"session_hash": session}, timeout=TIMEOUT) as r:
        for line in r.iter_lines():
            answers.append(line)
            if not line.startswith("data:"):
                continue
            msg = json.loads(line[5:])
            if msg.get("event_id") == event_id and msg.get("msg") == "process_completed":
                break
            if msg.get("msg") == "close_stream":
                break
    return answers


def call_named(ui: str, api_name: str, data: list) -> list[str]:
    """The reported route: POST /call/<api_name>, then read its event stream."""
    api = f"{ui}/gradio_api"
    r = httpx.post(f"{api}/call/{api_name}", json={"data": data}, timeout=TIMEOUT)
    if r.status_code != 200:
        return [r.text]
    stream = httpx.get(f"{api}/call/{api_name}/{r.json()['event_id']}", timeout=TIMEOUT)
    return [r.text, stream.text]


def every_event_with(ui: str, config: dict, value: dict) -> list[str]:
    """Every event of the page, with `value` in each of its inputs in turn (the others empty), by fn_index,
    and every named endpoint by api_name. Sent eight at a time (as a page's visitors would), each on its own
    session: one at a time, the ~80 round trips of the queue took 12 s a target."""
    calls = []
    for dep in config["dependencies"]:
        for i in range(len(dep["inputs"])):
            data = [None] * len(dep["inputs"])
            data[i] = value
            calls.append((run_event, ui, dep, data))
    info = httpx.get(f"{ui}/gradio_api/info", timeout=TIMEOUT).json()
    for api_name, endpoint in info["named_endpoints"].items():
        n = len(endpoint["parameters"])
        for i in range(n):
            data = [None] * n
            data[i] = value
            calls.append((call_named, ui, api_name.lstrip("/"), data))
    with ThreadPoolExecutor(8) as pool:
        return [text for answers in pool.map(lambda c: c[0](*c[1:]), calls) for text in answers]


def copies_in_gradio_caches(home: Path, name: str) -> list[Path]:
    """Every file called `name` in the Gradio caches of this machine: the default one, the page's own, and
    any GRADIO_TEMP_DIR of this environment."""
    caches = {TEMP / "gradio", home / "cache" / "ui"}
    if os.environ.get("GRADIO_TEMP_DIR"):
        caches.add(Path(os.environ["GRADIO_TEMP_DIR"]))
    return [p for c in caches if c.is_dir() for p in c.rglob(name) if p.is_file()]


def fetch_files(ui: str, paths: list[str]) -> list[tuple[int, str]]:
    """Ask Gradio's file routes for each path: `file=` (GET and HEAD) and the older `file/`."""
    out = []
    for path in paths:
        for url in (f"{ui}/gradio_api/file={path}", f"{ui}/gradio_api/file/{path.lstrip('/')}"):
            r = httpx.get(url, timeout=TIMEOUT)
            out.append((r.status_code, r.text))
        head = httpx.head(f"{ui}/gradio_api/file={path}", timeout=TIMEOUT)
        out.append((head.status_code, ""))
    return out


def server_paths(live_server, target: Target) -> list[str]:
    """Strings that name where things are on the server: no answer may contain one."""
    home = live_server.home
    return sorted(
        {
            str(target.path),
            str(target.path.resolve()),
            str(home),
            str(home.resolve()),
            str(TEMP / "gradio"),
            str(TEMP) + os.sep,
        }
    )


# ---- the files a visitor must not get -------------------------------------------------------------


@pytest.fixture(scope="module")
def targets(live_server, tmp_path_factory) -> Iterator[dict[str, Target]]:
    home = live_server.home
    outside = _secret_file(tmp_path_factory.mktemp("outside") / "secret-outside.txt")
    in_temp = _secret_file(TEMP / f"leafdoc-secret-{uuid.uuid4().hex[:8]}.txt")
    catalog = home / "catalog.sqlite"
    assert catalog.read_bytes().startswith(b"SQLite format 3")
    passwd = Path("/etc/passwd")
    page_folder = home / "cache" / "ui"
    # Written in the page's own folder by something other than an upload (Gradio serves that folder:
    # nothing but the page may write there; the page itself still opens only uploads).
    planted = _secret_file(page_folder / "not-an-upload" / "planted.txt")
    link = page_folder / "not-an-upload" / "link-out.txt"
    link.symlink_to(outside.path)
    yield {
        "outside the data home": outside,
        "/etc/passwd": Target(passwd, passwd.read_text().splitlines()[0]),
        "inside the data home (catalog.sqlite)": Target(catalog, "SQLite format 3"),
        "inside the data home (a file)": _secret_file(home / "secret-in-home.txt"),
        "in the system temp dir": in_temp,
        "planted in the page's folder": planted,
        "symlink out of the page's folder": Target(link, outside.secret),
        # the page names its folder's files /leafdoc/page-files/... (ui/aliases.py): an alias maps back only
        # inside its folder
        "the catalog, through the page folder's alias": Target(
            Path("/leafdoc/page-files/../../catalog.sqlite"), "SQLite format 3"
        ),
    }
    in_temp.path.unlink(missing_ok=True)


TARGET_NAMES = [
    "outside the data home",
    "/etc/passwd",
    "inside the data home (catalog.sqlite)",
    "inside the data home (a file)",
    "in the system temp dir",
    "planted in the page's folder",
    "symlink out of the page's folder",
    "the catalog, through the page folder's alias",
]


@pytest.mark.parametrize("which", TARGET_NAMES)
def test_no_event_of_the_page_hands_out_a_server_file(ui, config, live_server, targets, which):
    target = targets[which]
    before = set(copies_in_gradio_caches(live_server.home, target.path.name))
    answers = every_event_with(ui, config, file_data(target.path, target.path.name))
    # What the reporter did next: fetch the copy an error named, and any copy Gradio made anywhere.
    named = {p for a in answers for p in _paths_in(a) if p.endswith("/" + target.path.name)}
    after = copies_in_gradio_caches(live_server.home, target.path.name)
    copies = [str(p) for p in after]
    direct = [str(target.path), str(target.path.resolve())]
    if target.path == Path("/etc/passwd"):
        direct.append(quote("../" * 8 + "etc/passwd", safe=""))  # relative to the server's working dir
    if str(target.path).startswith("/leafdoc/"):  # an alias climbing out of its folder, sent as it is
        direct.append(quote(str(target.path), safe=""))
    fetched = fetch_files(ui, sorted({*named, *copies, *direct}))

    texts = answers + [body for _, body in fetched]
    leaked = [text for text in texts if target.secret in text]
    assert not leaked, f"the content of {which} was handed out: {leaked[0][:300]}"
    assert all(status != 200 for status, _ in fetched), [s for s, _ in fetched]
    assert not set(after) - before, f"Gradio copied {which} into its cache"
    for text in texts:
        # Not even the path sent: a file is named by its alias (ui/aliases.py), and a server path sent opens
        # nothing, so Gradio refuses it before any component could quote it back.
        for where in server_paths(live_server, target):
            assert where not in text, f"an answer names the server path {where}: {text[:300]}"


def _paths_in(text: str) -> list[str]:
    return re.findall(r"(/[\w.\-/]+)", text)


@pytest.mark.parametrize("named", ["by its path", "by its alias"])
def test_a_file_not_uploaded_is_refused_by_its_name_only(ui, config, live_server, targets, named):
    """A file in the page's folder that its upload route did not write. Named by its server path it opens nothing:
    Gradio refuses it as any file outside the page's folder (an error without text). Named by its alias
    (`/leafdoc/page-files/...`, as the page names that folder's files) Gradio lets it through, and the page itself
    opens only what its upload route wrote, and says so naming the file as sent."""
    target = targets["planted in the page's folder"]
    path = target.path
    if named == "by its alias":
        path = "/leafdoc/page-files/" + str(target.path.relative_to(live_server.home / "cache" / "ui"))
    answers = call_named(ui, "diagnose", [file_data(path, "my leaf.jpg"), ""])  # "": no crop picked
    text = "".join(answers)
    if named == "by its alias":
        assert "my leaf.jpg was not uploaded through this page" in text
    else:
        assert 'event: error\ndata: {"error": null}' in text
    assert target.secret not in text and str(target.path.parent) not in text


# ---- the page still works ---------------------------------------------------------------------------


def upload(ui: str, path: Path, name: str | None = None, mime: str = "image/jpeg") -> dict:
    """What the browser does: send the file to Gradio's upload route, then name what it answered."""
    with open(path, "rb") as f:
        r = httpx.post(f"{ui}/gradio_api/upload", files={"files": (name or path.name, f, mime)}, timeout=TIMEOUT)
    r.raise_for_status()
    [where] = r.json()
    return file_data(where, name or path.name)


def completed(answers: list[str]) -> list:
    """The output data of a finished event (fails with the error event otherwise)."""
    for line in answers:
        if line.startswith("data:"):
            msg = json.loads(line[5:])
            if msg.get("msg") == "process_completed":
                assert msg.get("success"), msg
                return msg["output"]["data"]
    pytest.fail(f"no answer: {answers[-3:]}")


def verdict_of(output: list) -> str:
    return output[0]["value"]


def _dep(config: dict, api_name: str) -> dict:
    return next(d for d in config["dependencies"] if d.get("api_name") == api_name)


def test_an_uploaded_photo_is_diagnosed(ui, config):
    if not PLANTVILLAGE.is_dir():
        pytest.skip(f"shared datasets not found at {PLANTVILLAGE}")
    photo = sorted((PLANTVILLAGE / TINY_CLASSES[0]).iterdir())[10]
    sent = upload(ui, photo, "my leaf.jpg")
    for api_name in ("diagnose", "diagnose_1"):  # the photo's change event, and the Diagnose button
        output = completed(run_event(ui, _dep(config, api_name), [sent, ""]))  # "": no crop picked
        assert verdict_of(output).startswith("## ") and "Could not diagnose" not in verdict_of(output)
        assert output[1]["value"]["confidences"], output[1]
        assert output[2] is not None  # the heat map
    # A webcam capture reaches the page the same way: an upload named by the browser.
    output = completed(run_event(ui, _dep(config, "diagnose"), [upload(ui, photo, "webcam.png", "image/png"), ""]))
    assert "Could not diagnose" not in verdict_of(output)


def test_the_named_route_answers_a_diagnosis_without_a_photo_in_the_pages_words(ui):
    """Gradio's API route writes an event's answer as JSON: a word of the page that is translated in the browser
    (Gradio's I18nData) cannot be written there, and the answer was cut off (the page now sends plain text)."""
    [_, stream] = call_named(ui, "diagnose", [None, ""])
    assert "event: complete" in stream and "Your diagnosis appears here" in stream, stream[-500:]


def test_a_photo_that_is_no_image_gets_the_servers_answer_by_its_name(ui, config, tmp_path):
    junk = tmp_path / "notes.jpg"
    junk.write_text("not a photo")
    output = completed(run_event(ui, _dep(config, "diagnose"), [upload(ui, junk), ""]))
    verdict = verdict_of(output)
    assert "Could not diagnose" in verdict and str(TEMP) not in verdict


def test_an_example_photo_is_diagnosed(ui, config):
    load = next(d for d in config["dependencies"] if d.get("api_name") == "load_example")
    [r] = run_event(ui, load, [1])
    example = json.loads(r)["data"][0]["value"]
    assert Path(example["path"]).parent.name == "examples"
    output = completed(run_event(ui, _dep(config, "diagnose"), [example, ""]))
    assert "Could not diagnose" not in verdict_of(output) and output[1]["value"]["confidences"]


def test_a_zip_uploaded_on_the_retrain_tab_is_added(ui, config, live_server, tmp_path):
    if not PLANTVILLAGE.is_dir():
        pytest.skip(f"shared datasets not found at {PLANTVILLAGE}")
    archive = tmp_path / "more-leaves.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for cls in TINY_CLASSES[:2]:
            for f in sorted((PLANTVILLAGE / cls).iterdir())[40:41]:
                zf.write(f, f"{cls}/{f.name}")
    sent = upload(ui, archive, mime="application/zip")
    output = completed(
        # the file, the token, Dataset, Class of every photo (none: class folders), Retrain and field photos unticked
        run_event(ui, _dep(config, "upload"), [sent, live_server.token, "file-access-upload", "", False, False])
    )
    assert "Upload done" in output[0]["value"], output[0]
    assert "file-access-upload" in output[1] and "2 new photo(s) added" in output[1]


def test_an_unknown_address_under_ui_is_a_page_back_to_it_in_a_browser_and_json_to_the_pages_calls(ui):
    """A browser opening /ui/<mistyped> got Gradio's `{"detail": "Not Found"}`; now the page /app gives for its own
    unknown addresses, with a link back to /ui/, never repeating the address. The page's own calls keep the JSON."""
    injected = "nope<script>alert(1)</script>/deeper"
    browser = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for path in ("nope", quote(injected)):
        r = httpx.get(f"{ui}/{path}", headers=browser, timeout=TIMEOUT)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), r.headers
        page = r.text
        assert "<h2>Page not found</h2>" in page and '<a id="back" href="/ui/">Open the leafdoc page</a>' in page
        assert "nope" not in page and "<script" not in page and "alert" not in page
        assert r.headers["x-content-type-options"] == "nosniff"  # the page's headers are kept
    spanish = httpx.get(f"{ui}/nope", headers={**browser, "accept-language": "es"}, timeout=TIMEOUT)
    assert '<html lang="es">' in spanish.text and "Page not found" not in spanish.text, spanish.text
    for asked in ({"accept": "application/json"}, {"accept": "*/*"}):
        r = httpx.get(f"{ui}/gradio_api/nope", headers=asked, timeout=TIMEOUT)
        assert r.status_code == 404 and r.headers["content-type"] == "application/json", r.headers
    assert httpx.get(f"{ui}/", headers=browser, timeout=TIMEOUT).status_code == 200  # the page itself still opens
