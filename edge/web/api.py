"""The JSON API under ``/api/v1``: what the pages do, for scripts and other systems.

Each call carries ``Authorization: Bearer <token>``; a token has scopes (``events:read``,
``people:write``, ``door:unlock``), and a change it makes is logged with its
administrator's name and the token's number. Session cookies are not accepted here, so
no other site can make a signed-in browser call the API. The OpenAPI document is at
``/api/v1/openapi.json``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..control import ControlError
from ..errors import FacegateError, GalleryUnavailableError, NotFoundError, RefusedError
from ..gallery.events import Event
from ..gallery.reports import parse_day
from ..gallery.store import ApiToken, Person
from ..types import EventKind
from . import attendance as attendance_page
from .auth import SCOPES, token_digest
from .common import MAX_PHOTOS, ask_daemon, in_gallery, services
from .events import PAGE_SIZE, event_filter, one_page, page_number
from .people import PersonEdit, apply_edit, enrol_uploads, erase, parse_schedule, read_uploads

Handler = Callable[[Request, str], Awaitable[Response]]


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = {"www-authenticate": 'Bearer realm="facegate"'} if status == 401 else None
    return JSONResponse({"error": message, **extra}, status, headers=headers)


def api(scope: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """An API endpoint for tokens holding ``scope``; the handler gets the actor's name."""
    assert scope in SCOPES

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            kind, _, secret = request.headers.get("authorization", "").partition(" ")
            if kind.lower() != "bearer" or not secret.strip():
                return _error(401, "an API token is needed: Authorization: Bearer <token>")
            digest = token_digest(secret.strip())
            token: ApiToken | None = await in_gallery(request, lambda g: g.api_token(digest))
            if token is None:
                return _error(401, "unknown or revoked API token")
            if scope not in token.scopes:
                return _error(403, f"this token lacks the scope {scope!r}")
            try:
                return await handler(request, f"{token.admin} (API token #{token.id})")
            except NotFoundError as exc:
                return _error(404, str(exc))
            except (GalleryUnavailableError, ControlError) as exc:
                return _error(503, str(exc))
            except (FacegateError, ValueError) as exc:
                return _error(400, str(exc))

        return endpoint

    return wrap


def person_json(p: Person) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "role": p.role,
        "enabled": p.enabled,
        "valid_from": p.valid_from,
        "valid_until": p.valid_until,
        "schedule": None if p.schedule is None else str(p.schedule),
        "templates": p.templates,
        "created": p.created,
    }


def event_json(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "time": e.time,
        "kind": e.kind.value,
        "person_id": e.person_id,
        "name": e.name,
        "score": e.score,
        "liveness": e.liveness,
        "reason": e.reason,
        "actor": e.actor,
    }


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise RefusedError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise RefusedError("the body is a JSON object")
    return body


# --- events and status -------------------------------------------------------------------------


@api("events:read")
async def status(request, actor) -> Response:
    return JSONResponse(await ask_daemon(request, "status"))


@api("events:read")
async def events(request, actor) -> Response:
    wanted = event_filter(request.query_params, services(request).clock)
    number = page_number(request.query_params)
    total, found = await in_gallery(request, lambda g: one_page(g, wanted, number))
    return JSONResponse(
        {
            "total": total,
            "page": number,
            "page_size": PAGE_SIZE,
            "events": [event_json(e) for e in found],
        }
    )


@api("events:read")
async def attendance(request, actor) -> Response:
    first, last, rows = await attendance_page.selected_rows(request)
    return JSONResponse(
        {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "days": [
                {
                    "day": r.day.isoformat(),
                    "person_id": r.person_id,
                    "name": r.name,
                    "first_in": r.first_in,
                    "last_out": r.last_out,
                    "passes": r.passes,
                }
                for r in rows
            ],
            "totals": [
                {
                    "person_id": t.person_id,
                    "name": t.name,
                    "days": t.days,
                    "hours": round(t.hours, 2),
                    "passes": t.passes,
                }
                for t in attendance_page.totals(rows)
            ],
        }
    )


# --- people ------------------------------------------------------------------------------------


@api("people:write")
async def people(request, actor) -> Response:
    found = await in_gallery(request, lambda g: g.people())
    return JSONResponse({"people": [person_json(p) for p in found]})


@api("people:write")
async def add_person(request, actor) -> Response:
    form = await request.form(max_files=MAX_PHOTOS, max_fields=10)
    try:
        name, role = form.get("name"), form.get("role") or "user"
        if not isinstance(name, str) or not isinstance(role, str):
            raise RefusedError("give the fields name (and role) as text")
        photos = await read_uploads(form.getlist("photos"))
        result = await enrol_uploads(request, name, role, photos, actor)
    finally:
        await form.close()
    verdicts = [{"photo": v.path.name, "verdict": v.verdict} for v in result.verdicts]
    if result.person_id is None:
        return _error(400, result.error or "not enrolled", verdicts=verdicts)
    return JSONResponse({"id": result.person_id, "verdicts": verdicts}, 201)


@api("people:write")
async def person(request, actor) -> Response:
    person_id = int(request.path_params["person_id"])
    return JSONResponse(person_json(await in_gallery(request, lambda g: g.person(person_id))))


def _edit(body: dict[str, Any]) -> PersonEdit:
    known = {"name", "role", "enabled", "valid_from", "valid_until", "schedule"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise RefusedError(f"unknown fields {unknown} (valid: {sorted(known)})")
    for key in ("name", "role", "valid_from", "valid_until", "schedule"):
        if key in body and body[key] is not None and not isinstance(body[key], str):
            raise RefusedError(f"{key} is a string or null")
    if "enabled" in body and not isinstance(body["enabled"], bool):
        raise RefusedError("enabled is true or false")
    validity = "valid_from" in body or "valid_until" in body

    def day(key: str):
        return parse_day(body[key]) if body.get(key) else None

    schedule = parse_schedule(body["schedule"] or "") if "schedule" in body else None
    return PersonEdit(
        name=body.get("name"),
        role=body.get("role"),
        enabled=body.get("enabled"),
        valid_from=day("valid_from"),
        valid_until=day("valid_until"),
        clear_validity=validity,
        schedule=schedule,
        clear_schedule="schedule" in body and schedule is None,
    )


@api("people:write")
async def edit_person(request, actor) -> Response:
    person_id = int(request.path_params["person_id"])
    edit = _edit(await _json_body(request))
    changed = await in_gallery(request, lambda g: apply_edit(g, person_id, edit, actor))
    return JSONResponse(person_json(changed))


@api("people:write")
async def delete_person(request, actor) -> Response:
    person_id = int(request.path_params["person_id"])
    confirm = request.query_params.get("confirm", "")
    await in_gallery(request, lambda g: erase(g, person_id, confirm, actor))
    return Response(status_code=204)


# --- the door ----------------------------------------------------------------------------------


@api("door:unlock")
async def unlock(request, actor) -> Response:
    body = await _json_body(request)
    reason = body.get("reason") or "through the API"
    if not isinstance(reason, str):
        raise RefusedError("reason is a string")
    return JSONResponse(await ask_daemon(request, "unlock", by=actor, reason=reason[:200]))


async def openapi(request: Request) -> Response:
    return JSONResponse(OPENAPI)


def _op(summary: str, scope: str | None, responses: dict[str, str], **extra: Any) -> dict:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {code: {"description": text} for code, text in responses.items()},
        **extra,
    }
    if scope is not None:
        op["security"] = [{"token": [scope]}]
        op["description"] = f"Needs a token with the scope `{scope}`."
    return op


_AUTH = {"401": "no token, or an unknown one", "403": "the token lacks the scope"}
_ID = [{"name": "person_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "facegate",
        "version": "1",
        "description": "The door terminal's API. Tokens are made on the Administrators "
        "page and shown once; send them as `Authorization: Bearer <token>`.",
    },
    "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
    "paths": {
        "/api/v1/status": {
            "get": _op(
                "The door, the camera and the loop's state",
                "events:read",
                {"200": "the status", "503": "the door service cannot be reached", **_AUTH},
            )
        },
        "/api/v1/events": {
            "get": _op(
                "The event log, newest first, a page at a time",
                "events:read",
                {"200": "a page of events", "400": "a bad filter", **_AUTH},
                parameters=[
                    {
                        "name": "since",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "30m, 2h, 7d or an ISO date/time",
                    },
                    {"name": "until", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "kind",
                        "in": "query",
                        "schema": {"type": "string", "enum": [k.value for k in EventKind]},
                    },
                    {"name": "person", "in": "query", "schema": {"type": "integer"}},
                    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                ],
            )
        },
        "/api/v1/attendance": {
            "get": _op(
                "First in, last out and passes per person per day, and totals",
                "events:read",
                {"200": "the days and totals", "400": "a bad range", **_AUTH},
                parameters=[
                    {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
                    {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
                ],
            )
        },
        "/api/v1/people": {
            "get": _op("Everyone enrolled", "people:write", {"200": "the people", **_AUTH}),
            "post": _op(
                "Enrol a person from photos (multipart: name, role, photos)",
                "people:write",
                {"201": "enrolled; a verdict per photo", "400": "refused, and why", **_AUTH},
            ),
        },
        "/api/v1/people/{person_id}": {
            "get": _op(
                "One person", "people:write", {"200": "the person", **_AUTH}, parameters=_ID
            ),
            "patch": _op(
                "Change name, role, enabled, valid_from/valid_until (days) or schedule",
                "people:write",
                {"200": "the person as changed", "400": "refused, and why", **_AUTH},
                parameters=_ID,
            ),
            "delete": _op(
                "Erase a person (templates, and their name from the log)",
                "people:write",
                {"204": "erased", "400": "the confirm parameter is not their name", **_AUTH},
                parameters=_ID
                + [
                    {
                        "name": "confirm",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "the person's name",
                    }
                ],
            ),
        },
        "/api/v1/door/unlock": {
            "post": _op(
                "One unlock pulse (when the door service allows remote unlocks)",
                "door:unlock",
                {"200": "unlocked", "400": "refused by the door service", **_AUTH},
            )
        },
    },
}


routes = [
    Route("/openapi.json", openapi),
    Route("/status", status),
    Route("/events", events),
    Route("/attendance", attendance),
    Route("/people", people, methods=["GET"]),
    Route("/people", add_person, methods=["POST"]),
    Route("/people/{person_id:int}", person, methods=["GET"]),
    Route("/people/{person_id:int}", edit_person, methods=["PATCH"]),
    Route("/people/{person_id:int}", delete_person, methods=["DELETE"]),
    Route("/door/unlock", unlock, methods=["POST"]),
]
