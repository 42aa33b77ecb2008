"""leafdoc installed under the system temp dir (a clone in /tmp/x/leafdoc) still shows its example photos and the photo
guide's pictures on /ui; the temp dir's other files stay out of reach. Every example was a 403: the page blocked the
whole temp dir, and Gradio's blocked paths win over its allowed ones (ui/page.py `blocked_paths`).

The server runs a copy of the package and the examples in a temp dir of its own (TMPDIR), imported first through
PYTHONPATH, with its data home outside that temp dir, as a clone in /tmp with the default data home is.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

import leafdoc
from leafdoc.ui.common import EXAMPLES, GUIDE_PHOTOS

SOURCE = Path(leafdoc.__file__).resolve().parents[2]  # the repository: src/ and examples/


@pytest.fixture(scope="module")
def clone_in_temp(tmp_path_factory, tiny_model):
    from tests.live_server import answering_copy, start_server

    root = tmp_path_factory.mktemp("clone-in-temp")
    temp = root / "systemp"  # the server's system temp dir
    clone = temp / "x" / "leafdoc"
    shutil.copytree(SOURCE / "src" / "leafdoc", clone / "src" / "leafdoc", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(SOURCE / "examples", clone / "examples")
    secret = temp / "gradio" / "0123abcd" / "someone_elses_upload.jpg"  # another Gradio page's upload
    secret.parent.mkdir(parents=True)
    secret.write_bytes(EXAMPLES[0].read_bytes())
    model = answering_copy(tiny_model, root / "model")
    server = start_server(root / "server", model, workers=1, TMPDIR=str(temp), PYTHONPATH=str(clone / "src"))
    try:
        httpx.get(f"{server.base}/ui/", timeout=300).raise_for_status()  # the page is built on its first visit
        yield server, clone, secret
    finally:
        server.stop()


@pytest.mark.parametrize("photo", [EXAMPLES[0], GUIDE_PHOTOS[0]], ids=["example", "guide"])
def test_the_pages_photos_are_served_from_a_clone_in_the_temp_dir(clone_in_temp, photo):
    server, clone, _ = clone_in_temp
    name = photo.relative_to(SOURCE / "examples").as_posix()
    assert f"/leafdoc/examples/{name}" in httpx.get(f"{server.base}/ui/config", timeout=60).text  # the page names it
    r = httpx.get(f"{server.base}/ui/gradio_api/file=/leafdoc/examples/{name}", timeout=60)
    assert r.status_code == 200, r.text[:300]
    assert r.content == (clone / "examples" / name).read_bytes()


def test_the_temp_dirs_other_files_stay_out_of_reach(clone_in_temp):
    server, clone, secret = clone_in_temp
    climbs = "/leafdoc/examples/" + "../" * 3  # examples -> leafdoc -> x -> the temp dir
    for path in (
        f"{climbs}{secret.relative_to(clone.parents[1]).as_posix()}",
        str(secret),
        "/leafdoc/examples/README.md",  # beside the examples, not one of them
        str(clone / "examples" / "README.md"),
    ):
        r = httpx.get(f"{server.base}/ui/gradio_api/file={path}", timeout=60)
        assert r.status_code in (403, 404), (path, r.status_code)
        assert secret.read_bytes() != r.content
