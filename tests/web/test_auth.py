"""Signing in and staying safe: every route needs a session (or a token), sessions are
rotated at login and end when idle or when their password changes, CSRF and other sites'
requests are refused, brute force is throttled, and every response carries the security
headers."""

from __future__ import annotations

import pytest

from edge.gallery.events import EventFilter
from edge.web.common import SESSION_COOKIE
from tests.web.conftest import CHEAP, PASSWORD

PAGES = [
    "/",
    "/dashboard/status.json",
    "/dashboard/decisions",
    "/camera",
    "/camera/stream.mjpg",
    "/camera/info",
    "/people",
    "/people/new",
    "/people/1",
    "/people/1/delete",
    "/people/capture/x",
    "/people/capture/x/progress",
    "/events",
    "/events.csv",
    "/attendance",
    "/attendance.csv",
    "/admins",
]
CHANGES = [
    "/logout",
    "/door/unlock",
    "/people/new",
    "/people/capture",
    "/people/1",
    "/people/1/enabled",
    "/people/1/delete",
    "/admins",
    "/admins/password",
    "/admins/remove",
    "/tokens",
    "/tokens/1/revoke",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_sends_a_stranger_to_the_login(web, path):
    reply = web.client.get(path)
    assert reply.status_code == 303
    assert reply.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("path", CHANGES)
def test_every_change_is_refused_without_a_session(web, path):
    reply = web.client.post(path, data={"csrf": "x", "name": "bob", "confirm": "x"})
    assert reply.status_code == 401


def test_login_sets_a_strict_host_only_session_cookie_and_is_logged(web):
    reply = web.login()
    assert reply.status_code == 303 and reply.headers["location"] == "/"
    cookie = reply.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
        assert attribute.lower() in cookie.lower()
    assert "domain" not in cookie.lower()
    assert web.client.get("/").status_code == 200
    with web.gallery() as gallery:
        (event,) = gallery.events(EventFilter(kind="admin_login"))
    assert event.actor == "alice"


@pytest.mark.parametrize("name,password", [("alice", "wrong password!"), ("mallory", PASSWORD)])
def test_a_wrong_password_and_an_unknown_name_get_the_same_refusal(web, name, password):
    reply = web.login(name, password)
    assert reply.status_code == 401
    assert "wrong name or password" in reply.text
    assert SESSION_COOKIE not in reply.headers.get("set-cookie", "")


def test_a_session_id_planted_before_login_is_never_the_one_after(web):
    def signed_in_id(planted: str) -> str:
        reply = web.login(cookie=f"{SESSION_COOKIE}={planted}")
        assert reply.status_code == 303
        return reply.cookies[SESSION_COOKIE]

    first = signed_in_id("planted-by-an-attacker")
    assert first != "planted-by-an-attacker"
    second = signed_in_id(first)  # a login with a live session still gets a new one
    assert second != first
    web.client.cookies.clear()
    web.client.cookies.set(SESSION_COOKIE, first)
    assert web.client.get("/").status_code == 303  # the old one ended at the new login
    web.client.cookies.clear()
    web.client.cookies.set(SESSION_COOKIE, second)
    assert web.client.get("/").status_code == 200


def test_logout_ends_the_session(signed_in):
    sid = signed_in.client.cookies[SESSION_COOKIE]
    assert signed_in.post("/logout").status_code == 303
    signed_in.client.cookies.set(SESSION_COOKIE, sid)
    assert signed_in.client.get("/").status_code == 303


def test_a_session_ends_after_its_idle_time(signed_in):
    signed_in.clock.advance(29 * 60)
    assert signed_in.client.get("/").status_code == 200  # used: the idle time restarts
    signed_in.clock.advance(29 * 60)
    assert signed_in.client.get("/").status_code == 200
    signed_in.clock.advance(30 * 60)
    assert signed_in.client.get("/").status_code == 303


def test_a_password_changed_elsewhere_ends_the_session(signed_in):
    with signed_in.gallery() as gallery:
        gallery.set_admin_password("alice", CHEAP.hash("another password"))
    assert signed_in.client.get("/").status_code == 303


def test_an_administrator_removed_elsewhere_is_signed_out(signed_in):
    with signed_in.gallery() as gallery:
        gallery.remove_admin("alice")
    assert signed_in.client.get("/").status_code == 303


def test_brute_force_is_locked_out_for_a_while_even_with_the_right_password(web):
    for _ in range(3):
        assert web.login(password="guess guess guess").status_code == 401
    reply = web.login()
    assert reply.status_code == 429 and "too many failed logins" in reply.text
    web.clock.advance(9 * 60)
    assert web.login().status_code == 429
    web.clock.advance(61)
    assert web.login().status_code == 303
    with web.gallery() as gallery:
        lockouts = gallery.events(EventFilter(kind="admin_locked_out"))
    assert len(lockouts) == 2  # the name and the address, each logged once
    assert all(e.actor == "alice" for e in lockouts)


def test_one_address_trying_many_names_is_locked_out_too(web):
    for name in ("bob", "carol", "dave"):
        web.login(name, "guess guess guess")
    assert web.login().status_code == 429


def test_a_change_without_the_sessions_csrf_token_is_refused(signed_in):
    for token in (None, "", "another-sessions-token"):
        data = {"name": "bob"} if token is None else {"csrf": token, "name": "bob"}
        reply = signed_in.client.post("/admins", data=data)
        assert reply.status_code == 403
    with signed_in.gallery() as gallery:
        assert [a.name for a in gallery.admins()] == ["alice"]


def test_a_request_from_another_site_is_refused_even_with_a_token(signed_in):
    token = signed_in.csrf()
    data = {"csrf": token, "name": "bob", "password": "p" * 12, "repeat": "p" * 12}
    for header in (
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"referer": "https://evil.example/x"},
        {"sec-fetch-site": "cross-site", "origin": "https://testserver"},
        {"sec-fetch-site": "same-site"},
    ):
        assert signed_in.client.post("/admins", data=data, headers=header).status_code == 403
    assert signed_in.login(origin="https://evil.example").status_code == 403
    same = {"origin": "https://testserver", "sec-fetch-site": "same-origin"}
    assert signed_in.client.post("/admins", data=data, headers=same).status_code == 303


def test_login_goes_back_only_to_a_page_of_this_site(web):
    for target, expected in (
        ("/events", "/events"),
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("/\\evil.example", "/"),
    ):
        reply = web.client.post(
            "/login", data={"name": "alice", "password": PASSWORD, "next": target}
        )
        assert reply.headers["location"] == expected


@pytest.mark.parametrize("path", ["/login", "/", "/static/facegate.css", "/nowhere"])
def test_every_response_carries_the_security_headers(signed_in, path):
    headers = signed_in.client.get(path).headers
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "script-src 'self'" in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["strict-transport-security"].startswith("max-age=")
    assert headers["referrer-policy"] == "same-origin"


def test_no_page_holds_an_inline_script_or_style(signed_in):
    for path in (
        "/login",
        "/",
        "/camera",
        "/people",
        "/people/new",
        "/events",
        "/attendance",
        "/admins",
    ):
        html = signed_in.client.get(path).text
        assert "<script>" not in html and " on" + "click=" not in html
        assert "<style" not in html and 'style="' not in html
