"""sd_notify against a real AF_UNIX datagram socket; the clock is a plain number."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from edge.notify import Notifier
from tests.helpers import received


def test_ready_status_stopping_arrive(systemd):
    path, sock = systemd
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.ready() and notifier.status("camera down:\nretrying") and notifier.stopping()
    assert received(sock) == ["READY=1", "STATUS=camera down: retrying", "STOPPING=1"]
    notifier.close()


def test_watchdog_pings_only_when_due(systemd):
    path, sock = systemd
    notifier = Notifier(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    )
    assert notifier.watchdog_interval == 30.0
    assert notifier.ping(100.0)  # first loop: due at once
    assert not notifier.ping(100.5) and not notifier.ping(114.9)
    assert received(sock) == ["WATCHDOG=1"]
    assert notifier.ping(115.0)  # half the interval
    assert received(sock) == ["WATCHDOG=1"]


def test_a_stalled_loop_sends_nothing(systemd):
    path, sock = systemd
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"})
    notifier.ready()
    notifier.ping(0.0)
    received(sock)
    # the loop hangs: ping is never called, however late it gets
    assert notifier.watchdog_due(1_000.0)
    assert received(sock) == []


def test_abstract_socket():
    name = f"facegate-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(64) == b"READY=1"
    finally:
        sock.close()


def test_outside_systemd_nothing_is_sent():
    notifier = Notifier({"WATCHDOG_USEC": "30000000"})
    assert not notifier.enabled
    assert notifier.watchdog_interval is None
    assert not notifier.ready() and not notifier.watchdog_due(0.0) and not notifier.ping(0.0)


@pytest.mark.parametrize(
    "env",
    [
        {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"},  # another process's watchdog
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "soon"},
        {},
    ],
)
def test_watchdog_disabled_unless_ours_and_valid(systemd, env):
    path, sock = systemd
    notifier = Notifier({"NOTIFY_SOCKET": path, **env}, pid=4242)
    assert notifier.watchdog_interval is None
    assert not notifier.ping(0.0)
    assert received(sock) == []


def test_a_vanished_socket_does_not_raise(tmp_path):
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.ready() is False


def test_relative_socket_path_is_ignored():
    assert not Notifier({"NOTIFY_SOCKET": "notify.sock"}).enabled
