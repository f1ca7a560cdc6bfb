"""OpenCV source against a fake cv2.VideoCapture."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.camera import CameraError
from edge.camera.opencv import OpenCVSource
from edge.clock import FakeClock


class FakeCapture:
    """Stands in for cv2.VideoCapture: records how it was opened and set up."""

    made: list[FakeCapture] = []

    def __init__(self, target, api, *, opened=True, frames=()):
        self.target, self.api = target, api
        self.opened = opened
        self.frames = list(frames)
        self.props: dict[int, float] = {}
        self.released = False
        self.made.append(self)

    def isOpened(self):
        return self.opened

    def set(self, prop, value):
        self.props[prop] = value
        return True

    def read(self):
        if not self.frames:
            return False, None
        return True, self.frames.pop(0)

    def release(self):
        self.released = True


def factory(**behaviour):
    FakeCapture.made = []
    return lambda target, api: FakeCapture(target, api, **behaviour)


def test_v4l2_device_is_opened_and_configured():
    image = np.full((48, 64, 3), 9, np.uint8)
    clock = FakeClock(start=3.0)
    source = OpenCVSource(
        clock,
        device="/dev/video2",
        fourcc="MJPG",
        size=(64, 48),
        fps=25,
        capture_factory=factory(frames=[image, image]),
    )
    with source:
        first = source.read()
        clock.advance(0.04)
        second = source.read()
    capture = FakeCapture.made[0]
    assert (capture.target, capture.api) == ("/dev/video2", cv2.CAP_V4L2)
    assert capture.props[cv2.CAP_PROP_FOURCC] == cv2.VideoWriter.fourcc(*"MJPG")
    assert capture.props[cv2.CAP_PROP_FRAME_WIDTH] == 64
    assert capture.props[cv2.CAP_PROP_FRAME_HEIGHT] == 48
    assert capture.props[cv2.CAP_PROP_FPS] == 25
    assert capture.props[cv2.CAP_PROP_BUFFERSIZE] == 1
    assert capture.released
    assert (first.seq, second.seq) == (1, 2)
    assert (first.timestamp, second.timestamp) == (3.0, 3.04)
    assert np.array_equal(first.image, image)


def test_numeric_device_text_means_an_index():
    with OpenCVSource(FakeClock(), device="2", capture_factory=factory()):
        pass
    assert FakeCapture.made[0].target == 2


def test_gstreamer_pipeline_is_used_as_given():
    pipeline = (
        "nvarguscamerasrc sensor-id=0 ! nvvidconv ! videoconvert ! appsink drop=1 max-buffers=1"
    )
    with OpenCVSource(FakeClock(), pipeline=pipeline, capture_factory=factory()) as source:
        assert "GStreamer" in source.name
    capture = FakeCapture.made[0]
    assert (capture.target, capture.api) == (pipeline, cv2.CAP_GSTREAMER)
    assert capture.props == {}  # the pipeline's caps decide size and rate


def test_grey_frames_become_bgr():
    grey = np.full((4, 6), 50, np.uint8)
    with OpenCVSource(FakeClock(), capture_factory=factory(frames=[grey])) as source:
        image = source.read().image
    assert image.shape == (4, 6, 3) and np.all(image == 50)


def test_unopenable_device_and_lost_device_are_camera_errors():
    with pytest.raises(CameraError, match="cannot open V4L2 device 0"):
        OpenCVSource(FakeClock(), capture_factory=factory(opened=False)).open()
    assert FakeCapture.made[0].released
    with OpenCVSource(FakeClock(), capture_factory=factory(frames=[])) as source:
        with pytest.raises(CameraError, match="disconnected"):
            source.read()
    with pytest.raises(CameraError, match="not open"):
        OpenCVSource(FakeClock(), capture_factory=factory()).read()
