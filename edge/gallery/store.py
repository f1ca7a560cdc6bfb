"""The gallery: people, their face templates and the event log, in one encrypted file.

The whole SQLite database is encrypted with SQLCipher (``sqlcipher3``) under a raw
256-bit key kept in a separate file (see ``key``). Everything is plain SQL on one
connection; writes run inside explicit ``BEGIN IMMEDIATE`` transactions, because an
enrolment must be all or nothing. The journal is WAL with ``synchronous=FULL``,
so a committed enrolment survives power loss and an interrupted one leaves no
trace.

No face images are stored: the schema has no column that could hold one.

Conventions: times are unix wall-clock seconds (``Clock.wall()``); template vectors
are unit-length float32, little-endian, tagged with the model id that made them.

A ``Gallery`` object wraps one connection and is not thread-safe: open one per
thread. Every open Gallery holds the gallery's lock file shared (``lock``), so
``rekey`` and restoring a backup are refused while another process has it open.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import sqlcipher3

from ..access.schedule import Schedule
from ..clock import Clock, SystemClock
from ..errors import (
    GalleryError,
    GalleryKeyError,
    GalleryUnavailableError,
    NotFoundError,
    RefusedError,
)
from ..schema import setting
from ..types import Embedding, EventKind, Refusal
from . import site_state
from .backup import fingerprint_path, remove_stale_partials, writing_partial
from .events import Event, EventFilter, count_events, event_kind, insert_event, select_events
from .key import (
    fsync_dir,
    generate_key,
    key_fingerprint,
    key_pragma_value,
    open_with_key_file,
    promote_pending_key,
    read_key,
    stage_key,
    write_key,
)
from .lock import GalleryLock

ROLES = ("user", "admin")
DELETED_NAME = "[deleted]"
# How long a call waits for another process's write lock before it gives up: long
# enough for an enrolment or a rename, short enough for an administrator's command.
BUSY_TIMEOUT_S = 5.0
# SQLite primary result codes (the low byte of an extended one) that mean "not now".
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_IOERR, _SQLITE_FULL = 5, 6, 10, 13
# A write that fails with an I/O error while less than this is free hit a full disk.
_FULL_BELOW_BYTES = 1 << 20
MAX_NAME_LENGTH = 100
# Unicode categories a name may not hold: controls (C0, C1), format characters (bidi
# overrides and isolates, zero-width spaces and joiners), surrogates, private-use and
# unassigned code points, and line and paragraph separators. Each can rewrite a
# terminal or the journal, or make two names look alike.
_REFUSED_IN_NAMES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
PAGE_SIZE = 4096  # SQLCipher 4 default; facegate never changes it


@dataclass(frozen=True)
class GalleryConfig:
    """Where the gallery and its key live (the key itself is never in the config)."""

    path: str = setting("/var/lib/facegate/gallery.db", "Encrypted gallery database file.")
    key_file: str = setting(
        "/etc/facegate/key/gallery.key",
        "File holding the 256-bit gallery key in hex; mode 0600, owned by the service user, "
        "in a folder of its own that the service user owns and may write (rekey replaces it).",
    )


@dataclass(frozen=True)
class Person:
    """One enrolled person. ``valid_from``/``valid_until`` are wall seconds or None;
    ``schedule`` None means any time of the week."""

    id: int
    name: str
    role: str
    enabled: bool
    valid_from: float | None
    valid_until: float | None
    created: float
    templates: int
    schedule: Schedule | None = None
    uid: str = ""  # the person's id across the site's terminals

    @property
    def is_enabled_admin(self) -> bool:
        """May authorise an enrolment at the door."""
        return self.role == "admin" and self.enabled


@dataclass(frozen=True)
class Admin:
    """An administrator of the web app: ``password_hash`` is an argon2id hash string."""

    id: int
    name: str
    password_hash: str
    created: float


@dataclass(frozen=True)
class ApiToken:
    """An API token: only the digest of its secret is kept; ``scopes`` says what it may."""

    id: int
    admin: str
    label: str
    digest: str
    scopes: tuple[str, ...]
    created: float


@dataclass(frozen=True)
class CalibrationRecord:
    """One site calibration of the RGB liveness layer: its head and held-back report as
    JSON (``edge/liveness/calibration.py`` reads them), when it was made, whether it is
    the one in use."""

    id: int
    created: float
    head: str
    report: str
    active: bool


# --- schema and forward migrations -------------------------------------------------
# Each migration takes the database from version i to i+1 inside the caller's
# transaction. Append new ones; never edit a released one.


def _migrate_initial(db: sqlcipher3.Connection) -> None:
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', 0), ('revision', 0)")
    db.execute(
        """CREATE TABLE people (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('user', 'admin')),
            enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
            valid_from REAL,
            valid_until REAL,
            created REAL NOT NULL)"""
    )
    db.execute(
        """CREATE TABLE templates (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
            model_id TEXT NOT NULL,
            vector BLOB NOT NULL,
            quality REAL NOT NULL,
            created REAL NOT NULL)"""
    )
    db.execute("CREATE INDEX templates_by_model ON templates (model_id, person_id)")
    db.execute(
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            time REAL NOT NULL,
            kind TEXT NOT NULL,
            person_id INTEGER REFERENCES people(id) ON DELETE SET NULL,
            name TEXT,
            score REAL,
            liveness REAL,
            reason TEXT)"""
    )
    db.execute("CREATE INDEX events_by_time ON events (time)")
    db.execute("CREATE INDEX events_by_person ON events (person_id)")


def _migrate_retired_keys(db: sqlcipher3.Connection) -> None:
    # Keys a rekey replaced, kept (encrypted with everything else, under the current
    # key) so that backups made before the rekey can still be restored.
    db.execute(
        """CREATE TABLE retired_keys (
            fingerprint TEXT PRIMARY KEY,
            key BLOB NOT NULL,
            retired REAL NOT NULL)"""
    )


def _migrate_clean_names(db: sqlcipher3.Connection) -> None:
    # Names stored before they were normalised: NFC, control and invisible characters
    # replaced by U+FFFD (in people and in the names events recorded); a name that
    # then equals another gets its person id appended.
    refused = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}

    def clean(name: str) -> str:
        name = unicodedata.normalize("NFC", name).strip()
        return "".join("\ufffd" if unicodedata.category(c) in refused else c for c in name)

    people = db.execute("SELECT id, name FROM people ORDER BY id").fetchall()
    taken = {name for _, name in people if clean(name) == name}
    for person_id, name in people:
        new = clean(name)
        if new == name:
            continue
        if new in taken:
            new = f"{new} #{person_id}"
        taken.add(new)
        db.execute("UPDATE people SET name = ? WHERE id = ?", [new, person_id])
    for event_id, name in db.execute(
        "SELECT id, name FROM events WHERE name IS NOT NULL"
    ).fetchall():
        if clean(name) != name:
            db.execute("UPDATE events SET name = ? WHERE id = ?", [clean(name), event_id])


def _migrate_weekly_schedule(db: sqlcipher3.Connection) -> None:
    # JSON list of windows as people write them (schedule.py); NULL = any time.
    db.execute("ALTER TABLE people ADD COLUMN schedule TEXT")


def _migrate_liveness_calibrations(db: sqlcipher3.Connection) -> None:
    # Every calibration attempt is kept with its report; at most one is active.
    db.execute(
        """CREATE TABLE liveness_calibrations (
            id INTEGER PRIMARY KEY,
            created REAL NOT NULL,
            head TEXT NOT NULL,
            report TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1)))"""
    )
    db.execute(
        "CREATE UNIQUE INDEX one_active_calibration ON liveness_calibrations (active)"
        " WHERE active = 1"
    )


def _migrate_site_sync(db: sqlcipher3.Connection) -> None:
    # Many terminals, one register (gallery/sync.py, outbox.py, site_state.py): each
    # person gets a site-wide id and a version (revision, origin terminal); 'published'
    # is the id of the site key that sealed the version on the broker (NULL: not yet).
    db.execute("ALTER TABLE people ADD COLUMN uid TEXT")
    db.execute("ALTER TABLE people ADD COLUMN revision INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE people ADD COLUMN origin TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE people ADD COLUMN published TEXT")
    for (person_id,) in db.execute("SELECT id FROM people").fetchall():
        db.execute("UPDATE people SET uid = ? WHERE id = ?", [site_state.new_uid(), person_id])
    db.execute("CREATE UNIQUE INDEX people_by_uid ON people (uid)")
    db.execute(
        """CREATE TABLE tombstones (
            uid TEXT PRIMARY KEY,
            revision INTEGER NOT NULL,
            origin TEXT NOT NULL,
            deleted REAL NOT NULL,
            published TEXT,
            cleared INTEGER NOT NULL DEFAULT 0 CHECK (cleared IN (0, 1)))"""
    )
    db.execute(
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
            time REAL NOT NULL,
            delivered INTEGER NOT NULL DEFAULT 0 CHECK (delivered IN (0, 1)))"""
    )
    db.execute("CREATE INDEX outbox_by_time ON outbox (time)")
    db.execute("CREATE INDEX outbox_waiting ON outbox (delivered, seq)")
    db.execute(
        """CREATE TABLE site_events (
            terminal TEXT NOT NULL,
            seq INTEGER NOT NULL,
            time REAL NOT NULL,
            kind TEXT NOT NULL,
            person_uid TEXT,
            name TEXT,
            score REAL,
            liveness REAL,
            reason TEXT,
            PRIMARY KEY (terminal, seq))"""
    )
    db.execute("CREATE INDEX site_events_by_time ON site_events (time)")
    db.execute("CREATE TABLE site_state (key TEXT PRIMARY KEY, value)")


def _migrate_web_admins(db: sqlcipher3.Connection) -> None:
    # The web app's administrators (argon2id hashes) and API tokens (sha256 of a random
    # secret, shown once); events name the administrator who made a change.
    db.execute(
        """CREATE TABLE admins (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            created REAL NOT NULL)"""
    )
    db.execute(
        """CREATE TABLE api_tokens (
            id INTEGER PRIMARY KEY,
            admin_id INTEGER NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
            label TEXT NOT NULL,
            digest TEXT NOT NULL UNIQUE,
            scopes TEXT NOT NULL,
            created REAL NOT NULL)"""
    )
    db.execute("ALTER TABLE events ADD COLUMN actor TEXT")


MIGRATIONS: tuple[Callable[[sqlcipher3.Connection], None], ...] = (
    _migrate_initial,
    _migrate_weekly_schedule,
    _migrate_liveness_calibrations,
    _migrate_retired_keys,
    _migrate_clean_names,
    _migrate_site_sync,
    _migrate_web_admins,
)
SCHEMA_VERSION = len(MIGRATIONS)


def check_file(path: Path) -> None:
    """Cheap checks that catch a truncated file before SQLite is given it."""
    size = path.stat().st_size
    if size == 0 or size % PAGE_SIZE:
        raise GalleryError(
            f"gallery {path} is damaged ({size} bytes is not a whole number of "
            f"{PAGE_SIZE}-byte pages; truncated?); restore it from a backup"
        )


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _gallery_error(path: Path, exc: sqlcipher3.Error) -> GalleryError:
    """The error to raise for a SQLite failure on ``path``: a busy gallery and a full
    disk are said as such (GalleryUnavailableError), anything else names the file."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return GalleryUnavailableError(
            f"gallery {path} is locked by another process (an enrolment or an "
            "administrator's command); try again when it is done"
        )
    if code in (_SQLITE_FULL, _SQLITE_IOERR):
        free = _free_bytes(path.parent)
        if code == _SQLITE_FULL or (free is not None and free < _FULL_BELOW_BYTES):
            left = "" if free is None else f" ({free // 1024} KiB free)"
            return GalleryUnavailableError(
                f"the disk holding {path.parent} is full{left}: nothing can be written to "
                f"gallery {path}; free some space"
            )
    return GalleryError(f"gallery {path}: {exc}")


def _connect(
    path: Path, key: bytes, key_path: Path, create: bool, busy_timeout: float
) -> sqlcipher3.Connection:
    """Open and unlock ``path``; nothing is written to the file here."""
    mode = "rwc" if create else "rw"
    try:
        conn = sqlcipher3.connect(
            f"file:{quote(str(path))}?mode={mode}",
            uri=True,
            isolation_level=None,
            timeout=busy_timeout,
        )
    except sqlcipher3.Error as exc:
        raise GalleryError(f"cannot open gallery {path}: {exc}") from None
    conn.execute("PRAGMA cipher_log_level = NONE")  # our errors say it better, on one line
    conn.execute(f"PRAGMA key = {key_pragma_value(key)}")
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher3.DatabaseError as exc:
        conn.close()
        if "not a database" in str(exc):
            raise GalleryKeyError(
                f"cannot decrypt gallery {path} with the key in {key_path}: wrong key, "
                "or the file is not a facegate gallery or its first page is damaged"
            ) from None
        raise _gallery_error(path, exc) from None
    return conn


def _vector_blob(embedding: Embedding) -> bytes:
    vector = np.asarray(embedding.vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(vector))
    if not np.all(np.isfinite(vector)) or norm == 0.0:
        raise ValueError("a template vector must be finite and non-zero")
    return (vector / norm).astype("<f4").tobytes()


def check_role(role: str) -> str:
    """``role`` if it is one of ROLES; RefusedError otherwise."""
    if role not in ROLES:
        raise RefusedError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


def normalise_name(name: str) -> str:
    """A name as it is stored and looked up: NFC (so that a name typed decomposed is
    the same name), without surrounding spaces. RefusedError says what is wrong."""
    name = unicodedata.normalize("NFC", name).strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise RefusedError(f"a name has 1 to {MAX_NAME_LENGTH} characters, got {name!r}")
    for char in name:
        if unicodedata.category(char) in _REFUSED_IN_NAMES:
            what = unicodedata.name(char, "a control character")
            raise RefusedError(
                f"a name cannot contain U+{ord(char):04X} ({what}), as {name!r} does"
            )
    if name.isdigit():
        raise RefusedError(f"a name cannot be only digits ({name!r} would read as a person id)")
    if name == DELETED_NAME:
        raise RefusedError(f"{DELETED_NAME!r} is reserved")
    return name


class Gallery:
    """The encrypted gallery. Open with :meth:`open`; use as a context manager.

    Every SQLite failure surfaces as GalleryError naming the file (a gallery locked
    by another writer, or on a full disk, as GalleryUnavailableError); a wrong or
    missing key as GalleryKeyError. Bad arguments raise ValueError (or
    NotFoundError / RefusedError) and change nothing.
    """

    def __init__(
        self,
        conn: sqlcipher3.Connection,
        path: Path,
        key_path: Path,
        lock: GalleryLock,
        clock: Clock,
        recovered: str = "",
    ):
        self._conn = conn
        self._lock = lock
        self.clock = clock  # its wall time stamps what a caller gives no time for
        self.path = path
        self.key_path = key_path
        # What opening found and repaired: an interrupted rekey finished or rolled back.
        self.recovered = recovered

    # --- lifecycle ------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | Path,
        key_path: str | Path,
        create: bool = False,
        busy_timeout: float = BUSY_TIMEOUT_S,
        clock: Clock | None = None,
    ) -> Gallery:
        """Open (or with ``create``, create) the gallery and migrate it forward.

        A missing, damaged or newer-than-this-code file is an error and is left
        untouched; so is a wrong key. ``busy_timeout`` is how long each call waits
        for another process's write lock before it raises GalleryUnavailableError.
        ``clock`` stamps records made without a time (the system's by default: the
        commands; the daemon passes its own).
        """
        path, key_path = Path(path), Path(key_path)
        try:
            exists = path.exists()
        except PermissionError:
            raise GalleryKeyError(
                f"no permission to open gallery {path}: run facegate as the user that owns "
                f"{path.parent} (the service user), or as root"
            ) from None
        if exists:
            check_file(path)
        elif not create:
            raise GalleryError(f"no gallery at {path}; create one with 'facegate init'")
        lock = GalleryLock(path)
        try:
            remove_stale_partials(path)
            conn, recovered = open_with_key_file(
                key_path,
                lambda key, source, create: _connect(path, key, source, create, busy_timeout),
                create,
            )
        except BaseException:
            lock.release()
            raise
        gallery = cls(conn, path, key_path, lock, clock or SystemClock(), recovered)
        try:
            gallery._prepare()
        except BaseException:
            gallery.close()
            raise
        return gallery

    @classmethod
    def from_config(
        cls,
        config: GalleryConfig,
        busy_timeout: float = BUSY_TIMEOUT_S,
        clock: Clock | None = None,
    ) -> Gallery:
        """Open the existing gallery named by the ``[gallery]`` section."""
        return cls.open(config.path, config.key_file, busy_timeout=busy_timeout, clock=clock)

    def _prepare(self) -> None:
        with self._errors():
            version = self._schema_version()
            if version > SCHEMA_VERSION:
                raise GalleryError(
                    f"gallery {self.path} has schema version {version}, newer than this "
                    f"facegate understands ({SCHEMA_VERSION}); upgrade facegate"
                )
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA secure_delete = ON")  # freed pages are zeroed
            if version < SCHEMA_VERSION:
                with self._transaction(changes_people=False):
                    for migrate in MIGRATIONS[version:]:
                        migrate(self._conn)
                    self._conn.execute(
                        "UPDATE meta SET value = ? WHERE key = 'schema_version'",
                        [SCHEMA_VERSION],
                    )

    def _schema_version(self) -> int:
        tables = self._table_names()
        if "meta" not in tables:
            if tables:
                raise GalleryError(f"{self.path} is not a facegate gallery (no meta table)")
            return 0
        return int(self._meta("schema_version"))

    def close(self) -> None:
        self._conn.close()
        self._lock.release()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlcipher3.Error as exc:
            raise _gallery_error(self.path, exc) from None

    @contextlib.contextmanager
    def _transaction(self, changes_people: bool) -> Iterator[None]:
        """One write transaction; ``changes_people`` bumps the revision the matcher polls."""
        with self._errors():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                if changes_people:
                    self._conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'revision'")
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:  # SQLite may have rolled back already
                    self._conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def writing(self, changes_people: bool = False) -> Iterator[sqlcipher3.Connection]:
        """One write transaction on the connection, for the gallery's own modules
        (sync, outbox) that keep their SQL beside their rules."""
        with self._transaction(changes_people):
            yield self._conn

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlcipher3.Connection]:
        """The connection for reads, its failures raised as GalleryError."""
        with self._errors():
            yield self._conn

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[dict]:
        """The rows of a query as dicts keyed by column name."""
        cursor = self._conn.execute(sql, params)
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def _wall(self, now: float | None) -> float:
        return self.clock.wall() if now is None else float(now)

    def _table_names(self) -> list[str]:
        rows = self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return [name for (name,) in rows]

    def _meta(self, key: str) -> int:
        return self._conn.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()[0]

    # --- people -----------------------------------------------------------------

    def add_person(
        self,
        name: str,
        role: str,
        templates: Sequence[Embedding],
        qualities: Sequence[float],
        valid_from: float | None = None,
        valid_until: float | None = None,
        now: float | None = None,
        check: Callable[[], None] | None = None,
        actor: str | None = None,
    ) -> int:
        """Enrol a person with their templates; one transaction with the 'enrolled' event.

        ``now`` (wall seconds) stamps the record and the event; default: time.time().
        ``check`` runs inside the write transaction before anything is written: it sees
        every enrolment committed before this one and none can commit meanwhile, so a
        refusal it raises (a duplicate face) cannot race another process's enrolment.
        ``actor`` names the administrator who made the change, when one did.
        Returns the new person id.
        """
        name, role = normalise_name(name), check_role(role)
        if not templates or len(templates) != len(qualities):
            raise ValueError("give at least one template and one quality per template")
        if len({t.model_id for t in templates}) != 1:
            raise ValueError("all templates of one enrolment must come from the same model")
        if valid_from is not None and valid_until is not None and valid_from >= valid_until:
            raise ValueError("valid_from must be before valid_until")
        blobs = [_vector_blob(t) for t in templates]
        now = self._wall(now)
        with self._transaction(changes_people=True):
            if self._find(name) is not None:
                raise RefusedError(f"a person named {name!r} already exists")
            if check is not None:
                check()
            cursor = self._conn.execute(
                "INSERT INTO people (name, role, enabled, valid_from, valid_until, created, uid)"
                " VALUES (?, ?, 1, ?, ?, ?, ?)",
                [name, role, valid_from, valid_until, now, site_state.new_uid()],
            )
            person_id = int(cursor.lastrowid)
            site_state.touch(self._conn, person_id)
            self._conn.executemany(
                "INSERT INTO templates (person_id, model_id, vector, quality, created)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (person_id, t.model_id, blob, float(q), now)
                    for t, blob, q in zip(templates, blobs, qualities, strict=True)
                ],
            )
            insert_event(
                self._conn,
                kind=EventKind.ENROLLED,
                time=now,
                person_id=person_id,
                name=name,
                actor=actor,
            )
        return person_id

    def _find(self, id_or_name: int | str) -> Person | None:
        key: int | str
        if isinstance(id_or_name, int):
            column, key = "id", id_or_name
        else:
            column, key = "name", unicodedata.normalize("NFC", id_or_name).strip()
        rows = self._rows(
            "SELECT p.*, (SELECT count(*) FROM templates t WHERE t.person_id = p.id)"
            f" AS templates FROM people p WHERE p.{column} = ?",
            [key],
        )
        return _person(rows[0]) if rows else None

    def person(self, id_or_name: int | str) -> Person:
        """The person with this id (int) or name (str); NotFoundError if none."""
        with self._errors():
            found = self._find(id_or_name)
        if found is None:
            raise NotFoundError(f"no person {id_or_name!r} in the gallery")
        return found

    def people(self) -> list[Person]:
        """Everyone, by id."""
        with self._errors():
            rows = self._rows(
                "SELECT p.*, count(t.id) AS templates FROM people p"
                " LEFT JOIN templates t ON t.person_id = p.id GROUP BY p.id ORDER BY p.id"
            )
            return [_person(row) for row in rows]

    # Each change to a person is one transaction with a 'person_updated' event saying
    # what changed and, with ``actor``, which administrator changed it.

    def _update_person(
        self,
        person_id: int,
        changes: dict[str, object],
        what: str,
        actor: str | None,
        check: Callable[[], None] | None = None,
    ) -> None:
        """Set ``changes`` (column -> value) in one transaction with its event; ``check``
        runs inside it first and may refuse."""
        assignments = ", ".join(f"{column} = ?" for column in changes)
        with self._transaction(changes_people=True):
            self.person(person_id)
            if check is not None:
                check()
            self._conn.execute(
                f"UPDATE people SET {assignments} WHERE id = ?", [*changes.values(), person_id]
            )
            site_state.touch(self._conn, person_id)
            insert_event(
                self._conn,
                kind=EventKind.PERSON_UPDATED,
                time=self._wall(None),
                person_id=person_id,
                name=self.person(person_id).name,
                reason=what,
                actor=actor,
            )

    def rename(self, person_id: int, new_name: str, actor: str | None = None) -> None:
        new_name = normalise_name(new_name)

        def name_is_free() -> None:
            other = self._find(new_name)
            if other is not None and other.id != person_id:
                raise RefusedError(f"a person named {new_name!r} already exists")

        old = self.person(person_id).name
        what = f"renamed from {old}"
        self._update_person(person_id, {"name": new_name}, what, actor, check=name_is_free)

    def set_enabled(self, person_id: int, enabled: bool, actor: str | None = None) -> None:
        what = "enabled" if enabled else "disabled"
        self._update_person(person_id, {"enabled": int(bool(enabled))}, what, actor)

    def set_role(self, person_id: int, role: str, actor: str | None = None) -> None:
        self._update_person(person_id, {"role": check_role(role)}, f"role {role}", actor)

    def set_validity(
        self,
        person_id: int,
        valid_from: float | None,
        valid_until: float | None,
        actor: str | None = None,
    ) -> None:
        """From when and until when the person may enter (wall seconds; None: no bound)."""
        for bound in (valid_from, valid_until):
            if bound is not None and not np.isfinite(bound):
                raise RefusedError(f"a validity bound must be a finite time, got {bound}")
        if valid_from is not None and valid_until is not None and not valid_from < valid_until:
            raise RefusedError("the first valid day must be before the last")
        changes: dict[str, object] = {"valid_from": valid_from, "valid_until": valid_until}
        what = f"valid from {valid_from} until {valid_until}"
        self._update_person(person_id, changes, what, actor)

    def set_schedule(
        self, person_id: int, schedule: Schedule | None, actor: str | None = None
    ) -> None:
        """When in the week the person may enter; None: any time."""
        text = None if schedule is None else schedule.to_json()
        what = f"schedule {schedule or 'any time'}"
        self._update_person(person_id, {"schedule": text}, what, actor)

    def delete_person(
        self, person_id: int, now: float | None = None, actor: str | None = None
    ) -> None:
        """Remove a person, their templates and their name from past events, then VACUUM;
        a tombstone tells the site's other terminals to do the same (sync.py).

        Past events keep their time and kind but lose the link to the person; the
        'removed' event names only the former id. VACUUM and a WAL checkpoint
        rewrite the file so no page keeps the removed data (secure_delete zeroes
        freed pages as well).
        """
        now = self._wall(now)
        with self._transaction(changes_people=True):
            uid = self.person(person_id).uid
            erase_person(self._conn, person_id, uid, now, f"person #{person_id}", actor)
            site_state.bury(self._conn, uid, now)
        self.scrub()

    def scrub(self) -> None:
        """Rewrite the file so that no page keeps what was deleted."""
        with self._errors():
            self._conn.execute("VACUUM")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def access_status(self, person_id: int, wall_time: float) -> Refusal | None:
        """None if the person may enter at ``wall_time``, else why they may not."""
        with self._errors():
            found = self._find(person_id)
        if found is None:
            return Refusal.NOT_FOUND
        if not found.enabled:
            return Refusal.DISABLED
        # Written so that a NaN time is refused rather than let through.
        if found.valid_from is not None and not wall_time >= found.valid_from:
            return Refusal.NOT_YET_VALID
        if found.valid_until is not None and not wall_time < found.valid_until:
            return Refusal.EXPIRED
        if found.schedule is not None and not found.schedule.allows(wall_time):
            return Refusal.OUTSIDE_SCHEDULE
        return None

    # --- templates --------------------------------------------------------------

    def templates(self, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(person_ids int64 (n,), unit float32 matrix (n, d)) of one model, sorted by person."""
        with self._errors():
            rows = self._conn.execute(
                "SELECT person_id, vector FROM templates WHERE model_id = ? ORDER BY person_id, id",
                [model_id],
            ).fetchall()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        sizes = {len(blob) for _, blob in rows}
        if len(sizes) != 1:
            raise GalleryError(
                f"gallery {self.path}: templates of model {model_id!r} differ in length"
            )
        person_ids = np.fromiter((pid for pid, _ in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(blob for _, blob in rows), dtype="<f4")
        return person_ids, matrix.reshape(len(rows), -1).astype(np.float32)

    def model_ids(self) -> dict[str, int]:
        """How many templates each model id has; more than one means a model change
        happened and some people need re-enrolling."""
        with self._errors():
            rows = self._conn.execute(
                "SELECT model_id, count(*) FROM templates GROUP BY model_id ORDER BY model_id"
            ).fetchall()
        return {model_id: count for model_id, count in rows}

    def revision(self) -> int:
        """A counter that changes whenever people or templates change (cheap to poll)."""
        with self._errors():
            return int(self._meta("revision"))

    # --- events -----------------------------------------------------------------

    def log_event(
        self,
        kind: str,
        time: float,
        person_id: int | None = None,
        score: float | None = None,
        liveness: float | None = None,
        reason: str | None = None,
    ) -> int:
        """Append one event; the person's current name is recorded with it."""
        kind = event_kind(kind)
        with self._transaction(changes_people=False):
            name = None if person_id is None else self.person(person_id).name
            return insert_event(
                self._conn,
                kind=kind,
                time=time,
                person_id=person_id,
                name=name,
                score=score,
                liveness=liveness,
                reason=reason,
            )

    def events(
        self,
        wanted: EventFilter | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[Event]:
        """The events ``wanted`` selects (all by default), oldest first (or newest
        first); a page of them when ``limit`` is given."""
        with self._errors():
            return select_events(self._conn, wanted or EventFilter(), limit, offset, newest_first)

    def count_events(self, wanted: EventFilter | None = None) -> int:
        """How many events ``wanted`` selects (all by default)."""
        with self._errors():
            return count_events(self._conn, wanted)

    def log_change(self, kind: EventKind, actor: str, reason: str, now: float | None = None) -> int:
        """Record a change an administrator made that touches no person (a login, a
        token) in the event log."""
        with self._transaction(changes_people=False):
            return insert_event(
                self._conn, kind=kind, time=self._wall(now), reason=reason, actor=actor
            )

    # --- administrators and API tokens (the web app) --------------------------------

    def add_admin(self, name: str, password_hash: str, actor: str | None = None) -> int:
        """A new administrator; RefusedError if the name is taken."""
        name = normalise_name(name)
        with self._transaction(changes_people=False):
            if self._conn.execute("SELECT 1 FROM admins WHERE name = ?", [name]).fetchone():
                raise RefusedError(f"an administrator named {name!r} already exists")
            now = self._wall(None)
            cursor = self._conn.execute(
                "INSERT INTO admins (name, password_hash, created) VALUES (?, ?, ?)",
                [name, password_hash, now],
            )
            insert_event(
                self._conn,
                kind=EventKind.ADMIN_ADDED,
                time=now,
                reason=f"administrator {name}",
                actor=actor,
            )
        return int(cursor.lastrowid)

    def admin(self, name: str) -> Admin:
        """The administrator of that name; NotFoundError if none."""
        key = unicodedata.normalize("NFC", name).strip()
        with self._errors():
            row = self._conn.execute(
                "SELECT id, name, password_hash, created FROM admins WHERE name = ?", [key]
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no administrator {name!r}")
        return Admin(*row)

    def admins(self) -> list[Admin]:
        """Every administrator, by name."""
        with self._errors():
            rows = self._conn.execute(
                "SELECT id, name, password_hash, created FROM admins ORDER BY name"
            ).fetchall()
        return [Admin(*row) for row in rows]

    def set_admin_password(self, name: str, password_hash: str, actor: str | None = None) -> None:
        admin = self.admin(name)
        with self._transaction(changes_people=False):
            self._conn.execute(
                "UPDATE admins SET password_hash = ? WHERE id = ?", [password_hash, admin.id]
            )
            insert_event(
                self._conn,
                kind=EventKind.ADMIN_PASSWORD_CHANGED,
                time=self._wall(None),
                reason=f"administrator {admin.name}",
                actor=actor,
            )

    def remove_admin(self, name: str, actor: str | None = None) -> None:
        """Remove an administrator and their API tokens."""
        admin = self.admin(name)
        with self._transaction(changes_people=False):
            self._conn.execute("DELETE FROM admins WHERE id = ?", [admin.id])
            insert_event(
                self._conn,
                kind=EventKind.ADMIN_REMOVED,
                time=self._wall(None),
                reason=f"administrator {admin.name}",
                actor=actor,
            )

    def add_api_token(
        self, admin: str, label: str, digest: str, scopes: Sequence[str], actor: str
    ) -> int:
        """Keep a new token's digest (never its secret); returns its id."""
        owner = self.admin(admin)
        label = label.strip()
        if not label or len(label) > MAX_NAME_LENGTH:
            raise RefusedError(f"a token's label has 1 to {MAX_NAME_LENGTH} characters")
        with self._transaction(changes_people=False):
            now = self._wall(None)
            cursor = self._conn.execute(
                "INSERT INTO api_tokens (admin_id, label, digest, scopes, created)"
                " VALUES (?, ?, ?, ?, ?)",
                [owner.id, label, digest, " ".join(scopes), now],
            )
            token_id = int(cursor.lastrowid)
            insert_event(
                self._conn,
                kind=EventKind.API_TOKEN_CREATED,
                time=now,
                reason=f"token #{token_id} {label!r} of {owner.name}: {' '.join(scopes)}",
                actor=actor,
            )
        return token_id

    _TOKEN_QUERY = (
        "SELECT t.id, a.name, t.label, t.digest, t.scopes, t.created"
        " FROM api_tokens t JOIN admins a ON a.id = t.admin_id"
    )

    def api_tokens(self) -> list[ApiToken]:
        with self._errors():
            rows = self._conn.execute(self._TOKEN_QUERY + " ORDER BY t.id").fetchall()
        return [_api_token(row) for row in rows]

    def api_token(self, digest: str) -> ApiToken | None:
        """The token whose secret has this digest, if any."""
        with self._errors():
            row = self._conn.execute(self._TOKEN_QUERY + " WHERE t.digest = ?", [digest]).fetchone()
        return None if row is None else _api_token(row)

    def revoke_api_token(self, token_id: int, actor: str) -> None:
        with self._transaction(changes_people=False):
            found = self._conn.execute(
                "SELECT label FROM api_tokens WHERE id = ?", [token_id]
            ).fetchone()
            if found is None:
                raise NotFoundError(f"no API token #{token_id}")
            self._conn.execute("DELETE FROM api_tokens WHERE id = ?", [token_id])
            insert_event(
                self._conn,
                kind=EventKind.API_TOKEN_REVOKED,
                time=self._wall(None),
                reason=f"token #{token_id} {found[0]!r}",
                actor=actor,
            )

    # --- liveness calibration ---------------------------------------------------

    def add_liveness_calibration(
        self, head: str, report: str, active: bool, now: float | None = None
    ) -> int:
        """Store a calibration attempt; an ``active`` one replaces the one in use and is
        logged as ``liveness_calibrated``. Returns its id."""
        now = self._wall(now)
        with self._transaction(changes_people=False):
            if active:
                self._conn.execute("UPDATE liveness_calibrations SET active = 0 WHERE active = 1")
            cursor = self._conn.execute(
                "INSERT INTO liveness_calibrations (created, head, report, active)"
                " VALUES (?, ?, ?, ?)",
                [now, head, report, int(active)],
            )
            calibration_id = int(cursor.lastrowid)
            if active:
                insert_event(
                    self._conn,
                    kind=EventKind.LIVENESS_CALIBRATED,
                    time=now,
                    reason=f"calibration #{calibration_id}",
                )
        return calibration_id

    def liveness_calibrations(self) -> list[CalibrationRecord]:
        """Every calibration attempt, newest first."""
        with self._errors():
            rows = self._rows("SELECT * FROM liveness_calibrations ORDER BY id DESC")
            return [
                CalibrationRecord(r["id"], r["created"], r["head"], r["report"], bool(r["active"]))
                for r in rows
            ]

    def active_liveness_calibration(self) -> CalibrationRecord | None:
        return next((c for c in self.liveness_calibrations() if c.active), None)

    def revert_liveness_calibration(self, now: float | None = None) -> int | None:
        """Stop using the active calibration (the default layer applies again); returns its
        id, or None when none was active."""
        now = self._wall(now)
        with self._transaction(changes_people=False):
            row = self._conn.execute(
                "SELECT id FROM liveness_calibrations WHERE active = 1"
            ).fetchone()
            if row is None:
                return None
            self._conn.execute("UPDATE liveness_calibrations SET active = 0 WHERE id = ?", [row[0]])
            insert_event(
                self._conn,
                kind=EventKind.LIVENESS_REVERTED,
                time=now,
                reason=f"calibration #{row[0]}",
            )
        return int(row[0])

    # --- maintenance ------------------------------------------------------------

    def check(self) -> list[str]:
        """Every problem found (empty when healthy): SQLite and SQLCipher integrity,
        foreign keys, and half-enrolled people.

        Pages are authenticated as they lie in the file, so the write-ahead log is
        copied into it first; after a rekey the file holds old-key pages until then,
        which would read as every page failing. When another process keeps the copy
        from finishing, the failures are reported as what they may be.
        """
        with self._errors():
            _, logged, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            problems = [
                row[0]
                for row in self._conn.execute("PRAGMA integrity_check").fetchall()
                if row[0] != "ok"
            ]
            failed = [
                row[0] for row in self._conn.execute("PRAGMA cipher_integrity_check").fetchall()
            ]
            if failed and copied < logged:
                problems.append(
                    f"{len(failed)} page(s) of {self.path} failed authentication, but "
                    f"{logged - copied} newer page(s) are still in its write-ahead log "
                    "(another process has the gallery open): stop the service and check "
                    "again before restoring anything"
                )
            else:
                problems += [f"page authentication failed: {message}" for message in failed]
            problems += [
                f"dangling reference in {row[0]} row {row[1]}"
                for row in self._conn.execute("PRAGMA foreign_key_check").fetchall()
            ]
            problems += [
                f"person #{pid} has no templates"
                for (pid,) in self._conn.execute(
                    "SELECT id FROM people WHERE id NOT IN (SELECT person_id FROM templates)"
                )
            ]
            problems += [
                f"person #{pid} has no 'enrolled' event"
                for (pid,) in self._conn.execute(
                    "SELECT id FROM people WHERE id NOT IN"
                    " (SELECT person_id FROM events WHERE kind = 'enrolled'"
                    "  AND person_id IS NOT NULL)"
                )
            ]
        return problems

    def backup(self, target: str | Path) -> str:
        """Write a consistent encrypted copy, openable with the same key, to ``target``,
        and the key's fingerprint to ``target.fingerprint``; returns the fingerprint.

        Safe while the daemon runs (one read snapshot). The copy is written beside
        the target and renamed into place; an existing target is refused. A backup
        killed half-way leaves a partial file that the next opening of the gallery
        removes (see backup.py).
        """
        target = Path(target)
        if target.exists():
            raise RefusedError(f"{target} already exists; choose a new backup file name")
        key = read_key(self.key_path)
        fingerprint = key_fingerprint(key)
        with writing_partial(self.path, target) as tmp:
            with self._errors():
                self._conn.execute(
                    f"ATTACH DATABASE ? AS backup KEY {key_pragma_value(key)}", [str(tmp)]
                )
                try:
                    self._conn.execute("BEGIN")
                    self._conn.execute("SELECT sqlcipher_export('backup')")
                    self._conn.execute("COMMIT")
                finally:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    self._conn.execute("DETACH DATABASE backup")
            with open(tmp, "rb+") as copy:
                os.fsync(copy.fileno())
            with open(fingerprint_path(target), "w") as sidecar:
                sidecar.write(fingerprint + "\n")
                sidecar.flush()
                os.fsync(sidecar.fileno())
            os.replace(tmp, target)
            fsync_dir(target.parent)
        return fingerprint

    def rekey(self, new_key: bytes | None = None, now: float | None = None) -> tuple[str, str]:
        """Re-encrypt the gallery under a fresh key (or ``new_key``) and replace the key
        file; returns the (old, new) key fingerprints.

        Refused while any other process has the gallery open. The old key is kept in
        ``retired_keys``, encrypted with everything else, so that backups made before
        can still be restored. Order matters for crash safety: the new key is first
        made durable beside the old one (``<key>.new``), then the database switches in
        one transaction and its file is brought up to date, then the new key is renamed
        over the old. ``open`` finishes or rolls back an interrupted rekey.
        """
        self._lock.exclusive("re-key")
        try:
            old_key = read_key(self.key_path)
            new_key = generate_key() if new_key is None else new_key
            with self._transaction(changes_people=False):
                self._conn.execute(
                    "INSERT OR REPLACE INTO retired_keys (fingerprint, key, retired)"
                    " VALUES (?, ?, ?)",
                    [key_fingerprint(old_key), old_key, self._wall(now)],
                )
            stage_key(self.key_path, new_key)
            # If this fails, the pending key stays; the next open keeps whichever key works.
            with self._errors():
                self._conn.execute(f"PRAGMA rekey = {key_pragma_value(new_key)}")
                # The re-encrypted pages are in the write-ahead log; the file itself
                # must hold them before the key file says they are the truth.
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            promote_pending_key(self.key_path)
        finally:
            self._lock.shared()
        return key_fingerprint(old_key), key_fingerprint(new_key)

    def to_single_file(self) -> None:
        """Leave write-ahead logging, so that the file alone holds the whole gallery (a
        restore moves it into place)."""
        with self._errors():
            self._conn.execute("PRAGMA journal_mode = DELETE")

    def retired_keys(self) -> dict[str, bytes]:
        """Fingerprint -> key of every key a rekey replaced, newest first."""
        with self._errors():
            rows = self._conn.execute(
                "SELECT fingerprint, key FROM retired_keys ORDER BY retired DESC"
            ).fetchall()
        return {fingerprint: bytes(key) for fingerprint, key in rows}

    def keep_retired_keys(self, keys: dict[str, bytes], now: float | None = None) -> None:
        """Add retired keys (from the gallery a restore replaces: none may be lost)."""
        with self._transaction(changes_people=False):
            self._conn.executemany(
                "INSERT OR IGNORE INTO retired_keys (fingerprint, key, retired) VALUES (?, ?, ?)",
                [(fingerprint, key, self._wall(now)) for fingerprint, key in keys.items()],
            )


def erase_person(
    conn: sqlcipher3.Connection,
    person_id: int,
    uid: str,
    now: float,
    reason: str,
    actor: str | None = None,
) -> None:
    """Inside a transaction: remove the person, their templates, and their name and link
    from every event, this terminal's and the site's; log 'removed' with ``reason`` and
    the administrator who asked (``actor``; None: not the web app).
    The caller scrubs the file after the commit."""
    conn.execute(
        "UPDATE events SET name = ?, person_id = NULL WHERE person_id = ?",
        [DELETED_NAME, person_id],
    )
    conn.execute(
        "UPDATE site_events SET name = ?, person_uid = NULL WHERE person_uid = ?",
        [DELETED_NAME, uid],
    )
    conn.execute("DELETE FROM templates WHERE person_id = ?", [person_id])
    conn.execute("DELETE FROM people WHERE id = ?", [person_id])
    insert_event(conn, kind=EventKind.REMOVED, time=now, reason=reason, actor=actor)


def _person(row: dict) -> Person:
    return Person(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        enabled=bool(row["enabled"]),
        valid_from=row["valid_from"],
        valid_until=row["valid_until"],
        created=row["created"],
        templates=row["templates"],
        schedule=None if row["schedule"] is None else Schedule.from_json(row["schedule"]),
        uid=row["uid"],
    )


def _api_token(row: Sequence) -> ApiToken:
    return ApiToken(row[0], row[1], row[2], row[3], tuple(row[4].split()), row[5])


def create_gallery(config: GalleryConfig) -> None:
    """Create the key file (unless present) and an empty gallery: ``facegate init``.

    An existing gallery is never recreated; an existing key file with no gallery is
    reused (the installer may have made it).
    """
    path, key_path = Path(config.path), Path(config.key_file)
    if path.exists():
        raise RefusedError(f"a gallery already exists at {path}; nothing to do")
    _make_folder(key_path.parent, GalleryKeyError)
    if not key_path.exists():
        try:
            write_key(key_path, generate_key())
        except OSError as exc:
            raise GalleryKeyError(
                f"cannot create the gallery key {key_path}: {exc.strerror}"
            ) from None
    _make_folder(path.parent, GalleryError)
    Gallery.open(path, key_path, create=True).close()


def _make_folder(folder: Path, error: type[GalleryError]) -> None:
    """Create ``folder`` (mode 0700) unless it exists; ``error`` says why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:
        raise error(f"cannot create the folder {folder}: a file of that name is there") from None
    except OSError as exc:
        raise error(f"cannot create the folder {folder}: {exc.strerror}") from None
