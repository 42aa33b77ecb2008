"""The model registry: versions stored in the blob store and rebuilt on any machine, the serving
pointer with its history (promote, rollback), seeding, the promotion rule, and leases."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time

import pytest
from alembic import command
from alembic.config import Config
from service_support import model_copy, service_settings
from sqlalchemy import inspect
from tests.conftest import fresh_photos

from leafdoc.core import atomic
from leafdoc.core.errors import ConfigError, Conflict, ModelError, NotFound
from leafdoc.core.processes import pid_alive
from leafdoc.data import leases
from leafdoc.data.catalog import MIGRATIONS, Catalog, make_engine
from leafdoc.data.store import open_store
from leafdoc.lifecycle.promotion import promotion_decision
from leafdoc.model_versions import Registry
from leafdoc.service.jobs import cancel, get_job


@pytest.fixture
def make_registry(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setattr("leafdoc.model_versions.starter_model_dir", lambda: tmp_path / "no-starter")

    def make(model_dir=tiny_model, home=None) -> Registry:
        s = service_settings(home or tmp_path / "home", model_dir)
        return Registry(s, Catalog(s.catalog_url), open_store(s.store_location))

    return make


@pytest.fixture
def registry(make_registry):
    r = make_registry()
    assert r.seed() == 1
    return r


def test_seed_registers_the_model_dir_once_and_serves_it(registry, tiny_model):
    assert registry.seed() is None  # not empty any more
    row = registry.get(1)
    assert row.status == "serving" and row.source == f"seed:{tiny_model}"
    assert set(row.files) == {"model.onnx", "model.keras", "labels.json", "card.json", "ood.npz", "split.json"}
    assert registry.serving().version == 1
    assert [e["action"] for e in registry.history()] == ["seed"]


def test_concurrent_seeding_registers_one_version(make_registry):
    registries = [make_registry() for _ in range(3)]
    results = []
    threads = [threading.Thread(target=lambda r=r: results.append(r.seed())) for r in registries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=str) == [1, None, None]
    assert registries[0].count() == 1


def test_seeds_the_repository_starter_model_when_no_model_dir_is_set(make_registry, tiny_model, tmp_path, monkeypatch):
    starter = model_copy(tiny_model, tmp_path / "repo" / "models" / "starter")
    monkeypatch.setattr("leafdoc.model_versions.starter_model_dir", lambda: starter)
    r = make_registry(model_dir=None)
    assert r.seed() == 1 and r.get(1).source == f"seed:{starter}"


def test_nothing_to_seed_and_a_bad_model_dir(make_registry, tmp_path):
    assert make_registry(model_dir=None).seed() is None
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="not a model folder") as refused:
        make_registry(model_dir=tmp_path / "empty", home=tmp_path / "h2").seed()
    assert "leafdoc predict" not in refused.value.hint  # a folder of no photos: not a mix-up of predict's arguments


def test_a_version_is_rebuilt_from_the_store_on_a_machine_without_its_folder(registry, tiny_model, tmp_path):
    folder = registry.local_dir(1)
    shutil.rmtree(folder)
    other = Registry(
        registry.settings.model_copy(update={"home": tmp_path / "other-machine"}), registry.catalog, registry.store
    )
    rebuilt = other.local_dir(1)
    assert rebuilt != folder and (rebuilt / "model.onnx").read_bytes() == (tiny_model / "model.onnx").read_bytes()
    # and which photos it trained on, which the promotion rule leaves out when it compares a candidate with it
    assert (rebuilt / "split.json").read_bytes() == (tiny_model / "split.json").read_bytes()
    assert registry.local_dir(1) == folder and (folder / "card.json").is_file()
    with pytest.raises(NotFound):
        registry.local_dir(42)


def test_a_folder_of_the_same_number_holding_another_model_is_not_served_as_the_version(registry, tiny_model, tmp_path):
    """A data home whose catalog was restored from an earlier backup (or deleted to start again) keeps its models/
    folders: version 2 of the new catalog is another model than the models/2 left there, and local_dir served the old
    files (it checked the names only)."""
    folder = registry.local_dir(1)
    right = {name: (folder / name).read_bytes() for name in registry.get(1).files}
    (folder / "model.onnx").write_bytes(b"another catalog's version 1")
    served = registry.local_dir(1)
    assert {name: (served / name).read_bytes() for name in right} == right
    assert not list(served.parent.glob(".1.*")), "the replaced folder and the copy are cleaned up"
    unchanged = served.stat().st_ino
    assert registry.local_dir(1) == served and served.stat().st_ino == unchanged  # a right folder is kept


def test_a_stale_folder_that_cannot_be_replaced_is_an_error_and_a_link_to_one_is_replaced(
    registry, tmp_path, monkeypatch
):
    """A stale models/1 that could not be removed (another user's, read-only) was served once the rebuilt copy was
    dropped; one that was a link to another folder was served unchecked (security round 9)."""
    from leafdoc.core import atomic

    folder = registry.local_dir(1)
    right = {name: (folder / name).read_bytes() for name in registry.get(1).files}
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(folder, elsewhere)
    (elsewhere / "model.onnx").write_bytes(b"another catalog's version 1")
    shutil.rmtree(folder)
    folder.symlink_to(elsewhere)
    served = registry.local_dir(1)
    assert not served.is_symlink() and {name: (served / name).read_bytes() for name in right} == right
    assert (elsewhere / "model.onnx").read_bytes() == b"another catalog's version 1"  # the other folder is kept

    (served / "model.onnx").write_bytes(b"stale, and this folder cannot be removed")
    monkeypatch.setattr(atomic.shutil, "rmtree", lambda path, ignore_errors=False: None)  # as a read-only folder
    with pytest.raises(ModelError, match="could not be replaced") as refused:
        registry.local_dir(1)
    assert "Move" in refused.value.hint


def test_a_version_folder_another_process_finished_first_is_kept_not_replaced(registry, tmp_path, monkeypatch):
    """`leafdoc serve --workers 4` on a fresh machine: every worker rebuilds the serving version at once. One
    that finishes its copy second must not delete the first one's folder, which the others are loading from
    (it did: a worker failed with "model.onnx: File doesn't exist")."""
    folder = registry.local_dir(1)
    whole = {p.name: p.read_bytes() for p in folder.iterdir()}
    shutil.rmtree(folder)
    get = registry.store.get
    theirs = []

    def racing_get(sha):  # while this process copies from the store, another worker renames its whole copy
        if not folder.exists():
            staged = tmp_path / "other-worker"
            staged.mkdir()
            for name, data in whole.items():
                (staged / name).write_bytes(data)
            os.rename(staged, folder)
            theirs.append(folder.stat().st_ino)
        return get(sha)

    monkeypatch.setattr(registry.store, "get", racing_get)
    assert registry.local_dir(1) == folder
    assert theirs and folder.stat().st_ino == theirs[0], "the other worker's folder was replaced"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == whole
    assert not list(folder.parent.glob(".1.*.partial")), "this process's own copy is cleaned up"


def test_what_a_killed_worker_half_rebuilt_goes_with_the_next_registry_write_and_a_live_ones_stays(
    registry, tiny_model, tmp_path
):
    """A worker killed while it rebuilt a version from the store (kill -9, the out-of-memory killer) left its
    `.<version>.XXXXXXXX.partial` copy (the model's files, tens of MB) in models_dir for good: nothing removed it.
    Now named for its writer as core.atomic's are, it goes with the next rebuild or registration once its writer is
    gone; one a live worker is still writing stays."""
    models = registry.settings.models_dir
    folder = registry.local_dir(1)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        assert not pid_alive(ended.pid) and pid_alive(running.pid)
        host = atomic._host()

        def leftover(name: str) -> str:
            (models / name).mkdir()
            (models / name / "model.onnx").write_bytes(b"\0" * 10_000)
            return name

        killed = leftover(f".1.abcdefgh.{ended.pid}@{host}.partial")
        killed_elsewhere = leftover(f".7.ijklmnop.{ended.pid}@{host}.partial")  # a version no rebuild here redoes
        before = leftover(".1.zz_yy123.partial")  # named as before writers were: removed once a day old
        day_ago = time.time() - atomic.STALE_SECONDS - 60
        os.utime(models / before, (day_ago, day_ago))
        this = leftover(f".1.qrstuvwx.{os.getpid()}@{host}.partial")  # this process, writing it now
        other = leftover(f".1.a1b2c3d4.{running.pid}@{host}.partial")  # another worker, writing it now

        def partials() -> set[str]:
            return {p.name for p in models.glob(".*.partial")}

        assert partials() == {killed, killed_elsewhere, before, this, other}
        shutil.rmtree(folder)
        assert registry.local_dir(1) == folder  # rebuilt from the store
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == {
            name: (tiny_model / name).read_bytes() for name in registry.get(1).files
        }
        assert partials() == {this, other}
        umask = os.umask(0o022)
        os.umask(umask)
        assert folder.stat().st_mode & 0o777 == 0o777 & ~umask  # as mkdir makes it (mkdtemp's was 0700)

        killed_again = leftover(f".1.zyxwvuts.{ended.pid}@{host}.partial")
        registry.register(model_copy(tiny_model, tmp_path / "v2", note="v2"), source="test")  # a registration
        assert killed_again not in partials() and partials() == {this, other}
    finally:
        running.kill()
        running.wait()


def test_register_is_all_or_nothing(registry, tiny_model, tmp_path):
    def boom(session, version, served):
        raise RuntimeError("the job's update failed")

    with pytest.raises(RuntimeError):
        registry.register(model_copy(tiny_model, tmp_path / "c"), source="test", serve="promote", on_commit=boom)
    assert registry.count() == 1 and registry.serving().version == 1 and len(registry.history()) == 1
    with pytest.raises(ModelError):
        registry.register(tmp_path / "does-not-exist", source="test")
    assert registry.count() == 1


def test_auto_promotion_is_skipped_if_the_serving_model_changed_meanwhile(registry, tiny_model, tmp_path):
    v2, _ = registry.register(model_copy(tiny_model, tmp_path / "v2"), source="test")
    registry.promote(v2)
    decision = {"promote": True, "reason": "better", "promoted": True}
    v3, served = registry.register(
        model_copy(tiny_model, tmp_path / "v3"),
        source="test",
        promotion=decision,
        serve="auto_promote",
        expected_serving=1,  # evaluated against v1, but v2 serves now
    )
    assert served is False and registry.serving().version == v2
    row = registry.get(v3)
    assert row.status == "candidate" and row.promotion["promoted"] is False and "changed" in row.promotion["note"]


def test_promote_and_rollback_follow_the_history_as_a_stack(registry, tiny_model, tmp_path):
    v2, _ = registry.register(model_copy(tiny_model, tmp_path / "v2"), source="test")
    v3, _ = registry.register(model_copy(tiny_model, tmp_path / "v3"), source="test", status="rejected")
    registry.promote(v2)
    registry.promote(v3, reason="rejected by the rule, promoted by hand")
    assert {r.version: r.status for r in registry.versions()} == {1: "archived", v2: "archived", v3: "serving"}
    with pytest.raises(Conflict):
        registry.promote(v3)
    assert registry.rollback()["version"] == v2
    assert registry.rollback()["version"] == 1
    with pytest.raises(Conflict):
        registry.rollback()
    assert {r.version: r.status for r in registry.versions()} == {1: "serving", v2: "archived", v3: "archived"}
    actions = [(e["action"], e["version"], e["previous_version"]) for e in registry.history()]
    assert actions == [
        ("seed", 1, None),
        ("promote", v2, 1),
        ("promote", v3, v2),
        ("rollback", v2, v3),
        ("rollback", 1, v2),
    ]
    with pytest.raises(NotFound):
        registry.promote(99)


def test_promotion_rule_compares_both_models_on_the_same_images(tiny_model):
    photos = fresh_photos(n=2)  # photos the serving model never trained on: none is left out
    images = [p.read_bytes() for p, _ in photos]
    labels = [label for _, label in photos]
    same = promotion_decision(
        tiny_model, tiny_model, 1, images, labels, metric="accuracy", margin=0.0, max_pixels=10**8
    )
    assert same["candidate"] == same["serving"] and same["promote"] is True and same["n_images"] == 6
    strict = promotion_decision(
        tiny_model, tiny_model, 1, images, labels, metric="macro_f1", margin=-0.01, max_pixels=10**8
    )
    assert strict["promote"] is False and "worse than" in strict["reason"] and strict["rule"].endswith("- -0.01")
    assert strict["held_back"] == ["worse"]
    ece = promotion_decision(tiny_model, tiny_model, 1, images, labels, metric="ece", margin=0.0, max_pixels=10**8)
    assert ece["promote"] is True and "<=" in ece["rule"]
    first = promotion_decision(tiny_model, None, None, images, labels, metric="accuracy", margin=0.0, max_pixels=10**8)
    assert first["promote"] is True and first["serving"] is None and "no model" in first["reason"]
    assert first["held_back"] == []
    # A label the serving model does not know counts as wrong for it.
    unknown = promotion_decision(
        tiny_model, tiny_model, 1, images[:1], ["Tomato___new"], metric="accuracy", margin=0.0, max_pixels=10**8
    )
    assert unknown["candidate"] == unknown["serving"] == 0.0
    with pytest.raises(ConfigError):
        promotion_decision(tiny_model, None, None, images, labels, metric="speed", margin=0, max_pixels=10**8)


def test_promotion_rule_promotes_the_better_model_and_keeps_the_worse_one_out(tiny_model, tmp_path):
    """Two models that answer differently on the same photos: the rule's figures are their accuracies as
    scored here, the better one is promoted over the worse, never the reverse."""
    import itertools
    import json

    import numpy as np

    from leafdoc.inference.predictor import Predictor

    by_class = {}
    for p, label in fresh_photos(n=4):  # photos neither model trained on
        by_class.setdefault(label, []).append(p)
    photos = [*by_class[sorted(by_class)[0]][:4]] + [by_class[c][0] for c in sorted(by_class)[1:]]  # 4 / 1 / 1
    images, labels = [p.read_bytes() for p in photos], [p.parent.name for p in photos]
    tiny = Predictor(tiny_model)
    predicted = tiny.predict_arrays(np.stack([tiny.preprocess(b) for b in images]))["probabilities"].argmax(1)

    def accuracy(names):
        return float(np.mean([names[i] == label for i, label in zip(predicted, labels, strict=True)]))

    # The same network with its labels in another order: it names other classes, so it scores differently.
    names = next(list(n) for n in itertools.permutations(tiny.labels) if accuracy(list(n)) != accuracy(tiny.labels))
    other = model_copy(tiny_model, tmp_path / "relabelled")
    (other / "labels.json").write_text(json.dumps(names))
    figures = {tiny_model: accuracy(tiny.labels), other: accuracy(names)}
    better, worse = sorted(figures, key=figures.get, reverse=True)
    up = promotion_decision(better, worse, 1, images, labels, metric="accuracy", margin=0.0, max_pixels=10**8)
    assert up["promote"] is True
    assert (up["candidate"], up["serving"]) == pytest.approx((figures[better], figures[worse]), abs=1e-6)
    down = promotion_decision(worse, better, 1, images, labels, metric="accuracy", margin=0.0, max_pixels=10**8)
    assert down["promote"] is False and "worse than" in down["reason"] and down["held_back"] == ["worse"]
    assert (down["candidate"], down["serving"]) == pytest.approx((figures[worse], figures[better]), abs=1e-6)


def test_leases_exclude_expire_and_release(tmp_path):
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.sqlite'}")
    assert leases.try_acquire(catalog, "x", "a", ttl=60)
    assert leases.try_acquire(catalog, "x", "a", ttl=60)  # re-entrant for its holder
    assert not leases.try_acquire(catalog, "x", "b", ttl=60)
    leases.release(catalog, "x", "a")
    assert leases.try_acquire(catalog, "x", "b", ttl=0.2)
    time.sleep(0.3)
    assert leases.current_holder(catalog, "x") is None  # expired: its holder died
    assert leases.try_acquire(catalog, "x", "c", ttl=60)
    with pytest.raises(Conflict, match="busy"), leases.hold(catalog, "x", wait=0.3, what="the thing"):
        pass
    leases.release(catalog, "x", "c")
    with leases.hold(catalog, "x", ttl=1.5) as holder:
        time.sleep(2.0)  # renewed in the background meanwhile (a 0.3 s lease was let lapse once on a busy machine)
        assert leases.current_holder(catalog, "x") == holder
    assert leases.current_holder(catalog, "x") is None


def _old_catalog(url: str, revision: str, *sql: str):
    """A catalog file migrated only up to `revision` (as an older leafdoc left it), with rows from `sql`."""
    engine = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        for statement in sql:
            conn.exec_driver_sql(statement)
    return engine


def test_an_older_catalog_upgrades_in_place(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = _old_catalog(url, "0001")
    assert "model_versions" not in inspect(engine).get_table_names()
    catalog = Catalog(url)
    tables = set(inspect(catalog.engine).get_table_names())
    assert {"model_versions", "serving_events", "training_jobs", "uploads", "leases", "images"} <= tables


def test_a_catalog_from_before_job_cancelling_upgrades_and_keeps_its_jobs(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = _old_catalog(
        url,
        "0002",
        "INSERT INTO training_jobs (id, state, dataset, options, warm_start, created, epoch, epochs) "
        "VALUES ('old', 'running', 'tiny', '{}', 1, '2026-01-01 00:00:00', 0, 1)",
    )
    assert "cancel_requested" not in {c["name"] for c in inspect(engine).get_columns("training_jobs")}
    catalog = Catalog(url)
    assert "cancel_requested" in {c["name"] for c in inspect(catalog.engine).get_columns("training_jobs")}
    job = get_job(catalog, "old")
    assert job.state == "running" and job.cancel_requested is None
    assert cancel(catalog, "old").cancel_requested is not None  # the old running job can be cancelled
    catalog.dispose()
