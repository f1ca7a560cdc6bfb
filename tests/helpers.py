"""What test files share: paths, the loaded pipeline, a socket reader, and the daemon
tests' configs and gallery set-ups. Fixtures live in conftest.py, which imports from
here; test files import from here, never from conftest (pytest advises against it).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2

from edge.access.gpio.mock import MockGpio
from edge.camera import FrameSource
from edge.camera.replay import ReplaySource
from edge.clock import FakeClock
from edge.config import Config, parse_config
from edge.daemon import Daemon, Outcome, build_daemon
from edge.evaluation.demo_sequence import DEMO_PHOTOS, build_sequence
from edge.gallery.events import Event, EventFilter
from edge.gallery.store import Gallery, create_gallery
from edge.notify import Notifier
from edge.types import Embedding
from edge.vision.pipeline import Pipeline

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("FACEGATE_SHARED_DATA", REPO.parent / "shared" / "data"))
FIXTURES = REPO / "tests" / "data"
# The demo's photos: obama_1 is enrolled, obama_2 and biden_1 walk up.
FACES = DEMO_PHOTOS
LOCK_HOLDER = REPO / "tests" / "gallery" / "lock_holder.py"

# The daemon tests' replayed visits.
FPS = 10
FACE_FRAMES = 8  # frames of one visit showing the face
GAP_FRAMES = 8  # empty frames before each visit: 0.8 s unseen, longer than COOLDOWN
COOLDOWN = 0.5
OBAMA = "Barack Obama"
WALL_START = FakeClock().wall()  # where every rig's clock starts


@functools.cache
def pipeline(config_text: str = "") -> Pipeline:
    """One loaded pipeline per configuration for the whole test session."""
    return Pipeline.from_config(parse_config(config_text))


def received(sock: socket.socket) -> list[str]:
    """Every datagram waiting on ``sock``, decoded."""
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


def config_text(tmp_path: Path, replay: Path, **sections: dict) -> str:
    """A test config: replay camera, mock GPIO, gallery in tmp_path, short cooldown,
    liveness off (the replays are photos; the liveness tests turn it on), no control
    socket (the control tests put one in tmp_path).

    ``sections`` adds or overrides settings per section, e.g. ``door={...}``.
    """
    base = {
        "camera": {
            "source": "replay",
            "replay_path": str(replay),
            "fps": FPS,
            "realtime": False,
            "backoff_initial": 0.5,
            "backoff_max": 1.0,
        },
        "gpio": {"backend": "mock"},
        "gallery": {
            "path": str(tmp_path / "gallery.db"),
            "key_file": str(tmp_path / "gallery.key"),
        },
        "decision": {"cooldown_seconds": COOLDOWN},
        "door": {"unlock_seconds": 0.5},
        "liveness": {"level": "off"},
        "control": {"socket": ""},
    }
    for name, settings in sections.items():
        base.setdefault(name, {}).update(settings)
    # json writes strings, numbers and booleans the way TOML reads them
    return "\n".join(
        f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in s.items())
        for name, s in base.items()
    )


def make_config(tmp_path: Path, replay: Path, **sections: dict):
    return parse_config(config_text(tmp_path, replay, **sections), source="<test config>")


def write_visits(folder: Path, visits: int, gap_frames: int) -> Path:
    """obama_2 stepping up ``visits`` times, each after ``gap_frames`` empty frames."""
    folder.mkdir(parents=True)
    frames = build_sequence([FACES / "obama_2.jpg"] * visits, FACE_FRAMES, gap_frames)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"frame_{i:04d}.jpg"), frame)
    return folder


@contextlib.contextmanager
def write_lock_held(gallery_config):
    """Another process holds the gallery's write lock for the duration."""
    holder = subprocess.Popen(
        [sys.executable, str(LOCK_HOLDER), gallery_config.path, gallery_config.key_file],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.communicate("release\n", timeout=60)


def add_person_first_schema(gallery: Gallery, name: str, vector) -> int:
    """A person written as the gallery's first schema had them (the migration tests'
    'older facegate'), with one template of model 'm'."""
    with gallery.writing() as conn:
        person_id = conn.execute(
            "INSERT INTO people (name, role, created) VALUES (?, 'user', 100.0)", [name]
        ).lastrowid
        conn.execute(
            "INSERT INTO templates (person_id, model_id, vector, quality, created)"
            " VALUES (?, 'm', ?, 0.9, 100.0)",
            [person_id, vector.astype("<f4").tobytes()],
        )
        conn.execute(
            "INSERT INTO events (time, kind, person_id, name) VALUES (100.0, 'enrolled', ?, ?)",
            [person_id, name],
        )
    return int(person_id)


def enrol_obama(config, template: Embedding, **validity) -> int:
    """Enrol obama_1's face; ``validity`` is valid_from= / valid_until= in wall seconds."""
    create_gallery(config.gallery)
    with Gallery.from_config(config.gallery) as gallery:
        # stamped just before the rigs' FakeClock starts, so the event log stays in order
        return gallery.add_person(
            OBAMA, "user", [template], [0.9], now=WALL_START - 1.0, **validity
        )


# --- an in-process daemon on a FakeClock, stepped by the test ---------------------------


@dataclass
class Rig:
    daemon: Daemon
    clock: FakeClock
    gpio: MockGpio
    config: Config
    outcomes: list[Outcome]

    def steps(self, n: int) -> None:
        """``n`` passes of the loop, one frame interval apart."""
        for _ in range(n):
            self.step()

    def step(self) -> None:
        self.daemon.step()
        self.clock.advance(1.0 / FPS)

    def step_until(self, condition: Callable[[], bool], limit: int = 60) -> None:
        for _ in range(limit):
            self.step()
            if condition():
                return
        raise AssertionError(f"condition not reached within {limit} steps")

    def relay(self) -> list[tuple[float, bool]]:
        """The relay's level changes after its locked set-up."""
        history = self.gpio.history(self.config.door.relay_pin)
        assert history[0][1] is False  # set up locked
        return history[1:]

    def pulses(self) -> list[tuple[float, float | None]]:
        """(unlock time, lock time or None while still unlocked) of each pulse."""
        pulses: list[tuple[float, float | None]] = []
        for t, level in self.relay():
            if level:
                pulses.append((t, None))
            else:
                pulses[-1] = (pulses[-1][0], t)
        return pulses

    def events(self, kind: str | None = None) -> list[Event]:
        return self.daemon.gallery.events(EventFilter(kind=kind))


def build_rig(
    config: Config,
    pipeline: Pipeline,
    *,
    clock: FakeClock | None = None,
    source: FrameSource | None = None,
    wrap_source: Callable[[FrameSource], FrameSource] = lambda s: s,
    notifier: Notifier | None = None,
) -> Rig:
    """A daemon from build_daemon, not threaded, with the given pipeline, a mock door, a
    silent notifier unless one is given, and ``source`` (by default the configured
    replay; one on ``clock``, then) wrapped as the test likes."""
    clock = clock if clock is not None else FakeClock()
    gpio = MockGpio(clock)
    outcomes: list[Outcome] = []
    camera = source if source is not None else ReplaySource.from_config(config.camera, clock)
    daemon = build_daemon(
        config,
        clock,
        pipeline=pipeline,
        source=wrap_source(camera),
        gpio=gpio,
        notifier=notifier or Notifier({}),
        threaded=False,
        report=outcomes.append,
    )
    return Rig(daemon, clock, gpio, config, outcomes)
