"""Named locks with an expiry, kept in the catalog so they hold across threads, processes and machines
(SQLite file or PostgreSQL alike).

Taking a lease is one conditional UPDATE (free, expired, or already ours -> ours), which both
databases apply atomically to a single row. A holder that dies simply stops renewing, and its lease
expires after `ttl` seconds, so a killed process never leaves a lock behind for good. A holder that is a
process of this host (a holder's id starts `host:pid`) and no longer runs gives its lease up at once: a
retry right after a crash does not wait out the ttl (issue 59: an upload's retry waited 50 s). Another
host's holder cannot be seen, so its lease runs out with its ttl, renewed every ttl/3 while it lives.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from leafdoc.core.errors import Conflict
from leafdoc.core.processes import pid_alive
from leafdoc.data.catalog import Catalog, LeaseRow, utcnow

log = logging.getLogger(__name__)


def holder_id(tag: str = "") -> str:
    """host:pid:thread[:tag], unique per thread of a process."""
    base = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    return f"{base}:{tag}" if tag else base


def gone_here(owner: str | None) -> bool:
    """Whether `owner` (`host:pid`, then anything: a lease holder's or a job worker's id) is a process of this
    host that no longer runs. False for another host's, or an id not of that shape: those cannot be seen."""
    host, _, rest = (owner or "").partition(":")
    pid = rest.split(":", 1)[0]
    return host == socket.gethostname() and pid.isdigit() and int(pid) > 0 and not pid_alive(int(pid))


def _ensure_row(catalog: Catalog, name: str) -> None:
    with catalog.Session() as s:
        if s.get(LeaseRow, name) is not None:
            return
    try:
        with catalog.Session.begin() as s:
            s.execute(insert(LeaseRow).values(name=name, holder=None, expires=None))
    except IntegrityError:
        pass  # someone else created it first


def try_acquire(catalog: Catalog, name: str, holder: str, ttl: float) -> bool:
    _ensure_row(catalog, name)
    now = utcnow()
    with catalog.Session.begin() as s:
        res = s.execute(
            update(LeaseRow)
            .where(
                LeaseRow.name == name,
                or_(LeaseRow.holder.is_(None), LeaseRow.expires < now, LeaseRow.holder == holder),
            )
            .values(holder=holder, expires=now + timedelta(seconds=ttl))
        )
        if res.rowcount == 1:
            return True
    dead = current_holder(catalog, name)
    if not gone_here(dead):
        return False
    with catalog.Session.begin() as s:  # only if that same dead holder still has it: one taker wins
        res = s.execute(
            update(LeaseRow)
            .where(LeaseRow.name == name, LeaseRow.holder == dead)
            .values(holder=holder, expires=utcnow() + timedelta(seconds=ttl))
        )
    if res.rowcount == 1:
        log.warning("lease %r: its holder %s is no longer running; taken over by %s", name, dead, holder)
    return res.rowcount == 1


def renew(catalog: Catalog, name: str, holder: str, ttl: float) -> bool:
    with catalog.Session.begin() as s:
        res = s.execute(
            update(LeaseRow)
            .where(LeaseRow.name == name, LeaseRow.holder == holder)
            .values(expires=utcnow() + timedelta(seconds=ttl))
        )
        return res.rowcount == 1


def release(catalog: Catalog, name: str, holder: str) -> None:
    with catalog.Session.begin() as s:
        s.execute(update(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder).values(holder=None))


def current_holder(catalog: Catalog, name: str) -> str | None:
    with catalog.Session() as s:
        row = s.scalars(select(LeaseRow).where(LeaseRow.name == name)).first()
    if row is None or row.holder is None or (row.expires is not None and row.expires < utcnow()):
        return None
    return row.holder


@contextmanager
def hold(
    catalog: Catalog,
    name: str,
    *,
    ttl: float = 60.0,
    wait: float = 0.0,
    poll: float = 0.2,
    holder: str | None = None,
    what: str | None = None,
) -> Iterator[str]:
    """Hold lease `name` for the block, renewing it in the background; wait up to `wait` seconds
    for it, then raise Conflict naming `what` is busy."""
    holder = holder or holder_id()
    deadline = time.monotonic() + wait
    while not try_acquire(catalog, name, holder, ttl):
        if time.monotonic() >= deadline:
            raise Conflict(
                f"{what or name} is busy: another request holds it.",
                hint="Retry in a little while.",
            )
        time.sleep(poll)
    stop = threading.Event()

    def keep_alive() -> None:
        while not stop.wait(ttl / 3):
            with contextlib.suppress(Exception):  # a transient database error: try again at the next tick
                renew(catalog, name, holder, ttl)

    t = threading.Thread(target=keep_alive, name=f"lease-{name}", daemon=True)
    t.start()
    try:
        yield holder
    finally:
        stop.set()
        t.join(timeout=5)
        release(catalog, name, holder)
