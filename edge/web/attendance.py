"""Attendance: first in, last out and hours per person per day over a date range, the
totals per person, a bar chart of their hours (SVG drawn on the server), and the CSV
('facegate attendance --csv''s rows)."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.responses import Response
from starlette.routing import Route

from ..errors import RefusedError
from ..gallery.attendance import AttendanceRow, attendance, day_bounds, local_day
from ..gallery.events import EventFilter
from ..gallery.reports import ATTENDANCE_HEADER, attendance_rows, hours, parse_day, write_csv
from ..types import EventKind
from .common import in_gallery, page, render, services

MAX_DAYS = 366
CHART_WIDTH = 600
BAR_HEIGHT = 22


@dataclass(frozen=True)
class Total:
    person_id: int
    name: str
    days: int
    hours: float
    passes: int


def totals(rows: list[AttendanceRow]) -> list[Total]:
    found: dict[int, Total] = {}
    for r in rows:
        t = found.get(r.person_id, Total(r.person_id, r.name, 0, 0.0, 0))
        found[r.person_id] = Total(
            r.person_id, t.name, t.days + 1, t.hours + hours(r), t.passes + r.passes
        )
    return sorted(found.values(), key=lambda t: (t.name, t.person_id))


def chart(people: list[Total]) -> dict[str, object]:
    """Bars (hours per person) laid out for the SVG template."""
    most = max((t.hours for t in people), default=0.0) or 1.0
    label_width = 160
    bars = [
        {
            "y": i * BAR_HEIGHT,
            "width": round((CHART_WIDTH - label_width - 60) * t.hours / most, 1),
            "total": t,
        }
        for i, t in enumerate(people)
    ]
    return {
        "bars": bars,
        "label_width": label_width,
        "width": CHART_WIDTH,
        "height": max(1, len(bars)) * BAR_HEIGHT,
    }


def _range(query: QueryParams, today: dt.date) -> tuple[dt.date, dt.date]:
    try:
        first = parse_day(query["from"]) if query.get("from") else today - dt.timedelta(days=6)
        last = parse_day(query["to"]) if query.get("to") else today
    except ValueError as exc:
        raise RefusedError(str(exc)) from None
    if last < first:
        raise RefusedError(f"the last day {last} is before the first day {first}")
    if (last - first).days >= MAX_DAYS:
        raise RefusedError(f"at most {MAX_DAYS} days at once")
    return first, last


async def selected_rows(request) -> tuple[dt.date, dt.date, list[AttendanceRow]]:
    first, last = _range(request.query_params, local_day(services(request).clock.wall()))
    since, until = day_bounds(first, last)
    granted = EventFilter(since, until, EventKind.GRANTED)
    events = await in_gallery(request, lambda g: g.events(granted))
    return first, last, attendance(events)


@page
async def attendance_page(request, session) -> Response:
    first, last, rows = await selected_rows(request)
    people = totals(rows)
    query = {"from": first.isoformat(), "to": last.isoformat()}
    return render(
        request,
        session,
        "attendance.html",
        first=first,
        last=last,
        rows=rows,
        table=attendance_rows(rows),
        people=people,
        chart=chart(people),
        csv_link="/attendance.csv?" + urlencode(query),
    )


@page
async def attendance_csv(request, session) -> Response:
    first, last, rows = await selected_rows(request)
    out = io.StringIO()
    write_csv(out, ATTENDANCE_HEADER, attendance_rows(rows))
    filename = f"facegate-attendance-{first}-{last}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


routes = [Route("/attendance", attendance_page), Route("/attendance.csv", attendance_csv)]
