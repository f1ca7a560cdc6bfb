"""The loop, fast: a stub pipeline that reads who is at the door from each frame, a
scripted camera, a real encrypted gallery, a mock door and a FakeClock driven one
``step`` at a time. What the real models make of real photos is in
test_daemon_end_to_end.py; the real service in a subprocess in test_daemon_faults.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, TimeoutError
from pathlib import Path

import numpy as np
import pytest

from edge.access.gpio.mock import MockGpio
from edge.camera import CameraError, EndOfStream, FrameSource, SourceBase
from edge.cli.run import format_outcome
from edge.clock import Clock, FakeClock
from edge.control import ControlClient, ControlError
from edge.daemon import RECORD_WAIT_S, build_daemon
from edge.errors import ConfigError
from edge.gallery.store import Gallery, create_gallery
from edge.notify import Notifier
from edge.types import Embedding, Face, FaceAnalysis, Frame, Liveness, Mesh, Quality, Verdict
from tests.helpers import FPS, WALL_START, Rig, make_config, received, write_lock_held

MODEL = "stub-embedder"
ADA, STRANGER = 1, 2  # who a frame shows: the axis of their embedding; 0 is nobody
GAP, FACE = 8, 8  # frames of one visit: unseen (0.8 s, longer than the cooldown), then seen
CONTACT_PIN, EXIT_PIN = 27, 22


def axis(who: int) -> np.ndarray:
    vector = np.zeros(4, np.float32)
    vector[who] = 1.0
    return vector


# A frame's first row names the faces it shows: pixel k is (who, x / 8, y / 8) of its
# k-th face, a 200 x 240 box at (x, y); the first pixel with who = 0 ends the list.
AT_THE_DOOR = (200, 104)  # where a face stands unless the script says otherwise
FACE_SIZE = (200.0, 240.0)
MESH = Mesh(np.zeros((468, 3), np.float32), 1.0)

Shown = int | Sequence[tuple[int, int, int]]  # who at the door, or (who, x, y) per face


def paint(shown: Shown) -> np.ndarray:
    faces = [(shown, *AT_THE_DOOR)] if isinstance(shown, int) else list(shown)
    image = np.zeros((8, 8, 3), np.uint8)
    for k, (who, x, y) in enumerate(faces):
        image[0, k] = (who, x // 8, y // 8)
    return image


class StubPipeline:
    """Sees the faces a frame's first row names (see ``paint``); counts its embeddings."""

    model_id = MODEL

    def __init__(self) -> None:
        self.embedded: list[int] = []  # who each embedding was of, in order
        self.glances: list[int | None] = []  # the input size asked of each detection

    def detect(
        self, image: np.ndarray, lores: np.ndarray | None = None, input_size: int | None = None
    ) -> list[Face]:
        self.glances.append(input_size)
        faces = []
        for who, x8, y8 in image[0].astype(int):
            if not who:
                break
            x, y = 8.0 * x8, 8.0 * y8
            box = (x, y, x + FACE_SIZE[0], y + FACE_SIZE[1])
            # who the face is travels in its landmarks, for analyse_face to embed
            faces.append(Face(box, np.full((5, 2), who, np.float32), 0.9))
        return faces

    def analyse_face(self, frame: Frame, face: Face) -> FaceAnalysis:
        who = int(face.landmarks[0, 0])
        self.embedded.append(who)
        return FaceAnalysis(face, Quality(True), Embedding(axis(who), MODEL), MESH)

    def analyse(self, frame: Frame) -> list[FaceAnalysis]:
        return [self.analyse_face(frame, face) for face in self.detect(frame.image)]


class Scripted(SourceBase):
    """A camera whose frames show, in turn, who ``script`` names (see ``Shown``), 1/FPS s
    apart; then it starts again, or with ``loop=False`` ends as a replay does."""

    def __init__(self, clock: Clock, script: Sequence[Shown], loop: bool = True):
        super().__init__(clock)
        self._script = list(script)
        self._loop = loop
        self._start: float | None = None
        self._next = 0

    def open(self) -> None:
        if self._start is None:
            self._start = self._clock.now()

    def read(self) -> Frame:
        assert self._start is not None, "read before open"
        if self._next == len(self._script):
            if not self._loop:
                raise EndOfStream("end of the script")
            self._next = 0
        image = paint(self._script[self._next])
        self._next += 1
        return self._frame(image, self._start + self._seq / FPS)

    def close(self) -> None:
        pass


def visits(who: int, count: int = 1, gap: int = GAP) -> list[int]:
    return ([0] * gap + [who] * FACE) * count


def enrol_ada(config) -> int:
    create_gallery(config.gallery)
    with Gallery.from_config(config.gallery) as gallery:
        # stamped just before the rigs' FakeClock starts, so the event log stays in order
        return gallery.add_person(
            "Ada", "user", [Embedding(axis(ADA), MODEL)], [0.9], now=WALL_START - 1.0
        )


@pytest.fixture
def door(tmp_path, rigs):
    """A rig on the stub pipeline and a scripted camera, with Ada enrolled:
    door(script, loop=..., wrap_source=..., notifier=..., **config sections)."""

    def build(
        script: Sequence[Shown] = (0,),
        *,
        loop: bool = True,
        wrap_source: Callable[[FrameSource], FrameSource] = lambda s: s,
        notifier: Notifier | None = None,
        **sections: dict,
    ) -> Rig:
        config = make_config(tmp_path, tmp_path, **sections)
        enrol_ada(config)
        clock = FakeClock()
        return rigs(
            config,
            StubPipeline(),
            clock=clock,
            source=Scripted(clock, script, loop),
            wrap_source=wrap_source,
            notifier=notifier,
        )

    return build


# --- who gets in, as the loop sees it ---------------------------------------------------


def test_a_known_face_gets_one_pulse_and_a_stranger_none(door):
    rig = door(visits(ADA) + visits(STRANGER), loop=False)
    rig.steps(2 * (GAP + FACE))
    assert len(rig.pulses()) == 1
    assert [(e.kind, e.name) for e in rig.events()][1:] == [
        ("granted", "Ada"),
        ("denied_unknown", None),
    ]
    assert [(o.kind, o.action) for o in rig.outcomes] == [
        ("granted", "unlock"),
        ("denied_unknown", "stay locked"),
    ]


def test_a_stranger_at_a_door_with_nobody_enrolled_has_no_similarity_not_minus_one(door):
    rig = door(visits(STRANGER), loop=False)
    rig.daemon.gallery.delete_person(rig.daemon.gallery.person("Ada").id)
    rig.steps(GAP + FACE)
    (outcome,) = rig.outcomes
    assert (outcome.kind, outcome.similarity) == ("denied_unknown", None)
    assert "similarity     -  liveness" in format_outcome(outcome)  # the dashboard's "-" too
    (event,) = rig.events("denied_unknown")
    assert event.score is None


# --- tracking: a decided face is not embedded again on every frame -------------------


class RecordedLiveness:
    """Says live to every face and records whose history each check joined."""

    class config:
        level = "standard"

    def __init__(self) -> None:
        self.log: list[tuple[str, int | None, int]] = []  # ("check", track, who) / ("forget", ...)

    def check(self, frame, face, mesh, track=None) -> Liveness:
        self.log.append(("check", track, int(face.landmarks[0, 0])))
        return Liveness(0.9, Verdict.LIVE)

    def forget(self, track: int) -> None:
        self.log.append(("forget", track, 0))

    def reset(self) -> None:
        self.log.append(("reset", None, 0))

    def histories(self) -> list[set[int]]:
        """Who was checked in each history (a track between forgets): one person each."""
        current: dict[int | None, set[int]] = {}
        done: list[set[int]] = []
        for op, track, who in self.log:
            if op == "check":
                current.setdefault(track, set()).add(who)
            elif op == "forget":
                done.append(current.pop(track, set()))
            else:
                done += current.values()
                current = {}
        return [h for h in done + list(current.values()) if h]


def with_recorded_liveness(rig: Rig) -> RecordedLiveness:
    recorder = RecordedLiveness()
    rig.daemon.liveness = recorder  # type: ignore[assignment]
    return recorder


def kinds_and_names(rig: Rig) -> list[tuple[str, str | None]]:
    return [(o.kind, o.name) for o in rig.outcomes]


@pytest.mark.parametrize(("tracking", "embeds"), [(True, 3), (False, FACE)])
def test_a_decided_face_costs_detection_only_and_tracking_off_embeds_every_frame(
    door, tracking, embeds
):
    rig = door(visits(ADA) + visits(STRANGER), loop=False, tracking={"enabled": tracking})
    rig.steps(2 * (GAP + FACE))
    assert kinds_and_names(rig) == [("granted", "Ada"), ("denied_unknown", None)]
    assert len(rig.pulses()) == 1
    # 3 frames decide (votes_required); with tracking the other 5 of each visit are
    # followed, not embedded
    assert rig.daemon.pipeline.embedded == [ADA] * embeds + [STRANGER] * embeds
    if tracking:  # detection glances from the frame after a decision until the face leaves
        glance = rig.config.tracking.glance_input_size
        decided = [glance] * (FACE - 3)
        first = [None] * (GAP + 3) + decided
        second = [glance] + [None] * (GAP - 1 + 3) + decided
        assert rig.daemon.pipeline.glances == first + second


def test_a_decided_face_is_checked_again_every_reverify_s_and_still_gets_one_pulse(door):
    rig = door([ADA] * 35, loop=False, tracking={"reverify_s": 1.0})
    rig.steps(35)
    # frames 0-2 decide (t = 0.2 s); checked again at frames 12, 22 and 32
    assert rig.daemon.pipeline.embedded == [ADA] * 6
    assert kinds_and_names(rig) == [("granted", "Ada")]  # 3.5 s in view, one visit


def test_a_face_that_replaces_a_decided_one_in_the_same_box_is_decided_on_its_own_frames(door):
    # Ada is granted, steps out of view for one frame, and a stranger steps into
    # nearly the same box (8 px off) within the track's TTL.
    stranger = [(STRANGER, AT_THE_DOOR[0] + 8, AT_THE_DOOR[1])]
    rig = door([ADA] * FACE + [0] + [stranger] * FACE, loop=False)
    recorder = with_recorded_liveness(rig)
    rig.steps(2 * FACE + 1)
    assert kinds_and_names(rig) == [("granted", "Ada"), ("denied_unknown", None)]
    # embedded from the stranger's first frame; decided on three of their own
    assert rig.daemon.pipeline.embedded == [ADA] * 3 + [STRANGER] * 3
    assert rig.outcomes[1].time == pytest.approx(rig.outcomes[0].time + (FACE + 1) / FPS)
    assert sorted(map(sorted, recorder.histories())) == [[ADA], [STRANGER]]


def test_a_face_swapped_in_without_a_gap_is_caught_by_the_next_check_and_never_granted(door):
    rig = door([ADA] * FACE + [STRANGER] * 30, loop=False, tracking={"reverify_s": 1.0})
    recorder = with_recorded_liveness(rig)
    rig.steps(FACE + 30)
    # same box, no frame between: followed as the track it took over until the check
    # due 1 s after Ada's decision (frame 12) finds another face; then its own votes
    assert kinds_and_names(rig) == [("granted", "Ada"), ("denied_unknown", None)]
    assert rig.outcomes[1].time == pytest.approx(rig.outcomes[0].time + 1.2)
    # frames 12-14 decide about the stranger, who is then checked at frames 24 and 34
    assert rig.daemon.pipeline.embedded == [ADA] * 3 + [STRANGER] * 5
    assert sorted(map(sorted, recorder.histories())) == [[ADA], [STRANGER]]


def test_two_faces_crossing_each_keep_their_own_identity(door):
    # Ada and a stranger walk past each other (their boxes meet at frames 3-7), then
    # Ada leaves and the stranger stays at the door.
    crossing = [[(ADA, 40 * i, 104), (STRANGER, 400 - 40 * i, 104)] for i in range(11)]
    rig = door(crossing + [[(STRANGER, 0, 104)]] * 8, loop=False)
    recorder = with_recorded_liveness(rig)
    rig.steps(len(crossing) + 8)
    assert kinds_and_names(rig) == [("granted", "Ada"), ("denied_unknown", None)]
    # crowded while their boxes met: Ada (the face at the door) was checked again
    assert rig.daemon.pipeline.embedded.count(ADA) > 3
    assert all(len(h) == 1 for h in recorder.histories())


def test_a_second_face_coming_into_view_gets_the_decided_one_checked_again(door):
    others = [[(ADA, *AT_THE_DOOR), (STRANGER, 600, 400)]] * 5
    rig = door([ADA] * 5 + others, loop=False)
    rig.steps(10)
    # decided at frame 2; a stranger comes into view far from Ada at frame 5: Ada, still
    # the face at the door (as big, and found first), is embedded once more, then followed
    assert rig.daemon.pipeline.embedded == [ADA] * 4
    assert kinds_and_names(rig) == [("granted", "Ada")]


def test_a_box_that_jumps_is_a_new_face_and_embedded_again(door):
    jumped = [(ADA, AT_THE_DOOR[0] + 240, AT_THE_DOOR[1])]  # further than its speed allows
    rig = door([ADA] * 5 + [jumped] * 5, loop=False)
    recorder = with_recorded_liveness(rig)
    rig.steps(10)
    # decided at frame 2; at frame 5 the box is elsewhere: a new track, embedded once,
    # seen to be Ada in her cooldown, then followed
    assert rig.daemon.pipeline.embedded == [ADA] * 4
    assert len({track for op, track, _ in recorder.log if op == "check"}) == 2
    assert kinds_and_names(rig) == [("granted", "Ada")]


def test_a_track_unseen_for_its_ttl_ends_and_the_face_is_embedded_again(door):
    rig = door([ADA] * 5 + [0] * 6 + [ADA] * 5, loop=False, tracking={"ttl_s": 0.5})
    rig.steps(16)
    # 0.6 s unseen ends the track (and the 0.5 s cooldown): the face that comes back
    # is a new track, embedded until decided, and a new visit
    assert rig.daemon.pipeline.embedded == [ADA] * 6
    assert kinds_and_names(rig) == [("granted", "Ada"), ("granted", "Ada")]


def test_an_enrolment_at_the_door_keeps_one_liveness_history_for_the_frames_it_takes(
    tmp_path, rigs
):
    enrol_pin = 23
    config = make_config(
        tmp_path,
        tmp_path,
        door={"enrol_button_pin": enrol_pin, "enrol_hold_seconds": 0.5},
        enrolment={"frames": 4, "min_templates": 2, "admin_window_s": 5.0},
    )
    create_gallery(config.gallery)
    with Gallery.from_config(config.gallery) as gallery:
        gallery.add_person(
            "Ada", "admin", [Embedding(axis(ADA), MODEL)], [0.9], now=WALL_START - 1.0
        )
    clock = FakeClock()
    script = [ADA] * FACE + [0] * 10 + [STRANGER] * 30
    rig = rigs(config, StubPipeline(), clock=clock, source=Scripted(clock, script, False))
    recorder = with_recorded_liveness(rig)
    rig.gpio.drive(enrol_pin, True)  # released (active low)
    rig.steps(FACE)  # the administrator is recognised, and followed
    rig.gpio.drive(enrol_pin, False)
    rig.step_until(lambda: "enrolment_started" in [o.kind for o in rig.outcomes], limit=10)
    rig.gpio.drive(enrol_pin, True)
    rig.step_until(lambda: "enrolled" in [o.kind for o in rig.outcomes], limit=40)
    collected = [(track, who) for op, track, who in recorder.log if op == "check" and who == 2]
    # the four collected frames join one untracked history, never reset; once enrolled,
    # the new person's face is followed again
    assert collected[:4] == [(None, STRANGER)] * 4
    assert all(track is not None for track, _ in collected[4:])
    assert "reset" not in [op for op, _, _ in recorder.log]


# --- the camera dies mid-pulse ---------------------------------------------------------


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


def test_camera_loss_locks_at_once_and_the_daemon_grants_again_when_it_returns(door):
    camera: list[Unpluggable] = []

    def unpluggable(source: FrameSource) -> Unpluggable:
        camera.append(Unpluggable(source))
        return camera[0]

    rig = door(visits(ADA), wrap_source=unpluggable, door={"unlock_seconds": 5.0})
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


# --- the event log comes first ---------------------------------------------------------


def test_a_locked_gallery_keeps_the_door_shut_then_refuses_the_grant_and_recovers(door):
    # Two visits 4 s apart: the first while another process holds the write lock.
    rig = door(visits(ADA, 2, gap=40), loop=False)
    with write_lock_held(rig.config.gallery):
        rig.step_until(lambda: [o.kind for o in rig.outcomes] == ["denied_unrecorded"], limit=120)
        refused = rig.outcomes[0]
        assert rig.relay() == []  # the door never opened
        assert (refused.name, refused.action) == ("Ada", "stay locked")
        assert "the grant could not be recorded: gallery" in refused.reason
        assert "locked by another process" in refused.reason
        # decided at frame time refused.time, refused RECORD_WAIT_S later (this step)
        waited = rig.clock.now() - 1.0 / FPS - refused.time
        assert RECORD_WAIT_S <= waited < RECORD_WAIT_S + 2.0 / FPS
        assert rig.daemon.running
    rig.step_until(lambda: rig.daemon.door.unlocked, limit=80)
    assert [o.kind for o in rig.outcomes] == ["denied_unrecorded", "granted"]
    # the refusal waited in memory and reached the log before the grant
    assert [(e.kind, e.name) for e in rig.events()][1:] == [
        ("denied_unrecorded", "Ada"),
        ("granted", "Ada"),
    ]


def test_a_grant_is_recorded_before_the_door_opens(door):
    rig = door(visits(ADA))
    log_event = rig.daemon.gallery.log_event
    relay_when_logged = []

    def watched(kind, *args, **kwargs):
        relay_when_logged.append((kind, rig.gpio.level(rig.config.door.relay_pin)))
        return log_event(kind, *args, **kwargs)

    rig.daemon.gallery.log_event = watched
    rig.step_until(lambda: rig.daemon.door.unlocked)
    assert relay_when_logged == [("granted", False)]  # logged while still locked


# --- systemd notifications -------------------------------------------------------------


def test_run_says_ready_first_and_stopping_last_and_closes_everything(door, systemd):
    path, sock = systemd
    rig = door([0, 0, 0], loop=False, notifier=Notifier({"NOTIFY_SOCKET": path}))
    rig.daemon.run(after_step=lambda: rig.clock.advance(1.0 / FPS))
    messages = received(sock)
    assert messages[0] == "READY=1" and messages[-1] == "STOPPING=1"
    assert "STATUS=ok; 1 templates" in messages
    assert rig.gpio.closed and rig.daemon.camera.status.state == "ended"
    rig.daemon.close()  # again, as the rigs fixture does: nothing happens twice


def test_watchdog_pings_come_from_steps_and_stop_when_the_loop_stalls(door, systemd):
    path, sock = systemd
    rig = door(notifier=Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}))

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


# --- door contact and exit button ------------------------------------------------------


def test_door_contact_and_exit_button_events_reach_the_gallery(door):
    rig = door(
        door={
            "door_contact_pin": CONTACT_PIN,
            "door_contact_pull": "down",  # high = open
            "exit_button_pin": EXIT_PIN,
            "held_open_seconds": 1.0,  # low = pressed (pull-up)
        }
    )
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
    assert [(o.kind, o.action) for o in rig.outcomes] == [
        ("door_forced", "alarm"),
        ("door_held_open", "alarm"),
        ("exit_request", "unlock"),
    ]


# --- the control socket ----------------------------------------------------------------


@pytest.fixture
def served(tmp_path, door):
    """A rig whose control socket is in tmp_path, remote unlock allowed: (rig, path)."""

    def build(
        script: Sequence[Shown] = (0,), *, loop: bool = True, **sections: dict
    ) -> tuple[Rig, Path]:
        path = tmp_path / "control.sock"
        control = {"socket": str(path), "allow_remote_unlock": True}
        return door(script, loop=loop, control=control, **sections), path

    return build


def ask(rig: Rig, request: Callable[[], dict], limit: int = 500) -> dict:
    """``request()`` in a thread while the loop steps, until it is answered: between
    steps the client and the server's threads get a moment to hand the request on."""
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(request)
        for _ in range(limit):
            try:
                return answer.result(timeout=0.01)
            except TimeoutError:
                rig.step()
        return answer.result(timeout=0)


def test_a_local_tool_reads_the_status_and_unlocks_through_the_control_socket(served):
    rig, path = served(door={"unlock_seconds": 60.0})  # still open when the answer comes
    rig.step()
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
        answer = ask(rig, lambda: client.request("unlock", by="web:alice", reason="a delivery"))
        assert answer == {"unlocked": True}
        assert [level for _, level in rig.relay()] == [True]
        (event,) = rig.events("remote_unlock")
        assert event.reason == "asked by web:alice: a delivery"
        published = next(decisions)["decision"]
        assert (published["kind"], published["action"]) == ("remote_unlock", "unlock")
        rig.step()
        assert client.request("status")["door"] == "unlocked"


def test_a_remote_unlock_is_refused_during_a_lockout(served):
    rig, path = served(visits(STRANGER), decision={"lockout_failures": 1, "lockout_seconds": 600.0})
    rig.step_until(lambda: rig.daemon.decision.locked_out)
    with ControlClient(path) as client:
        rig.step()
        assert client.request("status")["lockout"] is True
        with pytest.raises(ControlError, match="lockout"):
            ask(rig, lambda: client.request("unlock", by="web:alice"))
    assert rig.relay() == []
    assert rig.events("remote_unlock") == []


def test_a_remote_unlock_the_gallery_cannot_record_is_refused(served):
    rig, path = served()
    rig.step()
    with ControlClient(path) as client, write_lock_held(rig.config.gallery):
        with pytest.raises(ControlError, match="could not be recorded.*locked by another"):
            ask(rig, lambda: client.request("unlock", by="web:alice"))
    assert rig.relay() == []
    assert rig.events("remote_unlock") == []


def test_the_control_socket_goes_when_the_service_stops(served):
    rig, path = served([0, 0, 0], loop=False)  # the script ends, and with it the run
    assert path.exists()
    rig.daemon.run(after_step=lambda: rig.clock.advance(1.0 / FPS))
    assert not path.exists()


def test_a_control_socket_that_cannot_be_made_stops_the_start_with_the_door_locked(tmp_path):
    config = make_config(tmp_path, tmp_path, control={"socket": str(tmp_path / "none" / "c.sock")})
    enrol_ada(config)
    clock = FakeClock()
    gpio = MockGpio(clock)
    with pytest.raises(ConfigError, match=r"control.socket: cannot serve .*none/c.sock"):
        build_daemon(
            config,
            clock,
            pipeline=StubPipeline(),
            source=Scripted(clock, [0]),
            gpio=gpio,
            notifier=Notifier({}),
            threaded=False,
        )
    assert gpio.closed and {level for _, level in gpio.history(config.door.relay_pin)} == {False}
