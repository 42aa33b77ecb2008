"""Settings come from LEAFDOC_* variables; a bad value is a clear error naming the variable, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from leafdoc.core.errors import ConfigError
from leafdoc.core.settings import Settings, unknown_variables


def test_values_are_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LEAFDOC_HOME", str(tmp_path))
    monkeypatch.setenv("LEAFDOC_ONNX_VARIANT", "int8")
    monkeypatch.setenv("LEAFDOC_MAX_IMAGE_BYTES", "1234")
    s = Settings.load()
    assert (s.home, s.onnx_variant, s.max_image_bytes) == (tmp_path, "int8", 1234)


def test_a_bad_value_names_every_bad_variable(monkeypatch):
    monkeypatch.setenv("LEAFDOC_ONNX_VARIANT", "int9")
    monkeypatch.setenv("LEAFDOC_MAX_IMAGE_BYTES", "lots")
    with pytest.raises(ConfigError) as info:
        Settings.load()
    text = str(info.value)
    assert "LEAFDOC_ONNX_VARIANT='int9'" in text and "'fp32', 'int8' or 'fp16'" in text
    assert "LEAFDOC_MAX_IMAGE_BYTES='lots'" in text and "integer" in text
    assert "README" in info.value.hint


def test_the_cli_says_so_without_a_traceback(tmp_path):
    env = {"LEAFDOC_HOME": str(tmp_path), "LEAFDOC_ONNX_VARIANT": "int9", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", "from leafdoc.cli.main import main; main()", "advice", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "LEAFDOC_ONNX_VARIANT='int9'" in out
    assert "Traceback" not in out and "ValidationError" not in out


def test_a_misspelt_variable_is_named_with_the_setting_it_may_have_meant():
    environ = {
        "LEAFDOC_DATABASE_URI": "postgresql://db/leafdoc",  # every replica would run on a SQLite catalog of its own
        "leafdoc_s3_endpoint": "http://minio:9000",
        "LEAFDOC_WHATEVER": "1",
        "LEAFDOC_QUEUE_URL": "redis://redis:6379/0",  # a setting
        "leafdoc_home": "/var/lib/leafdoc",  # a setting, in any case
        "LEAFDOC_SHARED": "/work/shared",  # not a setting, but read by the scripts and tests: not named
        "LEAFDOC_HTTP_PORT": "8080",  # compose's
        "PATH": "/usr/bin",
    }
    assert unknown_variables(environ) == [
        "LEAFDOC_DATABASE_URI is not a setting and is ignored (did you mean LEAFDOC_DATABASE_URL?)",
        "LEAFDOC_WHATEVER is not a setting and is ignored.",
        "leafdoc_s3_endpoint is not a setting and is ignored (did you mean LEAFDOC_S3_ENDPOINT_URL?)",
    ]


def test_the_cli_warns_once_of_a_variable_no_setting_reads(tmp_path):
    env = {**os.environ, "LEAFDOC_HOME": str(tmp_path), "LEAFDOC_DATABSE_URL": "sqlite:///x.db", "COLUMNS": "300"}
    env.pop("LEAFDOC_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "leafdoc.cli.main", "models", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    warning = "warning: LEAFDOC_DATABSE_URL is not a setting and is ignored (did you mean LEAFDOC_DATABASE_URL?)"
    assert done.stderr.count(warning) == 1, done.stderr
    json.loads(done.stdout)  # the warning is on stderr: --json stays JSON


def test_the_deployment_files_placeholder_admin_token_stops_serve_before_it_starts(tmp_path):
    """deploy/leafdoc.env.example and deploy/k8s/secret.yaml hold `change-me-admin-token`: 21 characters, so the length
    warning let it through, and anyone who read the files could upload, retrain and promote."""
    from tests.conftest import REPO

    from leafdoc.core.settings import placeholder_admin_token
    from leafdoc.service.run import serve

    shipped = {}
    for path in (REPO / "deploy" / "leafdoc.env.example", REPO / "deploy" / "k8s" / "secret.yaml"):
        for line in path.read_text().splitlines():
            key, _, value = line.strip().partition("=" if "=" in line else ":")
            if key == "LEAFDOC_ADMIN_TOKEN":
                shipped[path.name] = value.strip()
    assert len(shipped) == 2 and all(placeholder_admin_token(t) for t in shipped.values()), shipped
    assert placeholder_admin_token("kV3r-9d_2Lq8WzR0aPf7") is None and placeholder_admin_token(None) is None
    settings = Settings(home=tmp_path, admin_token=shipped["secret.yaml"])
    with pytest.raises(ConfigError) as exc:
        serve(settings, port=1)  # refused before the port is even looked at
    assert "placeholder" in exc.value.message and "token_urlsafe" in exc.value.hint
    assert shipped["secret.yaml"] not in exc.value.message + exc.value.hint
