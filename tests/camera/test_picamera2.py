"""picamera2 source against a fake Picamera2 (picamera2 cannot be installed here).

The fake keeps picamera2's job queue as the library does: ``capture_request(wait=False,
signal_function=...)`` queues a job, a frame that arrives completes the oldest job
with a request and calls its signal function, ``wait(job, timeout)`` gives up with
TimeoutError and leaves the job queued, and ``cancel_all_and_flush`` drops the queue.
"""

from __future__ import annotations

import concurrent.futures
import sys

import cv2
import numpy as np
import pytest

from edge.camera import CameraConfig, CameraError
from edge.camera.picamera2 import Picamera2Source, camera_controls, stream_to_bgr
from edge.clock import FakeClock
from edge.errors import ConfigError, ExitCode, HardwareError
from edge.schema import build_section

MAIN = (160, 120)
LORES = (96, 72)
LORES_STRIDE = 112  # the ISP pads rows; the padding must be cropped away
LORES_BGR = (40, 90, 200)
IR_LEVEL = 77
MS = 1_000_000  # nanoseconds


def yuv420_array(size, stride, bgr, pad_value=0):
    """A YUV420 buffer as picamera2's make_array gives it: (h * 3 / 2, stride)."""
    w, h = size
    image = np.full((h, stride, 3), pad_value, np.uint8)
    image[:, :w] = bgr
    return cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)


class FakeRequest:
    def __init__(self, camera, sensor_ns):
        self.camera = camera
        self.sensor_ns = sensor_ns
        self.buffers = camera.buffers()
        self.releases = 0

    def make_array(self, name):
        self.camera.log.append(f"cam{self.camera.num}: make_array {name}")
        return self.buffers[name]  # a view of the "camera memory", like old picamera2

    def get_metadata(self):
        return {} if self.sensor_ns is None else {"SensorTimestamp": self.sensor_ns}

    def release(self):
        self.releases += 1
        self.camera.log.append(f"cam{self.camera.num}: release")
        for buffer in self.buffers.values():
            buffer[...] = 0  # the camera reuses the buffer for the next frame


class FakeJob:
    def __init__(self, signal_function):
        self.future = concurrent.futures.Future()
        self.signal_function = signal_function

    def get_result(self, timeout=None):
        return self.future.result(timeout=timeout)


class FakePicamera2:
    """Delivers the sensor timestamps in ``frames[camera_num]`` one per job; a camera
    with none left (or with ``stalled``) makes ``wait`` time out."""

    instances: list[FakePicamera2] = []
    log: list[str] = []
    missing: set[int] = set()
    frames: dict[int, list] = {}
    stalled = False
    has_cancel = True

    def __init__(self, camera_num=0):
        if camera_num in self.missing:
            raise IndexError("list index out of range")  # what picamera2 does for no camera
        self.num = camera_num
        self.config = None
        self.jobs: list[FakeJob] = []
        self.requests: list[FakeRequest] = []
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

    def capture_request(self, wait=None, signal_function=None):
        assert wait is False, "a blocking capture cannot be abandoned safely"
        self.log.append(f"cam{self.num}: capture")
        job = FakeJob(signal_function)
        self.jobs.append(job)
        return job

    def deliver(self):
        """A frame arrives: the oldest queued job takes it, as picamera2's event loop does."""
        if not self.jobs:
            return
        job = self.jobs.pop(0)
        request = FakeRequest(self, self.frames[self.num].pop(0))
        self.requests.append(request)
        job.future.set_result(request)
        job.signal_function(job)

    def wait(self, job, timeout=None):
        self.log.append(f"cam{self.num}: wait {timeout}")
        if not self.stalled and self.frames.get(self.num):
            self.deliver()
        return job.future.result(timeout=0)  # concurrent.futures.TimeoutError if still queued

    def cancel_all_and_flush(self):
        if not self.has_cancel:
            raise AttributeError("'Picamera2' object has no attribute 'cancel_all_and_flush'")
        self.log.append(f"cam{self.num}: cancel_all_and_flush")
        for job in self.jobs:
            job.future.set_exception(concurrent.futures.CancelledError())
        self.jobs = []

    def stop(self):
        self.log.append(f"cam{self.num}: stop")

    def close(self):
        self.log.append(f"cam{self.num}: close")


@pytest.fixture
def fake():
    FakePicamera2.instances = []
    FakePicamera2.log = []
    FakePicamera2.missing = set()
    FakePicamera2.frames = {0: [1000 * MS] * 8, 1: [1000 * MS] * 8}
    FakePicamera2.stalled = False
    FakePicamera2.has_cancel = True
    return FakePicamera2


def config(**values) -> CameraConfig:
    base = {"main_size": list(MAIN), "lores_size": list(LORES), "fps": 12}
    return build_section(CameraConfig, {**base, **values}, "camera")


def make(fake, sensor_now=1010 * MS, clock=None, **values):
    """A source whose sensor clock reads ``sensor_now``: frames stamped 1000 ms are 10 ms old."""
    return Picamera2Source(
        clock or FakeClock(start=5.0),
        config(**values),
        camera_class=fake,
        sensor_clock=lambda: sensor_now,
    )


def test_streams_configured_and_frames_copied_out_before_release(fake):
    with make(fake) as source:
        frame = source.read()
    camera = fake.instances[0]
    assert camera.config["main"] == {"size": MAIN, "format": "RGB888"}
    assert camera.config["lores"] == {"size": LORES, "format": "YUV420"}
    assert fake.log == [
        "cam0: init",
        "cam0: configure",
        "cam0: start",
        "cam0: capture",
        "cam0: wait 2.0",
        "cam0: make_array main",
        "cam0: make_array lores",
        "cam0: release",
        "cam0: stop",
        "cam0: close",
    ]
    # The release zeroed the camera's buffers; the frame kept its own pixels.
    assert frame.image.shape == (120, 160, 3) and frame.image.dtype == np.uint8
    assert np.array_equal(frame.image[0, :, 0], np.arange(160, dtype=np.uint8))
    assert frame.seq == 1 and frame.ir is None


def test_frames_carry_the_sensor_timestamp_on_the_injected_clock(fake):
    fake.frames[0] = [1000 * MS, 1040 * MS]
    clock = FakeClock(start=5.0)
    with make(fake, clock=clock, sensor_now=1050 * MS) as source:
        first = source.read()
        second = source.read()
    # exposure started 50 ms and 10 ms before the read, whatever the clock said then
    assert first.timestamp == pytest.approx(5.0 - 0.050)
    assert second.timestamp == pytest.approx(5.0 - 0.010)


@pytest.mark.parametrize("sensor_ns", [None, 2000 * MS, 1000 * MS - 10**10])
def test_a_missing_or_unmappable_sensor_timestamp_falls_back_to_the_clock(fake, sensor_ns):
    fake.frames[0] = [sensor_ns]  # none; from the future; ten seconds old
    with make(fake, sensor_now=1000 * MS) as source:
        assert source.read().timestamp == 5.0


def test_yuv420_lores_is_converted_and_its_padding_cropped(fake):
    with make(fake) as source:
        lores = source.read().lores
    assert lores.shape == (72, 96, 3)
    assert np.abs(lores.astype(int) - LORES_BGR).max() <= 3  # no padding colour leaked in


def test_rgb888_lores_of_a_pi5_is_used_as_is():
    pixels = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    out = stream_to_bgr(pixels, {"size": (32, 24), "format": "RGB888"})
    assert np.array_equal(out, pixels)
    with pytest.raises(CameraError, match="unsupported"):
        stream_to_bgr(pixels, {"size": (32, 24), "format": "MJPEG"})


def test_frame_rate_and_exposure_settings_become_libcamera_controls(fake):
    with make(fake, fps=15, min_fps=5, exposure_us=20000) as source:
        source.read()
    assert fake.instances[0].config["controls"] == {
        "FrameDurationLimits": (66667, 200000),
        "AeEnable": True,
        "ExposureTime": 20000,
    }
    fixed = camera_controls(
        config(fps=10, auto_exposure=False, exposure_us=8000, analogue_gain=4.0)
    )
    assert fixed == {
        "FrameDurationLimits": (100000, 100000),
        "AeEnable": False,
        "ExposureTime": 8000,
        "AnalogueGain": 4.0,
    }


@pytest.mark.parametrize(
    "values, key",
    [
        ({"auto_exposure": False}, "camera.exposure_us"),
        ({"analogue_gain": 0.5}, "camera.analogue_gain"),
        ({"min_fps": 20, "fps": 15}, "camera.min_fps"),
        ({"ir_pair_tolerance_s": 0}, "camera.ir_pair_tolerance_s"),
    ],
)
def test_exposure_settings_that_cannot_work_are_refused(values, key):
    with pytest.raises(ConfigError, match=key):
        config(**values)


def test_ir_frame_of_the_same_moment_is_paired(fake):
    fake.frames = {0: [1000 * MS], 1: [1005 * MS]}
    with make(fake, ir_camera=1) as source:
        frame = source.read()
    assert [c.num for c in fake.instances] == [0, 1]
    assert fake.instances[1].config["main"]["format"] == "YUV420"
    assert frame.ir.shape == (120, 160) and frame.ir.dtype == np.uint8
    assert np.all(frame.ir == IR_LEVEL)
    assert fake.log[-2:] == ["cam0: stop", "cam0: close"]


def test_an_older_ir_frame_is_skipped_to_the_one_that_pairs(fake):
    fake.frames = {0: [1000 * MS], 1: [934 * MS, 1001 * MS]}
    with make(fake, ir_camera=1) as source:
        frame = source.read()
    assert frame.ir is not None
    assert [r.sensor_ns for r in fake.instances[1].requests] == [934 * MS, 1001 * MS]
    assert all(r.releases == 1 for c in fake.instances for r in c.requests)


def test_an_older_colour_frame_is_skipped_to_the_one_that_pairs(fake):
    fake.frames = {0: [934 * MS, 1001 * MS], 1: [1000 * MS]}
    with make(fake, ir_camera=1, sensor_now=1011 * MS) as source:
        frame = source.read()
    assert frame.ir is not None
    assert frame.timestamp == pytest.approx(5.0 - 0.010)  # the newer colour frame's time


@pytest.mark.parametrize("ir_frames", [[1060 * MS], [None]])
def test_an_ir_frame_that_does_not_pair_is_dropped(fake, ir_frames):
    """Too far apart (60 ms against 20 ms allowed), or no timestamp to tell: the frame
    goes on without IR, so the NIR check is inconclusive rather than comparing two
    moments."""
    fake.frames = {0: [1000 * MS] * 4, 1: ir_frames * 4}
    with make(fake, ir_camera=1) as source:
        frame = source.read()
    assert frame.ir is None and frame.image is not None


def outstanding(fake) -> list:
    return [r for c in fake.instances for r in c.requests if r.releases != 1]


def test_a_capture_timeout_cancels_the_queued_job(fake):
    with make(fake) as source:
        fake.stalled = True
        with pytest.raises(CameraError, match="no frame within 2 s"):
            source.read()
        camera = fake.instances[0]
        assert "cam0: cancel_all_and_flush" in fake.log and camera.jobs == []
        fake.stalled = False
        frame = source.read()  # the next frame goes to the next read
    assert frame.seq == 1 and outstanding(fake) == []


def test_a_frame_taken_by_an_abandoned_job_is_released(fake):
    """A picamera2 without cancel_all_and_flush: the timed-out job stays queued and
    takes the next frame; that request goes straight back to the camera."""
    fake.has_cancel = False
    with make(fake) as source:
        fake.stalled = True
        with pytest.raises(CameraError, match="no frame within"):
            source.read()
        camera = fake.instances[0]
        camera.deliver()  # the frame arrives after the reader gave up
        assert len(camera.requests) == 1 and outstanding(fake) == []
        fake.stalled = False
        source.read()
    assert len(camera.requests) == 2 and outstanding(fake) == []


def test_a_frame_arriving_as_the_wait_times_out_is_released_once(fake):
    """The job completes between the wait's timeout and the reader abandoning it."""

    class LateCamera(FakePicamera2):
        def wait(self, job, timeout=None):
            self.deliver()  # completes, signals; the reader has not abandoned it yet
            raise TimeoutError

    LateCamera.frames = {0: [1000 * MS]}
    source = Picamera2Source(
        FakeClock(), config(), camera_class=LateCamera, sensor_clock=lambda: 1000 * MS
    )
    with source, pytest.raises(CameraError, match="no frame within"):
        source.read()
    assert [r.releases for r in fake.instances[0].requests] == [1]


def test_capture_failure_is_a_camera_error_and_leaks_nothing(fake):
    class BrokenCamera(FakePicamera2):
        has_cancel = False

        def wait(self, job, timeout=None):
            raise RuntimeError("Camera frontend has timed out!")

    BrokenCamera.frames = {0: [1000 * MS]}
    source = Picamera2Source(FakeClock(), config(), camera_class=BrokenCamera)
    with source:
        with pytest.raises(CameraError, match="stopped delivering frames"):
            source.read()
        fake.instances[0].deliver()  # the queued job still takes the next frame
    assert [r.releases for r in fake.instances[0].requests] == [1]


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
    with pytest.raises(HardwareError, match="python3-picamera2") as caught:
        Picamera2Source(FakeClock(), config())
    assert caught.value.exit_code == ExitCode.HARDWARE


def test_a_picamera2_built_for_another_numpy_is_a_one_line_hardware_error(monkeypatch):
    """Bookworm's picamera2 (simplejpeg) is built for numpy 1; a numpy 2 in the venv
    makes its import raise ValueError, not ImportError."""

    class Picamera2Module:
        def __getattr__(self, name):
            raise ValueError(
                "numpy.dtype size changed, may indicate binary incompatibility. "
                "Expected 96 from C header, got 88 from PyObject"
            )

    monkeypatch.setitem(sys.modules, "picamera2", Picamera2Module())
    with pytest.raises(HardwareError, match="ValueError: numpy.dtype size changed.*numpy<2"):
        Picamera2Source(FakeClock(), config())
