"""`leafdoc worker` names its queue and catalog when it starts, in logs that more people read than the secrets file
(a container's output): the passwords in those URLs are not printed."""

from __future__ import annotations

import pytest

from leafdoc.cli.main import without_password


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://leafdoc:s3cr:et@postgres:5432/leafdoc", "postgresql://leafdoc:***@postgres:5432/leafdoc"),
        ("redis://:hunter2@redis:6379/0", "redis://:***@redis:6379/0"),
        ("redis://redis:6379/0", "redis://redis:6379/0"),
        ("sqlite:////var/lib/leafdoc/catalog.sqlite", "sqlite:////var/lib/leafdoc/catalog.sqlite"),
        ("/var/lib/leafdoc/queue.sqlite", "/var/lib/leafdoc/queue.sqlite"),
    ],
)
def test_the_worker_shows_its_urls_without_passwords(url, shown):
    assert without_password(url) == shown
