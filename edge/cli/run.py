"""``facegate run`` (the service), ``facegate lock`` (what systemd runs after it stops)
and ``facegate demo`` (the same loop on bundled photos)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from ..access.door import DoorController
from ..access.gpio import open_backend
from ..access.gpio.mock import MockGpio
from ..clock import FakeClock, SystemClock
from ..config import load_config, load_sections
from ..daemon import Daemon, Outcome, build_daemon
from ..errors import ExitCode
from ..evaluation.demo_sequence import DEMO_PHOTOS, write_sequence
from ..gallery.store import create_gallery
from .common import add_config_argument, config_from_args

DEMO_FPS = 10


def register(subparsers) -> None:
    run = subparsers.add_parser("run", help="run the door service")
    add_config_argument(run)
    run.add_argument("--quiet", action="store_true", help="do not print each decision")
    run.set_defaults(func=cmd_run)

    lock = subparsers.add_parser(
        "lock",
        help="drive the relay to its locked level (systemd runs it after the service "
        "stops, however it stopped)",
    )
    add_config_argument(lock)
    lock.set_defaults(func=cmd_lock)

    demo = subparsers.add_parser(
        "demo", help="enrol a bundled photo and run the service on a replayed visit, mock door"
    )
    demo.add_argument(
        "--photos",
        type=Path,
        default=DEMO_PHOTOS,
        help="folder with obama_1.jpg (enrolled), obama_2.jpg and biden_1.jpg (visitors)",
    )
    demo.add_argument("--workdir", type=Path, help="keep the demo's gallery, key and frames here")
    demo.set_defaults(func=cmd_demo)


def format_outcome(d: Outcome, origin: float = 0.0, names: bool = False) -> str:
    """One line for the log; a person is shown by id unless ``names`` (daemon.log_names)."""
    who = (d.name if names else None) or (f"#{d.person_id}" if d.person_id is not None else "-")
    similarity = f"{d.similarity:.2f}" if d.similarity is not None else "-"
    reason = f"  ({d.reason})" if d.reason else ""
    return (
        f"t={d.time - origin:7.2f}s  {d.kind:17} {who:16} similarity {similarity:>5}"
        f"  liveness {d.liveness:4}  -> {d.action}{reason}"
    )


# Every signal whose default action ends or stops the process (man 7 signal) is a
# stop that locks first, except:
# * SIGKILL and SIGSTOP, which cannot be caught: 'facegate lock' runs after the
#   process is gone (systemd's ExecStopPost), and a stopped daemon stops pinging the
#   watchdog, whose kill is followed by the same;
# * SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGTRAP, raised by the CPU on a faulting or
#   trapping instruction: a handler would return to that instruction;
# * SIGPIPE, which Python ignores so that writing to a closed pipe raises instead.
# The terminal stop signals (SIGTSTP, SIGTTIN, SIGTTOU) are caught as well: a
# stopped daemon would hold an unlock pulse for as long as it stayed stopped.
NOT_STOPPING = {signal.SIGCHLD, signal.SIGCONT, signal.SIGURG, signal.SIGWINCH}
LEFT_TO_OTHERS = {
    signal.SIGKILL,
    signal.SIGSTOP,
    signal.SIGSEGV,
    signal.SIGBUS,
    signal.SIGILL,
    signal.SIGFPE,
    signal.SIGTRAP,
    signal.SIGPIPE,
}
STOP_SIGNALS = tuple(sorted(signal.valid_signals() - NOT_STOPPING - LEFT_TO_OTHERS))
# systemd and a terminal ask the service to stop with these; any other stop signal
# came from something else, so the exit status says which (128 + N, as a shell
# reports a process killed by signal N) and systemd restarts the service.
REQUESTED = (signal.SIGTERM, signal.SIGINT)


def signal_name(signum: int) -> str:
    """'SIGHUP', or 'SIGRTMIN+3' for the real-time signals Python leaves unnamed."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIGRTMIN+{signum - signal.SIGRTMIN}"


def stop_on_signals(daemon: Daemon) -> list[int]:
    """Make every signal in STOP_SIGNALS lock the door and stop ``daemon``; returns
    the list the handler appends each received signal number to."""
    received: list[int] = []

    def stop(signum, frame):
        daemon.request_stop()  # first: it locks
        received.append(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
    return received


# syslog priorities (syslog(3)) of the logging levels, for journald's "<N>" prefixes
_PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3}


def _to_the_journal(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """True when ``stream`` is the journal: systemd.exec(5) sets JOURNAL_STREAM to the
    device and inode of the stream it connected (a child may inherit it elsewhere)."""
    try:
        device, inode = (int(part) for part in environ.get("JOURNAL_STREAM", "").split(":"))
        info = os.fstat(stream.fileno())
    except (ValueError, OSError):
        return False
    return (info.st_dev, info.st_ino) == (device, inode)


class _OneLine(logging.Formatter):
    """One line per message (a traceback's lines joined); led by its syslog priority
    for the journal, which reads and strips it, else by the level's name."""

    def __init__(self, journal: bool) -> None:
        super().__init__(
            "%(name)s: %(message)s" if journal else "%(levelname)s %(name)s: %(message)s"
        )
        self._journal = journal

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record).replace("\n", " | ")
        if not self._journal:
            return line
        priority = _PRIORITIES.get(record.levelno, 2 if record.levelno > logging.ERROR else 7)
        return f"<{priority}>{line}"


def configure_logging(
    stream: TextIO | None = None, environ: Mapping[str, str] = os.environ
) -> logging.Handler:
    """The service's own messages (camera down, control socket, ...) at INFO and above,
    one line each on ``stream`` (stderr unless given). Returns the handler."""
    stream = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_OneLine(journal=_to_the_journal(stream, environ)))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handler


def cmd_run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    clock = SystemClock()
    names = config.daemon.log_names
    report = None if args.quiet else (lambda d: print(format_outcome(d, names=names), flush=True))
    configure_logging()
    daemon = build_daemon(config, clock, report=report)
    received = stop_on_signals(daemon)
    daemon.run()
    print(daemon.summary.line(daemon.camera.dropped), flush=True)
    if received and received[0] not in REQUESTED:
        print(f"stopped by {signal_name(received[0])}; the door is locked", flush=True)
        return 128 + received[0]
    return ExitCode.OK


def cmd_lock(args: argparse.Namespace) -> int:
    door_config, gpio_config = load_sections(args.config, ("door", "gpio")).values()
    clock = SystemClock()
    with DoorController(door_config, open_backend(gpio_config, clock), clock.now()):
        pass  # set up locked, LED and buzzer off; closing keeps the outputs driven
    print(f"locked: the relay on GPIO{door_config.relay_pin} is at its locked level")
    return ExitCode.OK


def _demo_config(workdir: Path, frames: Path) -> str:
    return f"""
[camera]
source = "replay"
replay_path = "{frames}"
fps = {DEMO_FPS}
realtime = false

[gpio]
backend = "mock"

[gallery]
path = "{workdir / "gallery.db"}"
key_file = "{workdir / "gallery.key"}"

[enrolment]
min_templates = 1

# The demo's output is read by a person trying facegate: names are clearer than ids.
[daemon]
log_names = true

# Nothing but the demo talks to this door.
[control]
socket = ""

# The visitors are still photos, which is what a presentation attack is: a real
# door keeps liveness on (see README).
[liveness]
level = "off"
"""


def cmd_demo(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="facegate-demo-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        frames = workdir / "frames"
        visitors = [args.photos / "obama_2.jpg", args.photos / "biden_1.jpg"]
        written = write_sequence(visitors, frames)
        config_path = workdir / "config.toml"
        config_path.write_text(_demo_config(workdir, frames))
        config = load_config(config_path)
        create_gallery(config.gallery)
        # Enrol through the administrator's own command, exactly as a person would.
        from . import main

        code = main(
            [
                "enrol",
                "--config",
                str(config_path),
                "--name",
                "Barack Obama",
                str(args.photos / "obama_1.jpg"),
            ]
        )
        if code:
            return code
        print(
            f"replaying {len(written)} frames at {DEMO_FPS} fps: "
            "Barack Obama (a different photo) walks up, then Joe Biden (not enrolled); "
            "liveness is off because the visitors are photos"
        )

        clock = FakeClock()
        gpio = MockGpio(clock)
        origin = clock.now()
        names = config.daemon.log_names
        daemon = build_daemon(
            config,
            clock,
            threaded=False,
            gpio=gpio,
            report=lambda d: print(format_outcome(d, origin, names), flush=True),
        )
        daemon.run(after_step=lambda: clock.advance(1.0 / DEMO_FPS))
        pulses = [t - origin for t, level in gpio.history(config.door.relay_pin)[1:] if level]
        print(daemon.summary.line(daemon.camera.dropped))
        print(
            f"relay: {len(pulses)} unlock pulse(s)"
            + "".join(f" at t={t:.2f}s" for t in pulses)
            + f" of {config.door.unlock_seconds:g} s; locked at exit: {not daemon.door.unlocked}"
        )
    return 0
