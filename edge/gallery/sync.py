"""People from the rest of the site: apply another terminal's version of a person, or
of their deletion, when it is newer than the gallery's; and what this terminal has
to publish.

Every version is ordered by (revision, origin terminal) (``site_state``): the higher
wins on every terminal, so all converge whatever order messages arrive in. A version
older than the one held is refused and logged (a replay, or a message delayed past a
newer one). A deletion is a tombstone: it erases the person exactly as 'facegate
people delete' does, and is kept so that an older copy of the person arriving later
is refused. Templates made by another model than this terminal's are refused and
logged: comparing them would be meaningless.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sqlcipher3

from ..access.decision import AccessCheck
from ..access.schedule import Schedule
from ..errors import RefusedError
from ..types import EventKind, Refusal, SyncOutcome
from . import site_state
from .events import Event, EventFilter, insert_event
from .outbox import OutboxEvent
from .site_state import Version
from .store import MAX_NAME_LENGTH, Gallery, check_role, erase_person, normalise_name


@dataclass(frozen=True)
class Template:
    """One face template as it travels: model id, little-endian float32 bytes, quality."""

    model_id: str
    vector: bytes
    quality: float


@dataclass(frozen=True)
class PersonRecord:
    """One version of a person, as the site shares it."""

    uid: str
    revision: int
    origin: str
    name: str
    role: str
    enabled: bool
    valid_from: float | None
    valid_until: float | None
    schedule: str | None  # the JSON the gallery stores (schedule.py)
    created: float
    templates: tuple[Template, ...]

    @property
    def version(self) -> Version:
        return self.revision, self.origin


@dataclass(frozen=True)
class Tombstone:
    """A person's deletion, as the site shares it."""

    uid: str
    revision: int
    origin: str
    deleted: float

    @property
    def version(self) -> Version:
        return self.revision, self.origin


# --- set-up and the last sync -------------------------------------------------------------


def configure(gallery: Gallery, terminal: str, outbox_retention_s: float) -> None:
    """Name this terminal and size its outbox (0: no outbox); written only on a change."""
    wanted = {"terminal": terminal, "outbox_retention": float(outbox_retention_s)}
    with gallery.reading() as conn:
        if all(site_state.get(conn, k) == v for k, v in wanted.items()):
            return
    with gallery.writing() as conn:
        for key, value in wanted.items():
            site_state.put(conn, key, value)


def record_sync(gallery: Gallery, wall: float) -> None:
    """The site was heard in full at ``wall``: every retained person had arrived."""
    with gallery.writing() as conn:
        site_state.put(conn, "last_sync", float(wall))


def last_sync(gallery: Gallery) -> float | None:
    with gallery.reading() as conn:
        value = site_state.get(conn, "last_sync")
    return None if value is None else float(value)  # type: ignore[arg-type]


def access_check(gallery: Gallery, max_offline_s: float) -> AccessCheck:
    """The gallery's access check, and with ``max_offline_s`` (> 0) a refusal for everyone
    while the last sync is older than that, or there never was one: a terminal cut off
    from the site may hold people deleted elsewhere."""
    if not max_offline_s:
        return gallery.access_status

    def check(person_id: int, wall_time: float) -> Refusal | None:
        synced = last_sync(gallery)
        # Written so that a NaN time is refused rather than let through.
        if synced is None or not wall_time - synced <= max_offline_s:
            return Refusal.OFFLINE
        return gallery.access_status(person_id, wall_time)

    return check


# --- applying what other terminals sent ----------------------------------------------------


def _held(conn: sqlcipher3.Connection, uid: str) -> Version | None:
    """The version of ``uid`` the gallery holds: the person's, or their tombstone's."""
    row = conn.execute("SELECT revision, origin FROM people WHERE uid = ?", [uid]).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT revision, origin FROM tombstones WHERE uid = ?", [uid]
        ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def refuse(gallery: Gallery, now: float, reason: str) -> SyncOutcome:
    """Log a person message that was refused (forged, replayed, older or unusable)."""
    with gallery.writing() as conn:
        return _refuse(conn, now, reason)


def _refuse(conn: sqlcipher3.Connection, now: float, reason: str) -> SyncOutcome:
    insert_event(conn, kind=EventKind.SYNC_REFUSED, time=now, reason=reason[:500])
    return SyncOutcome.REFUSED


def _compare(
    conn: sqlcipher3.Connection, uid: str, version: Version, now: float
) -> SyncOutcome | None:
    """CURRENT or REFUSED (logged) when ``version`` is not newer than the one held."""
    held = _held(conn, uid)
    if held is None or version > held:
        return None
    if version == held:
        return SyncOutcome.CURRENT
    # The broker retains the older version now: publish the newer one over it.
    conn.execute("UPDATE people SET published = NULL WHERE uid = ?", [uid])
    conn.execute("UPDATE tombstones SET published = NULL WHERE uid = ? AND cleared = 0", [uid])
    return _refuse(
        conn,
        now,
        f"person {uid}: revision {version[0]} from {version[1]!r} is older than the "
        f"gallery's ({held[0]} from {held[1]!r}); a replay or a late message",
    )


def _problem(record: PersonRecord, model_id: str) -> str | None:
    """Why a record cannot be stored, or None."""
    try:
        check_role(record.role)
        normalise_name(record.name)
    except RefusedError as exc:
        return str(exc)
    models = {t.model_id for t in record.templates}
    if not record.templates:
        return "it has no templates"
    if models != {model_id}:
        found = ", ".join(sorted(models))
        return f"its templates come from model {found}, this terminal uses {model_id!r}"
    sizes = {len(t.vector) for t in record.templates}
    if len(sizes) != 1 or sizes.pop() % 4:
        return "its templates differ in length"
    for template in record.templates:
        vector = np.frombuffer(template.vector, dtype="<f4")
        if not np.all(np.isfinite(vector)) or not abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3:
            return "a template is not a finite unit vector"
        if not math.isfinite(template.quality):
            return "a template's quality is not a number"
    for bound in (record.valid_from, record.valid_until):
        if bound is not None and not math.isfinite(bound):
            return "its validity is not a finite time"
    if record.schedule is not None:
        try:
            Schedule.from_json(record.schedule)
        except ValueError as exc:
            return f"its schedule is unusable: {exc}"
    return None


def _free_name(conn: sqlcipher3.Connection, name: str, uid: str) -> str:
    """``name``, or when another person here has it, the name with this uid's start (two
    terminals enrolled two people under one name at the same time)."""
    row = conn.execute("SELECT uid FROM people WHERE name = ?", [name]).fetchone()
    if row is None or row[0] == uid:
        return name
    suffix = f" ({uid[:8]})"
    return name[: MAX_NAME_LENGTH - len(suffix)] + suffix


Received = tuple[PersonRecord | Tombstone, str]  # a version and the id of the key that sealed it


def apply(
    gallery: Gallery, received: list[Received], model_id: str, now: float
) -> list[SyncOutcome]:
    """Apply versions other terminals published, each when it is newer than the one
    here, in one transaction: a terminal that joins applies the whole site at once.
    A person's version is stored with their templates; a deletion erases the person as
    'people delete' does and keeps the tombstone. Each version's key id names the site
    key it was sealed with: it is published already under that key. Returns what
    happened to each; a refusal is logged as 'sync_refused'."""
    if not received:
        return []
    with gallery.writing(changes_people=True) as conn:
        outcomes = [
            _apply_tombstone(conn, item, key_id, now)
            if isinstance(item, Tombstone)
            else _apply_person(conn, item, model_id, key_id, now)
            for item, key_id in received
        ]
    if SyncOutcome.REMOVED in outcomes:
        gallery.scrub()
    return outcomes


def _apply_person(
    conn: sqlcipher3.Connection, record: PersonRecord, model_id: str, key_id: str, now: float
) -> SyncOutcome:
    decided = _compare(conn, record.uid, record.version, now)
    if decided is not None:
        return decided
    site_state.witness(conn, record.revision)
    problem = _problem(record, model_id)
    if problem is not None:
        return _refuse(conn, now, f"person {record.uid} from {record.origin!r}: {problem}")
    name = _free_name(conn, normalise_name(record.name), record.uid)
    fields = [
        name,
        record.role,
        int(record.enabled),
        record.valid_from,
        record.valid_until,
        record.schedule,
        record.revision,
        record.origin,
        key_id,
    ]
    row = conn.execute("SELECT id FROM people WHERE uid = ?", [record.uid]).fetchone()
    if row is None:
        person_id = int(
            conn.execute(
                "INSERT INTO people (name, role, enabled, valid_from, valid_until, schedule,"
                " revision, origin, published, uid, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [*fields, record.uid, record.created],
            ).lastrowid
        )
        conn.execute("DELETE FROM tombstones WHERE uid = ?", [record.uid])
        kind, outcome = EventKind.ENROLLED, SyncOutcome.ADDED
    else:
        person_id = int(row[0])
        conn.execute(
            "UPDATE people SET name = ?, role = ?, enabled = ?, valid_from = ?,"
            " valid_until = ?, schedule = ?, revision = ?, origin = ?, published = ?"
            " WHERE id = ?",
            [*fields, person_id],
        )
        conn.execute("DELETE FROM templates WHERE person_id = ?", [person_id])
        kind, outcome = EventKind.SYNCED, SyncOutcome.UPDATED
    conn.executemany(
        "INSERT INTO templates (person_id, model_id, vector, quality, created)"
        " VALUES (?, ?, ?, ?, ?)",
        [(person_id, t.model_id, t.vector, t.quality, now) for t in record.templates],
    )
    insert_event(
        conn,
        kind=kind,
        time=now,
        person_id=person_id,
        name=name,
        reason=f"revision {record.revision} from terminal {record.origin}",
    )
    return outcome


def _apply_tombstone(
    conn: sqlcipher3.Connection, tombstone: Tombstone, key_id: str, now: float
) -> SyncOutcome:
    decided = _compare(conn, tombstone.uid, tombstone.version, now)
    if decided is not None:
        return decided
    site_state.witness(conn, tombstone.revision)
    row = conn.execute("SELECT id FROM people WHERE uid = ?", [tombstone.uid]).fetchone()
    if row is not None:
        reason = f"person #{row[0]}, deleted at terminal {tombstone.origin}"
        erase_person(conn, int(row[0]), tombstone.uid, now, reason)
    conn.execute(
        "INSERT OR REPLACE INTO tombstones (uid, revision, origin, deleted, published)"
        " VALUES (?, ?, ?, ?, ?)",
        [tombstone.uid, tombstone.revision, tombstone.origin, tombstone.deleted, key_id],
    )
    return SyncOutcome.REMOVED


# --- what this terminal publishes -----------------------------------------------------------


def to_publish(gallery: Gallery, key_id: str) -> list[PersonRecord | Tombstone]:
    """Versions not yet on the broker under ``key_id`` (changed here, or sealed with a
    key since rotated), people first; tombstones already cleared are not republished."""
    with gallery.reading() as conn:
        people = conn.execute(
            "SELECT id, uid, revision, origin, name, role, enabled, valid_from, valid_until,"
            " schedule, created FROM people WHERE published IS NULL OR published != ?"
            " ORDER BY id",
            [key_id],
        ).fetchall()
        found: list[PersonRecord | Tombstone] = []
        for row in people:
            templates = tuple(
                Template(model, bytes(vector), quality)
                for model, vector, quality in conn.execute(
                    "SELECT model_id, vector, quality FROM templates WHERE person_id = ?"
                    " ORDER BY id",
                    [row[0]],
                )
            )
            found.append(
                PersonRecord(
                    uid=row[1],
                    revision=row[2],
                    origin=row[3],
                    name=row[4],
                    role=row[5],
                    enabled=bool(row[6]),
                    valid_from=row[7],
                    valid_until=row[8],
                    schedule=row[9],
                    created=row[10],
                    templates=templates,
                )
            )
        found += [
            Tombstone(*row)
            for row in conn.execute(
                "SELECT uid, revision, origin, deleted FROM tombstones"
                " WHERE cleared = 0 AND (published IS NULL OR published != ?) ORDER BY revision",
                [key_id],
            )
        ]
    return found


def mark_published(gallery: Gallery, items: list[PersonRecord | Tombstone], key_id: str) -> None:
    """The broker has these versions under ``key_id`` (unless they changed meanwhile)."""
    with gallery.writing() as conn:
        for item in items:
            table = "people" if isinstance(item, PersonRecord) else "tombstones"
            conn.execute(
                f"UPDATE {table} SET published = ? WHERE uid = ? AND revision = ? AND origin = ?",
                [key_id, item.uid, item.revision, item.origin],
            )


def republish_own(gallery: Gallery) -> None:
    """Publish again every version this terminal made (the broker may have lost them)."""
    with gallery.writing() as conn:
        me = site_state.terminal(conn)
        conn.execute("UPDATE people SET published = NULL WHERE origin = ?", [me])
        conn.execute(
            "UPDATE tombstones SET published = NULL WHERE origin = ? AND cleared = 0", [me]
        )


def tombstones_to_clear(gallery: Gallery, before: float) -> list[str]:
    """Uids of this terminal's published deletions made before ``before``: every
    terminal had the retention period to apply them, so the broker may forget them."""
    with gallery.reading() as conn:
        rows = conn.execute(
            "SELECT uid FROM tombstones WHERE cleared = 0 AND published IS NOT NULL"
            " AND origin = ? AND deleted < ?",
            [site_state.terminal(conn), before],
        ).fetchall()
    return [uid for (uid,) in rows]


def mark_cleared(gallery: Gallery, uid: str) -> None:
    """The retained deletion is off the broker; the tombstone stays here, so an older
    copy of the person that turns up later is still refused."""
    with gallery.writing() as conn:
        conn.execute("UPDATE tombstones SET cleared = 1 WHERE uid = ?", [uid])


# --- the site's events -------------------------------------------------------------------------


def collect_event(gallery: Gallery, terminal: str, event: OutboxEvent) -> bool:
    """Keep another terminal's event (for site attendance); False for a duplicate."""
    with gallery.writing() as conn:
        cursor = conn.execute(
            "INSERT OR IGNORE INTO site_events (terminal, seq, time, kind, person_uid, name,"
            " score, liveness, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                terminal,
                event.seq,
                event.time,
                event.kind,
                event.person_uid,
                event.name,
                event.score,
                event.liveness,
                event.reason,
            ],
        )
    return cursor.rowcount == 1


def site_events(
    gallery: Gallery, since: float | None, until: float | None, kind: EventKind | None = None
) -> list[Event]:
    """Every terminal's events (this one's and those collected), oldest first, each
    person as this gallery knows them (their local id and current name)."""
    wanted = EventFilter(since, until, kind)
    local = gallery.events(wanted)
    # the filter's columns (time, kind) are site_events' alone: people has neither
    where, params = wanted.where()
    sql = (
        "SELECT s.time, s.kind, p.id, coalesce(p.name, s.name), s.score, s.liveness, s.reason"
        " FROM site_events s LEFT JOIN people p ON p.uid = s.person_uid" + where
    )
    with gallery.reading() as conn:
        rows = conn.execute(sql + " ORDER BY s.time, s.terminal, s.seq", params).fetchall()
    collected = [Event(0, row[0], EventKind(row[1]), *row[2:]) for row in rows]
    return sorted(local + collected, key=lambda e: e.time)
