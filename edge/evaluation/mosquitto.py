"""A real Mosquitto broker for the tests and the MQTT benchmark: on 127.0.0.1, a free
port, TLS with a self-signed certificate made as the web app's is (``edge.certificate``;
clients trust that certificate as their CA), password authentication
(``mosquitto_passwd``), persistence in its folder; started, stopped gracefully, killed
and restarted on the same port. Needs the Debian package ``mosquitto``."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from ..certificate import make_certificate

HOST = "127.0.0.1"
START_TIMEOUT_S = 20.0


def _mosquitto() -> str:
    for name in ("mosquitto", "/usr/sbin/mosquitto"):
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError("mosquitto is not installed (Debian: apt install mosquitto)")


def available() -> bool:
    try:
        _mosquitto()
    except FileNotFoundError:
        return False
    return shutil.which("mosquitto_passwd") is not None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class Mosquitto:
    """One broker process in ``folder``; ``users`` maps user name -> password.

    ``save_every_change`` writes its persistence file after every change, so that a
    crash (SIGKILL) loses nothing it acknowledged, at a cost that grows with what it
    retains (the whole file each time); otherwise it saves every minute and at a stop.
    """

    def __init__(self, folder: Path, users: dict[str, str], save_every_change: bool = True) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.users = dict(users)
        self.cert, key = self.folder / "server.pem", self.folder / "server.key"
        make_certificate(self.cert, key, "localhost", [HOST], dt.datetime.now(dt.timezone.utc))
        passwords = self.folder / "passwords"
        for number, (user, password) in enumerate(self.users.items()):
            create = ["-c"] if number == 0 else []
            subprocess.run(
                ["mosquitto_passwd", "-b", *create, str(passwords), user, password],
                check=True,
                capture_output=True,
            )
        passwords.chmod(0o600)
        lines = [
            f"listener {self.port} {HOST}",
            f"certfile {self.cert}",
            f"keyfile {key}",
            f"password_file {passwords}",
            "allow_anonymous false",
            "persistence true",
            f"persistence_location {self.folder}/",
            *(
                ["autosave_on_changes true", "autosave_interval 1"]
                if save_every_change
                else ["autosave_interval 60"]
            ),
            # Keep what a burst from many terminals needs, for subscribers that lag.
            "max_queued_messages 0",
            "max_inflight_messages 0",
            f"log_dest file {self.folder / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to 'mosquitto', who cannot read these
        self.conf = self.folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def mqtt_section(
        self, name: str, password_file: Path, site: str, site_key_file: Path
    ) -> dict[str, object]:
        """The ``[mqtt]`` settings of a terminal that signs in as ``name``; its password is
        written to ``password_file`` (owner-only) unless that exists."""
        if not password_file.exists():
            password_file.write_text(self.users[name] + "\n")
            password_file.chmod(0o600)
        return {
            "enabled": True,
            "host": HOST,
            "port": self.port,
            "tls_ca": str(self.cert),
            "username": name,
            "password_file": str(password_file),
            "site": site,
            "terminal_id": name,
            "site_key_file": str(site_key_file),
        }

    def start(self) -> None:
        """Start and wait until it accepts connections (or fail with its log)."""
        self.process = subprocess.Popen(
            [_mosquitto(), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                pass
            try:  # waits for the process to die, which doubles as the pause between tries
                self.process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            said = self.process.stderr.read().decode() if self.process.stderr else ""
            raise RuntimeError(f"mosquitto exited: {said}")
        raise RuntimeError(f"mosquitto did not listen on {self.port} in {START_TIMEOUT_S} s")

    def _end(self, signum: int) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signum)
        self.process.wait(timeout=30)
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    def stop(self) -> None:
        """A graceful stop: it saves its persistence file first."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """A crash: SIGKILL, nothing saved since its last autosave."""
        self._end(signal.SIGKILL)

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
