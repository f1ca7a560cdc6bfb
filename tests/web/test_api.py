"""The JSON API: bearer tokens with scopes, no cookies, the same behaviour as the pages,
and its OpenAPI document."""

from __future__ import annotations

import pytest

from edge.web.auth import new_token
from tests.web.test_people import photo


@pytest.fixture
def token(web):
    """token(*scopes) -> the Authorization header of a new token of alice's."""

    def make(*scopes: str) -> dict[str, str]:
        secret, digest = new_token()
        with web.gallery() as gallery:
            gallery.add_api_token("alice", "test", digest, scopes, actor="alice")
        return {"authorization": f"Bearer {secret}"}

    return make


ROUTES = [
    ("GET", "/api/v1/status", "events:read"),
    ("GET", "/api/v1/events", "events:read"),
    ("GET", "/api/v1/attendance", "events:read"),
    ("GET", "/api/v1/people", "people:write"),
    ("POST", "/api/v1/people", "people:write"),
    ("GET", "/api/v1/people/1", "people:write"),
    ("PATCH", "/api/v1/people/1", "people:write"),
    ("DELETE", "/api/v1/people/1", "people:write"),
    ("POST", "/api/v1/door/unlock", "door:unlock"),
]


@pytest.mark.parametrize("method,path,scope", ROUTES)
def test_every_api_route_needs_a_token_with_its_scope(web, token, method, path, scope):
    reply = web.client.request(method, path)
    assert reply.status_code == 401 and reply.headers["www-authenticate"].startswith("Bearer")
    reply = web.client.request(method, path, headers={"authorization": "Bearer fg_guessed"})
    assert reply.status_code == 401
    others = [s for s in ("events:read", "people:write", "door:unlock") if s != scope]
    reply = web.client.request(method, path, headers=token(*others))
    assert reply.status_code == 403 and scope in reply.json()["error"]


def test_a_signed_in_browsers_cookie_is_not_a_token(signed_in):
    assert signed_in.client.get("/api/v1/events").status_code == 401


def test_a_revoked_token_stops_working(web, token):
    headers = token("events:read")
    assert web.client.get("/api/v1/events", headers=headers).status_code == 200
    with web.gallery() as gallery:
        gallery.revoke_api_token(gallery.api_tokens()[0].id, actor="alice")
    assert web.client.get("/api/v1/events", headers=headers).status_code == 401


def test_enrol_edit_list_and_erase_a_person(web, token):
    headers = token("people:write")
    reply = web.client.post(
        "/api/v1/people",
        headers=headers,
        data={"name": "Barack Obama"},
        files=[("photos", photo())],
    )
    assert reply.status_code == 201, reply.text
    person_id = reply.json()["id"]
    assert reply.json()["verdicts"] == [{"photo": "obama_1.jpg", "verdict": "ok"}]

    reply = web.client.patch(
        f"/api/v1/people/{person_id}",
        headers=headers,
        json={"enabled": False, "schedule": "mon-fri 08:00-18:00", "valid_until": "2030-01-01"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["enabled"] is False and reply.json()["schedule"] == "mon-fri 08:00-18:00"
    for body, status in (({"enabled": "no"}, 400), ({"colour": "red"}, 400), ([1], 400)):
        assert (
            web.client.patch(f"/api/v1/people/{person_id}", headers=headers, json=body).status_code
            == status
        )

    listed = web.client.get("/api/v1/people", headers=headers).json()["people"]
    assert [p["name"] for p in listed] == ["Barack Obama"]

    url = f"/api/v1/people/{person_id}"
    assert web.client.delete(url + "?confirm=Obama", headers=headers).status_code == 400
    assert web.client.delete(url + "?confirm=Barack%20Obama", headers=headers).status_code == 204
    assert web.client.get(url, headers=headers).status_code == 404
    with web.gallery() as gallery:
        actors = {
            e.actor
            for e in gallery.events()
            if e.kind.value in ("enrolled", "person_updated", "removed")
        }
    assert actors == {"alice (API token #1)"}


def test_an_enrolment_the_photos_cannot_make_is_a_400_with_the_verdicts(web, token):
    reply = web.client.post(
        "/api/v1/people",
        headers=token("people:write"),
        data={"name": "Nobody"},
        files=[("photos", ("x.jpg", b"no image", "image/jpeg"))],
    )
    assert reply.status_code == 400
    assert reply.json()["verdicts"][0]["verdict"].startswith("unreadable")


def test_events_and_attendance_read(web, token):
    headers = token("events:read")
    with web.gallery() as gallery:
        gallery.log_event("denied_unknown", 1_000.0, reason="no match")
    reply = web.client.get("/api/v1/events?kind=denied_unknown", headers=headers).json()
    assert reply["total"] == 1 and reply["events"][0]["reason"] == "no match"
    assert web.client.get("/api/v1/events?kind=nope", headers=headers).status_code == 400
    reply = web.client.get("/api/v1/attendance?from=2024-01-01&to=2024-01-02", headers=headers)
    assert reply.json() == {"from": "2024-01-01", "to": "2024-01-02", "days": [], "totals": []}
    assert web.client.get("/api/v1/status", headers=headers).json()["door"] == "locked"


def test_unlock_through_the_api_names_the_token(web, token):
    asked = []

    def loop(command) -> None:
        asked.append(command.args)
        command.finish({"unlocked": True})

    web.run_loop(loop)
    reply = web.client.post(
        "/api/v1/door/unlock", headers=token("door:unlock"), json={"reason": "courier"}
    )
    assert reply.status_code == 200 and reply.json() == {"unlocked": True}
    assert asked == [{"by": "alice (API token #1)", "reason": "courier"}]


def test_the_openapi_document_lists_every_route(web):
    document = web.client.get("/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.")
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    for method, path, _ in ROUTES:
        assert (method, path.replace("/1", "/{person_id}")) in documented
