"""The event log: filtered by time, kind and person, paged, newest first; and the same
selection as formula-safe CSV (``facegate events --csv``'s rows)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.responses import Response
from starlette.routing import Route

from ..clock import Clock
from ..errors import RefusedError
from ..gallery.events import Event, event_kind
from ..gallery.reports import EVENT_HEADER, event_rows, parse_when, write_csv
from ..gallery.store import Gallery
from ..types import EventKind
from .common import in_gallery, page, render, services

PAGE_SIZE = 50


@dataclass(frozen=True)
class Selection:
    """The filters of the events page, checked."""

    since: float | None
    until: float | None
    kind: EventKind | None
    person_id: int | None
    page: int

    @classmethod
    def from_query(cls, query: QueryParams, clock: Clock) -> Selection:
        def when(name: str) -> float | None:
            value = query.get(name, "").strip()
            try:
                return parse_when(value, clock.wall()) if value else None
            except ValueError as exc:
                raise RefusedError(f"{name}: {exc}") from None

        kind = query.get("kind") or None
        person = query.get("person", "").strip()
        page = query.get("page", "1").strip()
        if person and not person.isdigit():
            raise RefusedError("person: choose a person from the list")
        if not page.isdigit() or int(page) < 1:
            raise RefusedError("page: a page number from 1")
        return cls(
            when("since"),
            when("until"),
            None if kind is None else event_kind(kind),
            int(person) if person else None,
            int(page),
        )

    def events(self, gallery: Gallery, paged: bool = False) -> list[Event]:
        """The events selected: all, oldest first; or ``paged``, this page, newest first."""
        return gallery.events(
            since=self.since,
            until=self.until,
            kind=self.kind,
            person_id=self.person_id,
            limit=PAGE_SIZE if paged else None,
            offset=(self.page - 1) * PAGE_SIZE if paged else 0,
            newest_first=paged,
        )

    def count(self, gallery: Gallery) -> int:
        return gallery.count_events(
            since=self.since, until=self.until, kind=self.kind, person_id=self.person_id
        )


@page
async def events_page(request, session) -> Response:
    selection = Selection.from_query(request.query_params, services(request).clock)

    def load(gallery: Gallery):
        return selection.count(gallery), selection.events(gallery, paged=True), gallery.people()

    total, found, people = await in_gallery(request, load)
    query = {k: v for k, v in request.query_params.items() if k != "page" and v}
    pages = max(1, -(-total // PAGE_SIZE))
    return render(
        request,
        session,
        "events.html",
        events=found,
        total=total,
        selection=selection,
        pages=pages,
        people=people,
        kinds=[k.value for k in EventKind],
        query=query,
        csv_link="/events.csv?" + urlencode(query),
        page_link=lambda n: "/events?" + urlencode({**query, "page": n}),
    )


@page
async def events_csv(request, session) -> Response:
    selection = Selection.from_query(request.query_params, services(request).clock)
    found = await in_gallery(request, selection.events)
    out = io.StringIO()
    write_csv(out, EVENT_HEADER, event_rows(found))
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="facegate-events.csv"'},
    )


routes = [Route("/events", events_page), Route("/events.csv", events_csv)]
