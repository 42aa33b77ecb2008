"""The load test's locustfile, run headless for a few seconds against a live `leafdoc serve`: it sends
real leaf photos (single and batch predictions, catalogue reads) and every request succeeds."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
from tests.conftest import REPO, make_leaf_folder


def test_locustfile_runs_headless_against_a_live_server_without_failures(live_server, tmp_path):
    if importlib.util.find_spec("locust") is None:
        pytest.skip("locust is not installed (the dev extra)")
    from loadtest.run import read_stats

    images = make_leaf_folder(tmp_path / "photos", per_class=3)
    cmd = [sys.executable, "-m", "locust", "-f", str(REPO / "loadtest" / "locustfile.py"), "--headless"]
    cmd += ["-u", "2", "-r", "2", "-t", "5s", "-H", live_server.base, "--only-summary"]
    cmd += ["--images", str(images), "--csv", str(tmp_path / "smoke"), "--exit-code-on-error", "1"]
    done = subprocess.run(
        cmd, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    stats = read_stats(tmp_path / "smoke")
    assert stats["predict single"]["requests"] > 0
    assert stats["Aggregated"]["requests"] > stats["predict single"]["requests"]  # the reads ran too
    failed = {name: row["failures"] for name, row in stats.items() if row["failures"]}
    assert not failed, f"failed requests: {failed}\n{done.stderr[-3000:]}"


@pytest.mark.parametrize("shrink", [False, True], ids=["as-taken", "as-the-page-sends"])
def test_the_phone_photo_workload_sends_large_photos_and_every_one_is_answered(live_server, tmp_path, shrink):
    """`--phone`: real field photos of 1,500 px or more and 12 MP JPEGs made from them, as people send; with
    `--shrink`, the same photos as the web page and desktop app send them (1024 px on the long side, JPEG)."""
    if importlib.util.find_spec("locust") is None:
        pytest.skip("locust is not installed (the dev extra)")
    from loadtest.images import PHONE_DIRS, phone_photos
    from loadtest.run import WORKLOAD_TAGS, read_stats

    if not any(d.is_dir() for d in PHONE_DIRS):
        pytest.skip(f"field photos not found in {PHONE_DIRS}")
    from io import BytesIO

    from PIL import Image

    photos = phone_photos(limit=3, made=1, shrink=shrink)
    assert len(photos) == 4 and photos[-1][0].startswith("12mp-")
    sizes = [Image.open(BytesIO(d)).size for _, d in photos]
    if shrink:
        assert all(max(s) == 1024 for s in sizes), sizes
        assert all(Image.open(BytesIO(d)).format == "JPEG" for _, d in photos)
        assert "--shrink" in WORKLOAD_TAGS["phone-sent"]
    else:
        assert sizes[-1] in ((4000, 3000), (3000, 4000))
        assert all(min(s) >= 1500 for s in sizes)
    cmd = [sys.executable, "-m", "locust", "-f", str(REPO / "loadtest" / "locustfile.py"), "--headless"]
    cmd += ["-u", "2", "-r", "2", "-t", "6s", "-H", live_server.base, "--only-summary", "--tags", "single", "--phone"]
    cmd += ["--csv", str(tmp_path / "phone"), "--exit-code-on-error", "1", *(["--shrink"] if shrink else [])]
    done = subprocess.run(
        cmd, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    stats = read_stats(tmp_path / "phone")
    assert stats["predict single"]["requests"] > 0 and not stats["predict single"]["failures"], stats


def test_twelve_megapixel_photos_sent_among_leaf_photos_are_counted_apart(live_server, tmp_path):
    """`--phone-share`: some single diagnoses are 12 MP JPEGs, named apart in Locust's statistics, so the report
    compares the two kinds of photo at the same load; every one is answered."""
    if importlib.util.find_spec("locust") is None:
        pytest.skip("locust is not installed (the dev extra)")
    from loadtest.images import PHONE_DIRS, phone_photos
    from loadtest.run import WORKLOAD_TAGS, read_stats

    if not any(d.is_dir() for d in PHONE_DIRS):
        pytest.skip(f"field photos not found in {PHONE_DIRS}")
    from io import BytesIO

    from PIL import Image

    made = phone_photos(made=2, only_12mp=True)
    assert [n[:5] for n, _ in made] == ["12mp-", "12mp-"]
    assert all(Image.open(BytesIO(d)).size in ((4000, 3000), (3000, 4000)) for _, d in made)
    assert "--only-12mp" in WORKLOAD_TAGS["12mp"] and "--phone-share" in WORKLOAD_TAGS["phone-mix"]
    images = make_leaf_folder(tmp_path / "photos", per_class=3)
    cmd = [sys.executable, "-m", "locust", "-f", str(REPO / "loadtest" / "locustfile.py"), "--headless"]
    cmd += ["-u", "2", "-r", "2", "-t", "8s", "-H", live_server.base, "--only-summary", "--tags", "single"]
    cmd += ["--images", str(images), "--phone-share", "0.5"]
    cmd += ["--csv", str(tmp_path / "mix"), "--exit-code-on-error", "1"]
    done = subprocess.run(
        cmd, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    stats = read_stats(tmp_path / "mix")
    for name in ("predict single", "predict 12 MP"):
        assert stats[name]["requests"] > 0 and not stats[name]["failures"], stats
