"""The control socket over a real unix socket: replies, the decision stream, commands that
the loop applies or that are withdrawn, and who may connect."""

from __future__ import annotations

import base64
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.control import (
    PREVIEW_WIDTH,
    SUBSCRIBER_BACKLOG,
    ControlClient,
    ControlError,
    ControlHub,
    ControlServer,
    Subscription,
)


@pytest.fixture
def sock_path(tmp_path) -> Path:
    return tmp_path / "control.sock"


@pytest.fixture
def serve(sock_path):
    servers = []

    def start(hub: ControlHub) -> ControlServer:
        server = ControlServer(sock_path, hub)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_status_returns_the_latest_snapshot_and_recent_decisions(serve, sock_path):
    hub = ControlHub()
    serve(hub)
    hub.publish_status({"door": "locked", "templates": 3})
    hub.publish_decision({"kind": "granted", "person_id": 1})
    hub.publish_status({"door": "unlocked", "templates": 3})
    with ControlClient(sock_path) as client:
        status = client.request("status")
    assert status["door"] == "unlocked"
    assert status["recent_decisions"] == [{"kind": "granted", "person_id": 1}]


def test_decisions_stream_in_order_from_the_moment_of_subscribing(serve, sock_path):
    hub = ControlHub()
    serve(hub)
    hub.publish_decision({"kind": "granted", "n": 0})  # before: not streamed
    with ControlClient(sock_path) as client:
        stream = client.decisions()  # returns once the server acknowledged: subscribed
        for n in range(1, 4):
            hub.publish_decision({"kind": "denied_unknown", "n": n})
        received = [next(stream) for _ in range(3)]
    assert [r["decision"]["n"] for r in received] == [1, 2, 3]


def test_a_slow_subscriber_loses_the_oldest_and_is_told_how_many():
    subscription = Subscription()
    for n in range(SUBSCRIBER_BACKLOG + 5):
        subscription.put({"n": n})
    items, dropped = subscription.get(timeout=0)
    assert dropped == 5
    assert items[0] == {"n": 5} and len(items) == SUBSCRIBER_BACKLOG


def test_unlock_is_refused_unless_allowed(serve, sock_path):
    hub = ControlHub(allow_remote_unlock=False)
    serve(hub)
    with (
        ControlClient(sock_path) as client,
        pytest.raises(ControlError, match="remote unlock is off"),
    ):
        client.request("unlock", by="alice")
    assert hub.commands() == []


def test_unlock_is_applied_by_the_loop_and_its_result_returned(serve, sock_path):
    hub = ControlHub(allow_remote_unlock=True)
    serve(hub)
    applied = []

    def loop() -> None:  # the door loop's side: take commands, apply, finish
        while not applied:
            for command in hub.commands():
                applied.append(command.args)
                command.finish({"event_id": 42})

    thread = threading.Thread(target=loop)
    thread.start()
    with ControlClient(sock_path) as client:
        result = client.request("unlock", by=" alice ", reason="delivery")
    thread.join()
    assert result == {"event_id": 42}
    assert applied == [{"by": "alice", "reason": "delivery"}]


def test_a_command_the_loop_refuses_is_an_error_for_the_client(serve, sock_path):
    hub = ControlHub(allow_remote_unlock=True)
    serve(hub)

    def loop() -> None:
        while True:
            commands = hub.commands()
            if commands:
                commands[0].finish(error="locked out after repeated failures")
                return

    thread = threading.Thread(target=loop)
    thread.start()
    with ControlClient(sock_path) as client, pytest.raises(ControlError, match="locked out"):
        client.request("unlock", by="alice")
    thread.join()


def test_a_command_not_taken_in_time_is_withdrawn_and_never_applied_late():
    hub = ControlHub(allow_remote_unlock=True)
    with pytest.raises(ControlError, match="nothing was done"):
        hub.submit("unlock", {"by": "alice"}, timeout=0.01)
    assert hub.commands() == []  # the loop, arriving late, finds nothing to apply


@pytest.mark.parametrize("by", [None, "", "   ", 7, "x" * 201])
def test_unlock_needs_a_name_for_the_log(serve, sock_path, by):
    hub = ControlHub(allow_remote_unlock=True)
    serve(hub)
    with ControlClient(sock_path) as client, pytest.raises(ControlError, match="'by' must be"):
        client.request("unlock", by=by)
    assert hub.commands() == []


def test_bad_requests_get_one_line_errors_and_the_connection_goes_on(serve, sock_path):
    serve(ControlHub())
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(sock_path))
        replies = sock.makefile("rb")
        sock.sendall(b"not json\n")
        assert b"not a JSON request" in replies.readline()
        sock.sendall(b'["a list"]\n')
        assert b"a request is a JSON object" in replies.readline()
        sock.sendall(b'{"id": 1, "op": "explode"}\n')
        reply = replies.readline()
        assert b"unknown op 'explode'" in reply and b"status" in reply
        sock.sendall(b'{"id": 2, "op": "status"}\n')
        assert b'"ok":true' in replies.readline()


def test_an_oversized_request_is_refused_and_the_connection_closed(serve, sock_path):
    serve(ControlHub())
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(sock_path))
        replies = sock.makefile("rb")
        sock.sendall(b"x" * (70 * 1024) + b"\n")
        assert b"request too long" in replies.readline()
        assert replies.readline() == b""


def test_the_socket_is_owner_only_and_removed_on_close(sock_path):
    server = ControlServer(sock_path, ControlHub())
    server.start()
    assert stat.S_IMODE(sock_path.stat().st_mode) == 0o600
    server.close()
    assert not sock_path.exists()


def test_a_stale_socket_is_replaced_but_a_live_one_or_a_file_is_refused(sock_path):
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(sock_path))
    leftover.close()  # bound, nobody listening: what a killed daemon leaves
    server = ControlServer(sock_path, ControlHub())
    server.start()
    try:
        with pytest.raises(ControlError, match="already running"):
            ControlServer(sock_path, ControlHub())
    finally:
        server.close()
    sock_path.write_text("not a socket")
    with pytest.raises(ControlError, match="not a socket"):
        ControlServer(sock_path, ControlHub())
    assert sock_path.read_text() == "not a socket"


def test_the_client_says_when_the_daemon_is_not_there(sock_path):
    with pytest.raises(ControlError, match="is it running"):
        ControlClient(sock_path)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user")
def test_another_user_is_disconnected_even_when_the_file_mode_lets_it_in():
    folder = Path(tempfile.mkdtemp(prefix="facegate-control-"))  # pytest's tmp is 0700
    folder.chmod(0o755)
    path = folder / "control.sock"
    server = ControlServer(path, ControlHub())
    server.start()
    try:
        path.chmod(0o666)  # only the SO_PEERCRED check stands between them now
        probe = (
            "import socket, sys\n"
            "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
            "try:\n"
            '    s.sendall(b\'{"id": 1, "op": "status"}\\n\')\n'
            "    print('answered' if s.makefile('rb').readline() else 'closed')\n"
            "except (BrokenPipeError, ConnectionResetError):\n"
            "    print('closed')\n"
        )
        nobody = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                sys.executable,
                "-c",
                probe,
                str(path),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert nobody.returncode == 0, nobody.stderr
        assert nobody.stdout.strip() == "closed"  # connected, then closed unanswered
        with ControlClient(path) as client:  # the owner is still served
            assert "recent_decisions" in client.request("status")
    finally:
        server.close()
        folder.rmdir()


# --- the preview and the capture -----------------------------------------------------


def test_the_loop_hands_the_preview_nothing_until_someone_watches(serve, sock_path):
    hub = ControlHub()
    serve(hub)
    assert not hub.preview_wanted
    with ControlClient(sock_path) as client:
        client.stream("preview", jpeg=False)
        assert hub.preview_wanted
    for _ in range(100):  # the server notices the hang-up at its next write
        hub.publish_preview(np.zeros((4, 4, 3), np.uint8), {"faces": []})
        if not hub.preview_wanted:
            break
        threading.Event().wait(0.05)
    assert not hub.preview_wanted


def test_a_preview_frame_is_the_loops_array_by_reference_encoded_by_the_server(serve, sock_path):
    hub = ControlHub()
    serve(hub)
    image = np.full((480, 1280, 3), 90, np.uint8)
    info = {"faces": [{"box": [100.0, 100.0, 300.0, 300.0], "passed": True, "reasons": []}]}
    with ControlClient(sock_path) as client:
        stream = client.stream("preview")
        hub.publish_preview(image, info)
        assert hub.next_preview(-1, timeout=0).image is image  # handed over, not copied
        message = next(m for m in stream if "preview" in m)["preview"]
    assert message["info"] == info
    jpeg = cv2.imdecode(np.frombuffer(base64.b64decode(message["jpeg"]), np.uint8), 1)
    assert jpeg.shape == (240, PREVIEW_WIDTH, 3)  # scaled down to the preview's width
    assert np.abs(jpeg[50, 75].astype(int) - (0, 200, 0)).max() < 40  # the box, drawn
    assert (image == 90).all()  # the loop's frame was not drawn on


def test_a_preview_rate_that_is_not_a_positive_number_is_refused(serve, sock_path):
    serve(ControlHub())
    with ControlClient(sock_path) as client:
        for fps in (0, -1, "5", True):
            with pytest.raises(ControlError, match="fps"):
                client.stream("preview", fps=fps)


def test_a_capture_relays_the_loops_progress_then_its_templates(serve, sock_path):
    hub = ControlHub()
    serve(hub)
    taken = []

    def loop() -> None:  # the door loop's side, as the daemon does it
        while not taken:
            for command in hub.commands():
                taken.append(command)
                command.finish({"needed": 2})
        feed = taken[0].args["feed"]
        feed.progress("come closer", 0, 2)
        feed.finish({"templates": [], "rejected": 0})

    threading.Thread(target=loop, daemon=True).start()
    with ControlClient(sock_path) as client:
        lines = []
        for line in client.stream("capture", by="alice"):
            lines.append(line)
            if "done" in line:
                break
    assert taken[0].args["by"] == "alice"
    assert lines == [
        {"progress": {"guidance": "come closer", "collected": 0, "needed": 2}},
        {"done": {"templates": [], "rejected": 0}},
    ]


def test_hanging_up_on_a_capture_cancels_it(serve, sock_path):
    hub = ControlHub()
    serve(hub)
    taken = []

    def loop() -> None:
        while not taken:
            for command in hub.commands():
                taken.append(command)
                command.finish({"needed": 2})

    threading.Thread(target=loop, daemon=True).start()
    with ControlClient(sock_path) as client:
        client.stream("capture", by="alice")
    feed = taken[0].args["feed"]
    for _ in range(100):
        feed.progress("hold still", 1, 2)  # the server writes it, and finds nobody there
        if feed.cancelled:
            break
        threading.Event().wait(0.05)
    assert feed.cancelled
