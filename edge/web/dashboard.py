"""The dashboard: the door and the camera as the loop sees them, the gallery's size,
the last decisions arriving live (server-sent events relaying the control socket's
``decisions`` stream), doctor's findings, and the remote unlock button."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..control import ControlError
from ..doctor import Check, run_checks
from ..gallery.store import Gallery
from .common import ask_daemon, change, in_gallery, page, redirect, render, services, text

DOCTOR_EVERY_S = 60.0  # doctor opens the gallery and checks its integrity: not per visit


# What the pages show of a snapshot that lacks a field (a daemon older or newer than this).
UNKNOWN_STATUS = {
    "door": "?",
    "camera": "?",
    "camera_reason": "",
    "templates": "?",
    "liveness": "?",
    "status": "",
    "recent_decisions": [],
}


async def daemon_status(request: Request) -> dict[str, Any]:
    """The loop's snapshot, or {"error": why} when the daemon cannot be reached."""
    try:
        return {**UNKNOWN_STATUS, **await ask_daemon(request, "status")}
    except ControlError as exc:
        return {"error": str(exc), "recent_decisions": []}


async def doctor_findings(request: Request) -> list[Check]:
    """doctor's checks but the camera and the GPIO (the daemon owns them), at most once a
    minute."""
    svc = services(request)
    cached = svc.state.get("doctor")
    now = svc.clock.now()
    if cached is None or not now - cached[0] < DOCTOR_EVERY_S:
        checks = await run_in_threadpool(run_checks, svc.config, False)
        cached = svc.state["doctor"] = (now, checks)
    return cached[1]


@page
async def dashboard(request, session) -> Response:
    status = await daemon_status(request)

    def counts(gallery: Gallery) -> dict[str, int]:
        people = gallery.people()
        return {
            "people": len(people),
            "disabled": sum(not p.enabled for p in people),
            "templates": sum(p.templates for p in people),
        }

    return render(
        request,
        session,
        "dashboard.html",
        status=status,
        counts=await in_gallery(request, counts),
        checks=await doctor_findings(request),
        decisions=list(reversed(status.get("recent_decisions", []))),
        remote_unlock=services(request).config.control.allow_remote_unlock,
    )


@page
async def status_json(request, session) -> Response:
    status = await daemon_status(request)
    status.pop("recent_decisions", None)
    return JSONResponse(status)


@page
async def decision_stream(request, session) -> Response:
    """Server-sent events: one 'decision' event per decision the loop makes."""
    connect = services(request).control

    async def events() -> AsyncIterator[str]:
        try:
            client = await run_in_threadpool(connect)
        except ControlError as exc:
            yield f"event: down\ndata: {json.dumps(str(exc))}\n\n"
            return
        try:
            stream = await run_in_threadpool(client.decisions)
            async for line in iterate_in_threadpool(stream):
                if "decision" in line:
                    yield f"event: decision\ndata: {json.dumps(line['decision'])}\n\n"
                else:
                    yield ": idle\n\n"  # lets a hang-up be noticed
        except ControlError as exc:
            yield f"event: down\ndata: {json.dumps(str(exc))}\n\n"
        finally:
            client.close()

    return StreamingResponse(events(), media_type="text/event-stream")


@change
async def unlock(request, session, form) -> Response:
    reason = text(form, "reason").strip()[:200] or "from the web app"
    await ask_daemon(request, "unlock", by=session.admin, reason=reason)
    session.messages.append("the door was unlocked for one pulse")
    return redirect("/")


routes = [
    Route("/", dashboard),
    Route("/dashboard/status.json", status_json),
    Route("/dashboard/decisions", decision_stream),
    Route("/door/unlock", unlock, methods=["POST"]),
]
