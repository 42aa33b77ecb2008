"""Fixtures shared by the integration tests that run on a real PostgreSQL (tests/backends.py starts it)."""

from __future__ import annotations

import itertools

import pytest
from tests.backends import new_database, postgres_server

_db = itertools.count()


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL server for the module (started once, stopped after its last test); skips the tests that need it,
    with the reason, when PostgreSQL is not installed or cannot be started."""
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    """Runs the test twice: on the data home's SQLite catalog (None) and on a fresh, empty PostgreSQL database of
    the module's server, one per test (the server is started only for the postgresql runs)."""
    if request.param == "sqlite":
        return None
    module = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    return new_database(request.getfixturevalue("postgres_url"), f"{module}{next(_db)}")
