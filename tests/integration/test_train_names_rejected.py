"""`leafdoc train --data DIR` names the files it could not ingest, each with its reason, as `leafdoc evaluate` names
the files it skipped: it printed "3 files rejected (see `leafdoc ingest DIR --json`)" and named none of them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.conftest import TINY_CNN_CLI


def test_train_names_each_rejected_file_with_its_reason(tmp_path, leaf_folder):
    from leafdoc.core.settings import Settings
    from leafdoc.data.catalog import Catalog
    from leafdoc.data.ingest import ingest
    from leafdoc.data.store import open_store

    photos = tmp_path / "photos"
    shutil.copytree(leaf_folder, photos)
    (photos / "Apple___healthy" / "broken.jpg").write_bytes(b"not a photo at all")
    (photos / "Apple___Apple_scab" / "empty.png").write_bytes(b"")
    (photos / "Apple___healthy" / "notes.txt").write_text("taken in May")

    # What ingest says of them (the same reasons `leafdoc ingest DIR --json` lists), in a home of its own.
    s = Settings(home=tmp_path / "probe")
    s.ensure_home()
    catalog = Catalog(s.catalog_url)
    rejected = ingest(photos, catalog, open_store(s.store_location), "probe").rejected
    catalog.dispose()
    assert len(rejected) == 3, rejected

    env = {**os.environ, "LEAFDOC_HOME": str(tmp_path / "home"), "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "200"}
    r = subprocess.run(
        [sys.executable, "-m", "leafdoc.cli.main", "train", "--data", str(photos), "--out", str(tmp_path / "model")]
        + list(TINY_CNN_CLI),
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    said = " ".join((r.stdout + r.stderr).split())  # wrapped at the terminal's width
    assert "3 files skipped:" in said
    for item in rejected:
        assert f"{item['file']}: {' '.join(item['reason'].split())}" in said, (item, said)
