"""What every page of the web app shares: its collaborators, the signed-in session,
CSRF and origin checks on every change, rendering, and errors as pages.

A page handler is ``async def handler(request, session)``; a change is ``async def
handler(request, session, form)`` and runs only with a live session, a matching CSRF
token and, when the browser says where the request came from, this site as its origin.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from ..clock import Clock
from ..config import Config
from ..control import ControlClient, ControlError
from ..errors import FacegateError, GalleryUnavailableError, NotFoundError
from ..gallery.enrolment import FacePipeline
from ..gallery.store import Gallery
from .auth import LoginThrottle, Passwords, Session, Sessions

SESSION_COOKIE = "__Host-facegate-session"  # __Host-: Secure, no Domain, Path=/
MAX_FORM_FIELDS = 200
MAX_FIELD_BYTES = 64 * 1024
MAX_PHOTOS = 30  # photos one enrolment upload may hold

T = TypeVar("T")


class PipelineLoader:
    """Loads the face models on first use and lends them to one request at a time (the
    networks are not thread-safe)."""

    def __init__(self, load: Callable[[], FacePipeline]):
        self._load = load
        self._pipeline: FacePipeline | None = None
        self._lock = threading.Lock()

    @contextmanager
    def lend(self) -> Iterator[FacePipeline]:
        with self._lock:
            if self._pipeline is None:
                self._pipeline = self._load()
            yield self._pipeline


@dataclass
class Services:
    """The web app's collaborators, injected by ``create_app``."""

    config: Config
    open_gallery: Callable[[], Gallery]
    control: Callable[[], ControlClient]
    pipeline: PipelineLoader
    clock: Clock
    passwords: Passwords
    sessions: Sessions
    throttle: LoginThrottle
    templates: Jinja2Templates
    state: dict[str, Any] = field(default_factory=dict)  # what a page group keeps


def services(request: Request) -> Services:
    return request.app.state.services


async def in_gallery(request: Request, work: Callable[[Gallery], T]) -> T:
    """Run ``work`` on a gallery connection of its own, in a worker thread.

    A connection per call, not one per process: a Gallery is not thread-safe, and an open
    one holds the gallery's shared lock, so one kept open would refuse ``gallery rekey``
    and ``restore`` for as long as the web app runs (opening costs about a millisecond).
    """
    open_gallery = services(request).open_gallery

    def run() -> T:
        with open_gallery() as gallery:
            return work(gallery)

    return await run_in_threadpool(run)


async def ask_daemon(request: Request, op: str, **args: Any) -> dict[str, Any]:
    """One request to the door loop over the control socket, in a worker thread."""
    connect = services(request).control

    def run() -> dict[str, Any]:
        with connect() as client:
            return client.request(op, **args)

    return await run_in_threadpool(run)


async def session_of(request: Request) -> Session | None:
    """The live session the request's cookie names, if its administrator still exists
    with the password they signed in with (the command line may have changed either)."""
    sessions = services(request).sessions
    session = sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None

    def credential(gallery: Gallery) -> str | None:
        try:
            return gallery.admin(session.admin).password_hash
        except NotFoundError:
            return None

    if await in_gallery(request, credential) != session.credential:
        sessions.end(session.id)
        return None
    return session


def same_origin(request: Request) -> bool:
    """False when the browser says the request came from another site (Sec-Fetch-Site,
    else Origin, else Referer; a request with none of them is no browser's cross-site
    request)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}" == f"{request.url.scheme}://{request.url.netloc}"


# --- rendering ----------------------------------------------------------------------------


def render(
    request: Request,
    session: Session | None,
    template: str,
    status_code: int = 200,
    **context: Any,
) -> Response:
    messages = []
    if session is not None:
        messages, session.messages = session.messages, []
    return services(request).templates.TemplateResponse(
        request,
        template,
        {"session": session, "messages": messages, **context},
        status_code=status_code,
    )


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def error_page(request: Request, session: Session | None, exc: Exception) -> Response:
    """A refusal as a page with the right status: 404 for what is not there, 503 when the
    gallery or the daemon cannot answer now, 400 for the rest."""
    if isinstance(exc, NotFoundError):
        status = 404
    elif isinstance(exc, (GalleryUnavailableError, ControlError)):
        status = 503
    else:
        status = 400
    return render(request, session, "error.html", status, error=str(exc))


# --- access -------------------------------------------------------------------------------

Page = Callable[[Request, Session], Awaitable[Response]]
Change = Callable[[Request, Session, FormData], Awaitable[Response]]


def page(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """A GET for signed-in administrators; the others go to the login page."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        session = await session_of(request)
        if session is None:
            return redirect("/login?next=" + quote(request.url.path))
        try:
            return await handler(request, session)
        except (FacegateError, ValueError) as exc:
            return error_page(request, session, exc)

    return endpoint


def change(handler: Change) -> Callable[[Request], Awaitable[Response]]:
    """A POST that changes something: a live session, its CSRF token, and this site."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        session = await session_of(request)
        if session is None:
            return render(request, None, "error.html", 401, error="sign in first")
        if not same_origin(request):
            return render(request, session, "error.html", 403, error="cross-site request refused")
        form = await request.form(
            max_files=MAX_PHOTOS,
            max_fields=MAX_FORM_FIELDS,
            max_part_size=MAX_FIELD_BYTES,
        )
        if not session.csrf_ok(form.get("csrf")):
            return render(request, session, "error.html", 403, error="stale or missing form token")
        try:
            return await handler(request, session, form)
        except (FacegateError, ValueError) as exc:
            return error_page(request, session, exc)
        finally:
            await form.close()

    return endpoint


def text(form: FormData, name: str) -> str:
    """A text field of a form ('' when absent; an uploaded file is no text)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""
