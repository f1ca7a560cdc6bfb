"""People pages: the list and search, enrolment by upload (a verdict per photo, limits in
bytes and pixels) and at the door camera, edits logged with the administrator's name, and
erasure only after typing the name; names render inert."""

from __future__ import annotations

import struct
import threading
import zlib

import pytest

from edge.gallery.enrolment import TemplateSet, templates_to_json
from edge.gallery.events import EventFilter
from tests.helpers import FACES
from tests.web.conftest import csrf_of

SCRIPT_NAME = "<script>alert(1)</script>"


def photo(name: str = "obama_1.jpg") -> tuple[str, bytes, str]:
    return (name, (FACES / name).read_bytes(), "image/jpeg")


def upload(web, name: str, files: list, role: str = "user"):
    return web.client.post(
        "/people/new",
        data={"csrf": web.csrf("/people/new"), "name": name, "role": role},
        files=[("photos", f) for f in files],
    )


def enrolled(web, name: str = "Barack Obama") -> int:
    reply = upload(web, name, [photo()])
    assert reply.status_code == 200, reply.text
    with web.gallery() as gallery:
        return gallery.person(name).id


def test_enrol_by_upload_gives_a_verdict_per_photo_and_lists_the_person(signed_in):
    reply = upload(
        signed_in, "Barack Obama", [photo(), ("notes.txt", b"not a photo", "text/plain")]
    )
    assert reply.status_code == 200
    assert "obama_1.jpg" in reply.text and "notes.txt" in reply.text
    assert "unreadable" in reply.text  # the text file's own verdict
    listing = signed_in.client.get("/people").text
    assert "Barack Obama" in listing
    with signed_in.gallery() as gallery:
        (event,) = gallery.events(EventFilter(kind="enrolled"))
    assert (event.name, event.actor) == ("Barack Obama", "alice")


def test_an_upload_with_no_usable_face_enrols_nobody(signed_in):
    reply = upload(signed_in, "Nobody", [("blank.txt", b"\x00" * 100, "image/jpeg")])
    assert reply.status_code == 400 and "Not enrolled" in reply.text
    with signed_in.gallery() as gallery:
        assert gallery.people() == []


def test_the_same_face_twice_is_refused_with_who_it_matches(signed_in):
    enrolled(signed_in)
    reply = upload(signed_in, "Someone Else", [photo("obama_2.jpg")])
    assert reply.status_code == 400 and "already matches Barack Obama" in reply.text


def test_an_upload_over_the_byte_limit_is_refused_before_it_is_read(signed_in):
    big = ("big.jpg", b"\xff" * (1024 * 1024 + 1), "image/jpeg")
    reply = upload(signed_in, "Big", [big])
    assert reply.status_code == 413
    with signed_in.gallery() as gallery:
        assert gallery.people() == []


def test_a_body_without_a_length_is_cut_off_at_the_limit_as_it_arrives(signed_in):
    token = signed_in.csrf("/people/new")

    def chunks():  # sent chunked: no Content-Length to refuse it by
        yield (
            '--b\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n'
            f'{token}\r\n--b\r\nContent-Disposition: form-data; name="photos"; '
            'filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        for _ in range(40):
            yield b"\xff" * 65536

    reply = signed_in.client.post(
        "/people/new",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert reply.status_code == 413


def test_a_photo_over_the_pixel_limit_is_refused_from_its_header(signed_in):
    # a small PNG whose header claims 30000 x 30000 pixels
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    png = (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(header))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + b"\x00" * 64
    )
    reply = upload(signed_in, "Huge", [("huge.png", png, "image/png")])
    assert reply.status_code == 400
    assert "million pixels" in reply.text


def test_a_script_name_renders_inert_everywhere(signed_in):
    person_id = enrolled(signed_in, SCRIPT_NAME)
    for path in ("/people", f"/people/{person_id}", f"/people/{person_id}/delete", "/events"):
        html = signed_in.client.get(path).text
        assert SCRIPT_NAME not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path


def test_search_finds_by_part_of_the_name(signed_in):
    enrolled(signed_in)
    assert "Barack Obama" in signed_in.client.get("/people?q=obam").text
    assert "Barack Obama" not in signed_in.client.get("/people?q=biden").text


def test_an_edit_changes_each_field_and_logs_each_change_with_the_administrator(signed_in):
    person_id = enrolled(signed_in)
    reply = signed_in.post(
        f"/people/{person_id}",
        {
            "name": "B. Obama",
            "role": "admin",
            "valid_from": "2024-01-01",
            "valid_until": "2024-12-31",
            "schedule": "mon-fri 08:00-18:00\nsat 09:00-12:00",
        },
    )
    assert reply.status_code == 303
    with signed_in.gallery() as gallery:
        person = gallery.person(person_id)
        changes = gallery.events(EventFilter(kind="person_updated"))
    assert (person.name, person.role) == ("B. Obama", "admin")
    assert str(person.schedule) == "mon-fri 08:00-18:00, sat 09:00-12:00"
    assert person.valid_from < person.valid_until
    assert len(changes) == 4 and {e.actor for e in changes} == {"alice"}
    page = signed_in.client.get(f"/people/{person_id}").text
    assert 'value="2024-01-01"' in page and 'value="2024-12-31"' in page


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("schedule", "someday 25:00-26:00", "schedule"),
        ("valid_from", "2024-13-01", "not a day"),
        ("name", "12345", "only digits"),
        ("role", "superuser", "role must be"),
    ],
)
def test_a_bad_edit_is_refused_and_changes_nothing(signed_in, field, value, message):
    person_id = enrolled(signed_in)
    form = {"name": "Barack Obama", "role": "user", "schedule": "", field: value}
    reply = signed_in.post(f"/people/{person_id}", form)
    assert reply.status_code == 400 and message in reply.text
    with signed_in.gallery() as gallery:
        assert gallery.events(EventFilter(kind="person_updated")) == []


def test_last_day_before_first_day_is_refused(signed_in):
    person_id = enrolled(signed_in)
    form = {
        "name": "Barack Obama",
        "role": "user",
        "valid_from": "2024-05-02",
        "valid_until": "2024-05-01",
    }
    assert signed_in.post(f"/people/{person_id}", form).status_code == 400


def test_disable_and_enable(signed_in):
    person_id = enrolled(signed_in)
    signed_in.post(f"/people/{person_id}/enabled", {"enabled": "0"})
    with signed_in.gallery() as gallery:
        assert not gallery.person(person_id).enabled
    signed_in.post(f"/people/{person_id}/enabled", {"enabled": "1"})
    with signed_in.gallery() as gallery:
        assert gallery.person(person_id).enabled
        assert [e.reason for e in gallery.events(EventFilter(kind="person_updated"))] == [
            "disabled",
            "enabled",
        ]


def test_delete_needs_the_name_typed_out_then_scrubs_like_the_command(signed_in):
    person_id = enrolled(signed_in)
    reply = signed_in.post(f"/people/{person_id}/delete", {"confirm": "barack"})
    assert reply.status_code == 400 and "exactly" in reply.text
    reply = signed_in.post(f"/people/{person_id}/delete", {"confirm": "Barack Obama"})
    assert reply.status_code == 303
    with signed_in.gallery() as gallery:
        assert gallery.people() == []
        assert {e.name for e in gallery.events(EventFilter(kind="enrolled"))} == {"[deleted]"}
        (removed,) = gallery.events(EventFilter(kind="removed"))
    assert removed.actor == "alice"
    assert signed_in.client.get(f"/people/{person_id}").status_code == 404


def test_capture_at_the_door_enrols_what_the_loop_collected(signed_in, obama_template):
    given = TemplateSet((obama_template,), (0.9,), 0)

    def loop(command) -> None:  # the daemon's side: progress, then the templates
        assert command.op == "capture" and command.args["by"] == "alice"
        command.finish({"needed": 1})
        feed = command.args["feed"]
        feed.progress("come closer", 0, 1)
        feed.finish(templates_to_json(given))

    signed_in.run_loop(loop)
    reply = signed_in.post("/people/capture", {"name": "Barack Obama", "role": "user"})
    assert reply.status_code == 303
    progress = reply.headers["location"] + "/progress"
    assert "Capturing Barack Obama" in signed_in.client.get(reply.headers["location"]).text
    for _ in range(200):
        state = signed_in.client.get(progress).json()
        if state["state"] in ("enrolled", "failed"):
            break
        threading.Event().wait(0.02)
    assert state["state"] == "enrolled", state
    with signed_in.gallery() as gallery:
        person = gallery.person(state["person_id"])
        (event,) = gallery.events(EventFilter(kind="enrolled"))
    assert person.name == "Barack Obama" and event.actor == "alice"


def test_a_capture_the_loop_refuses_says_why(signed_in):
    signed_in.run_loop(lambda c: c.finish(error="an enrolment is already collecting"))
    reply = signed_in.post("/people/capture", {"name": "Barack Obama"})
    assert reply.status_code == 303
    for _ in range(200):
        state = signed_in.client.get(reply.headers["location"] + "/progress").json()
        if state["state"] == "failed":
            break
        threading.Event().wait(0.02)
    assert "already collecting" in state["error"]


def test_a_capture_for_a_name_that_is_taken_is_refused_before_it_starts(signed_in):
    enrolled(signed_in)
    reply = signed_in.post("/people/capture", {"name": "Barack Obama"})
    assert reply.status_code == 400 and "already exists" in reply.text


def test_the_forms_carry_the_sessions_token(signed_in):
    html = signed_in.client.get("/people/new").text
    assert html.count(f'value="{csrf_of(html)}"') >= 2  # both forms, and the sign-out
