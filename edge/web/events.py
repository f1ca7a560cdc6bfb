"""The event log: filtered by time, kind and person, paged, newest first; and the same
selection as formula-safe CSV (``facegate events --csv``'s rows)."""

from __future__ import annotations

import io
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.responses import Response
from starlette.routing import Route

from ..clock import Clock
from ..errors import RefusedError
from ..gallery.events import Event, EventFilter, event_kind
from ..gallery.reports import EVENT_HEADER, event_rows, parse_when, write_csv
from ..gallery.store import Gallery
from ..types import EventKind
from .common import in_gallery, page, render, services

PAGE_SIZE = 50


def event_filter(query: QueryParams, clock: Clock) -> EventFilter:
    """The events a page or API query selects (since, until, kind, person), checked."""

    def when(name: str) -> float | None:
        value = query.get(name, "").strip()
        try:
            return parse_when(value, clock.wall()) if value else None
        except ValueError as exc:
            raise RefusedError(f"{name}: {exc}") from None

    person = query.get("person", "").strip()
    if person and not person.isdigit():
        raise RefusedError("person: choose a person from the list")
    kind = query.get("kind") or None
    return EventFilter(
        when("since"),
        when("until"),
        None if kind is None else event_kind(kind),
        int(person) if person else None,
    )


def page_number(query: QueryParams) -> int:
    number = query.get("page", "1").strip()
    if not number.isdigit() or int(number) < 1:
        raise RefusedError("page: a page number from 1")
    return int(number)


def one_page(gallery: Gallery, wanted: EventFilter, number: int) -> tuple[int, list[Event]]:
    """How many events ``wanted`` selects, and page ``number`` of them, newest first."""
    found = gallery.events(wanted, PAGE_SIZE, (number - 1) * PAGE_SIZE, newest_first=True)
    return gallery.count_events(wanted), found


@page
async def events_page(request, session) -> Response:
    wanted = event_filter(request.query_params, services(request).clock)
    number = page_number(request.query_params)

    def load(gallery: Gallery):
        return *one_page(gallery, wanted, number), gallery.people()

    total, found, people = await in_gallery(request, load)
    query = {k: v for k, v in request.query_params.items() if k != "page" and v}
    pages = max(1, -(-total // PAGE_SIZE))
    return render(
        request,
        session,
        "events.html",
        events=found,
        total=total,
        wanted=wanted,
        page=number,
        pages=pages,
        people=people,
        kinds=[k.value for k in EventKind],
        query=query,
        csv_link="/events.csv?" + urlencode(query),
        page_link=lambda n: "/events?" + urlencode({**query, "page": n}),
    )


@page
async def events_csv(request, session) -> Response:
    wanted = event_filter(request.query_params, services(request).clock)
    found = await in_gallery(request, lambda g: g.events(wanted))
    out = io.StringIO()
    write_csv(out, EVENT_HEADER, event_rows(found))
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="facegate-events.csv"'},
    )


routes = [Route("/events", events_page), Route("/events.csv", events_csv)]
