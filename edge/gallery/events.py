"""The event log: every decision, door event and change to the gallery, in order.

Rows are written inside the caller's transaction (``Gallery`` owns the connection and
its transactions); each row keeps the person's name as it was when it was logged, so
the log still reads right after a rename, and ``people delete`` can scrub it. A change an
administrator made through the web app or its API names them as the event's ``actor``.
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
    actor: str | None = None


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
    actor: str | None = None,
) -> int:
    """Append one row, and queue it for the broker when there is an outbox; returns its id."""
    event_id = _insert(conn, kind, time, person_id, name, score, liveness, reason, actor)
    keep = outbox.retention(conn)
    if keep:
        outbox.enqueue(conn, event_id, time)
        dropped = outbox.expire(conn, float(time), keep)
        if dropped:
            reason = f"{dropped} event(s) waited more than {keep / 86400:g} days for the broker"
            outbox.enqueue(
                conn,
                _insert(conn, EventKind.OUTBOX_DROPPED, time, None, None, None, None, reason, None),
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
    actor: str | None,
) -> int:
    cursor = conn.execute(
        "INSERT INTO events (time, kind, person_id, name, score, liveness, reason, actor)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [float(time), EventKind(kind).value, person_id, name, score, liveness, reason, actor],
    )
    return int(cursor.lastrowid)


@dataclass(frozen=True)
class EventFilter:
    """Which events: ``since <= time < until`` (either bound optional), of one kind, of
    one person; all of them by default."""

    since: float | None = None
    until: float | None = None
    kind: EventKind | None = None
    person_id: int | None = None

    def __post_init__(self) -> None:
        if self.kind is not None:  # a kind given as text (the command line's) is checked
            object.__setattr__(self, "kind", event_kind(self.kind))

    def where(self) -> tuple[str, list[object]]:
        clauses: list[str] = []
        params: list[object] = []
        for clause, value in (
            ("time >= ?", self.since),
            ("time < ?", self.until),
            ("kind = ?", self.kind),
            ("person_id = ?", self.person_id),
        ):
            if value is not None:
                clauses.append(clause)
                params.append(value.value if isinstance(value, EventKind) else value)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def select_events(
    conn: sqlcipher3.Connection,
    wanted: EventFilter,
    limit: int | None = None,
    offset: int = 0,
    newest_first: bool = False,
) -> list[Event]:
    """The events ``wanted`` selects, oldest first (or newest first), a page of them
    when ``limit`` is given."""
    where, params = wanted.where()
    order = "DESC" if newest_first else "ASC"
    sql = (
        "SELECT id, time, kind, person_id, name, score, liveness, reason, actor FROM events"
        f"{where} ORDER BY time {order}, id {order}"
    )
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params += [int(limit), int(offset)]
    rows = conn.execute(sql, params).fetchall()
    return [Event(row[0], row[1], EventKind(row[2]), *row[3:]) for row in rows]


def count_events(conn: sqlcipher3.Connection, wanted: EventFilter | None = None) -> int:
    where, params = (wanted or EventFilter()).where()
    return int(conn.execute("SELECT count(*) FROM events" + where, params).fetchone()[0])
