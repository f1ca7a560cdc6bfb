"""Attendance from the event log: per person and local day, first and last pass.

Only 'granted' events count. The terminal sees people pass, not which way, so
"last out" is the last recognised pass of the day; the exit button logs no person.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from .events import Event


@dataclass(frozen=True)
class AttendanceRow:
    """One person on one day: first and last granted pass (wall seconds) and count."""

    day: dt.date
    person_id: int
    name: str
    first_in: float
    last_out: float
    passes: int


def local_day(wall: float, tz: dt.tzinfo | None = None) -> dt.date:
    """The calendar day of a wall time in ``tz`` (the system's local zone if None)."""
    return dt.datetime.fromtimestamp(wall, tz).date()


def day_bounds(first: dt.date, last: dt.date, tz: dt.tzinfo | None = None) -> tuple[float, float]:
    """Wall seconds from the start of ``first`` to the end of ``last`` (exclusive)."""
    if last < first:
        raise ValueError(f"the last day {last} is before the first day {first}")

    def start(day: dt.date) -> float:
        midnight = dt.datetime.combine(day, dt.time())
        return (midnight.replace(tzinfo=tz) if tz else midnight.astimezone()).timestamp()

    return start(first), start(last + dt.timedelta(days=1))


def attendance(events: Iterable[Event], tz: dt.tzinfo | None = None) -> list[AttendanceRow]:
    """Rows by day then person name, from 'granted' events of people still enrolled."""
    rows: dict[tuple[dt.date, int], AttendanceRow] = {}
    for event in events:
        if event.kind != "granted" or event.person_id is None:
            continue
        key = (local_day(event.time, tz), event.person_id)
        row = rows.get(key)
        if row is None:
            rows[key] = AttendanceRow(
                key[0], event.person_id, event.name or "", event.time, event.time, 1
            )
        else:
            rows[key] = AttendanceRow(
                row.day,
                row.person_id,
                row.name,
                min(row.first_in, event.time),
                max(row.last_out, event.time),
                row.passes + 1,
            )
    return sorted(rows.values(), key=lambda r: (r.day, r.name, r.person_id))
