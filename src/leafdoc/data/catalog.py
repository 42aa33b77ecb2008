"""The catalog: images, datasets and their immutable versions (SQLAlchemy 2; SQLite by default,
any SQLAlchemy URL by setting). The schema is owned by Alembic migrations, applied on open, so an
older catalog upgrades in place.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from leafdoc.core.errors import ConfigError, LeafdocError, ServerFault
from leafdoc.core.settings import without_password

MIGRATIONS = Path(__file__).parent / "migrations"
R = TypeVar("R")  # a row class (Catalog.row)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class ImageRow(Base):
    __tablename__ = "images"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16))
    nbytes: Mapped[int] = mapped_column(BigInteger)
    # Canonical (flip/rotation-invariant) 64-bit perceptual hash, stored signed to fit BIGINT.
    phash: Mapped[int] = mapped_column(BigInteger, index=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DatasetRow(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DatasetVersionRow(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    parent_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    n_images: Mapped[int] = mapped_column(Integer)
    n_classes: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    summary: Mapped[dict] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DatasetItemRow(Base):
    __tablename__ = "dataset_items"
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id"), primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("images.sha256"), primary_key=True)
    label: Mapped[str] = mapped_column(String(200), index=True)
    source_name: Mapped[str] = mapped_column(Text)


# Model registry, serving pointer, training jobs, uploads and leases (migration 0002). The rows live
# here with the rest of the catalog so every API replica and worker shares one source of truth.


class ModelVersionRow(Base):
    """A registered model: its files are blobs in the store (sha256 per file name), so any machine
    can materialise the folder. Inserted only after every file is in the store."""

    __tablename__ = "model_versions"
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # candidate | serving | archived | rejected
    source: Mapped[str] = mapped_column(Text)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    parent_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    dataset: Mapped[str | None] = mapped_column(String(200), nullable=True)
    dataset_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    files: Mapped[dict] = mapped_column(JSON)
    labels: Mapped[list] = mapped_column(JSON)
    card: Mapped[dict] = mapped_column(JSON)
    promotion: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ServingEventRow(Base):
    """The serving pointer with its history: the newest row names the serving version."""

    __tablename__ = "serving_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(ForeignKey("model_versions.version"))
    previous_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    action: Mapped[str] = mapped_column(String(16))  # seed | promote | auto_promote | rollback
    reason: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class TrainingJobRow(Base):
    __tablename__ = "training_jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), index=True)  # queued | running | succeeded | failed | cancelled
    dataset: Mapped[str] = mapped_column(String(200))
    dataset_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    options: Mapped[dict] = mapped_column(JSON)
    warm_start: Mapped[bool] = mapped_column(Boolean, default=True)
    parent_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    upload_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    heartbeat: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Set when an admin cancels a running job (migration 0003); its worker stops the training process.
    cancel_requested: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    epochs: Mapped[int] = mapped_column(Integer, default=0)
    # How many times a worker claimed it (migration 0004): a job whose worker is lost is queued again,
    # up to LEAFDOC_JOB_MAX_ATTEMPTS, and the next attempt continues after the checkpoint's epoch.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    resumed_epoch: Mapped[int | None] = mapped_column(Integer, nullable=True)
    progress: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    metrics: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    candidate_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    promotion: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class UploadRow(Base):
    __tablename__ = "uploads"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_version: Mapped[bool] = mapped_column(Boolean, default=False)
    summary: Mapped[dict] = mapped_column(JSON)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LeaseRow(Base):
    """A named lock with an expiry, shared by every process that uses the catalog (see data/leases.py)."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200), nullable=True)
    expires: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class PredictionRow(Base):
    """One answer the API gave (migration 0005), written off the request path (service/predictionlog.py),
    with a user's feedback and an admin's review when they come. `hour` (hours since the epoch, UTC) and
    `score_bin` (the not-a-leaf score as a tenth of the model's threshold, data/predictions.py) let the
    monitoring aggregate in SQL on SQLite and PostgreSQL alike."""

    __tablename__ = "predictions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created: Mapped[datetime] = mapped_column(DateTime)
    hour: Mapped[int] = mapped_column(Integer, index=True)
    model_version: Mapped[int] = mapped_column(Integer, index=True)
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the top label, even when abstained
    confidence: Mapped[float] = mapped_column(Float)
    abstained: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ood_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    score_bin: Mapped[int | None] = mapped_column(Integer, nullable=True)
    photo_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    photo_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # migration 0007: 0 if shared
    photo_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    crop_given: Mapped[str | None] = mapped_column(String(64), nullable=True)  # migration 0006
    feedback_correct: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    feedback_label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    feedback_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    reviewed_label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    review_upload_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


class CounterRow(Base):
    """A named running total shared by every process (migration 0007): `kept_photo_bytes`, the bytes kept photos
    added to the store (data/predictions.py, service/predictionlog.py)."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


def to_signed64(x: int) -> int:
    return x - (1 << 64) if x >= (1 << 63) else x


def to_unsigned64(x: int) -> int:
    return x + (1 << 64) if x < 0 else x


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        # The wait first: the journal-mode pragma can meet a lock too (another process creating the catalog, a WAL
        # being recovered after a process was killed mid-write); before it, only the sqlite3 driver's 5 s applied
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        _sqlite_pragmas(engine)
        return engine
    for scheme in ("postgresql://", "postgres://"):  # postgres:// is what Heroku and others hand out
        if url.startswith(scheme):
            url = "postgresql+psycopg://" + url.removeprefix(scheme)
    return create_engine(url, pool_pre_ping=True)


MIGRATION_LOCK_KEY = 0x1EAFD0C  # any constant: the advisory lock that serialises migrations


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Replicas and workers starting together on a fresh database would each create the tables
            # and all but one fail; this lock (released at commit) makes the others wait, then find
            # the schema at head. PostgreSQL's DDL is transactional, so they never see half of it.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        cfg.attributes["connection"] = conn
        refuse_newer_schema(conn, cfg, engine)
        command.upgrade(cfg, "head")


def refuse_newer_schema(conn, cfg, engine: Engine) -> None:
    """A catalog a newer leafdoc has migrated (an upgrade rolled back: `kubectl rollout undo`, an older image) is
    refused with what to do; Alembic's own "Can't locate revision" was a traceback in every replica and worker."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(cfg)
    known = {rev.revision for rev in script.walk_revisions()}
    unknown = sorted(set(MigrationContext.configure(conn).get_current_heads()) - known)
    if unknown:
        raise ConfigError(
            f"the catalog at {engine.url} has schema revision {unknown[0]!r}, which this leafdoc does not know "
            f"(it knows up to {script.get_current_head()!r}): a newer leafdoc has upgraded it.",
            hint="Run the leafdoc version that upgraded the catalog, or a newer one. leafdoc never downgrades a "
            "catalog: to go back to this version, restore the catalog's backup from before the upgrade.",
        )


class Catalog:
    """A handle on the catalog database: an engine and a session factory."""

    def __init__(self, url: str, *, upgrade: bool = True):
        self.url = url
        try:
            self.engine = make_engine(url)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:  # not a URL; a scheme with no driver here
            raise ConfigError(
                f"LEAFDOC_DATABASE_URL={without_password(url)!r} is not a database URL leafdoc can open ({exc}).",
                hint="Use postgresql://user:password@host:5432/database, or unset it for the SQLite catalog under "
                "LEAFDOC_HOME.",
            ) from None
        if upgrade:
            try:
                migrate(self.engine)
            except OperationalError as exc:  # the server is down, the database or user does not exist...
                self.engine.dispose()
                detail = " ".join(str(exc.orig or exc).split())[:300]
                raise ServerFault(
                    f"the catalog at {without_password(url)} cannot be opened: {detail}",
                    hint="Check that its folder can be written (LEAFDOC_HOME, or LEAFDOC_DATABASE_URL)."
                    if url.startswith("sqlite")
                    else "Check LEAFDOC_DATABASE_URL (host, port, database name, user and password) and that the "
                    "database server runs and is reachable from here.",
                ) from None
            except LeafdocError:  # a schema newer than this leafdoc's
                self.engine.dispose()
                raise
        self.Session = sessionmaker(self.engine, expire_on_commit=False)

    def dispose(self) -> None:
        self.engine.dispose()

    def row(self, kind: type[R], key: Any, missing: LeafdocError) -> R:
        """The row of `kind` whose primary key is `key`, read in a session of its own; `missing` (a NotFound
        saying what is missing and where to find what there is) is raised when there is none."""
        with self.Session() as s:
            row = s.get(kind, key)
        if row is None:
            raise missing
        return row
