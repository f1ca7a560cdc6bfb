"""sd_notify for systemd's Type=notify and watchdog, with no libsystemd.

Outside systemd (no NOTIFY_SOCKET) every call does nothing. The watchdog is pinged
only from the main loop and only when half the interval has passed, so a loop that
stalls stops pinging and systemd restarts the service.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


class Notifier:
    """Sends READY/STATUS/STOPPING/WATCHDOG datagrams to ``$NOTIFY_SOCKET``.

    ``environ`` and ``pid`` are injectable for tests. The watchdog is enabled when
    ``WATCHDOG_USEC`` is a positive integer and ``WATCHDOG_PID`` is unset or ours.
    Send failures are swallowed: a missed ping is for the watchdog to judge.
    """

    def __init__(self, environ: Mapping[str, str] | None = None, pid: int | None = None):
        env = os.environ if environ is None else environ
        self._address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self._interval = _watchdog_interval(env, os.getpid() if pid is None else pid)
        self._socket: socket.socket | None = None
        self._last_ping: float | None = None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds systemd waits for a ping, or None when there is no watchdog."""
        return self._interval if self.enabled else None

    def ready(self) -> bool:
        return self._send("READY=1")

    def status(self, text: str) -> bool:
        # one line: a newline would start a new, unintended assignment
        return self._send("STATUS=" + " ".join(text.splitlines()))

    def stopping(self) -> bool:
        return self._send("STOPPING=1")

    def watchdog_due(self, now: float) -> bool:
        """True when a ping is owed: never sent, or half the interval has passed."""
        interval = self.watchdog_interval
        if interval is None:
            return False
        return self._last_ping is None or now - self._last_ping >= interval / 2

    def ping(self, now: float) -> bool:
        """Send WATCHDOG=1 if due (call every loop); True when one was sent."""
        if not self.watchdog_due(now):
            return False
        self._last_ping = now
        return self._send("WATCHDOG=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _send(self, message: str) -> bool:
        if self._address is None:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto(message.encode("utf-8"), self._address)
        except OSError:
            return False
        return True


def _socket_address(value: str) -> str | bytes | None:
    if value.startswith("@"):
        return b"\0" + value[1:].encode("utf-8")  # abstract namespace
    if value.startswith("/"):
        return value
    return None  # unset, or a form (vsock:) we do not speak


def _watchdog_interval(env: Mapping[str, str], pid: int) -> float | None:
    watchdog_pid = env.get("WATCHDOG_PID")
    if watchdog_pid is not None and watchdog_pid != str(pid):
        return None  # meant for another process (we were forked or exec'd by it)
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1e6 if usec > 0 else None
