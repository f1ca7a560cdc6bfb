"""The daemon end to end: real models, a real encrypted gallery, replayed visits
(the demo's photos: obama_1 is enrolled, obama_2 and biden_1 walk up), a mock door
and a FakeClock driven one ``step`` at a time. The real service in a subprocess,
stopped by signals mid-pulse, is in test_daemon_faults.py.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.access.decision import DecisionMachine
from edge.access.door import DoorController
from edge.access.gpio.mock import MockGpio
from edge.camera import CameraError, FrameSource
from edge.camera.replay import ReplaySource
from edge.camera.supervisor import CameraSupervisor
from edge.clock import FakeClock
from edge.control import ControlClient, ControlError
from edge.daemon import GALLERY_WAIT_S, RECORD_WAIT_S, Daemon, Decision, build_daemon
from edge.errors import ConfigError
from edge.evaluation.demo_sequence import BACKGROUND_BGR, FRAME_SIZE, write_sequence
from edge.gallery.enrolment import EnrollmentSession
from edge.gallery.matcher import Matcher
from edge.gallery.store import Gallery, create_gallery
from edge.liveness.policy import LivenessChecker
from edge.notify import Notifier
from edge.vision.pipeline import Pipeline
from tests.helpers import (
    FACE_FRAMES,
    FACES,
    FPS,
    GAP_FRAMES,
    OBAMA,
    WALL_START,
    enrol_obama,
    make_config,
    received,
    write_lock_held,
    write_visits,
)

CONTACT_PIN, EXIT_PIN = 27, 22


# --- module-wide: models, replay folders, the enrolled face ---------------------------


@pytest.fixture(scope="module")
def replays(tmp_path_factory) -> Path:
    """One folder per visitor (a gap, then the face approaching) and one of empty frames."""
    root = tmp_path_factory.mktemp("replays")
    for name in ("obama_2", "biden_1"):
        write_sequence([FACES / f"{name}.jpg"], root / name, FACE_FRAMES, GAP_FRAMES)
    (root / "empty").mkdir()
    blank = np.empty((FRAME_SIZE[1], FRAME_SIZE[0], 3), np.uint8)
    blank[:] = BACKGROUND_BGR
    for i in range(3):
        cv2.imwrite(str(root / "empty" / f"frame_{i:04d}.jpg"), blank)
    return root


# --- an in-process daemon on a FakeClock ----------------------------------------------


@dataclass
class Rig:
    daemon: Daemon
    clock: FakeClock
    gpio: MockGpio
    config: object
    decisions: list[Decision]

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

    def events(self, kind: str | None = None):
        return self.daemon.gallery.events(kind=kind)


def build_rig(
    config,
    pipeline: Pipeline,
    *,
    wrap_source: Callable[[FrameSource], FrameSource] = lambda s: s,
    notifier: Notifier | None = None,
) -> Rig:
    """Wire a Daemon as build_daemon does, but with the module's loaded pipeline and
    a replay source the test may wrap."""
    clock = FakeClock()
    gpio = MockGpio(clock)
    decisions: list[Decision] = []
    door = DoorController(config.door, gpio, clock.now())
    gallery = Gallery.from_config(config.gallery, busy_timeout=GALLERY_WAIT_S)
    matcher = Matcher(gallery, config.matcher, pipeline.model_id)
    matcher.refresh()
    source = wrap_source(ReplaySource.from_config(config.camera, clock))
    liveness = None
    if config.liveness.level != "off":
        liveness = LivenessChecker.from_config(
            config.liveness, config.models, pipeline.detector, ir_camera=False
        )
    checked = liveness is not None
    daemon = Daemon(
        pipeline=pipeline,
        matcher=matcher,
        gallery=gallery,
        decision=DecisionMachine(config.decision, gallery.access_status, checked),
        door=door,
        camera=CameraSupervisor.from_config(source, config.camera, clock),
        enrollment=EnrollmentSession(config.enrollment, clock, checked),
        notifier=notifier or Notifier({}),
        clock=clock,
        liveness=liveness,
        threaded=False,
        report=decisions.append,
    )
    return Rig(daemon, clock, gpio, config, decisions)


@pytest.fixture
def rigs():
    """Builds rigs and shuts each down the way ``Daemon.run`` does at exit."""
    built: list[Rig] = []

    def build(*args, **kwargs) -> Rig:
        built.append(build_rig(*args, **kwargs))
        return built[-1]

    yield build
    for rig in built:
        rig.daemon.camera.stop()
        rig.daemon.door.close()
        rig.daemon.gallery.close()


VISIT = GAP_FRAMES + FACE_FRAMES


# --- 1. who gets in ----------------------------------------------------------------------


def test_enrolled_person_gets_one_pulse_per_visit_and_another_after_the_cooldown(
    tmp_path, replays, pipeline, obama_template, rigs
):
    config = make_config(tmp_path, replays / "obama_2", camera={"loop": True})
    person_id = enrol_obama(config, obama_template)
    rig = rigs(config, pipeline)

    rig.steps(VISIT)
    assert len(rig.pulses()) == 1
    assert [e.person_id for e in rig.events("granted")] == [person_id]

    rig.steps(VISIT)  # the replay loops: the same person comes back after 0.8 s away
    pulses = rig.pulses()
    assert len(pulses) == 2
    for on, off in pulses:
        assert off == pytest.approx(on + config.door.unlock_seconds, abs=1.0 / FPS)
    assert pulses[1][0] - pulses[0][0] == pytest.approx(VISIT / FPS, abs=2.0 / FPS)
    granted = rig.events("granted")
    assert [(e.person_id, e.name) for e in granted] == [(person_id, OBAMA)] * 2
    assert all(e.score > 0.4 for e in granted)
    assert [d.kind for d in rig.decisions] == ["granted", "granted"]
    assert not rig.daemon.door.unlocked


def test_unknown_person_is_denied_and_the_door_stays_locked(
    tmp_path, replays, pipeline, obama_template, rigs
):
    config = make_config(tmp_path, replays / "biden_1")
    enrol_obama(config, obama_template)
    rig = rigs(config, pipeline)
    rig.steps(VISIT)
    assert rig.relay() == []
    denied = rig.events("denied_unknown")
    assert len(denied) == 1 and denied[0].person_id is None and denied[0].reason == "no match"
    assert rig.events("granted") == []


def test_disabled_person_is_denied(tmp_path, replays, pipeline, obama_template, rigs):
    config = make_config(tmp_path, replays / "obama_2")
    person_id = enrol_obama(config, obama_template)
    rig = rigs(config, pipeline)
    rig.daemon.gallery.set_enabled(person_id, False)
    rig.steps(VISIT)
    assert rig.relay() == []
    denied = rig.events("denied_disabled")
    assert [(e.person_id, e.reason) for e in denied] == [(person_id, "disabled")]
    assert rig.events("granted") == []


@pytest.mark.parametrize(
    "validity, reason",
    [
        ({"valid_until": -3600.0}, "expired"),
        ({"valid_from": 86400.0}, "not_yet_valid"),
    ],
)
def test_person_outside_their_schedule_is_denied(
    tmp_path, replays, pipeline, obama_template, rigs, validity, reason
):
    config = make_config(tmp_path, replays / "obama_2")
    person_id = enrol_obama(
        config, obama_template, **{k: WALL_START + offset for k, offset in validity.items()}
    )
    rig = rigs(config, pipeline)
    rig.steps(VISIT)
    assert rig.relay() == []
    denied = rig.events("denied_schedule")
    assert [(e.person_id, e.reason) for e in denied] == [(person_id, reason)]
    assert [d.action for d in rig.decisions] == ["stay locked"]


def nuaa_replay(root: Path, frames: list[Path], name: str) -> Path:
    """A replay folder of NUAA frames, in order."""
    folder = root / name
    folder.mkdir()
    for i, path in enumerate(frames):
        (folder / f"frame_{i:04d}.jpg").symlink_to(path)
    return folder


def test_with_liveness_on_a_printed_photo_is_denied_and_the_live_person_granted(
    tmp_path, shared_data, pipeline, rigs
):
    # NUAA subject 0009: frames nothing in facegate was fitted or tuned on.
    live = sorted((shared_data / "nuaa_train" / "ClientRaw" / "0009").glob("*_01_*.jpg"))
    prints = sorted((shared_data / "nuaa_train" / "ImposterRaw" / "0009").glob("*.jpg"))
    enrol_image = cv2.imread(str(live[0]))
    template = pipeline.embed(enrol_image, pipeline.detect(enrol_image)[0])
    spoof_config = make_config(
        tmp_path, nuaa_replay(tmp_path, prints[:20], "prints"), liveness={"level": "standard"}
    )
    create_gallery(spoof_config.gallery)
    with Gallery.from_config(spoof_config.gallery) as gallery:
        person_id = gallery.add_person(
            "subject 0009", "user", [template], [0.9], now=WALL_START - 1.0
        )
    rig = rigs(spoof_config, pipeline)
    rig.steps(20)
    assert rig.relay() == []
    assert rig.events("granted") == []
    spoofed = rig.events("denied_spoof")
    assert len(spoofed) == 1 and "rgb score" in spoofed[0].reason
    assert spoofed[0].liveness < spoof_config.liveness.threshold

    live_config = make_config(
        tmp_path, nuaa_replay(tmp_path, live[1:21], "live"), liveness={"level": "standard"}
    )
    rig = rigs(live_config, pipeline)
    rig.steps(20)
    granted = rig.events("granted")
    assert [e.person_id for e in granted] == [person_id]
    assert granted[0].liveness >= live_config.liveness.threshold
    assert len(rig.pulses()) == 1


# --- 2. the camera dies mid-pulse ---------------------------------------------------------


class Unpluggable:
    """A FrameSource that fails like an unplugged camera while ``unplugged`` is set."""

    def __init__(self, source: FrameSource):
        self.source = source
        self.unplugged = False

    def open(self) -> None:
        if self.unplugged:
            raise CameraError("no camera on /dev/video0")
        self.source.open()

    def read(self):
        if self.unplugged:
            raise CameraError("camera unplugged")
        return self.source.read()

    def close(self) -> None:
        self.source.close()

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def test_camera_loss_locks_at_once_and_the_daemon_grants_again_when_it_returns(
    tmp_path, replays, pipeline, obama_template, rigs
):
    config = make_config(
        tmp_path, replays / "obama_2", camera={"loop": True}, door={"unlock_seconds": 5.0}
    )
    enrol_obama(config, obama_template)
    camera: list[Unpluggable] = []

    def unpluggable(source: FrameSource) -> Unpluggable:
        camera.append(Unpluggable(source))
        return camera[0]

    rig = rigs(config, pipeline, wrap_source=unpluggable)
    rig.step_until(lambda: rig.daemon.door.unlocked)
    unlocked_at = rig.pulses()[0][0]

    # The reader takes one more frame while the loop is busy, then the camera fails,
    # and the loop gets round to both a while later.
    rig.daemon.camera.poll_once()
    camera[0].unplugged = True
    rig.daemon.camera.poll_once()
    rig.clock.advance(2.0)
    rig.step()
    assert not rig.daemon.door.unlocked
    ((on, off),) = rig.pulses()
    assert on == unlocked_at and off < unlocked_at + 3.0  # locked then, not after the 5 s pulse
    assert rig.daemon.camera.status.state == "down"

    rig.steps(10)  # down for a while: reopen attempts fail, the relay is left alone
    assert len(rig.relay()) == 2
    assert rig.daemon.camera.status.reason == "no camera on /dev/video0"

    camera[0].unplugged = False
    rig.step_until(lambda: rig.daemon.door.unlocked)
    assert rig.daemon.camera.status.ok
    assert len(rig.pulses()) == 2
    assert len(rig.events("granted")) == 2


# --- 3. the event log comes first ---------------------------------------------------------


def test_a_locked_gallery_keeps_the_door_shut_then_refuses_the_grant_and_recovers(
    tmp_path, pipeline, obama_template, rigs
):
    # Two visits 4 s apart: the first while another process holds the write lock.
    config = make_config(tmp_path, write_visits(tmp_path / "visits", 2, gap_frames=40))
    enrol_obama(config, obama_template)
    rig = rigs(config, pipeline)
    with write_lock_held(config.gallery):
        rig.step_until(lambda: [d.kind for d in rig.decisions] == ["denied_unrecorded"], limit=120)
        refused = rig.decisions[0]
        assert rig.relay() == []  # the door never opened
        assert (refused.name, refused.action) == (OBAMA, "stay locked")
        assert "the grant could not be recorded: gallery" in refused.reason
        assert "locked by another process" in refused.reason
        # decided at frame time refused.time, refused RECORD_WAIT_S later (this step)
        waited = rig.clock.now() - 1.0 / FPS - refused.time
        assert RECORD_WAIT_S <= waited < RECORD_WAIT_S + 2.0 / FPS
        assert rig.daemon.running
    rig.step_until(lambda: rig.daemon.door.unlocked, limit=80)
    assert [d.kind for d in rig.decisions] == ["denied_unrecorded", "granted"]
    # the refusal waited in memory and reached the log before the grant
    assert [(e.kind, e.name) for e in rig.events()][1:] == [
        ("denied_unrecorded", OBAMA),
        ("granted", OBAMA),
    ]


def test_a_grant_is_recorded_before_the_door_opens(
    tmp_path, replays, pipeline, obama_template, rigs
):
    config = make_config(tmp_path, replays / "obama_2")
    enrol_obama(config, obama_template)
    rig = rigs(config, pipeline)
    log_event = rig.daemon.gallery.log_event
    relay_when_logged = []

    def watched(kind, *args, **kwargs):
        relay_when_logged.append((kind, rig.gpio.level(config.door.relay_pin)))
        return log_event(kind, *args, **kwargs)

    rig.daemon.gallery.log_event = watched
    rig.step_until(lambda: rig.daemon.door.unlocked)
    assert relay_when_logged == [("granted", False)]  # logged while still locked


# --- 4. systemd notifications -----------------------------------------------------------


def test_run_says_ready_first_and_stopping_last(
    tmp_path, replays, pipeline, obama_template, rigs, systemd
):
    path, sock = systemd
    config = make_config(tmp_path, replays / "empty")
    enrol_obama(config, obama_template)
    rig = rigs(config, pipeline, notifier=Notifier({"NOTIFY_SOCKET": path}))
    rig.daemon.run(after_step=lambda: rig.clock.advance(1.0 / FPS))
    messages = received(sock)
    assert messages[0] == "READY=1" and messages[-1] == "STOPPING=1"
    assert "STATUS=ok; 1 templates" in messages


def test_watchdog_pings_come_from_steps_and_stop_when_the_loop_stalls(
    tmp_path, replays, pipeline, obama_template, rigs, systemd
):
    path, sock = systemd
    config = make_config(tmp_path, replays / "empty")
    enrol_obama(config, obama_template)
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
    rig = rigs(config, pipeline, notifier=notifier)

    def pings() -> int:
        return received(sock).count("WATCHDOG=1")

    rig.daemon.step()  # the first pass pings at once
    assert pings() == 1
    for _ in range(3):  # 0.25, 0.5, 0.75 s: a ping is due every half interval (0.5 s)
        rig.clock.advance(0.25)
        rig.daemon.step()
    assert pings() == 1
    rig.clock.advance(60.0)  # the loop hangs: no step, however late it gets
    assert pings() == 0
    rig.daemon.step()
    assert pings() == 1


# --- 5. door contact and exit button -------------------------------------------------


def test_door_contact_and_exit_button_events_reach_the_gallery(
    tmp_path, replays, pipeline, obama_template, rigs
):
    config = make_config(
        tmp_path,
        replays / "empty",
        door={
            "door_contact_pin": CONTACT_PIN,
            "door_contact_pull": "down",  # high = open
            "exit_button_pin": EXIT_PIN,
            "held_open_seconds": 1.0,  # low = pressed (pull-up)
        },
    )
    enrol_obama(config, obama_template)
    rig = rigs(config, pipeline)
    rig.steps(2)
    assert rig.events() and {e.kind for e in rig.events()} == {"enrolled"}

    rig.gpio.drive(CONTACT_PIN, True)  # forced open while locked
    rig.steps(2)  # debounced
    assert [e.reason for e in rig.events("door_forced")] == ["opened while locked"]
    rig.steps(10)
    assert [e.reason for e in rig.events("door_held_open")] == ["open for 1 s"]
    rig.gpio.drive(CONTACT_PIN, False)
    rig.steps(2)
    assert rig.relay() == []

    rig.gpio.drive(EXIT_PIN, False)  # someone leaving presses the exit button
    rig.steps(2)
    rig.gpio.drive(EXIT_PIN, True)
    assert rig.daemon.door.unlocked
    assert len(rig.events("exit_request")) == 1
    rig.gpio.drive(CONTACT_PIN, True)  # and opens the door during the pulse: not forced
    rig.steps(2)
    rig.gpio.drive(CONTACT_PIN, False)
    rig.steps(5)
    assert len(rig.pulses()) == 1 and not rig.daemon.door.unlocked
    assert [e.kind for e in rig.events()] == [
        "enrolled",
        "door_forced",
        "door_held_open",
        "exit_request",
    ]
    assert [(d.kind, d.action) for d in rig.decisions] == [
        ("door_forced", "alarm"),
        ("door_held_open", "alarm"),
        ("exit_request", "unlock"),
    ]


def test_enrol_button_after_an_admin_is_recognised_enrols_the_next_face(
    tmp_path, pipeline, obama_template, rigs
):
    """Admin recognised -> enrol button held -> the next person's frames become a new,
    separate person (never the admin's own face)."""
    enrol_pin = 23
    visits = tmp_path / "visits"
    write_sequence([FACES / "obama_2.jpg", FACES / "biden_1.jpg"], visits, FACE_FRAMES, GAP_FRAMES)
    config = make_config(
        tmp_path,
        visits,
        door={"enrol_button_pin": enrol_pin, "enrol_hold_seconds": 0.5},
        enrollment={"frames": 4, "min_templates": 2, "admin_window_s": 5.0},
    )
    create_gallery(config.gallery)
    with Gallery.from_config(config.gallery) as gallery:
        admin = gallery.add_person(OBAMA, "admin", [obama_template], [0.9], now=WALL_START - 1.0)
    rig = rigs(config, pipeline)

    def kinds() -> list[str]:
        return [d.kind for d in rig.decisions]

    rig.gpio.drive(enrol_pin, True)  # released (active low)
    rig.step_until(lambda: "granted" in kinds())  # the administrator is recognised
    rig.steps(FACE_FRAMES)  # ... and walks away
    rig.gpio.drive(enrol_pin, False)
    rig.step_until(lambda: "enrolment_started" in kinds(), limit=10)
    rig.gpio.drive(enrol_pin, True)
    rig.step_until(lambda: "enrolled" in kinds(), limit=40)

    people = rig.daemon.gallery.people()
    (new,) = [p for p in people if p.id != admin]
    assert new.role == "user" and new.templates >= 2
    biden = cv2.imread(str(FACES / "biden_1.jpg"))
    match = rig.daemon.matcher.match(pipeline.embed(biden, pipeline.detect(biden)[0]))
    assert match.person_id == new.id
    assert [e.kind for e in rig.events("enrolled")] == ["enrolled", "enrolled"]


def test_enrol_button_without_an_admin_is_refused(
    tmp_path, replays, pipeline, obama_template, rigs
):
    enrol_pin = 23
    config = make_config(
        tmp_path,
        replays / "obama_2",
        door={"enrol_button_pin": enrol_pin, "enrol_hold_seconds": 0.5},
    )
    enrol_obama(config, obama_template)  # a user, not an administrator
    rig = rigs(config, pipeline)
    rig.gpio.drive(enrol_pin, True)
    rig.step_until(lambda: any(d.kind == "granted" for d in rig.decisions))
    rig.gpio.drive(enrol_pin, False)
    rig.step_until(lambda: any(d.kind == "enrolment_refused" for d in rig.decisions), limit=10)
    refused = [d for d in rig.decisions if d.kind == "enrolment_refused"]
    assert "administrator" in refused[0].reason
    assert len(rig.daemon.gallery.people()) == 1


# --- 6. the control socket ----------------------------------------------------------------


@pytest.fixture
def served(tmp_path, replays, obama_template):
    """A daemon wired by build_daemon with its control socket in tmp_path, remote unlock
    allowed, on a FakeClock and a mock door: (daemon, clock, gpio, socket path, config)."""
    built = []

    def build(replay: str = "empty", **sections: dict):
        path = tmp_path / "control.sock"
        settings = {
            "camera": {"loop": True},
            "control": {"socket": str(path), "allow_remote_unlock": True},
        }
        for name, values in sections.items():
            settings.setdefault(name, {}).update(values)
        config = make_config(tmp_path, replays / replay, **settings)
        enrol_obama(config, obama_template)
        clock = FakeClock()
        gpio = MockGpio(clock)
        daemon = build_daemon(config, clock, threaded=False, gpio_backend=gpio)
        built.append(daemon)
        return daemon, clock, gpio, path, config

    yield build
    for daemon in built:
        daemon.camera.stop()
        daemon.door.close()
        daemon.gallery.close()
        daemon.control_server.close()


def ask(daemon, clock, request: Callable[[], dict], limit: int = 500) -> dict:
    """``request()`` in a thread while the loop steps, until it is answered."""
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(request)
        for _ in range(limit):
            if answer.done():
                return answer.result()
            daemon.step()
            clock.advance(1.0 / FPS)
        return answer.result(timeout=0)


def test_a_local_tool_reads_the_status_and_unlocks_through_the_control_socket(served):
    daemon, clock, gpio, path, config = served()
    relay = config.door.relay_pin
    daemon.step()
    with ControlClient(path) as client, ControlClient(path) as listener:
        status = client.request("status")
        assert {k: status[k] for k in ("door", "camera", "templates", "lockout", "liveness")} == {
            "door": "locked",
            "camera": "ok",
            "templates": 1,
            "lockout": False,
            "liveness": "off",
        }
        decisions = listener.decisions()
        answer = ask(
            daemon, clock, lambda: client.request("unlock", by="web:alice", reason="a delivery")
        )
        assert answer == {"unlocked": True}
        assert [level for _, level in gpio.history(relay)] == [False, True]
        (event,) = daemon.gallery.events(kind="remote_unlock")
        assert event.reason == "asked by web:alice: a delivery"
        published = next(decisions)["decision"]
        assert (published["kind"], published["action"]) == ("remote_unlock", "unlock")
        daemon.step()
        assert client.request("status")["door"] == "unlocked"


def test_a_remote_unlock_is_refused_during_a_lockout(served):
    daemon, clock, gpio, path, config = served(
        "biden_1", decision={"lockout_failures": 1, "lockout_seconds": 600.0}
    )
    for _ in range(60):
        daemon.step()
        clock.advance(1.0 / FPS)
        if daemon.decision.locked_out:
            break
    with ControlClient(path) as client:
        assert client.request("status")["lockout"] is True
        with pytest.raises(ControlError, match="lockout"):
            ask(daemon, clock, lambda: client.request("unlock", by="web:alice"))
    assert gpio.history(config.door.relay_pin)[1:] == []
    assert daemon.gallery.events(kind="remote_unlock") == []


def test_a_remote_unlock_the_gallery_cannot_record_is_refused(served):
    daemon, clock, gpio, path, config = served()
    daemon.step()
    with ControlClient(path) as client, write_lock_held(config.gallery):
        with pytest.raises(ControlError, match="could not be recorded.*locked by another"):
            ask(daemon, clock, lambda: client.request("unlock", by="web:alice"))
    assert gpio.history(config.door.relay_pin)[1:] == []
    assert daemon.gallery.events(kind="remote_unlock") == []


def test_the_control_socket_goes_when_the_service_stops(served):
    daemon, clock, gpio, path, config = served(camera={"loop": False})  # the run ends
    assert path.exists()
    daemon.run(after_step=lambda: clock.advance(1.0 / FPS))
    assert not path.exists()


def test_a_control_socket_that_cannot_be_made_stops_the_start_with_the_door_locked(
    tmp_path, replays, obama_template
):
    config = make_config(
        tmp_path, replays / "empty", control={"socket": str(tmp_path / "none" / "c.sock")}
    )
    enrol_obama(config, obama_template)
    clock = FakeClock()
    gpio = MockGpio(clock)
    with pytest.raises(ConfigError, match=r"control.socket: cannot serve .*none/c.sock"):
        build_daemon(config, clock, threaded=False, gpio_backend=gpio)
    assert gpio.closed and {level for _, level in gpio.history(config.door.relay_pin)} == {False}
