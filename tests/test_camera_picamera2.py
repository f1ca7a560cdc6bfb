"""picamera2 source against a fake Picamera2 (picamera2 cannot be installed here)."""

from __future__ import annotations

import contextlib
import sys

import cv2
import numpy as np
import pytest

from edge.camera import CameraError
from edge.camera.picamera2 import Picamera2Source, stream_to_bgr
from edge.clock import FakeClock
from edge.errors import ConfigError

MAIN = (64, 48)
LORES = (32, 24)
LORES_STRIDE = 48  # the ISP pads rows; the padding must be cropped away
LORES_BGR = (40, 90, 200)
IR_LEVEL = 77


def yuv420_array(size, stride, bgr, pad_value=0):
    """A YUV420 buffer as picamera2's make_array gives it: (h * 3 / 2, stride)."""
    w, h = size
    image = np.full((h, stride, 3), pad_value, np.uint8)
    image[:, :w] = bgr
    return cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)


class FakeRequest:
    def __init__(self, camera):
        self.camera = camera
        self.buffers = camera.buffers()

    def make_array(self, name):
        self.camera.log.append(f"cam{self.camera.num}: make_array {name}")
        return self.buffers[name]  # a view of the "camera memory", like old picamera2

    def release(self):
        self.camera.log.append(f"cam{self.camera.num}: release")
        for buffer in self.buffers.values():
            buffer[...] = 0  # the camera reuses the buffer for the next frame


class FakePicamera2:
    """Records every call in a shared log; ``fail`` makes captures raise."""

    instances: list["FakePicamera2"] = []
    log: list[str] = []
    missing: set[int] = set()
    fail = False

    def __init__(self, camera_num=0):
        if camera_num in self.missing:
            raise IndexError("list index out of range")  # what picamera2 does for no camera
        self.num = camera_num
        self.config = None
        self.instances.append(self)
        self.log.append(f"cam{camera_num}: init")

    def create_video_configuration(self, main, lores=None, controls=None, buffer_count=None):
        return {"main": dict(main), "lores": lores and dict(lores), "controls": controls}

    def configure(self, config):
        self.config = config
        self.log.append(f"cam{self.num}: configure")

    def start(self):
        self.log.append(f"cam{self.num}: start")

    def stream_configuration(self, name):
        stream = dict(self.config[name])
        stream["stride"] = LORES_STRIDE if name == "lores" else stream["size"][0] * 3
        return stream

    def buffers(self):
        main = self.config["main"]
        w, h = main["size"]
        if main["format"] == "YUV420":  # the IR camera
            array = np.full((h * 3 // 2, w), 128, np.uint8)
            array[:h] = IR_LEVEL
            return {"main": array}
        image = np.zeros((h, w, 3), np.uint8)
        image[:, :, 0] = np.arange(w, dtype=np.uint8)  # a pattern that cannot pass by chance
        return {"main": image, "lores": yuv420_array(LORES, LORES_STRIDE, LORES_BGR, 255)}

    @contextlib.contextmanager
    def captured_request(self, wait=None):
        if self.fail:
            raise TimeoutError("no frame within the wait")
        self.log.append(f"cam{self.num}: capture (wait={wait})")
        request = FakeRequest(self)
        try:
            yield request
        finally:
            request.release()

    def stop(self):
        self.log.append(f"cam{self.num}: stop")

    def close(self):
        self.log.append(f"cam{self.num}: close")


@pytest.fixture
def fake():
    FakePicamera2.instances = []
    FakePicamera2.log = []
    FakePicamera2.missing = set()
    FakePicamera2.fail = False
    return FakePicamera2


def make(fake, **kwargs):
    return Picamera2Source(
        FakeClock(start=5.0), main_size=MAIN, lores_size=LORES, fps=12, camera_class=fake, **kwargs
    )


def test_streams_configured_and_frames_copied_out_before_release(fake):
    with make(fake) as source:
        frame = source.read()
    camera = fake.instances[0]
    assert camera.config["main"] == {"size": MAIN, "format": "RGB888"}
    assert camera.config["lores"] == {"size": LORES, "format": "YUV420"}
    assert camera.config["controls"] == {"FrameRate": 12.0}
    assert fake.log == [
        "cam0: init", "cam0: configure", "cam0: start",
        "cam0: capture (wait=2.0)", "cam0: make_array main", "cam0: make_array lores", "cam0: release",
        "cam0: stop", "cam0: close",
    ]
    # The release zeroed the camera's buffers; the frame kept its own pixels.
    assert frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8
    assert np.array_equal(frame.image[0, :, 0], np.arange(64, dtype=np.uint8))
    assert frame.timestamp == 5.0 and frame.seq == 1
    assert frame.ir is None


def test_yuv420_lores_is_converted_and_its_padding_cropped(fake):
    with make(fake) as source:
        lores = source.read().lores
    assert lores.shape == (24, 32, 3)
    assert np.abs(lores.astype(int) - LORES_BGR).max() <= 3  # no padding colour leaked in


def test_rgb888_lores_of_a_pi5_is_used_as_is():
    pixels = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    out = stream_to_bgr(pixels, {"size": (32, 24), "format": "RGB888"})
    assert np.array_equal(out, pixels)
    with pytest.raises(CameraError, match="unsupported"):
        stream_to_bgr(pixels, {"size": (32, 24), "format": "MJPEG"})


def test_ir_camera_gives_a_grey_frame(fake):
    with make(fake, ir_camera=1) as source:
        frame = source.read()
    assert [c.num for c in fake.instances] == [0, 1]
    assert fake.instances[1].config["main"]["format"] == "YUV420"
    assert frame.ir.shape == (48, 64) and frame.ir.dtype == np.uint8
    assert np.all(frame.ir == IR_LEVEL)
    assert "cam1: release" in fake.log and fake.log[-2:] == ["cam0: stop", "cam0: close"]


def test_capture_failure_is_a_camera_error(fake):
    with make(fake) as source:
        fake.fail = True
        with pytest.raises(CameraError, match="stopped delivering"):
            source.read()


def test_missing_ir_camera_fails_open_and_closes_the_colour_camera(fake):
    fake.missing = {1}
    source = make(fake, ir_camera=1)
    with pytest.raises(CameraError, match="cannot open picamera2"):
        source.open()
    assert fake.log[-2:] == ["cam0: stop", "cam0: close"]
    with pytest.raises(CameraError, match="not open"):
        source.read()


def test_without_picamera2_installed_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes the import fail
    with pytest.raises(ConfigError, match="python3-picamera2"):
        Picamera2Source(FakeClock())
