"""The daemon's control socket: how local tools (the web app, the broker client) see the
door and ask things of it, while the door loop stays the only owner of camera and relay.

The loop never waits on a client. It publishes a status snapshot and each decision into
a :class:`ControlHub`; a server thread answers reads from there, and hands commands
(an unlock) to the loop, which applies them at its next step and reports back. A
command the loop has not taken within ``COMMAND_TIMEOUT_S`` is withdrawn, never applied
late: a remote unlock that arrives minutes after it was asked for is a surprise at a door.

Transport: a unix stream socket, mode 0600, and each peer's uid checked with
SO_PEERCRED (only the daemon's own user and root may connect). One JSON object per
line, UTF-8, each way:

    request  {"id": ANY, "op": NAME, ...arguments}
    reply    {"id": ANY, "ok": true, ...result}  or  {"id": ANY, "ok": false, "error": TEXT}

Operations (``OPERATIONS``):

    status      the loop's latest snapshot (door, camera, templates, ...)
    decisions   replies ok, then one {"decision": {...}} line per decision as the loop
                makes it, until the client hangs up; a client too slow to read loses the
                oldest lines and is told how many with {"dropped": N}; {"idle": true}
                after IDLE_S without any
    unlock      {"by": WHO, "reason": TEXT}: one unlock pulse, logged before the relay
                moves; refused unless [control] allow_remote_unlock is true
    preview     {"jpeg": BOOL (default true), "fps": N (at most PREVIEW_MAX_FPS)}: replies
                ok, then {"preview": {"seq", "info", "jpeg"}} lines, the newest frame at
                most fps times a second, until the client hangs up; "info" holds the
                faces (box in frame pixels, quality verdict and reasons) and the person
                at the door (similarity, liveness); "jpeg" is the frame, boxes drawn,
                PREVIEW_WIDTH wide, base64 (absent when jpeg is false); {"idle": true}
                every IDLE_S while the camera gives nothing
    capture     {"by": WHO}: the loop collects the good captures of the face at the
                door (refused while another enrolment runs); replies ok, then
                {"progress": {"guidance", "collected", "needed"}} lines, then
                {"done": TEMPLATES} or {"failed": REASON}; hanging up abandons it

The loop hands the preview only a reference to its latest frame and the annotations, and
only while someone watches: encoding, scaling and drawing happen in the server's thread.
Nothing is recorded.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import socket
import socketserver
import stat
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import ConfigError, FacegateError
from .schema import setting

COMMAND_TIMEOUT_S = 5.0
MAX_REQUEST_BYTES = 64 * 1024
SUBSCRIBER_BACKLOG = 256  # decisions a slow subscriber may fall behind before losing some
RECENT_DECISIONS = 50  # kept for a dashboard that connects late
PREVIEW_MAX_FPS = 5.0  # a person aiming the camera needs no more; the loop needs the CPU
PREVIEW_WIDTH = 640  # pixels across of a preview frame
PREVIEW_JPEG_QUALITY = 75
IDLE_S = 5.0  # a stream with nothing to say says so this often (to notice a hang-up)
CAPTURE_BACKLOG = 64


@dataclass(frozen=True)
class ControlConfig:
    """The local control socket that the web app and the broker client use."""

    socket: str = setting(
        "/run/facegate/control.sock",
        "unix socket the daemon serves for local tools (owner-only); empty = no socket",
    )
    allow_remote_unlock: bool = setting(
        False,
        "let local tools (web app, Home Assistant through the broker client) ask "
        "for an unlock pulse; each one is logged with who asked",
    )

    def validate(self) -> None:
        # sun_path holds 108 bytes with its terminating NUL
        if len(os.fsencode(self.socket)) > 107:
            raise ConfigError(
                f"control.socket: {self.socket!r} is longer than a unix socket path may be "
                "(107 bytes)"
            )


class ControlError(FacegateError, ConnectionError):
    """The control socket cannot be reached, or it refused a request."""


# --- the hub: what the loop and the server threads share ------------------------------


@dataclass
class Command:
    """A request for the loop; it either claims it in time or it is withdrawn."""

    op: str
    args: dict[str, Any]
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _state: str = "pending"  # pending -> claimed -> done, or pending -> withdrawn
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def claim(self) -> bool:
        """The loop's side: True when it may apply the command (it was not withdrawn)."""
        with self._lock:
            if self._state != "pending":
                return False
            self._state = "claimed"
            return True

    def finish(self, result: dict[str, Any] | None = None, error: str | None = None) -> None:
        """The loop's side, after applying a claimed command."""
        self.result = result or {}
        self.error = error
        self._state = "done"
        self._done.set()

    def wait(self, timeout: float) -> bool:
        """The server's side: True when the loop finished it; False when it was withdrawn."""
        if self._done.wait(timeout):
            return True
        with self._lock:
            if self._state == "pending":
                self._state = "withdrawn"
                return False
        self._done.wait()  # claimed just now: the loop is applying it, so it finishes
        return True


class Subscription:
    """One client's queue of messages (decisions, a capture's progress); the oldest are
    dropped when it falls behind by ``backlog``."""

    def __init__(self, backlog: int = SUBSCRIBER_BACKLOG) -> None:
        self._items: deque[dict[str, Any]] = deque()
        self._ready = threading.Condition()
        self._backlog = backlog
        self.dropped = 0

    def put(self, item: dict[str, Any]) -> None:
        with self._ready:
            if len(self._items) >= self._backlog:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._ready.notify()

    def get(self, timeout: float) -> tuple[list[dict[str, Any]], int]:
        """(decisions waiting, how many were dropped since the last call); waits up to
        ``timeout`` for the first one."""
        with self._ready:
            if not self._items:
                self._ready.wait(timeout)
            items, self._items = list(self._items), deque()
            dropped, self.dropped = self.dropped, 0
        return items, dropped


@dataclass(frozen=True, eq=False)
class PreviewFrame:
    """The loop's latest frame (its own array, by reference: never written to) and what
    the loop saw in it."""

    seq: int
    image: np.ndarray
    info: dict[str, Any]


class CaptureFeed:
    """An enrolment capture at the door camera for a local tool: the loop reports
    progress and the end; the server thread relays them, or cancels at hang-up."""

    def __init__(self) -> None:
        self._messages = Subscription(CAPTURE_BACKLOG)
        self._cancelled = threading.Event()

    # the loop's side
    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def progress(self, guidance: str, collected: int, needed: int) -> None:
        self._put({"progress": {"guidance": guidance, "collected": collected, "needed": needed}})

    def finish(self, templates: dict[str, Any]) -> None:
        self._put({"done": templates})

    def fail(self, reason: str) -> None:
        self._put({"failed": reason})

    def _put(self, message: dict[str, Any]) -> None:
        self._messages.put(message)

    # the server's side
    def cancel(self) -> None:
        self._cancelled.set()

    def take(self, timeout: float) -> list[dict[str, Any]]:
        return self._messages.get(timeout)[0]


class ControlHub:
    """Thread-safe meeting point of the door loop and the control server.

    The loop calls :meth:`publish_status`, :meth:`publish_decision` and
    :meth:`commands`; server threads call the rest.
    """

    def __init__(self, allow_remote_unlock: bool = False) -> None:
        self.allow_remote_unlock = allow_remote_unlock
        self._lock = threading.Lock()
        self._status: dict[str, Any] = {}
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT_DECISIONS)
        self._subscribers: set[Subscription] = set()
        self._commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._preview_ready = threading.Condition()
        self._preview: PreviewFrame | None = None
        self._preview_watchers = 0
        self._jpeg: tuple[int, bytes] = (-1, b"")

    # -- the loop's side --------------------------------------------------------

    @property
    def preview_wanted(self) -> bool:
        """Whether anyone watches the preview (otherwise the loop hands over nothing)."""
        return self._preview_watchers > 0

    def publish_preview(self, image: np.ndarray, info: dict[str, Any]) -> None:
        """Hand over the latest frame by reference, with its annotations; no copy, no
        encoding here."""
        with self._preview_ready:
            seq = 0 if self._preview is None else self._preview.seq + 1
            self._preview = PreviewFrame(seq, image, info)
            self._preview_ready.notify_all()

    def publish_status(self, status: dict[str, Any]) -> None:
        with self._lock:
            self._status = dict(status)

    def publish_decision(self, decision: dict[str, Any]) -> None:
        with self._lock:
            self._recent.append(decision)
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            subscription.put(decision)

    def commands(self) -> list[Command]:
        """Commands waiting for the loop, claimed for it (withdrawn ones are skipped)."""
        taken: list[Command] = []
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return taken
            if command.claim():
                taken.append(command)

    # -- the server's side ------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {**self._status, "recent_decisions": list(self._recent)}

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        subscription = Subscription()
        with self._lock:
            self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            with self._lock:
                self._subscribers.discard(subscription)

    @contextlib.contextmanager
    def watch_preview(self) -> Iterator[None]:
        with self._preview_ready:
            self._preview_watchers += 1
        try:
            yield
        finally:
            with self._preview_ready:
                self._preview_watchers -= 1
                if not self._preview_watchers:
                    self._preview = None  # let the frame go

    def next_preview(self, after: int, timeout: float) -> PreviewFrame | None:
        """A frame newer than seq ``after``, waiting up to ``timeout`` for one."""
        with self._preview_ready:
            self._preview_ready.wait_for(
                lambda: self._preview is not None and self._preview.seq > after, timeout
            )
            frame = self._preview
        return frame if frame is not None and frame.seq > after else None

    def preview_jpeg(self, frame: PreviewFrame) -> bytes:
        """The frame as a JPEG with its face boxes, made once for every watcher."""
        with self._preview_ready:
            if self._jpeg[0] == frame.seq:
                return self._jpeg[1]
        data = encode_preview(frame)
        with self._preview_ready:
            self._jpeg = (frame.seq, data)
        return data

    def submit(
        self, op: str, args: dict[str, Any], timeout: float = COMMAND_TIMEOUT_S
    ) -> dict[str, Any]:
        """Queue a command for the loop and wait for its result; raises ControlError
        when the loop refused it or did not take it in time (then it never applies)."""
        command = Command(op, args)
        self._commands.put(command)
        if not command.wait(timeout):
            raise ControlError(
                f"the door loop did not take {op!r} within {timeout:g} s; nothing was done"
            )
        if command.error is not None:
            raise ControlError(command.error)
        return command.result


def encode_preview(frame: PreviewFrame) -> bytes:
    """A scaled copy of the frame with each face's box (green: good enough to identify,
    amber: not), as JPEG bytes."""
    height, width = frame.image.shape[:2]
    scale = min(1.0, PREVIEW_WIDTH / width)
    image = cv2.resize(frame.image, (round(width * scale), round(height * scale)))
    for face in frame.info.get("faces", []):
        x1, y1, x2, y2 = (round(v * scale) for v in face["box"])
        colour = (0, 200, 0) if face["passed"] else (0, 160, 255)
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, 2)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, PREVIEW_JPEG_QUALITY])
    if not ok:
        raise ControlError("cannot encode the preview frame")
    return data.tobytes()


# --- the server ---------------------------------------------------------------------


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def _text(args: dict[str, Any], key: str, limit: int = 200) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ControlError(f"{key!r} must be a non-empty string of at most {limit} characters")
    return value.strip()


class _Handler(socketserver.StreamRequestHandler):
    server: ControlServer

    def handle(self) -> None:
        while True:
            line = self.rfile.readline(MAX_REQUEST_BYTES + 1)
            if not line:
                return
            if len(line) > MAX_REQUEST_BYTES:
                self._send({"id": None, "ok": False, "error": "request too long"})
                return
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("a request is a JSON object")
            except ValueError as exc:
                self._send({"id": None, "ok": False, "error": f"not a JSON request: {exc}"})
                continue
            if not self._answer(request):
                return

    def _answer(self, request: dict[str, Any]) -> bool:
        """Reply to one request; False when the connection is done (a subscription ended)."""
        rid, op = request.get("id"), request.get("op")
        operation = OPERATIONS.get(op) if isinstance(op, str) else None
        if operation is None:
            valid = ", ".join(sorted(OPERATIONS))
            self._send({"id": rid, "ok": False, "error": f"unknown op {op!r} (valid: {valid})"})
            return True
        try:
            result = operation(self.server.hub, request)
        except ControlError as exc:
            self._send({"id": rid, "ok": False, "error": str(exc)})
            return True
        if callable(result):  # a stream: it acknowledges once ready, then writes until hang-up
            result(self._send, lambda: self._send({"id": rid, "ok": True}))
            return False
        self._send({"id": rid, "ok": True, **result})
        return True

    def _send(self, message: dict[str, Any]) -> None:
        self.wfile.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        self.wfile.flush()


class ControlServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Serves :data:`OPERATIONS` on ``path`` in background threads until :meth:`close`."""

    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, path: str | Path, hub: ControlHub) -> None:
        self.path = Path(path)
        self.hub = hub
        _remove_stale_socket(self.path)
        old_umask = os.umask(0o177)  # the socket file is born 0600
        try:
            super().__init__(str(self.path), _Handler)
        except OSError as exc:
            raise ConfigError(
                f"control.socket: cannot serve {self.path}: {exc.strerror or exc}; its folder "
                "must exist and be the service's to write (the unit's RuntimeDirectory makes "
                '/run/facegate); socket = "" runs without one'
            ) from None
        finally:
            os.umask(old_umask)
        self._thread = threading.Thread(
            target=self.serve_forever, name="control", kwargs={"poll_interval": 0.2}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def verify_request(self, request: Any, client_address: Any) -> bool:
        uid = _peer_uid(request)
        return uid in (os.geteuid(), 0)

    def close(self) -> None:
        if self._thread.is_alive():
            self.shutdown()
        self.server_close()
        self.path.unlink(missing_ok=True)


def _remove_stale_socket(path: Path) -> None:
    """Remove a socket left by a daemon that died; refuse anything else, or a live one."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlError(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()  # nobody answers: a leftover
        return
    finally:
        probe.close()
    raise ControlError(f"another process is serving {path}; is facegate already running?")


# --- operations -------------------------------------------------------------------------

# A streaming operation returns stream(send, ack): ack() once it is ready, then send(...).
Stream = Callable[[Callable[[dict[str, Any]], None], Callable[[], None]], None]


def _status(hub: ControlHub, request: dict[str, Any]) -> dict[str, Any]:
    return hub.status()


def _decisions(hub: ControlHub, request: dict[str, Any]) -> Stream:
    def stream(send: Callable[[dict[str, Any]], None], ack: Callable[[], None]) -> None:
        with hub.subscribe() as subscription:
            ack()  # subscribed first, so no decision after the ack is missed
            while True:
                items, dropped = subscription.get(timeout=IDLE_S)
                try:
                    if dropped:
                        send({"dropped": dropped})
                    for item in items:
                        send({"decision": item})
                    if not (items or dropped):
                        send({"idle": True})
                except OSError:  # the client hung up
                    return

    return stream


def _unlock(hub: ControlHub, request: dict[str, Any]) -> dict[str, Any]:
    if not hub.allow_remote_unlock:
        raise ControlError("remote unlock is off; set [control] allow_remote_unlock = true")
    return hub.submit(
        "unlock", {"by": _text(request, "by"), "reason": str(request.get("reason") or "")[:200]}
    )


def _preview(hub: ControlHub, request: dict[str, Any]) -> Stream:
    with_jpeg = request.get("jpeg", True) is not False
    fps = request.get("fps", PREVIEW_MAX_FPS)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= 1000:
        raise ControlError("'fps' must be a number above 0")
    interval = 1.0 / min(float(fps), PREVIEW_MAX_FPS)

    def stream(send: Callable[[dict[str, Any]], None], ack: Callable[[], None]) -> None:
        with hub.watch_preview():
            ack()
            seq, sent = -1, float("-inf")
            while True:
                # the rate limit: wait out the interval, then take the newest frame
                time.sleep(max(0.0, sent + interval - time.monotonic()))
                frame = hub.next_preview(seq, timeout=IDLE_S)
                try:
                    if frame is None:
                        send({"idle": True})
                        continue
                    seq, sent = frame.seq, time.monotonic()
                    message: dict[str, Any] = {"seq": frame.seq, "info": frame.info}
                    if with_jpeg:
                        message["jpeg"] = base64.b64encode(hub.preview_jpeg(frame)).decode()
                    send({"preview": message})
                except OSError:  # the client hung up
                    return

    return stream


def _capture(hub: ControlHub, request: dict[str, Any]) -> Stream:
    feed = CaptureFeed()
    hub.submit("capture", {"by": _text(request, "by"), "feed": feed})

    def stream(send: Callable[[dict[str, Any]], None], ack: Callable[[], None]) -> None:
        try:
            ack()
            while True:
                messages = feed.take(timeout=IDLE_S)
                for message in messages or [{"idle": True}]:
                    send(message)
                if any("done" in m or "failed" in m for m in messages):
                    return
        except OSError:  # the client hung up: the loop abandons the capture
            return
        finally:
            feed.cancel()

    return stream


OPERATIONS: dict[str, Callable[[ControlHub, dict[str, Any]], Any]] = {
    "status": _status,
    "decisions": _decisions,
    "unlock": _unlock,
    "preview": _preview,
    "capture": _capture,
}


# --- the client ---------------------------------------------------------------------------


class ControlClient:
    """A connection to the daemon's control socket (one request at a time)."""

    def __init__(self, path: str | Path, timeout: float = COMMAND_TIMEOUT_S + 2.0) -> None:
        self.path = Path(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(str(self.path))
        except OSError as exc:
            self._sock.close()
            raise ControlError(
                f"cannot reach the facegate daemon at {self.path}: "
                f"{exc.strerror or exc}; is it running?"
            ) from None
        self._file = self._sock.makefile("rb")
        self._next_id = 0

    def request(self, op: str, **args: Any) -> dict[str, Any]:
        """Send one request; the reply's fields, or ControlError with the daemon's reason."""
        reply = self._exchange(op, args)
        return {k: v for k, v in reply.items() if k not in ("id", "ok")}

    def decisions(self) -> Iterator[dict[str, Any]]:
        """Subscribe now; then each decision as the loop makes it ({"decision": ...}, or
        {"dropped": N} after falling behind), for as long as the connection lasts."""
        return self.stream("decisions")

    def stream(self, op: str, **args: Any) -> Iterator[dict[str, Any]]:
        """Start a streaming operation (decisions, preview, capture); then its lines, for
        as long as the connection lasts."""
        self._exchange(op, args)
        return iter(self._read, None)  # _read never returns None: it raises at hang-up

    def _exchange(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        self._sock.sendall(json.dumps({"id": self._next_id, "op": op, **args}).encode() + b"\n")
        reply = self._read()
        if not reply.get("ok"):
            raise ControlError(f"facegate daemon refused {op!r}: {reply.get('error')}")
        return reply

    def _read(self) -> dict[str, Any]:
        try:
            line = self._file.readline()
        except OSError as exc:
            raise ControlError(f"control socket {self.path}: {exc}") from None
        if not line:
            raise ControlError(f"the facegate daemon closed the control socket {self.path}")
        return json.loads(line)

    def settimeout(self, timeout: float | None) -> None:
        self._sock.settimeout(timeout)

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
