"""The event log and attendance as tables people read: the same rows and the same
formula-safe CSV from ``facegate events|attendance`` and from the web app.

Times are shown in the terminal's local zone; days and moments typed by people are
read here too, so that a command line and a web form accept the same forms.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from typing import IO, Any

from .attendance import AttendanceRow, day_bounds
from .events import Event

EVENT_HEADER = ("time", "kind", "person_id", "name", "score", "liveness", "reason", "actor")
ATTENDANCE_HEADER = ("day", "person_id", "name", "first_in", "last_out", "hours", "passes")
# A spreadsheet runs a cell that starts with one of these as a formula ('=cmd|...').
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_RELATIVE = re.compile(r"^(\d+)\s*([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def format_time(wall: float | None) -> str:
    """Local time, to the second, for people reading the terminal."""
    if wall is None:
        return "-"
    return dt.datetime.fromtimestamp(wall).astimezone().isoformat(sep=" ", timespec="seconds")


def clock_time(wall: float) -> str:
    return dt.datetime.fromtimestamp(wall).strftime("%H:%M:%S")


def _out_of_range(text: str) -> ValueError:
    return ValueError(f"{text!r} is out of range: give a date between 1970 and 9999")


def parse_when(text: str, now: float) -> float:
    """Wall seconds from '30m' / '2h' / '7d' (ago) or an ISO date or date-time (local
    unless it names its zone); ValueError saying which forms are valid."""
    match = _RELATIVE.match(text.strip())
    if match:
        return now - int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration like 30m, 2h, 7d nor an ISO date like 2024-05-01"
        ) from None
    try:
        return (moment if moment.tzinfo else moment.astimezone()).timestamp()
    except (ValueError, OverflowError, OSError):
        raise _out_of_range(text) from None


def parse_day(text: str) -> dt.date:
    """A calendar day written as 2024-05-01; ValueError otherwise."""
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a day like 2024-05-01") from None
    try:
        day_bounds(day, day)
    except (ValueError, OverflowError, OSError):
        raise _out_of_range(text) from None
    return day


def event_rows(events: Iterable[Event]) -> list[list[Any]]:
    """One row per event, in EVENT_HEADER's order."""
    return [
        [
            format_time(e.time),
            e.kind.value,
            e.person_id,
            e.name,
            None if e.score is None else f"{e.score:.3f}",
            None if e.liveness is None else f"{e.liveness:.3f}",
            e.reason,
            e.actor,
        ]
        for e in events
    ]


def hours(row: AttendanceRow) -> float:
    """Hours from the first to the last pass of the day."""
    return (row.last_out - row.first_in) / 3600.0


def attendance_rows(rows: Iterable[AttendanceRow]) -> list[list[Any]]:
    """One row per person and day, in ATTENDANCE_HEADER's order."""
    return [
        [
            r.day.isoformat(),
            r.person_id,
            r.name,
            clock_time(r.first_in),
            clock_time(r.last_out),
            f"{hours(r):.2f}",
            r.passes,
        ]
        for r in rows
    ]


def csv_cell(value: Any) -> Any:
    """``value`` as a CSV cell no spreadsheet will run: text that starts like a formula
    gets a leading apostrophe, which spreadsheets show as text. Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def write_csv(out: IO[str], header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[csv_cell(value) for value in row] for row in rows])
