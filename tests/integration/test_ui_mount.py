"""The web page is mounted at /ui but costs nothing until opened: the API answers without importing Gradio,
the first visit builds the page, and neither pulls in TensorFlow. LEAFDOC_UI=false leaves /ui out."""

from __future__ import annotations

import json
import subprocess
import sys

CHECK = """
import json, sys
from fastapi.testclient import TestClient
from leafdoc.service.app import create_app
from leafdoc.core.settings import Settings

out = {}
with TestClient(create_app(Settings(home=sys.argv[1] + "/off", ui=False))) as c:
    out["off_ui"] = c.get("/ui/").status_code
    out["off_models"] = c.get("/v1/models").status_code
out["gradio_after_off"] = "gradio" in sys.modules
# localhost: a host name the page answers to (it refuses others, against DNS rebinding)
with TestClient(create_app(Settings(home=sys.argv[1] + "/on")), base_url="http://localhost") as c:
    out["models"] = c.get("/v1/models").status_code
    out["gradio_before_visit"] = "gradio" in sys.modules
    page = c.get("/ui/")
    out["ui"], out["title"] = page.status_code, "leafdoc · plant disease diagnosis" in page.text
    out["config"] = c.get("/ui/config").status_code
    out["gradio_after_visit"] = "gradio" in sys.modules
out["tensorflow"] = "tensorflow" in sys.modules or "keras" in sys.modules
print(json.dumps(out))
"""


def test_page_is_built_on_first_visit_only(tmp_path):
    run = subprocess.run([sys.executable, "-c", CHECK, str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out == {
        "off_ui": 404,
        "off_models": 200,
        "gradio_after_off": False,
        "models": 200,
        "gradio_before_visit": False,
        "ui": 200,
        "title": True,
        "config": 200,
        "gradio_after_visit": True,
        "tensorflow": False,
    }
