"""The web app: ``create_app`` wires the pages, the API and the security around them
from the typed config and injected collaborators (gallery, control socket, face models,
clock), so that tests run it in-process on a FakeClock.

Every response carries a strict Content-Security-Policy (no inline script, nothing from
another origin, no framing), nosniff, HSTS and no referrer; request bodies are limited in
bytes before anything parses them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import jinja2
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..clock import Clock
from ..config import Config
from ..control import ControlClient
from ..errors import FacegateError
from ..gallery.enrolment import FacePipeline
from ..gallery.reports import format_time
from ..gallery.store import Admin, Gallery
from ..types import EventKind
from . import admins, api, attendance, camera, dashboard, events, people
from .auth import LoginThrottle, Passwords, Sessions
from .common import (
    SESSION_COOKIE,
    PipelineLoader,
    Services,
    change,
    in_gallery,
    redirect,
    render,
    same_origin,
    services,
    session_of,
    text,
)

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"strict-transport-security", b"max-age=31536000"),
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on
    # this site's own form posts
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]
FORM_BYTES = 256 * 1024  # any request body but an upload


class BodyTooLarge(Exception):
    pass


class Guard:
    """ASGI middleware: security headers on every response; request bodies over the limit
    refused with 413 (by their Content-Length, or as they arrive when they have none)."""

    def __init__(self, app: ASGIApp, upload_bytes: int):
        self.app = app
        self.upload_bytes = upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = self.upload_bytes if path in UPLOAD_PATHS else FORM_BYTES
        started = False

        async def send_secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(scope, receive, send_secured, limit)
            return
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, receive_limited, send_secured)
        except BodyTooLarge:
            if started:
                raise
            await _too_large(scope, receive, send_secured, limit)


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = Response(
        f"request body over the limit of {limit // 1024} KiB\n", 413, media_type="text/plain"
    )
    await response(scope, receive, send)


UPLOAD_PATHS = frozenset({"/people/new", "/api/v1/people"})


# --- signing in and out ---------------------------------------------------------------------


async def login_form(request: Request) -> Response:
    session = await session_of(request)
    if session is not None:
        return redirect("/")
    return render(request, None, "login.html", next=_safe_next(request.query_params.get("next")))


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


async def login(request: Request) -> Response:
    svc = services(request)
    if not same_origin(request):
        return render(request, None, "error.html", 403, error="cross-site request refused")
    form = await request.form(max_files=0, max_fields=10)
    name, password = text(form, "name").strip(), text(form, "password")
    target = _safe_next(text(form, "next"))
    address = request.client.host if request.client else "?"
    keys = [f"name:{name.casefold()}", f"address:{address}"]
    if svc.throttle.locked(keys):
        return render(
            request,
            None,
            "login.html",
            429,
            next=target,
            error="too many failed logins: wait a while, then try again",
        )

    def check(gallery: Gallery) -> Admin | None:
        """The administrator signed in, or None."""
        try:
            admin: Admin | None = gallery.admin(name) if name else None
        except FacegateError:
            admin = None
        ok = svc.passwords.verify(admin.password_hash if admin else None, password)
        if not ok:
            for key in svc.throttle.failed(keys):
                gallery.log_change(
                    EventKind.ADMIN_LOCKED_OUT,
                    name or "-",
                    f"logins refused for {svc.config.web.lockout_minutes:g} min after "
                    f"{svc.config.web.login_attempts} failures ({key}) from {address}",
                )
        else:
            gallery.log_change(EventKind.ADMIN_LOGIN, name, f"signed in from {address}")
        return admin if ok else None

    admin = await in_gallery(request, check)
    if admin is None:
        return render(request, None, "login.html", 401, next=target, error="wrong name or password")
    svc.throttle.succeeded(keys)
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        svc.sessions.end(old)  # whatever the browser brought is never reused
    session = svc.sessions.start(admin.name, admin.password_hash)
    response = redirect(target)
    response.set_cookie(
        SESSION_COOKIE,
        session.id,
        httponly=True,
        secure=True,
        samesite="strict",
        path="/",
    )
    return response


@change
async def logout(request, session, form) -> Response:
    services(request).sessions.end(session.id)
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


# --- the app ------------------------------------------------------------------------------


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template is HTML; user text is always escaped
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = format_time
    return Jinja2Templates(env=env)


def create_app(
    config: Config,
    *,
    open_gallery: Callable[[], Gallery],
    control: Callable[[], ControlClient],
    pipeline: Callable[[], FacePipeline],
    clock: Clock,
    hasher: PasswordHasher | None = None,
) -> Starlette:
    """The web app. ``open_gallery`` opens a connection of its own (one per request),
    ``control`` connects to the daemon's socket, ``pipeline`` loads the face models
    (on the first enrolment from photos)."""
    web = config.web
    svc = Services(
        config=config,
        open_gallery=open_gallery,
        control=control,
        pipeline=PipelineLoader(pipeline),
        clock=clock,
        passwords=Passwords(hasher),
        sessions=Sessions(clock, web.session_minutes * 60.0),
        throttle=LoginThrottle(clock, web.login_attempts, web.lockout_minutes * 60.0),
        templates=_templates(),
    )
    routes: list[BaseRoute] = [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        *dashboard.routes,
        *camera.routes,
        *people.routes,
        *events.routes,
        *attendance.routes,
        *admins.routes,
        Mount("/api/v1", routes=api.routes),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    upload_bytes = int(web.max_upload_mb * 1024 * 1024)
    app = Starlette(routes=routes, middleware=[Middleware(Guard, upload_bytes=upload_bytes)])
    app.state.services = svc
    return app
