"""The event log: every decision, door event and change to the gallery, in order.

Rows are written inside the caller's transaction (``Gallery`` owns the connection and
its transactions); each row keeps the person's name as it was when it was logged, so
the log still reads right after a rename, and ``people delete`` can scrub it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlcipher3

from ..types import EventKind
from . import outbox


@dataclass(frozen=True)
class Event:
    """One entry of the audit log. ``name`` is the person's name when it was logged."""

    id: int
    time: float
    kind: EventKind
    person_id: int | None
    name: str | None
    score: float | None
    liveness: float | None
    reason: str | None


def event_kind(kind: str) -> EventKind:
    """``kind`` as an EventKind; ValueError naming the valid kinds otherwise."""
    try:
        return EventKind(kind)
    except ValueError:
        valid = ", ".join(sorted(k.value for k in EventKind))
        raise ValueError(f"unknown event kind {kind!r}; valid kinds: {valid}") from None


def insert_event(
    conn: sqlcipher3.Connection,
    *,
    kind: EventKind,
    time: float,
    person_id: int | None = None,
    name: str | None = None,
    score: float | None = None,
    liveness: float | None = None,
    reason: str | None = None,
) -> int:
    """Append one row, and queue it for the broker when there is an outbox; returns its id."""
    event_id = _insert(conn, kind, time, person_id, name, score, liveness, reason)
    keep = outbox.retention(conn)
    if keep:
        outbox.enqueue(conn, event_id, time)
        dropped = outbox.expire(conn, float(time) - keep)
        if dropped:
            reason = f"{dropped} event(s) waited more than {keep / 86400:g} days for the broker"
            outbox.enqueue(
                conn,
                _insert(conn, EventKind.OUTBOX_DROPPED, time, None, None, None, None, reason),
                time,
            )
    return event_id


def _insert(
    conn: sqlcipher3.Connection,
    kind: EventKind,
    time: float,
    person_id: int | None,
    name: str | None,
    score: float | None,
    liveness: float | None,
    reason: str | None,
) -> int:
    cursor = conn.execute(
        "INSERT INTO events (time, kind, person_id, name, score, liveness, reason)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [float(time), EventKind(kind).value, person_id, name, score, liveness, reason],
    )
    return int(cursor.lastrowid)


def select_events(
    conn: sqlcipher3.Connection,
    since: float | None = None,
    until: float | None = None,
    kind: EventKind | None = None,
) -> list[Event]:
    """Events with ``since <= time < until`` (either bound optional), oldest first."""
    where, params = [], []
    for clause, value in (("time >= ?", since), ("time < ?", until), ("kind = ?", kind)):
        if value is not None:
            where.append(clause)
            params.append(value.value if isinstance(value, EventKind) else value)
    sql = "SELECT id, time, kind, person_id, name, score, liveness, reason FROM events"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = conn.execute(sql + " ORDER BY time, id", params).fetchall()
    return [Event(row[0], row[1], EventKind(row[2]), *row[3:]) for row in rows]


def count_events(conn: sqlcipher3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
