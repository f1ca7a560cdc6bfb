"""``facegate run`` (the service) and ``facegate demo`` (the same loop on bundled photos)."""

from __future__ import annotations

import argparse
import signal
import tempfile
from pathlib import Path

from ..camera.demo_sequence import write_sequence
from ..clock import FakeClock, SystemClock
from ..config import load_config
from ..daemon import Daemon, Decision, build_daemon
from ..gallery import create_gallery
from ..gpio.mock import MockGpio
from .common import add_config_argument, config_from_args

DEMO_PHOTOS = Path(__file__).resolve().parents[2] / "tests" / "data" / "faces"
DEMO_FPS = 10


def register(subparsers) -> None:
    run = subparsers.add_parser("run", help="run the door service")
    add_config_argument(run)
    run.add_argument("--quiet", action="store_true", help="do not print each decision")
    run.set_defaults(func=cmd_run)

    demo = subparsers.add_parser(
        "demo", help="enrol a bundled photo and run the service on a replayed visit, mock door")
    demo.add_argument("--photos", type=Path, default=DEMO_PHOTOS,
                      help="folder with obama_1.jpg (enrolled), obama_2.jpg and biden_1.jpg (visitors)")
    demo.add_argument("--workdir", type=Path, help="keep the demo's gallery, key and frames here")
    demo.set_defaults(func=cmd_demo)


def format_decision(d: Decision, origin: float = 0.0) -> str:
    who = d.name or "-"
    similarity = f"{d.similarity:.2f}" if d.similarity is not None else "-"
    reason = f"  ({d.reason})" if d.reason else ""
    return (f"t={d.time - origin:7.2f}s  {d.kind:17} {who:16} similarity {similarity:>5}"
            f"  liveness {d.liveness:4}  -> {d.action}{reason}")


def _install_signal_handlers(daemon: Daemon) -> None:
    def stop(signum, frame):
        daemon.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def cmd_run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    clock = SystemClock()
    report = None if args.quiet else (lambda d: print(format_decision(d), flush=True))
    daemon = build_daemon(config, clock, report=report)
    _install_signal_handlers(daemon)
    daemon.run()
    print(daemon.summary.line(daemon.camera.dropped), flush=True)
    return 0


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
path = "{workdir / 'gallery.db'}"
key_file = "{workdir / 'gallery.key'}"

[enrollment]
min_templates = 1

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

        code = main(["enroll", "--config", str(config_path), "--name", "Barack Obama",
                     str(args.photos / "obama_1.jpg")])
        if code:
            return code
        print(f"replaying {len(written)} frames at {DEMO_FPS} fps: "
              "Barack Obama (a different photo) walks up, then Joe Biden (not enrolled); "
              "liveness is off because the visitors are photos")

        clock = FakeClock()
        gpio = MockGpio(clock)
        origin = clock.now()
        daemon = build_daemon(config, clock, threaded=False, gpio_backend=gpio,
                              report=lambda d: print(format_decision(d, origin), flush=True))
        daemon.run(after_step=lambda: clock.advance(1.0 / DEMO_FPS))
        pulses = [t - origin for t, level in gpio.history(config.door.relay_pin)[1:] if level]
        print(daemon.summary.line(daemon.camera.dropped))
        print(f"relay: {len(pulses)} unlock pulse(s)"
              + "".join(f" at t={t:.2f}s" for t in pulses)
              + f" of {config.door.unlock_seconds:g} s; locked at exit: {not daemon.door.unlocked}")
    return 0
