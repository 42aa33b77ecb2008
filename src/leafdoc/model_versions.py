"""Model versions: register, promote, roll back, and the serving pointer every API worker follows.

- A version's files are blobs in the content-addressed store (the row maps file name -> sha256), so
  any machine can rebuild the folder `models_dir/<version>`; the row is inserted only after every
  blob is stored, in one transaction with whatever else must change with it (the job's outcome,
  the serving pointer), so a version is never half-registered.
- The serving pointer is an append-only history (`serving_events`): the newest row names the
  serving version and its id is a cheap stamp that API workers poll to hot-swap their model.
  Rollback replays the history as a stack (seed/promote push, rollback pops).
- Automatic promotion (the rule is lifecycle/promotion.py) compares the candidate and the serving model on the
  same images with `settings.promote_metric` and `settings.promote_margin`; both figures and the decision are
  kept in the version's row.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from leafdoc.core.atomic import atomic_dir, remove_stale_partials_in
from leafdoc.core.errors import ConfigError, Conflict, LeafdocError, ModelError, NotFound
from leafdoc.core.hashing import cached_sha256
from leafdoc.core.settings import Settings
from leafdoc.data.catalog import Catalog, ModelVersionRow, ServingEventRow
from leafdoc.data.leases import hold
from leafdoc.data.store import BlobStore
from leafdoc.modelfolder import (
    MODEL_FILES,
    ONNX_FILE,
    SERVING_FILES,
    check_model_dir,
    read_card,
    read_labels,
    starter_model_dir,
)
from leafdoc.words.serving_change import serving_stack

log = logging.getLogger(__name__)
LIST_HINT = "`leafdoc models list` (or GET /v1/models) lists them."
STATUSES = ("candidate", "serving", "archived", "rejected")
PROMOTE_METRICS = ("accuracy", "top3_accuracy", "macro_f1", "ece")
LOWER_IS_BETTER = frozenset({"ece"})
POINTER_LEASE = "serving-pointer"


def _not_in_registry(version: int) -> NotFound:
    return NotFound(f"model version {version} is not in the registry.", hint=LIST_HINT)


class NoModel(LeafdocError):
    status = 503
    code = "no_model"


def check_promote_metric(metric: str) -> str:
    if metric not in PROMOTE_METRICS:
        raise ConfigError(
            f"LEAFDOC_PROMOTE_METRIC={metric!r} is not one of {', '.join(PROMOTE_METRICS)}.",
            hint="Pick one of those metrics.",
        )
    return metric


@dataclass(frozen=True)
class ServingPointer:
    version: int
    stamp: int  # id of the newest serving event: changes whenever the pointer moves


def version_dict(row: ModelVersionRow, serving: int | None = None, full: bool = False) -> dict:
    out = {
        "version": row.version,
        "status": row.status,
        "serving": row.version == serving,
        "created": row.created.isoformat(),
        "source": row.source,
        "job_id": row.job_id,
        "parent_version": row.parent_version,
        "dataset": row.dataset,
        "dataset_version": row.dataset_version,
        "labels": list(row.labels),
        "metrics": (row.card or {}).get("metrics"),
        "promotion": row.promotion,
    }
    if full:
        out["card"] = row.card
        out["files"] = row.files
    return out


def event_dict(ev: ServingEventRow) -> dict:
    return {
        "id": ev.id,
        "version": ev.version,
        "previous_version": ev.previous_version,
        "action": ev.action,
        "reason": ev.reason,
        "created": ev.created.isoformat(),
    }


def _int_or_none(v) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


class Registry:
    def __init__(self, settings: Settings, catalog: Catalog, store: BlobStore):
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self._materialise_lock = threading.Lock()

    # ---- reading -------------------------------------------------------------------------------

    def get(self, version: int) -> ModelVersionRow:
        return self.catalog.row(ModelVersionRow, version, _not_in_registry(version))

    def versions(self) -> list[ModelVersionRow]:
        with self.catalog.Session() as s:
            return list(s.scalars(select(ModelVersionRow).order_by(ModelVersionRow.version)))

    def count(self) -> int:
        with self.catalog.Session() as s:
            return int(s.scalar(select(func.count()).select_from(ModelVersionRow)) or 0)

    def serving(self) -> ServingPointer | None:
        with self.catalog.Session() as s:
            ev = s.scalars(select(ServingEventRow).order_by(ServingEventRow.id.desc()).limit(1)).first()
        return ServingPointer(ev.version, ev.id) if ev else None

    def history(self) -> list[dict]:
        with self.catalog.Session() as s:
            return [event_dict(e) for e in s.scalars(select(ServingEventRow).order_by(ServingEventRow.id))]

    def holding(self, folder: Path) -> int | None:
        """The version whose model files are the folder's, byte for byte (every file of MODEL_FILES either has),
        if one is registered."""

        def sha(name: str) -> str | None:
            return cached_sha256(Path(folder) / name)

        # model.onnx first: `serve` asks at every start, and the other files (tens of MB) are hashed only when a
        # version has the same network.
        network = sha(ONNX_FILE)
        rows = [row for row in self.versions() if row.files.get(ONNX_FILE) == network]
        if not rows:
            return None
        files = {name: sha(name) for name in MODEL_FILES if (Path(folder) / name).is_file()}
        return next((row.version for row in rows if row.files == files), None)

    def _seeded_starter_serving(self) -> ModelVersionRow | None:
        """The version serving, when it is the starter this data home was seeded with and the starter shipped now
        differs from it and is not in the registry (a data home keeps the versions it has: an upgrade of leafdoc
        does not change the model it serves by itself)."""
        ptr = self.serving()
        starter = starter_model_dir()
        if ptr is None or self.settings.model_dir is not None or not (starter / ONNX_FILE).is_file():
            return None
        row = self.get(ptr.version)
        if not (row.source or "").startswith("seed:") or Path(row.source[5:]).name != starter.name:
            return None
        return None if self.holding(starter) is not None else row

    def newer_starter(self) -> str | None:
        """What to do when the starter shipped now is not in the registry and the one seeded serves; else None."""
        row = self._seeded_starter_serving()
        if row is None:
            return None
        return (
            f"model version {row.version}, serving, is the starter this data home was seeded with on "
            f"{row.created:%Y-%m-%d}; the starter shipped with this leafdoc differs from it and is not in the "
            f"registry. To serve it: leafdoc models add {starter_model_dir()} --promote"
        )

    def offer_starter(self) -> tuple[int, int] | None:
        """`leafdoc serve` at start: the starter shipped now registered as a candidate, when the one this data
        home was seeded with serves and the new one is not in the registry yet; (candidate, serving) versions, or
        None. Nothing changes what is served: the models tables of the page and the desktop app list it, to promote
        by hand."""
        if self._seeded_starter_serving() is None:
            return None
        with hold(self.catalog, "registry-seed", ttl=120, wait=120, what="the model registry"):
            row = self._seeded_starter_serving()  # another process may have offered it while we waited
            if row is None:
                return None
            starter = starter_model_dir()
            reason = (
                f"the starter shipped with this leafdoc, registered by leafdoc serve beside version {row.version} "
                "(the starter this data home was seeded with, serving); promote it to serve it"
            )
            version, _ = self.register(
                starter,
                source=f"shipped:{starter}",
                promotion={"decision": "shipped", "promoted": False, "reason": reason},
            )
        log.info("registered the starter shipped with this leafdoc as model version %s, a candidate", version)
        return version, row.version

    def local_dir(self, version: int) -> Path:
        """The version's folder under models_dir, rebuilt from the store if this machine lacks it or holds other
        files under its number (their sha256 checked: `core/hashing.cached_sha256`). Built as
        core.atomic.atomic_dir builds a folder (`.<version>.<random>.<pid>@<host>.partial`, renamed in once whole),
        so what a worker killed while rebuilding one left is removed by a later rebuild or registration
        (`remove_stale_partials_in`), and what a live one is writing is kept."""
        final = self.settings.models_dir / str(version)
        row = self.get(version)

        def whole(folder: Path) -> bool:
            # The files' contents, not only their names: a folder of the same number left by another catalog (a
            # data home whose catalog was restored from an earlier backup, or deleted to start again) holds another
            # model under the same names, and was served as this version.
            return all(cached_sha256(folder / name) == sha for name, sha in row.files.items())

        if whole(final):
            return final
        with self._materialise_lock:
            if whole(final):
                return final
            self._remove_leftovers()
            if final.is_symlink():  # a link to a folder elsewhere: replaced by a folder of its own, the other kept
                final.unlink()
            # Another worker process may finish first (they all start together on a fresh machine). Its folder is
            # whole (folders only appear by renaming a whole copy) and others may be loading from it: keep it
            # (keep_existing). Only a leftover with files missing or other is replaced.
            with atomic_dir(final, keep_existing=whole) as tmp:
                for name, sha in row.files.items():
                    data = self.store.get(sha)
                    if hashlib.sha256(data).hexdigest() != sha:
                        raise ModelError(f"model version {version}: {name} in the store does not match its sha256.")
                    (tmp / name).write_bytes(data)
            if not whole(final):  # a folder that could not be removed (another user's, read-only): never served
                raise ModelError(
                    f"model version {version}: {final} holds other files than the version's and could not be replaced.",
                    hint=f"Move {final} aside (it is rebuilt from the store), or check who owns it.",
                )
        return final

    # ---- writing -------------------------------------------------------------------------------

    def register(
        self,
        folder: Path,
        *,
        source: str,
        status: str = "candidate",
        job_id: str | None = None,
        promotion: dict | None = None,
        serve: str | None = None,
        expected_serving: int | None | bool = False,
        on_commit=None,
        move: bool = False,
    ) -> tuple[int, bool]:
        """Store the folder's files, then insert the version row (and, with `serve` = an action name,
        point serving at it) in one transaction. `expected_serving`: promote only if the serving
        version is still this one (False = do not check). `on_commit(session, version, served)` runs
        inside the same transaction. Returns (version, served)."""
        folder = check_model_dir(Path(folder), SERVING_FILES)
        if status not in STATUSES:
            raise ValueError(f"status {status!r}")
        files = {}
        for name in MODEL_FILES:
            p = folder / name
            if p.is_file():
                files[name] = self.store.put(p.read_bytes())
        card, labels = read_card(folder), read_labels(folder)
        ds = card.dataset
        promotion = dict(promotion) if promotion else None

        def write(s: Session) -> tuple[int, bool]:
            row = ModelVersionRow(
                status=status,
                source=source,
                job_id=job_id,
                parent_version=_int_or_none(card.parent_version),
                dataset=ds.name if ds else None,
                dataset_version=ds.version if ds else None,
                files=files,
                labels=labels,
                card=card.to_dict(),
                promotion=promotion,
            )
            s.add(row)
            s.flush()
            served = False
            if serve:
                cur = self._serving_in(s)
                current = cur.version if cur else None
                if expected_serving is not False and current != expected_serving:
                    row.status = "candidate"
                    if promotion is not None:
                        row.promotion = {
                            **promotion,
                            "promoted": False,
                            "note": (
                                f"the serving model changed (v{expected_serving} -> v{current}) while this "
                                "candidate was evaluated; it was left as a candidate: promote it by hand if wanted"
                            ),
                        }
                else:
                    self._switch(s, row.version, serve, (promotion or {}).get("reason", serve), cur)
                    served = True
            if on_commit:
                on_commit(s, row.version, served)
            return row.version, served

        if serve:
            with self._pointer_lease(), self.catalog.Session.begin() as s:
                version, served = write(s)
        else:
            with self.catalog.Session.begin() as s:
                version, served = write(s)
        final = self.settings.models_dir / str(version)
        if move and not final.exists():
            with contextlib.suppress(OSError):  # if it fails, materialised from the store on first use
                os.rename(folder, final)
        self._remove_leftovers()
        return version, served

    def _remove_leftovers(self) -> None:
        """The folders workers killed while rebuilding a version (any version) left in models_dir: a version is
        rebuilt once per machine, so no later write to it would remove them."""
        try:
            gone = remove_stale_partials_in(self.settings.models_dir)
        except OSError:  # a leftover costs only space; never fail a registration or a rebuild over it
            log.exception("could not look for half-written folders in %s", self.settings.models_dir)
            return
        for path in gone:
            log.info("removed %s, half-written by a process that no longer runs", path)

    def _pointer_lease(self):
        return hold(self.catalog, POINTER_LEASE, ttl=30, wait=60, what="the serving pointer")

    def _serving_in(self, s: Session) -> ServingEventRow | None:
        return s.scalars(select(ServingEventRow).order_by(ServingEventRow.id.desc()).limit(1)).first()

    def _switch(self, s: Session, version: int, action: str, reason: str, cur: ServingEventRow | None) -> None:
        s.execute(
            update(ModelVersionRow)
            .where(ModelVersionRow.status == "serving", ModelVersionRow.version != version)
            .values(status="archived")
        )
        s.execute(update(ModelVersionRow).where(ModelVersionRow.version == version).values(status="serving"))
        s.add(
            ServingEventRow(
                version=version,
                previous_version=cur.version if cur else None,
                action=action,
                reason=reason,
            )
        )

    def promote(self, version: int, *, reason: str = "promoted by an admin", action: str = "promote") -> dict:
        with self._pointer_lease(), self.catalog.Session.begin() as s:
            row = s.get(ModelVersionRow, version)
            if row is None:
                raise _not_in_registry(version)
            cur = self._serving_in(s)
            if cur is not None and cur.version == version:
                raise Conflict(
                    f"model version {version} is already serving.",
                    hint="Nothing to do; GET /v1/models says which version serves.",
                )
            self.get_files_ok(row)
            self._switch(s, version, action, reason, cur)
            s.flush()
            ev = self._serving_in(s)
            return event_dict(ev)

    def get_files_ok(self, row: ModelVersionRow) -> None:
        missing = [n for n in SERVING_FILES if n not in row.files]
        if missing:
            raise ModelError(f"model version {row.version} lacks {', '.join(missing)}; it cannot serve.")

    def rollback(self, reason: str = "rolled back by an admin", expected: int | None = None) -> dict:
        """Serve the version that served before the current one; with `expected`, only if that is the one (the
        page's button names it: another admin's promotion or rollback meanwhile would make it serve another)."""
        with self._pointer_lease(), self.catalog.Session.begin() as s:
            events = s.scalars(select(ServingEventRow).order_by(ServingEventRow.id))
            stack = serving_stack([(ev.action, ev.version) for ev in events])
            if len(stack) < 2:
                raise Conflict(
                    "there is no earlier serving version to roll back to.",
                    hint="Promote a version instead: `leafdoc models promote VERSION`, "
                    "or POST /v1/models/{version}/promote.",
                )
            current, target = stack[-1], stack[-2]
            if expected is not None and target != expected:
                raise Conflict(
                    f"a rollback would now serve version {target}, not version {expected}: the serving version "
                    "changed since the versions were read.",
                    hint="Read the model versions again (GET /v1/models), then roll back if it is still wanted.",
                )
            s.execute(update(ModelVersionRow).where(ModelVersionRow.version == current).values(status="archived"))
            s.execute(update(ModelVersionRow).where(ModelVersionRow.version == target).values(status="serving"))
            ev = ServingEventRow(version=target, previous_version=current, action="rollback", reason=reason)
            s.add(ev)
            s.flush()
            return event_dict(ev)

    def seed(self) -> int | None:
        """Empty registry + LEAFDOC_MODEL_DIR (or the repo's starter model): register it as version 1
        and serve it. Returns the version, or None when there was nothing to do."""
        if self.count():
            return None
        folder = self.settings.model_dir
        if folder is None:
            starter = starter_model_dir()
            if not (starter / "model.onnx").is_file():
                return None
            folder = starter
        folder = check_model_dir(Path(folder))
        with hold(self.catalog, "registry-seed", ttl=120, wait=120, what="the model registry"):
            if self.count():  # another worker seeded while we waited
                return None
            version, _ = self.register(
                folder,
                source=f"seed:{folder}",
                status="serving",
                serve="seed",
                promotion={"decision": "seed", "promoted": True, "reason": f"first model, from {folder}"},
            )
        log.info("registered %s as model version %s and serving it", folder, version)
        return version
