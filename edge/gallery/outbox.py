"""The outbox: every event waiting for the broker, in the order it was logged.

When the site's broker client is configured (``[mqtt] enabled``), each event row gets
an outbox row in the same transaction (``events.insert_event``), so an event is never
logged without being queued, nor queued without being logged. The outbox row's
``seq`` numbers this terminal's events for the site: it only grows (AUTOINCREMENT
never reuses a number), so consumers order by it and drop duplicates by
``<terminal>/<seq>``. The broker client marks rows delivered once the broker
acknowledged them. An event that waited longer than the retention is dropped, and an
'outbox_dropped' event says how many went; delivered rows go at the same age. Logging
an event looks for such rows at most every ``EXPIRE_EVERY_S``: a door decision seldom
pays for it, and nothing stays in the outbox longer than the retention and that.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlcipher3

from . import site_state

EXPIRE_EVERY_S = 600.0


@dataclass(frozen=True)
class OutboxEvent:
    """One queued event as the broker client publishes it. ``person_uid`` is the
    person's site-wide id (None for no person, or one since deleted)."""

    seq: int
    time: float
    kind: str
    person_uid: str | None
    name: str | None
    score: float | None
    liveness: float | None
    reason: str | None


def retention(conn: sqlcipher3.Connection) -> float:
    """Seconds an event may wait; 0 when there is no outbox (MQTT off)."""
    return float(site_state.get(conn, "outbox_retention", 0.0))  # type: ignore[arg-type]


def enqueue(conn: sqlcipher3.Connection, event_id: int, time: float) -> None:
    conn.execute("INSERT INTO outbox (event_id, time) VALUES (?, ?)", [event_id, time])


def expire(conn: sqlcipher3.Connection, now: float, keep: float) -> int:
    """Remove rows older than ``keep`` seconds when the last look was ``EXPIRE_EVERY_S``
    or more before ``now``, or after it (the clock was set back: waiting for it to pass
    that time again would let the outbox grow meanwhile). Returns how many were never
    delivered."""
    last = site_state.get(conn, "outbox_expired")
    if isinstance(last, float) and last <= now < last + EXPIRE_EVERY_S:
        return 0
    site_state.put(conn, "outbox_expired", now)
    before = now - keep
    dropped = conn.execute("DELETE FROM outbox WHERE time < ? AND delivered = 0", [before]).rowcount
    conn.execute("DELETE FROM outbox WHERE time < ? AND delivered = 1", [before])
    return int(dropped)


def pending(conn: sqlcipher3.Connection, after: int, limit: int) -> list[OutboxEvent]:
    """Undelivered events with seq > ``after``, oldest first, as they read now (a
    person deleted since is no longer named)."""
    rows = conn.execute(
        "SELECT o.seq, e.time, e.kind, p.uid, e.name, e.score, e.liveness, e.reason"
        " FROM outbox o JOIN events e ON e.id = o.event_id"
        " LEFT JOIN people p ON p.id = e.person_id"
        " WHERE o.delivered = 0 AND o.seq > ? ORDER BY o.seq LIMIT ?",
        [after, limit],
    ).fetchall()
    return [OutboxEvent(*row) for row in rows]


def mark_delivered(conn: sqlcipher3.Connection, seqs: list[int]) -> None:
    conn.executemany("UPDATE outbox SET delivered = 1 WHERE seq = ?", [(s,) for s in seqs])


def waiting(conn: sqlcipher3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM outbox WHERE delivered = 0").fetchone()[0])
