"""The SQLite catalog waits for a lock another process holds instead of failing at once."""

from __future__ import annotations

import sqlite3
import threading
import time

from sqlalchemy import text

from leafdoc.data.catalog import make_engine

HELD = 6.0  # seconds: longer than the sqlite3 driver's own default wait (5 s)


def test_a_connection_waits_while_another_process_holds_the_database(tmp_path):
    """Two processes opening a fresh catalog at once (`serve`'s API workers and its job worker do): the first holds the
    database while it sets WAL mode and creates tables. The second's first statement, the journal-mode pragma, must
    wait as long as any other: it ran before the 30 s busy timeout was set, so it waited only the sqlite3 driver's 5 s
    and then failed with "database is locked". Held 6 s here."""
    db = tmp_path / "catalog.sqlite"
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")  # a fresh file is in rollback mode: this locks out readers too
    holder.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(HELD, lambda: holder.execute("COMMIT"))
    release.start()
    start = time.monotonic()
    try:
        engine = make_engine(f"sqlite:///{db}")
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("SELECT x FROM t")).scalar() == 1  # what the holder wrote, once it let go
        waited = time.monotonic() - start
        engine.dispose()
    finally:
        release.join()
        holder.close()
    assert HELD - 0.5 < waited < 30, f"waited {waited:.1f} s for a lock held {HELD} s"
