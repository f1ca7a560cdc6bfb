"""People: list and search; enrol by uploading photos (one verdict per photo, as
``facegate enrol``) or by capturing at the door camera with live guidance; edit name,
role, validity and weekly schedule; disable and enable; erase with an explicit
confirmation (the same scrubbing as ``facegate people delete``). The API reuses the
functions here."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from dataclasses import asdict, dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..access.schedule import Schedule
from ..errors import FacegateError, NotFoundError, RefusedError
from ..gallery.attendance import day_bounds, local_day
from ..gallery.enrolment import (
    ImageVerdict,
    Upload,
    capture_from_images,
    enrol_photos,
    enrol_templates,
    templates_from_json,
)
from ..gallery.events import EventFilter
from ..gallery.reports import parse_day
from ..gallery.store import ROLES, Gallery, Person, check_role, normalise_name
from .common import MAX_PHOTOS, Services, change, in_gallery, page, redirect, render, services, text

MAX_CAPTURES = 20  # capture jobs remembered for their pages
CAPTURE_GRACE_S = 30.0


# --- what the pages and the API share ------------------------------------------------------


@dataclass(frozen=True)
class PersonEdit:
    """A person's editable fields as a form or a JSON body gives them; None: unchanged."""

    name: str | None = None
    role: str | None = None
    enabled: bool | None = None
    valid_from: dt.date | None = None  # first day they may enter
    valid_until: dt.date | None = None  # last day they may enter
    clear_validity: bool = False
    schedule: Schedule | None = None
    clear_schedule: bool = False

    def __post_init__(self) -> None:
        if self.role is not None:
            check_role(self.role)


def first_day(person: Person) -> dt.date | None:
    return None if person.valid_from is None else local_day(person.valid_from)


def last_day(person: Person) -> dt.date | None:
    # valid_until is the first moment they may no longer enter: the day before it
    return None if person.valid_until is None else local_day(person.valid_until - 1.0)


def parse_schedule(lines: str) -> Schedule | None:
    """Windows one per line (or ';'), as 'facegate people schedule' takes them; none: None."""
    windows = [w.strip() for w in lines.replace(";", "\n").splitlines() if w.strip()]
    if not windows:
        return None
    try:
        return Schedule.parse(windows)
    except ValueError as exc:
        raise RefusedError(f"schedule: {exc}") from None


def apply_edit(gallery: Gallery, person_id: int, edit: PersonEdit, actor: str) -> Person:
    """Apply what changed, each change one logged event naming ``actor``."""
    person = gallery.person(person_id)
    if edit.name is not None and normalise_name(edit.name) != person.name:
        gallery.rename(person.id, edit.name, actor=actor)
    if edit.role is not None and edit.role != person.role:
        gallery.set_role(person.id, edit.role, actor=actor)
    if edit.enabled is not None and edit.enabled != person.enabled:
        gallery.set_enabled(person.id, edit.enabled, actor=actor)
    if edit.clear_validity or edit.valid_from is not None or edit.valid_until is not None:
        start = end = None
        if edit.valid_from is not None:
            start = day_bounds(edit.valid_from, edit.valid_from)[0]
        if edit.valid_until is not None:
            end = day_bounds(edit.valid_until, edit.valid_until)[1]
        if (start, end) != (person.valid_from, person.valid_until):
            gallery.set_validity(person.id, start, end, actor=actor)
    if edit.clear_schedule or edit.schedule is not None:
        if edit.schedule != person.schedule:
            gallery.set_schedule(person.id, edit.schedule, actor=actor)
    return gallery.person(person.id)


@dataclass(frozen=True)
class Enrolled:
    """What an enrolment from photos gave: the person, or why not, and each photo's verdict."""

    person_id: int | None
    verdicts: list[ImageVerdict]
    error: str | None = None


async def read_uploads(files: list[Any]) -> list[Upload]:
    photos = [f for f in files if isinstance(f, UploadFile) and f.filename]
    if not photos:
        raise RefusedError("choose at least one photo")
    if len(photos) > MAX_PHOTOS:
        raise RefusedError(f"at most {MAX_PHOTOS} photos at once")
    return [Upload(f.filename or "photo", await f.read()) for f in photos]


async def enrol_uploads(
    request: Request, name: str, role: str, photos: list[Upload], actor: str
) -> Enrolled:
    """Enrol from photos as 'facegate enrol' does: a verdict per photo, outliers dropped,
    a face that matches someone already refused."""
    svc = services(request)
    name, role = normalise_name(name), check_role(role)

    def work() -> Enrolled:
        config = svc.config
        with svc.pipeline.lend() as pipeline:
            verdicts = capture_from_images(pipeline, photos, config.enrolment.max_photo_pixels)
        try:
            with svc.open_gallery() as gallery:
                person_id, _ = enrol_photos(
                    gallery, verdicts, name, role, config.enrolment, config.matcher, actor=actor
                )
        except RefusedError as exc:
            return Enrolled(None, verdicts, str(exc))
        return Enrolled(person_id, verdicts)

    return await run_in_threadpool(work)


# --- enrolment at the door camera -----------------------------------------------------------


@dataclass
class Capture:
    """One capture at the door camera, run by a thread of its own; the page polls it."""

    id: str
    name: str
    role: str
    admin: str
    state: str = "starting"  # starting -> collecting -> enrolled | failed
    guidance: str = "waiting for the camera"
    collected: int = 0
    needed: int = 0
    person_id: int | None = None
    error: str | None = None


def run_capture(svc: Services, capture: Capture) -> None:
    # the loop gives up after enrolment.timeout_s of frames; this, should frames stop
    deadline = svc.clock.now() + svc.config.enrolment.timeout_s + CAPTURE_GRACE_S
    try:
        with svc.control() as client:
            for line in client.stream("capture", by=capture.admin):
                if not svc.clock.now() < deadline:
                    raise RefusedError("the door camera gave no frames in time")
                if "progress" in line:
                    progress = line["progress"]
                    capture.state = "collecting"
                    capture.guidance = str(progress["guidance"])
                    capture.collected = int(progress["collected"])
                    capture.needed = int(progress["needed"])
                elif "failed" in line:
                    raise RefusedError(str(line["failed"]))
                elif "done" in line:
                    templates = templates_from_json(line["done"])
                    with svc.open_gallery() as gallery:
                        capture.person_id = enrol_templates(
                            gallery,
                            templates,
                            capture.name,
                            capture.role,
                            svc.config.matcher,
                            actor=capture.admin,
                        )
                    capture.state = "enrolled"
                    return
    except FacegateError as exc:
        capture.error = str(exc)
        capture.state = "failed"


def _captures(svc: Services) -> dict[str, Capture]:
    return svc.state.setdefault("captures", {})


@change
async def start_capture(request, session, form) -> Response:
    svc = services(request)
    name, role = normalise_name(text(form, "name")), check_role(text(form, "role") or "user")

    def name_is_free(gallery: Gallery) -> None:
        try:
            gallery.person(name)
        except NotFoundError:
            return
        raise RefusedError(f"a person named {name!r} already exists")

    await in_gallery(request, name_is_free)
    capture = Capture(secrets.token_urlsafe(12), name, role, session.admin)
    captures = _captures(svc)
    captures[capture.id] = capture
    while len(captures) > MAX_CAPTURES:
        captures.pop(next(iter(captures)))
    threading.Thread(target=run_capture, args=(svc, capture), daemon=True).start()
    return redirect(f"/people/capture/{capture.id}")


def _capture(request: Request) -> Capture:
    capture = _captures(services(request)).get(request.path_params["capture"])
    if capture is None:
        raise NotFoundError("no such capture (they are forgotten after a while)")
    return capture


@page
async def capture_page(request, session) -> Response:
    return render(request, session, "capture.html", capture=_capture(request))


@page
async def capture_progress(request, session) -> Response:
    return JSONResponse(asdict(_capture(request)))


# --- pages ------------------------------------------------------------------------------------


@page
async def people_list(request, session) -> Response:
    query = request.query_params.get("q", "").strip()
    people = await in_gallery(request, lambda g: g.people())
    if query:
        people = [p for p in people if query.casefold() in p.name.casefold()]
    return render(request, session, "people.html", people=people, q=query)


@page
async def new_person(request, session) -> Response:
    return render(request, session, "person_new.html", roles=ROLES, max_photos=MAX_PHOTOS)


@change
async def upload(request, session, form) -> Response:
    normalise_name(text(form, "name"))  # refused before any photo is read
    photos = await read_uploads(form.getlist("photos"))
    result = await enrol_uploads(
        request, text(form, "name"), text(form, "role") or "user", photos, session.admin
    )
    status = 200 if result.person_id is not None else 400
    return render(
        request,
        session,
        "enrolled.html",
        status,
        result=result,
        name=text(form, "name"),
    )


def _person_id(request: Request) -> int:
    return int(request.path_params["person_id"])


@page
async def person_page(request, session) -> Response:
    person_id = _person_id(request)

    def load(gallery: Gallery) -> tuple[Person, list]:
        their = EventFilter(person_id=person_id)
        return gallery.person(person_id), gallery.events(their, limit=20, newest_first=True)

    person, events = await in_gallery(request, load)
    return render(
        request,
        session,
        "person.html",
        person=person,
        events=events,
        roles=ROLES,
        first_day=first_day(person),
        last_day=last_day(person),
    )


def _day(form: FormData, name: str) -> dt.date | None:
    value = text(form, name).strip()
    return parse_day(value) if value else None


@change
async def edit_person(request, session, form) -> Response:
    person_id = _person_id(request)
    schedule = parse_schedule(text(form, "schedule"))
    edit = PersonEdit(
        name=text(form, "name"),
        role=text(form, "role"),
        valid_from=_day(form, "valid_from"),
        valid_until=_day(form, "valid_until"),
        clear_validity=True,  # the form always shows both bounds: empty means none
        schedule=schedule,
        clear_schedule=schedule is None,
    )
    await in_gallery(request, lambda g: apply_edit(g, person_id, edit, session.admin))
    session.messages.append("saved")
    return redirect(f"/people/{person_id}")


@change
async def set_enabled(request, session, form) -> Response:
    person_id = _person_id(request)
    enabled = text(form, "enabled") == "1"
    edit = PersonEdit(enabled=enabled)
    await in_gallery(request, lambda g: apply_edit(g, person_id, edit, session.admin))
    session.messages.append("enabled" if enabled else "disabled")
    return redirect(f"/people/{person_id}")


@page
async def confirm_delete(request, session) -> Response:
    person_id = _person_id(request)
    person = await in_gallery(request, lambda g: g.person(person_id))
    return render(request, session, "person_delete.html", person=person)


def erase(gallery: Gallery, person_id: int, confirmation: str, actor: str) -> Person:
    """Delete a person once ``confirmation`` is their name, typed out."""
    person = gallery.person(person_id)
    if confirmation.strip() != person.name:
        raise RefusedError(f"type the name {person.name!r} exactly to confirm the erasure")
    gallery.delete_person(person.id, actor=actor)
    return person


@change
async def delete(request, session, form) -> Response:
    person_id = _person_id(request)
    person = await in_gallery(
        request, lambda g: erase(g, person_id, text(form, "confirm"), session.admin)
    )
    session.messages.append(
        f"erased {person.name} (#{person.id}): templates gone, name scrubbed from the log"
    )
    return redirect("/people")


routes = [
    Route("/people", people_list),
    Route("/people/new", new_person, methods=["GET"]),
    Route("/people/new", upload, methods=["POST"]),
    Route("/people/capture", start_capture, methods=["POST"]),
    Route("/people/capture/{capture}", capture_page),
    Route("/people/capture/{capture}/progress", capture_progress),
    Route("/people/{person_id:int}", person_page, methods=["GET"]),
    Route("/people/{person_id:int}", edit_person, methods=["POST"]),
    Route("/people/{person_id:int}/enabled", set_enabled, methods=["POST"]),
    Route("/people/{person_id:int}/delete", confirm_delete, methods=["GET"]),
    Route("/people/{person_id:int}/delete", delete, methods=["POST"]),
]
