"""Dashboard, camera, events, attendance and administrators over HTTP."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import threading

import numpy as np
import pytest

from edge.control import ControlError
from edge.gallery.attendance import day_bounds
from edge.gallery.events import EventFilter
from tests.web.conftest import CHEAP, PASSWORD, csrf_of
from tests.web.test_people import enrolled


def when_watched(hub, publish) -> threading.Thread:
    """Publish (as the loop does) once someone watches the preview."""

    def run() -> None:
        for _ in range(500):
            if hub.preview_wanted:
                publish()
                return
            threading.Event().wait(0.01)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# --- dashboard ---------------------------------------------------------------------------------


def test_the_dashboard_shows_the_door_the_camera_the_gallery_and_the_doctor(signed_in):
    signed_in.hub.publish_status(
        {
            "door": "held_open",
            "camera": "ok",
            "camera_reason": "",
            "templates": 7,
            "liveness": "off",
            "status": "",
            "wall": 0.0,
        }
    )
    signed_in.hub.publish_decision(
        {
            "kind": "granted",
            "person_id": 4,
            "similarity": 0.71,
            "liveness": "off",
            "action": "unlock",
            "reason": "",
            "wall": 1.7e9,
        }
    )
    html = signed_in.client.get("/").text
    assert "held_open" in html and ">7<" in html and "0.71" in html
    assert "Health (doctor)" in html and "gallery" in html
    assert "Unlock the door once" in html  # allow_remote_unlock is on in this config


def test_the_dashboard_shows_a_dash_for_a_decision_with_nobody_to_compare_with(signed_in):
    decision = {"kind": "denied_unknown", "person_id": None, "similarity": None}
    signed_in.hub.publish_decision(
        {**decision, "liveness": "off", "action": "stay locked", "reason": "", "wall": 1.7e9}
    )
    html = signed_in.client.get("/").text
    row = html[html.index('class="kind-denied_unknown"') :]
    assert row[: row.index("</tr>")].count("<td>-</td>") == 2  # the person and the similarity


def test_the_dashboard_still_opens_when_the_door_service_is_down(signed_in):
    def unreachable():
        raise ControlError("it is not there")

    signed_in.client.app.state.services.control = unreachable
    reply = signed_in.client.get("/")
    assert reply.status_code == 200 and "it is not there" in reply.text


def test_decisions_arrive_live_as_server_sent_events(signed_in):
    def publish() -> None:
        for _ in range(500):
            if signed_in.hub._subscribers:
                signed_in.hub.publish_decision({"kind": "denied_unknown", "person_id": None})
                return
            threading.Event().wait(0.01)

    threading.Thread(target=publish, daemon=True).start()
    with signed_in.client.stream("GET", "/dashboard/decisions") as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        lines = reply.iter_lines()
        assert next(lines) == "event: decision"
        assert json.loads(next(lines).removeprefix("data: "))["kind"] == "denied_unknown"


def test_remote_unlock_goes_to_the_loop_with_the_administrators_name(signed_in):
    asked = []

    def loop(command) -> None:
        asked.append(command.args)
        command.finish({"unlocked": True})

    signed_in.run_loop(loop)
    reply = signed_in.post("/door/unlock", {"reason": "delivery"})
    assert reply.status_code == 303
    assert asked == [{"by": "alice", "reason": "delivery"}]


def test_a_remote_unlock_the_daemon_refuses_is_an_error_page(signed_in):
    signed_in.hub.allow_remote_unlock = False
    reply = signed_in.post("/door/unlock", {"reason": "x"})
    assert reply.status_code == 503 and "remote unlock is off" in reply.text


# --- camera ------------------------------------------------------------------------------------


def test_the_camera_preview_relays_jpeg_frames_while_watched(signed_in):
    assert not signed_in.hub.preview_wanted
    image = np.zeros((480, 640, 3), np.uint8)
    info = {
        "faces": [{"box": [10.0, 10.0, 90.0, 90.0], "passed": False, "reasons": ["too_small"]}],
        "person": None,
        "capturing": False,
    }
    when_watched(signed_in.hub, lambda: signed_in.hub.publish_preview(image, info))
    with signed_in.client.stream("GET", "/camera/stream.mjpg") as reply:
        assert reply.headers["content-type"].startswith("multipart/x-mixed-replace")
        chunk = next(reply.iter_bytes())
    assert b"Content-Type: image/jpeg" in chunk and b"\xff\xd8" in chunk


def test_the_camera_info_stream_says_what_the_loop_saw(signed_in):
    info = {
        "faces": [{"box": [1.0, 2.0, 3.0, 4.0], "passed": True, "reasons": []}],
        "person": {
            "box": [1.0, 2.0, 3.0, 4.0],
            "similarity": 0.8,
            "person_id": 3,
            "liveness": None,
            "verdict": None,
        },
        "capturing": False,
    }
    image = np.zeros((4, 4, 3), np.uint8)
    when_watched(signed_in.hub, lambda: signed_in.hub.publish_preview(image, info))
    with signed_in.client.stream("GET", "/camera/info") as reply:
        lines = reply.iter_lines()
        assert next(lines) == "event: frame"
        assert json.loads(next(lines).removeprefix("data: ")) == info


# --- events ------------------------------------------------------------------------------------


def test_events_filter_by_kind_and_person_and_page(signed_in):
    person_id = enrolled(signed_in)
    with signed_in.gallery() as gallery:
        for i in range(120):
            gallery.log_event(
                "granted" if i % 2 else "denied_unknown",
                1_000 + i,
                person_id=person_id if i % 2 else None,
            )
    html = signed_in.client.get(f"/events?kind=granted&person={person_id}").text
    assert "61 found" not in html and "60 found" in html
    last = signed_in.client.get(f"/events?kind=granted&person={person_id}&page=2").text
    assert last.count('class="kind-granted"') == 10
    assert "Page 2 of 2" in last


@pytest.mark.parametrize(
    "query", ["kind=opened", "person=bob", "page=0", "since=yesterday", "since=99999-01-01"]
)
def test_a_bad_event_filter_is_a_400_saying_what_is_wrong(signed_in, query):
    reply = signed_in.client.get("/events?" + query)
    assert reply.status_code == 400 and 'class="error"' in reply.text


def test_the_events_csv_neutralises_formulas(signed_in):
    enrolled(signed_in, "=cmd|' /C calc'!A0")
    reply = signed_in.client.get("/events.csv")
    assert reply.headers["content-type"].startswith("text/csv")
    assert "attachment" in reply.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(reply.text)))
    assert rows[0][:3] == ["time", "kind", "person_id"]
    names = [row[3] for row in rows[1:] if row[1] == "enrolled"]
    assert names == ["'=cmd|' /C calc'!A0"]


# --- attendance --------------------------------------------------------------------------------


def test_attendance_per_day_totals_chart_and_csv(signed_in):
    person_id = enrolled(signed_in, "Ada")
    day = dt.date(2024, 5, 6)
    start = day_bounds(day, day)[0]
    with signed_in.gallery() as gallery:
        for hour in (8, 12, 17.5):
            gallery.log_event("granted", start + hour * 3600, person_id=person_id)
        gallery.log_event("granted", start + 86400 + 9 * 3600, person_id=person_id)
    html = signed_in.client.get("/attendance?from=2024-05-06&to=2024-05-07").text
    assert "08:00:00" in html and "17:30:00" in html and "9.50" in html
    assert "<rect" in html and "9.5 h" in html  # the chart's bar and its label
    reply = signed_in.client.get("/attendance.csv?from=2024-05-06&to=2024-05-07")
    rows = list(csv.reader(io.StringIO(reply.text)))
    assert rows[0] == ["day", "person_id", "name", "first_in", "last_out", "hours", "passes"]
    assert rows[1] == ["2024-05-06", str(person_id), "Ada", "08:00:00", "17:30:00", "9.50", "3"]
    assert rows[2][0] == "2024-05-07" and rows[2][-1] == "1"


@pytest.mark.parametrize(
    "query",
    ["from=2024-05-07&to=2024-05-06", "from=May", "to=2024-02-30", "from=2020-01-01&to=2024-01-01"],
)
def test_a_bad_attendance_range_is_a_400(signed_in, query):
    assert signed_in.client.get("/attendance?" + query).status_code == 400


# --- administrators and tokens -----------------------------------------------------------------


def test_add_an_administrator_who_can_then_sign_in(signed_in):
    reply = signed_in.post("/admins", {"name": "bob", "password": "b" * 12, "repeat": "b" * 12})
    assert reply.status_code == 303
    with signed_in.gallery() as gallery:
        bob = gallery.admin("bob")
        event = gallery.events(EventFilter(kind="admin_added"))[-1]  # alice was the first
    assert bob.password_hash.startswith("$argon2id$") and event.actor == "alice"
    signed_in.client.cookies.clear()
    assert signed_in.login("bob", "b" * 12).status_code == 303


@pytest.mark.parametrize(
    "form,message",
    [
        ({"name": "bob", "password": "b" * 12, "repeat": "c" * 12}, "differ"),
        ({"name": "bob", "password": "short", "repeat": "short"}, "10 to"),
        ({"name": "alice", "password": "b" * 12, "repeat": "b" * 12}, "already exists"),
    ],
)
def test_a_bad_new_administrator_is_refused(signed_in, form, message):
    reply = signed_in.post("/admins", form)
    assert reply.status_code == 400 and message in reply.text


def test_changing_your_own_password_needs_the_current_one(signed_in):
    form = {"name": "alice", "current": "not it at all", "password": "n" * 12, "repeat": "n" * 12}
    assert signed_in.post("/admins/password", form).status_code == 400
    form["current"] = PASSWORD
    assert signed_in.post("/admins/password", form).status_code == 303
    assert signed_in.client.get("/").status_code == 200  # this session goes on
    signed_in.client.cookies.clear()
    assert signed_in.login("alice", "n" * 12).status_code == 303


def test_removing_an_administrator_ends_their_sessions_but_not_yourself(signed_in, web):
    with signed_in.gallery() as gallery:
        gallery.add_admin("bob", CHEAP.hash("b" * 12))
    assert signed_in.post("/admins/remove", {"name": "alice"}).status_code == 400
    assert signed_in.post("/admins/remove", {"name": "bob"}).status_code == 303
    with signed_in.gallery() as gallery:
        assert [a.name for a in gallery.admins()] == ["alice"]


def test_a_token_is_shown_once_and_only_its_digest_kept(signed_in):
    reply = signed_in.post("/tokens", {"label": "HR export", "scopes": ["events:read"]})
    assert reply.status_code == 200
    secret = reply.text.split('<pre id="token-secret">')[1].split("</pre>")[0]
    assert secret.startswith("fg_") and len(secret) > 40
    with signed_in.gallery() as gallery:
        (token,) = gallery.api_tokens()
    assert token.scopes == ("events:read",) and token.digest != secret
    assert secret not in signed_in.client.get("/admins").text
    assert signed_in.post(f"/tokens/{token.id}/revoke").status_code == 303
    with signed_in.gallery() as gallery:
        assert gallery.api_tokens() == []
        kinds = [e.kind.value for e in gallery.events() if e.kind.value.startswith("api_")]
    assert kinds == ["api_token_created", "api_token_revoked"]


def test_a_token_needs_known_scopes(signed_in):
    for scopes in ([], ["root"]):
        reply = signed_in.post("/tokens", {"label": "x", "scopes": scopes})
        assert reply.status_code == 400


def test_pages_have_a_sign_out_form_with_the_token(signed_in):
    html = signed_in.client.get("/events").text
    assert 'action="/logout"' in html and csrf_of(html)
