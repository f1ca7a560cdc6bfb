"""Fault injection: the real service (``facegate run``: replay camera, mock door with a
state file) in a subprocess, its relay watched from outside the process through that
file, as a person would watch the lock, and its sd_notify messages on a socket of the
test's, as systemd would. Each fault strikes mid-pulse or mid-visit: signals (every
named one, SIGKILL followed by 'facegate lock'), another process holding the gallery's
write lock, a full disk, a missing camera, a rekey attempted under the service.

The unlock pulse lasts 60 s, so a relay found locked again within the test was
locked by the daemon's reaction to the fault, not by the pulse ending.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge import cli
from edge.access.gpio.mock import MockGpio, read_state_file
from edge.cli.run import REQUESTED, STOP_SIGNALS, signal_name, stop_on_signals
from edge.clock import FakeClock
from edge.config import parse_config
from edge.control import ControlClient
from edge.evaluation.demo_sequence import write_sequence
from edge.gallery.events import EventFilter
from edge.gallery.store import Gallery
from tests.helpers import (
    FACES,
    OBAMA,
    REPO,
    config_text,
    enrol_obama,
    write_lock_held,
    write_visits,
)

RELAY = 17  # the default relay pin, active high
LOCKED, UNLOCKED = False, True
PULSE_S = 60.0
WAIT_S = 180.0  # for a line from a daemon: generous, the test machine may be busy
AT_ONCE = 4  # daemons run side by side by the signal tests


@pytest.fixture(scope="module")
def arrival(tmp_path_factory) -> Path:
    """obama_2 stepping up from the first frame, looped: a grant within a few frames."""
    folder = tmp_path_factory.mktemp("arrival")
    write_sequence([FACES / "obama_2.jpg"], folder, frames_per_person=8, gap_frames=0)
    return folder


class Service:
    """``facegate run`` in a subprocess with its own gallery (obama_1 enrolled) and
    relay state file; ``lines`` receives its stdout line by line."""

    def __init__(self, folder: Path, replay: Path, template, **sections: dict):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.state = folder / "gpio.json"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # systemd's socket
        self.notify.bind(str(folder / "notify.sock"))
        self.notify.settimeout(WAIT_S)
        settings = {
            "camera": {"loop": True, "realtime": True},
            "door": {"unlock_seconds": PULSE_S},
            "gpio": {"mock_state_file": str(self.state)},
            "models": {"threads": 1},
            "decision": {"votes_required": 1, "vote_frames": 1},
            "control": {"socket": str(folder / "control.sock")},
        }
        for name, values in sections.items():
            settings.setdefault(name, {}).update(values)
        text = config_text(folder, replay, **settings)
        self.config = parse_config(text)
        enrol_obama(self.config, template)
        self.config_path = folder / "facegate.toml"
        self.config_path.write_text(text)
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.proc: subprocess.Popen | None = None

    def start(self, wrapper: tuple[str, ...] = ()) -> Service:
        """Start the service, through ``wrapper`` (a command that ends by running its
        arguments) if given."""
        self.proc = subprocess.Popen(
            [*wrapper, sys.executable, "-m", "edge", "run", "--config", str(self.config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(
                os.environ, PYTHONPATH=str(REPO), NOTIFY_SOCKET=str(self.folder / "notify.sock")
            ),
        )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def line_with(self, text: str) -> str:
        """The next line of output containing ``text``; fails after WAIT_S."""
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"no {text!r} from the daemon; it said:\n" + "".join(self.output)
                ) from None
            if text in line:
                return line

    def notified(self, text: str) -> str:
        """The next sd_notify message containing ``text``."""
        while True:
            message = self.notify.recv(4096).decode()
            if text in message:
                return message

    def relay(self) -> bool:
        """The relay's level as the state file shows it to any process."""
        return read_state_file(self.state)[RELAY]

    def wait(self) -> int:
        return self.proc.wait(timeout=WAIT_S)

    def lock(self) -> subprocess.CompletedProcess:
        """What systemd's ExecStopPost runs."""
        return subprocess.run(
            [sys.executable, "-m", "edge", "lock", "--config", str(self.config_path)],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            timeout=WAIT_S,
        )

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.notify.close()


# --- signals -------------------------------------------------------------------------

# Every named stop signal, and the first and last real-time signal (the others between
# them are caught by the same rule: see test_every_signal_that_would_end_the_daemon...).
IN_A_PROCESS = tuple(s for s in STOP_SIGNALS if "+" not in signal_name(s))


@dataclass
class Outcome:
    relay_at_signal: bool
    returncode: int
    relay_after: bool
    output: str
    seconds: float  # from the grant to the exit
    granted: list[str]  # names in the event log's 'granted' events
    relay_after_lock: bool | None = None
    lock_returncode: int | None = None


def _signal_mid_pulse(service: Service, signals: tuple[int, ...]) -> Outcome:
    try:
        service.start()
        service.line_with("granted")
        granted = time.monotonic()
        at_signal = service.relay()
        for signum in signals:
            service.proc.send_signal(signum)
        returncode = service.wait()
        with Gallery.from_config(service.config.gallery) as gallery:
            names = [e.name for e in gallery.events(EventFilter(kind="granted"))]
        outcome = Outcome(
            at_signal,
            returncode,
            service.relay(),
            "".join(service.output),
            time.monotonic() - granted,
            names,
        )
        if signals[-1] == signal.SIGKILL:
            lock = service.lock()
            outcome.lock_returncode, outcome.relay_after_lock = lock.returncode, service.relay()
        return outcome
    finally:
        service.close()


SCENARIOS = {signal_name(s): (s,) for s in IN_A_PROCESS}
SCENARIOS["SIGKILL"] = (signal.SIGKILL,)
SCENARIOS["SIGPIPE"] = (signal.SIGPIPE, signal.SIGTERM)  # the SIGTERM only ends the run


@pytest.fixture(scope="module")
def signalled(tmp_path_factory, arrival, obama_template) -> dict[str, Outcome]:
    """Each scenario's outcome: a daemon granted obama_2, then got the scenario's signals.

    The daemons run AT_ONCE at a time: one after another they would take minutes."""
    root = tmp_path_factory.mktemp("signals")
    one_grant = {"cooldown_seconds": PULSE_S}  # one grant however long the face stays
    services = {
        name: Service(root / name, arrival, obama_template, decision=one_grant)
        for name in SCENARIOS
    }
    with ThreadPoolExecutor(AT_ONCE) as pool:
        futures = {
            name: pool.submit(_signal_mid_pulse, services[name], signals)
            for name, signals in SCENARIOS.items()
        }
        return {name: future.result() for name, future in futures.items()}


def test_every_signal_that_would_end_the_daemon_is_a_stop():
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    stopped = []

    class Daemon:
        def request_stop(self):
            stopped.append(True)

    try:
        received = stop_on_signals(Daemon())
        handlers = {s: signal.getsignal(s) for s in signal.valid_signals()}
        stop = handlers[signal.SIGHUP]
        assert [s for s, h in handlers.items() if h is stop] == list(STOP_SIGNALS)
        signal.raise_signal(signal.SIGUSR1)
        assert stopped == [True] and received == [signal.SIGUSR1]
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    names = {signal_name(s) for s in STOP_SIGNALS}
    assert {
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGABRT",
        "SIGUSR1",
        "SIGUSR2",
        "SIGALRM",
        "SIGTERM",
        "SIGTSTP",
        "SIGXCPU",
        "SIGPWR",
        "SIGRTMIN",
        "SIGRTMIN+5",
        "SIGRTMAX",
    } <= names
    assert not names & {"SIGKILL", "SIGSTOP", "SIGSEGV", "SIGPIPE", "SIGCHLD", "SIGWINCH"}


@pytest.mark.parametrize("signum", IN_A_PROCESS, ids=signal_name)
def test_a_stop_signal_mid_pulse_locks_the_door_and_ends_the_service(signalled, signum):
    outcome = signalled[signal_name(signum)]
    assert outcome.relay_at_signal is UNLOCKED, outcome.output
    assert outcome.relay_after is LOCKED
    assert outcome.seconds < PULSE_S
    assert outcome.granted == [OBAMA]
    # the service log names people by id only (daemon.log_names is off by default)
    assert re.search(r"granted\s+#1\s", outcome.output) and OBAMA not in outcome.output
    if signum in REQUESTED:
        assert outcome.returncode == 0, outcome.output
    else:  # not asked for by systemd or a terminal: systemd restarts the service
        assert outcome.returncode == 128 + signum, outcome.output
        assert f"stopped by {signal_name(signum)}; the door is locked" in outcome.output


def test_sigkill_leaves_the_relay_open_until_facegate_lock_runs(signalled):
    outcome = signalled["SIGKILL"]
    assert outcome.relay_at_signal is UNLOCKED
    assert outcome.returncode == -signal.SIGKILL
    assert outcome.relay_after is UNLOCKED  # what the kernel does with a dead process's pin
    assert outcome.lock_returncode == 0
    assert outcome.relay_after_lock is LOCKED


def test_sigpipe_is_ignored_and_the_service_carries_on(signalled):
    outcome = signalled["SIGPIPE"]
    assert outcome.relay_at_signal is UNLOCKED
    assert outcome.returncode == 0  # ended by the SIGTERM sent after it
    assert outcome.relay_after is LOCKED


# --- facegate lock ---------------------------------------------------------------------


def test_lock_drives_the_relay_locked_even_when_another_section_is_broken(tmp_path, capsys):
    state = tmp_path / "gpio.json"
    MockGpio(FakeClock(), state).setup_output(RELAY, UNLOCKED)  # left open by a dead daemon
    config = tmp_path / "facegate.toml"
    config.write_text(
        f'[gpio]\nbackend = "mock"\nmock_state_file = "{state}"\n[matcher]\nmin_similarity = nan\n'
    )
    assert cli.main(["check-config", "--config", str(config)]) == 78
    assert cli.main(["lock", "--config", str(config)]) == 0
    assert read_state_file(state)[RELAY] is LOCKED
    assert "locked: the relay on GPIO17" in capsys.readouterr().out


def test_lock_refuses_a_broken_door_section_and_names_it(tmp_path, capsys):
    config = tmp_path / "facegate.toml"
    config.write_text('[gpio]\nbackend = "mock"\n[door]\nrelay_pin = 99\n')
    assert cli.main(["lock", "--config", str(config)]) == 78
    assert f"{config}:4: door.relay_pin: 99 is above the maximum 27" in capsys.readouterr().err


# --- the event log cannot be written ----------------------------------------------------


def test_a_locked_gallery_keeps_the_relay_locked_and_the_service_running(tmp_path, obama_template):
    visits = write_visits(tmp_path / "visits", 2, gap_frames=40)  # 4 s between visits
    service = Service(tmp_path / "service", visits, obama_template)
    try:
        with write_lock_held(service.config.gallery):
            service.start()
            refused = service.line_with("denied_unrecorded")
            assert "the grant could not be recorded" in refused
            assert "locked by another process" in refused
            assert service.relay() is LOCKED
            assert service.proc.poll() is None
        service.line_with("granted")  # the next visit, once the lock is gone
        assert service.relay() is UNLOCKED
        service.proc.send_signal(signal.SIGTERM)
        assert service.wait() == 0
        assert service.relay() is LOCKED
    finally:
        service.close()
    assert "granted" not in refused and "-> unlock" not in "".join(
        service.output[: service.output.index(refused)]
    )
    with Gallery.from_config(service.config.gallery) as gallery:
        assert [e.kind for e in gallery.events()][1:] == ["denied_unrecorded", "granted"]


def _unshare_works() -> bool:
    return (
        shutil.which("unshare") is not None
        and subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0
    )


@pytest.mark.skipif(
    not _unshare_works(), reason="needs 'unshare -rm' (user and mount namespaces) for a small disk"
)
def test_a_full_disk_keeps_the_relay_locked_says_so_and_recovers(tmp_path, obama_template):
    visits = write_visits(tmp_path / "visits", 2, gap_frames=40)
    disk = tmp_path / "service" / "disk"  # a 1 MiB tmpfs inside the service's namespace
    disk.mkdir(parents=True)
    service = Service(
        tmp_path / "service", visits, obama_template, gallery={"path": str(disk / "gallery.db")}
    )
    stash = tmp_path / "stash"
    stash.mkdir()
    mount_small_disk = (
        "unshare",
        "-rm",
        "sh",
        "-c",
        'cp -a "$1"/. "$2"/ && mount -t tmpfs -o size=1m tmpfs "$1" && cp -a "$2"/. "$1"/ '
        '&& shift 2 && exec "$@"',
        "sh",
        str(disk),
        str(stash),
    )
    try:
        service.start(mount_small_disk)
        service.notified("READY=1")
        filler = Path(f"/proc/{service.proc.pid}/root{disk}/filler")  # the disk as it sees it
        with open(filler, "wb") as f, pytest.raises(OSError, match="No space left"):
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        refused = service.line_with("denied_unrecorded")
        assert f"the disk holding {disk} is full" in refused
        assert "not in the event log yet" in refused
        assert service.relay() is LOCKED
        assert service.notified(f"the disk holding {disk} is full").startswith("STATUS=")
        filler.unlink()
        service.line_with("granted")
        assert service.relay() is UNLOCKED
        service.proc.send_signal(signal.SIGTERM)
        assert service.wait() == 0
        assert service.relay() is LOCKED
    finally:
        service.close()


# --- the control socket ----------------------------------------------------------------


def test_the_service_serves_its_control_socket_and_removes_it_when_it_stops(
    tmp_path, obama_template
):
    nobody = tmp_path / "nobody"  # an empty doorway: nothing but the remote unlock opens it
    nobody.mkdir()
    cv2.imwrite(str(nobody / "frame_0000.jpg"), np.full((480, 640, 3), 180, np.uint8))
    service = Service(
        tmp_path / "service", nobody, obama_template, control={"allow_remote_unlock": True}
    )
    socket_path = service.folder / "control.sock"
    try:
        service.start()
        service.notified("READY=1")
        with ControlClient(socket_path) as client:
            status = client.request("status")
            assert (status["door"], status["templates"], status["lockout"]) == ("locked", 1, False)
            assert service.relay() is LOCKED
            assert client.request("unlock", by="test", reason="a visitor") == {"unlocked": True}
            assert service.relay() is UNLOCKED
        with Gallery.from_config(service.config.gallery) as gallery:
            (event,) = gallery.events(EventFilter(kind="remote_unlock"))
        assert event.reason == "asked by test: a visitor"
        service.proc.send_signal(signal.SIGTERM)
        assert service.wait() == 0
        assert service.relay() is LOCKED and not socket_path.exists()
    finally:
        service.close()


# --- missing devices -------------------------------------------------------------------


def test_a_missing_camera_keeps_the_relay_locked_and_the_service_retrying(
    tmp_path,
    arrival,
    obama_template,
):
    service = Service(
        tmp_path / "service",
        arrival,
        obama_template,
        camera={"source": "opencv", "device": str(tmp_path / "no-camera")},
    )
    try:
        service.start()
        service.notified("READY=1")
        status = service.notified("camera down")
        assert status.startswith("STATUS=camera down: ") and status.endswith("; door locked")
        assert service.relay() is LOCKED
        assert service.proc.poll() is None  # retrying, not crashed
        service.proc.send_signal(signal.SIGTERM)
        assert service.wait() == 0
        assert service.relay() is LOCKED
    finally:
        service.close()


# --- the gallery under the running service ------------------------------------------------


def test_rekey_is_refused_while_the_service_runs_and_the_service_carries_on(
    tmp_path,
    obama_template,
):
    visits = write_visits(tmp_path / "visits", 1, gap_frames=12)  # looped: one every 2 s
    service = Service(tmp_path / "service", visits, obama_template)
    try:
        service.start()
        service.line_with("granted")
        rekey = subprocess.run(
            [
                sys.executable,
                "-m",
                "edge",
                "gallery",
                "rekey",
                "--config",
                str(service.config_path),
            ],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            timeout=WAIT_S,
        )
        assert rekey.returncode == 4
        assert "stop the service first" in rekey.stderr
        service.line_with("granted")  # the next visit: still reading and writing the gallery
        service.proc.send_signal(signal.SIGTERM)
        assert service.wait() == 0
        assert service.relay() is LOCKED
    finally:
        service.close()
