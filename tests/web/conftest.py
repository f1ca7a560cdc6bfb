"""The web app in-process: a real encrypted gallery, a real control socket served by a
ControlHub that the test drives as the door loop would, the real face models (loaded
once), a FakeClock, and Starlette's TestClient over https://testserver."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from edge.clock import FakeClock
from edge.config import Config, parse_config
from edge.control import ControlClient, ControlHub, ControlServer
from edge.gallery.store import Gallery, create_gallery
from edge.web.app import create_app
from tests.helpers import pipeline as loaded_pipeline

PASSWORD = "correct horse battery"
# argon2id with tiny costs: the tests check the logic, not the hash's strength
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@dataclass
class Web:
    client: TestClient
    config: Config
    clock: FakeClock
    hub: ControlHub
    gallery: Callable[[], Gallery]

    def login(self, name: str = "alice", password: str = PASSWORD, **headers: str):
        return self.client.post(
            "/login", data={"name": name, "password": password}, headers=headers
        )

    def csrf(self, path: str = "/") -> str:
        return csrf_of(self.client.get(path).text)

    def post(self, path: str, data: dict | None = None, **kwargs):
        """A form post from a page of this site, with its CSRF token."""
        return self.client.post(path, data={"csrf": self.csrf(), **(data or {})}, **kwargs)

    def run_loop(self, answer: Callable) -> threading.Thread:
        """Play the door loop: the next command the hub gets is answered by ``answer``."""

        def loop() -> None:
            while True:
                commands = self.hub.commands()
                if commands:
                    for command in commands:
                        answer(command)
                    return
                threading.Event().wait(0.01)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return thread


@pytest.fixture
def web_config(tmp_path) -> Config:
    return parse_config(
        f"""
[gallery]
path = "{tmp_path / "gallery.db"}"
key_file = "{tmp_path / "gallery.key"}"
[control]
socket = "{tmp_path / "control.sock"}"
allow_remote_unlock = true
[enrolment]
min_templates = 1
[web]
cert = "{tmp_path / "cert.pem"}"
key = "{tmp_path / "key.pem"}"
login_attempts = 3
lockout_minutes = 10
session_minutes = 30
max_upload_mb = 1
"""
    )


@pytest.fixture
def web(web_config, tmp_path):
    """The web app with one administrator, alice, not signed in."""
    create_gallery(web_config.gallery)
    with Gallery.from_config(web_config.gallery) as gallery:
        gallery.add_admin("alice", CHEAP.hash(PASSWORD))
    hub = ControlHub(web_config.control.allow_remote_unlock)
    hub.publish_status(
        {
            "door": "locked",
            "camera": "ok",
            "camera_reason": "",
            "templates": 0,
            "liveness": "off",
            "status": "ok; 0 templates",
            "wall": 0.0,
        }
    )
    server = ControlServer(web_config.control.socket, hub)
    server.start()
    clock = FakeClock()
    app = create_app(
        web_config,
        open_gallery=lambda: Gallery.from_config(web_config.gallery),
        control=lambda: ControlClient(web_config.control.socket),
        pipeline=loaded_pipeline,
        clock=clock,
        hasher=CHEAP,
    )
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield Web(client, web_config, clock, hub, lambda: Gallery.from_config(web_config.gallery))
    server.close()


@pytest.fixture
def signed_in(web) -> Web:
    assert web.login().status_code == 303
    return web
