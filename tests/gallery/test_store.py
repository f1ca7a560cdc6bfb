from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from edge.access.schedule import Schedule
from edge.clock import FakeClock
from edge.errors import (
    ExitCode,
    GalleryError,
    GalleryKeyError,
    GalleryUnavailableError,
    NotFoundError,
    RefusedError,
)
from edge.gallery import store as gallery_module
from edge.gallery.events import EventFilter
from edge.gallery.key import generate_key, pending_key_path, read_key, write_key
from edge.gallery.store import (
    DELETED_NAME,
    Gallery,
    GalleryConfig,
    create_gallery,
)
from edge.types import Embedding
from tests.helpers import add_person_first_schema

MODEL = "sface-test"


def unit(seed: int, dim: int = 128) -> Embedding:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return Embedding(v / np.linalg.norm(v), MODEL)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def paths(tmp_path):
    config = GalleryConfig(
        path=str(tmp_path / "gallery.db"), key_file=str(tmp_path / "gallery.key")
    )
    create_gallery(config)
    return Path(config.path), Path(config.key_file)


@pytest.fixture
def gallery(paths):
    with Gallery.open(*paths) as g:
        yield g


def enrol(g: Gallery, name: str, seed: int, role: str = "user", **kw) -> int:
    return g.add_person(name, role, [unit(seed), unit(seed + 1)], [0.9, 0.8], now=100.0, **kw)


def test_init_creates_private_key_and_refuses_existing_gallery(paths):
    path, key_path = paths
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(RefusedError, match="already exists"):
        create_gallery(GalleryConfig(path=str(path), key_file=str(key_path)))


def test_file_holds_no_plaintext(paths):
    path, key_path = paths
    secret = unit(7)
    with Gallery.open(path, key_path) as g:
        g.add_person("Zelda Quux", "user", [secret], [0.9])
    raw = b"".join(p.read_bytes() for p in path.parent.glob("gallery.db*"))
    assert b"Zelda" not in raw and b"Zelda".decode().encode("utf-16-le") not in raw
    assert secret.vector.astype("<f4").tobytes()[:16] not in raw
    assert b"SQLite format 3" not in raw
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError):
        conn.execute("SELECT * FROM people").fetchall()
    conn.close()


def test_wrong_key_fails_and_leaves_file_identical(paths, tmp_path):
    path, _ = paths
    before = sha(path)
    wrong = tmp_path / "wrong.key"
    write_key(wrong, generate_key())
    with pytest.raises(GalleryKeyError, match="cannot decrypt") as err:
        Gallery.open(path, wrong)
    assert str(path) in str(err.value)
    with pytest.raises(GalleryKeyError):
        Gallery.open(path, wrong, create=True)
    assert sha(path) == before
    assert not Path(str(path) + "-wal").exists()


def test_missing_or_loose_key_file(paths, tmp_path):
    path, key_path = paths
    with pytest.raises(GalleryKeyError, match="not found"):
        Gallery.open(path, tmp_path / "absent.key")
    key_path.chmod(0o640)
    with pytest.raises(GalleryKeyError, match="chmod 600"):
        Gallery.open(path, key_path)
    key_path.chmod(0o600)
    key_path.write_text("not hex\n")
    with pytest.raises(GalleryKeyError, match="256-bit"):
        read_key(key_path)


def test_missing_gallery_is_not_created(tmp_path, paths):
    _, key_path = paths
    with pytest.raises(GalleryError, match="facegate init"):
        Gallery.open(tmp_path / "nope.db", key_path)
    assert not (tmp_path / "nope.db").exists()


@pytest.mark.parametrize("cut", ["partial_page", "whole_page", "empty"])
def test_truncated_gallery_named_and_untouched(paths, cut):
    path, key_path = paths
    with Gallery.open(path, key_path) as g:
        for i in range(40):
            enrol(g, f"person {chr(65 + i % 26)}{i}", seed=10 * i)
    size = path.stat().st_size
    keep = {"partial_page": size // 2 + 100, "whole_page": size - 4096, "empty": 0}[cut]
    with open(path, "r+b") as f:
        f.truncate(keep)
    before = sha(path)
    with pytest.raises(GalleryError, match=str(path)):
        with Gallery.open(path, key_path) as g:
            g.people()
    assert sha(path) == before


def test_corrupted_page_detected_by_check_and_reads(paths):
    path, key_path = paths
    with Gallery.open(path, key_path) as g:
        for i in range(40):
            enrol(g, f"person {chr(65 + i % 26)}{i}", seed=10 * i)
    data = bytearray(path.read_bytes())
    data[-3000:-2990] = bytes(10)  # inside the last page
    path.write_bytes(bytes(data))
    before = sha(path)
    with Gallery.open(path, key_path) as g:
        with pytest.raises(GalleryError, match=f"{path}: database disk image is malformed"):
            g.check()
        with pytest.raises(GalleryError, match=str(path)):
            g.templates(MODEL)
    assert sha(path) == before


def test_enrol_and_read_back(gallery):
    pid = enrol(gallery, "Ada", seed=1, role="admin")
    person = gallery.person("Ada")
    assert person == gallery.person(pid)
    assert (person.role, person.enabled, person.templates) == ("admin", True, 2)
    ids, matrix = gallery.templates(MODEL)
    assert ids.tolist() == [pid, pid] and matrix.shape == (2, 128) and matrix.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(matrix[0], unit(1).vector, rtol=1e-6)
    assert [e.kind for e in gallery.events()] == ["enrolled"]
    assert gallery.events()[0].name == "Ada"
    assert gallery.templates("other-model")[1].shape == (0, 0)
    assert gallery.model_ids() == {MODEL: 2}


@pytest.mark.parametrize(
    "args, error",
    [
        (("", "user"), ValueError),
        (("123", "user"), ValueError),
        (("Bob", "root"), RefusedError),
        (("Ada", "user"), RefusedError),
    ],
)
def test_bad_enrolment_changes_nothing(gallery, args, error):
    enrol(gallery, "Ada", seed=1)
    revision = gallery.revision()
    with pytest.raises(error):
        gallery.add_person(*args, [unit(5)], [0.5])
    with pytest.raises(ValueError):
        gallery.add_person("Eve", "user", [unit(5), Embedding(unit(6).vector, "other")], [1, 1])
    assert [p.name for p in gallery.people()] == ["Ada"]
    assert gallery.revision() == revision


def test_a_role_is_refused_the_same_way_when_enrolling_and_when_changed(gallery):
    pid = enrol(gallery, "Ada", seed=1)
    message = "role must be one of user, admin, got 'root'"
    with pytest.raises(RefusedError, match=message):
        gallery.add_person("Bob", "root", [unit(5)], [0.5])
    with pytest.raises(RefusedError, match=message):
        gallery.set_role(pid, "root")
    assert gallery.person(pid).role == "user"


def test_only_an_enabled_admin_is_an_enabled_admin(gallery):
    pid = enrol(gallery, "Ada", seed=1, role="admin")
    assert gallery.person(pid).is_enabled_admin
    gallery.set_enabled(pid, False)
    assert not gallery.person(pid).is_enabled_admin
    gallery.set_enabled(pid, True)
    gallery.set_role(pid, "user")
    assert not gallery.person(pid).is_enabled_admin


def test_rename_enable_and_access_status(gallery):
    pid = enrol(gallery, "Ada", seed=1, valid_from=1000.0, valid_until=2000.0)
    enrol(gallery, "Bob", seed=3)
    with pytest.raises(RefusedError):
        gallery.rename(pid, "Bob")
    gallery.rename(pid, "Ada L.")
    assert gallery.person(pid).name == "Ada L."
    assert gallery.access_status(pid, 999.0) == "not_yet_valid"
    assert gallery.access_status(pid, 1500.0) is None
    assert gallery.access_status(pid, 2000.0) == "expired"
    gallery.set_enabled(pid, False)
    assert gallery.access_status(pid, 1500.0) == "disabled"
    assert gallery.access_status(9999, 1500.0) == "not_found"
    with pytest.raises(NotFoundError):
        gallery.set_enabled(9999, True)


def test_a_weekly_schedule_limits_access_and_survives_reopening(gallery, paths, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monday_9 = 1_700_438_400.0 + 9 * 3600  # 2023-11-20 09:00 UTC, a Monday
    pid = enrol(gallery, "Ada", seed=1)
    revision = gallery.revision()
    gallery.set_schedule(pid, Schedule.parse(["mon-fri 08:00-18:00"]))
    assert gallery.revision() > revision  # the matcher's copy of people is refreshed
    assert gallery.access_status(pid, monday_9) is None
    assert gallery.access_status(pid, monday_9 + 5 * 86400) == "outside_schedule"  # Saturday
    gallery.close()
    with Gallery.open(*paths) as again:
        assert str(again.person(pid).schedule) == "mon-fri 08:00-18:00"
        again.set_schedule(pid, None)
        assert again.person(pid).schedule is None
        assert again.access_status(pid, monday_9 + 5 * 86400) is None
        with pytest.raises(NotFoundError):
            again.set_schedule(9999, None)
    monkeypatch.undo()
    time.tzset()


def test_a_gallery_made_before_schedules_migrates_and_keeps_its_people(tmp_path, monkeypatch):
    paths = tmp_path / "old.db", tmp_path / "old.key"
    with monkeypatch.context() as old_code:
        old_code.setattr(gallery_module, "MIGRATIONS", gallery_module.MIGRATIONS[:1])
        old_code.setattr(gallery_module, "SCHEMA_VERSION", 1)
        create_gallery(GalleryConfig(path=str(paths[0]), key_file=str(paths[1])))
        with Gallery.open(*paths) as old:
            pid = add_person_first_schema(old, "Ada", unit(1).vector)
    with Gallery.open(*paths) as new:
        assert new.person(pid).schedule is None
        assert len(new.person(pid).uid) == 32  # given its site-wide id on the way
        new.set_schedule(pid, Schedule.parse(["sat 09:00-12:00"]))
        assert str(new.person(pid).schedule) == "sat 09:00-12:00"


def test_revision_changes_with_people_not_with_events(gallery):
    r0 = gallery.revision()
    pid = enrol(gallery, "Ada", seed=1)
    r1 = gallery.revision()
    gallery.log_event("granted", 200.0, person_id=pid, score=0.8, liveness=0.9)
    assert gallery.revision() == r1 != r0
    gallery.set_enabled(pid, False)
    assert gallery.revision() != r1


def test_events_filter_and_unknown_kind(gallery):
    pid = enrol(gallery, "Ada", seed=1)
    gallery.log_event("granted", 200.0, person_id=pid, score=0.7)
    gallery.log_event("denied_unknown", 300.0, score=0.1, reason="no match")
    with pytest.raises(ValueError, match="unknown event kind"):
        gallery.log_event("opened", 400.0)
    with pytest.raises(NotFoundError):
        gallery.log_event("granted", 400.0, person_id=9999)
    assert [e.kind for e in gallery.events(EventFilter(since=150.0))] == [
        "granted",
        "denied_unknown",
    ]
    assert [e.time for e in gallery.events(EventFilter(kind="granted"))] == [200.0]
    assert gallery.events(EventFilter(since=150.0, until=300.0))[0].name == "Ada"
    assert gallery.count_events(EventFilter(person_id=pid)) == 2  # enrolled, granted
    with pytest.raises(ValueError, match="unknown event kind 'opened'"):
        EventFilter(kind="opened")


def test_delete_scrubs_person_and_vacuums(paths):
    path, key_path = paths
    with Gallery.open(path, key_path) as g:
        pid = enrol(g, "Zelda Quux", seed=1)
        keep = enrol(g, "Bob", seed=3)
        for t in range(50):
            g.log_event("granted", 200.0 + t, person_id=pid)
        size_before = path.stat().st_size
        g.delete_person(pid)
        assert [p.id for p in g.people()] == [keep]
        assert g.templates(MODEL)[0].tolist() == [keep, keep]
        scrubbed = g._conn.execute("SELECT count(*) FROM events WHERE name LIKE '%Zelda%'")
        assert scrubbed.fetchone()[0] == 0
        assert {e.name for e in g.events() if e.kind == "granted"} == {DELETED_NAME}
        assert g.events(EventFilter(kind="removed"))[-1].reason == f"person #{pid}"
        # VACUUM ran: freelist empty and the WAL checkpointed away.
        assert g._conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
        assert not Path(str(path) + "-wal").exists() or Path(str(path) + "-wal").stat().st_size == 0
        assert path.stat().st_size <= size_before
        # Every decrypted page, live or free: no trace of the name.
        export = path.parent / "plain.db"
        g._conn.execute(f"ATTACH DATABASE '{export}' AS plain KEY ''")
        g._conn.execute("SELECT sqlcipher_export('plain')")
        g._conn.execute("DETACH DATABASE plain")
    assert b"Zelda" not in export.read_bytes()
    assert b"Bob" in export.read_bytes()  # the export really is plaintext


def test_schema_migrates_forward_and_refuses_newer(paths, monkeypatch):
    path, key_path = paths
    calls = []
    released = gallery_module.MIGRATIONS

    def next_migration(db):
        calls.append(len(released) + 1)
        db.execute("CREATE TABLE extra (x INTEGER)")

    monkeypatch.setattr(gallery_module, "MIGRATIONS", released + (next_migration,))
    monkeypatch.setattr(gallery_module, "SCHEMA_VERSION", len(released) + 1)
    with Gallery.open(path, key_path) as g:
        assert "extra" in g._table_names()
    with Gallery.open(path, key_path):
        pass
    assert calls == [len(released) + 1]  # ran once
    monkeypatch.setattr(gallery_module, "MIGRATIONS", released)
    monkeypatch.setattr(gallery_module, "SCHEMA_VERSION", len(released))
    before = sha(path)
    with pytest.raises(GalleryError, match="newer"):
        Gallery.open(path, key_path)
    assert sha(path) == before


def test_failed_migration_rolls_back(paths, monkeypatch):
    path, key_path = paths

    def broken(db):
        db.execute("CREATE TABLE half (x INTEGER)")
        raise RuntimeError("boom")

    monkeypatch.setattr(gallery_module, "MIGRATIONS", gallery_module.MIGRATIONS + (broken,))
    monkeypatch.setattr(gallery_module, "SCHEMA_VERSION", len(gallery_module.MIGRATIONS))
    with pytest.raises(RuntimeError):
        Gallery.open(path, key_path)
    monkeypatch.undo()
    with Gallery.open(path, key_path) as g:
        assert "half" not in g._table_names()


def test_a_gallery_locked_by_another_writer_is_unavailable_not_corrupt(paths):
    with Gallery.open(*paths) as holder, Gallery.open(*paths, busy_timeout=0.05) as waiter:
        holder._conn.execute("BEGIN IMMEDIATE")
        with pytest.raises(GalleryUnavailableError, match="locked by another process") as caught:
            waiter.log_event("granted", 1.0)
        assert caught.value.exit_code == ExitCode.GALLERY_BUSY == 75
        holder._conn.execute("ROLLBACK")
        waiter.log_event("granted", 1.0)
        assert len(waiter.events()) == 1


def test_a_full_gallery_says_the_disk_is_full_and_where(paths):
    path, key_path = paths
    with Gallery.open(path, key_path) as g:
        pages = g._conn.execute("PRAGMA page_count").fetchone()[0]
        g._conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk full"
        with pytest.raises(
            GalleryUnavailableError, match=f"the disk holding {path.parent} is full"
        ):
            for i in range(200):
                g.log_event("denied_unknown", float(i), reason="x" * 200)


def test_names_stored_before_they_were_normalised_are_cleaned_by_their_migration(paths):
    path, key_path = paths
    composed, decomposed = "José", unicodedata.normalize("NFD", "José")
    with Gallery.open(path, key_path) as g:
        ids = [enrol(g, "Ada", seed=1), enrol(g, "Bob", seed=3), enrol(g, composed, seed=5)]
        g.log_event("granted", 1.0, person_id=ids[0])
        # as an older facegate stored them, unchecked
        g._conn.execute("UPDATE people SET name = ? WHERE id = ?", ["Ada\x1b[2J\n", ids[0]])
        g._conn.execute("UPDATE people SET name = ? WHERE id = ?", [decomposed, ids[1]])
        g._conn.execute("UPDATE events SET name = 'Ada\x1b[2J' WHERE person_id = ?", [ids[0]])
        with g.writing() as conn:
            gallery_module._migrate_clean_names(conn)
    with Gallery.open(path, key_path) as g:
        assert [p.name for p in g.people()] == ["Ada\ufffd[2J", f"{composed} #{ids[1]}", composed]
        assert g.events(EventFilter(kind="granted"))[0].name == "Ada\ufffd[2J"


def test_check_healthy_gallery(gallery):
    enrol(gallery, "Ada", seed=1)
    assert gallery.check() == []


def test_backup_opens_with_same_key_and_refuses_existing(paths, tmp_path):
    path, key_path = paths
    with Gallery.open(path, key_path) as g:
        enrol(g, "Ada", seed=1)
        reader = Gallery.open(path, key_path)  # another process's open read snapshot
        reader._conn.execute("BEGIN")
        reader.people()
        g.backup(tmp_path / "copy.db")
        reader._conn.execute("COMMIT")
        reader.close()
        with pytest.raises(RefusedError):
            g.backup(tmp_path / "copy.db")
    with Gallery.open(tmp_path / "copy.db", key_path) as copy:
        assert [p.name for p in copy.people()] == ["Ada"]
        assert copy.check() == []
    assert not (tmp_path / "copy.db").read_bytes().startswith(b"SQLite format 3\0")


def test_rekey_replaces_key_and_old_key_fails(paths, tmp_path):
    path, key_path = paths
    old = key_path.read_bytes()
    (tmp_path / "old.key").write_bytes(old)
    (tmp_path / "old.key").chmod(0o600)
    with Gallery.open(path, key_path) as g:
        enrol(g, "Ada", seed=1)
        g.rekey()
    assert key_path.read_bytes() != old
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    assert not pending_key_path(key_path).exists()
    with Gallery.open(path, key_path) as g:
        assert g.person("Ada").templates == 2
    with pytest.raises(GalleryKeyError):
        Gallery.open(path, tmp_path / "old.key")


def test_rekey_interrupted_after_switch_is_finished_at_open(paths, monkeypatch):
    path, key_path = paths
    with Gallery.open(path, key_path) as g:
        enrol(g, "Ada", seed=1)

        real_replace = os.replace

        def crash(src, dst):  # power cut just before the new key is renamed into place
            if Path(dst) == key_path:
                raise KeyboardInterrupt("power cut")
            real_replace(src, dst)

        monkeypatch.setattr(gallery_module.os, "replace", crash)
        with pytest.raises(KeyboardInterrupt):
            g.rekey()
        monkeypatch.undo()
    assert pending_key_path(key_path).exists()
    with Gallery.open(path, key_path) as g:  # old key fails, pending one opens it
        assert g.person("Ada").name == "Ada"
    assert not pending_key_path(key_path).exists()
    with Gallery.open(path, key_path):
        pass


def test_rekey_interrupted_before_switch_keeps_old_key(paths):
    path, key_path = paths
    write_key(pending_key_path(key_path), generate_key())  # crash before PRAGMA rekey
    with Gallery.open(path, key_path):
        pass
    assert not pending_key_path(key_path).exists()


def test_what_a_caller_gives_no_time_for_is_stamped_by_the_gallery_clock(paths):
    clock = FakeClock(wall_start=1_234_567_890.0)
    with Gallery.open(*paths, clock=clock) as g:
        pid = g.add_person("Ada", "user", [unit(1)], [0.9])
        clock.advance(5.0)
        g.add_liveness_calibration("{}", "{}", active=True)
        clock.advance(5.0)
        g.delete_person(pid)
        assert [(e.kind, e.time) for e in g.events()] == [
            ("enrolled", 1_234_567_890.0),
            ("liveness_calibrated", 1_234_567_895.0),
            ("removed", 1_234_567_900.0),
        ]
        assert g.liveness_calibrations()[0].created == 1_234_567_895.0
