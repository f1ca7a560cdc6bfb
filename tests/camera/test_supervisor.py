"""Supervisor: latest-frame hand-off, drops, failure, backoff and recovery."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.camera import CameraError, EndOfStream, SourceBase
from edge.camera.replay import ReplaySource
from edge.camera.supervisor import CameraSupervisor
from edge.clock import FakeClock


class PluggableCamera(SourceBase):
    """A camera that can be unplugged and plugged back in by the test."""

    def __init__(self, clock):
        super().__init__(clock)
        self.plugged = True
        self.is_open = False
        self.opens = 0
        self.error: Exception | None = None  # raised by the next read, if set

    def open(self):
        if not self.plugged:
            raise CameraError("no camera on /dev/video0")
        self.opens += 1
        self.is_open = True

    def close(self):
        self.is_open = False

    def read(self):
        if self.error is not None:
            raise self.error
        if not self.plugged:
            raise CameraError("camera unplugged")
        return self._frame(np.zeros((4, 4, 3), np.uint8), self._clock.now())


@pytest.fixture
def rig():
    clock = FakeClock(start=0.0)
    camera = PluggableCamera(clock)
    supervisor = CameraSupervisor(camera, clock, backoff_initial=0.5, backoff_max=2.0)
    return clock, camera, supervisor


def test_camera_dies_mid_run_backs_off_and_recovers(rig):
    clock, camera, supervisor = rig
    assert supervisor.status.state == "starting" and not supervisor.status.ok
    assert supervisor.poll_once().seq == 1
    assert supervisor.status.ok and camera.is_open

    camera.plugged = False
    assert supervisor.poll_once() is None
    assert supervisor.status.state == "down"
    assert supervisor.status.reason == "camera unplugged"
    assert not camera.is_open  # a failed camera is closed before it is reopened

    waits = []
    for _ in range(4):  # reopen attempts wait 0.5, 1, 2, then 2 (the max)
        before = clock.now()
        assert supervisor.poll_once() is None
        waits.append(clock.now() - before)
        assert supervisor.status.reason == "no camera on /dev/video0"
    assert waits == pytest.approx([0.5, 1.0, 2.0, 2.0])
    assert supervisor.status.since == 0.0  # down since the first failure

    camera.plugged = True
    frame = supervisor.poll_once()
    assert frame is not None and frame.seq == 2
    assert supervisor.status.ok and supervisor.status.reason == ""
    assert supervisor.status.since == pytest.approx(7.5)
    assert camera.opens == 2
    assert supervisor.backoff_delay() == 0.0  # a good frame resets the backoff
    assert supervisor.latest(after_seq=1) is frame


def test_a_camera_down_for_days_keeps_retrying_at_the_max_backoff():
    clock = FakeClock(start=0.0)
    camera = PluggableCamera(clock)
    camera.plugged = False
    supervisor = CameraSupervisor(camera, clock, backoff_initial=0.01, backoff_max=0.25)
    for _ in range(1500):  # past 2.0 ** 1024, which overflows a float
        supervisor.poll_once()
    assert supervisor.backoff_delay() == 0.25
    assert supervisor.status.state == "down"
    camera.plugged = True
    assert supervisor.poll_once() is not None and supervisor.status.ok


def test_unexpected_errors_also_take_the_camera_down(rig):
    _, camera, supervisor = rig
    supervisor.poll_once()
    camera.error = ValueError("driver bug")
    assert supervisor.poll_once() is None
    assert supervisor.status.state == "down"
    assert supervisor.status.reason == "unexpected ValueError: driver bug"


def test_only_the_latest_frame_is_kept_and_drops_are_counted(rig):
    _, _, supervisor = rig
    for _ in range(3):
        supervisor.poll_once()
    assert supervisor.delivered == 3 and supervisor.dropped == 2  # frames 1 and 2 never taken
    frame = supervisor.latest()
    assert frame.seq == 3
    assert supervisor.latest(after_seq=3) is None  # nothing newer yet
    supervisor.poll_once()
    assert supervisor.dropped == 2  # frame 3 was taken, so replacing it is no drop
    assert supervisor.latest(after_seq=3).seq == 4
    assert supervisor.wait(after_seq=4, timeout=0) is None


def test_end_of_replay_ends_the_supervisor_without_reopening(tmp_path):
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 8, 3), i, np.uint8))
    clock = FakeClock()
    supervisor = CameraSupervisor(ReplaySource(tmp_path, clock, fps=10), clock)
    supervisor.poll_once()
    assert supervisor.wait(timeout=0).seq == 1
    supervisor.poll_once()
    assert supervisor.poll_once() is None
    assert supervisor.status.state == "ended"
    assert supervisor.poll_once() is None and supervisor.status.state == "ended"
    assert supervisor.wait(after_seq=1, timeout=0).seq == 2  # the last frame is still handed out
    with pytest.raises(EndOfStream):
        supervisor.wait(after_seq=2, timeout=0)


def test_reader_thread_delivers_every_frame_then_stops(tmp_path):
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((8, 8, 3), i, np.uint8))
    clock = FakeClock()
    seen = []
    with CameraSupervisor(ReplaySource(tmp_path, clock, fps=10), clock) as supervisor:
        with pytest.raises(EndOfStream):
            while True:
                frame = supervisor.wait(after_seq=seen[-1] if seen else 0, timeout=5)
                assert frame is not None, "no frame within 5 s"
                seen.append(frame.seq)
    assert seen == sorted(set(seen)) and seen[-1] == 5
    assert supervisor.delivered == 5 and supervisor.dropped == 5 - len(seen)
    assert supervisor.status.state == "ended"


def test_stop_interrupts_a_backoff_and_closes(rig):
    clock, camera, supervisor = rig
    camera.plugged = False
    supervisor.start()
    supervisor.stop()
    assert supervisor.status.state == "stopped"
    assert not camera.is_open
    with pytest.raises(RuntimeError, match="already started"):
        supervisor.start()


def test_backoff_bounds_are_checked():
    with pytest.raises(ValueError):
        CameraSupervisor(
            PluggableCamera(FakeClock()), FakeClock(), backoff_initial=5, backoff_max=1
        )
