"""Raspberry Pi camera through picamera2: the only module that imports picamera2.

Two streams from one camera: ``main`` at full resolution in "RGB888" (which
picamera2 lays out as BGR bytes, OpenCV's order) for cropping faces, and ``lores``
at a small size for detection. The lores stream is asked for as "YUV420" because
that is the one lores format both the Pi 4 ISP (VC4) and the Pi 5 ISP (PiSP)
accept; its pixels are converted from whatever format the configured stream
reports, so an RGB888 lores stream (possible on a Pi 5) is handled too. An optional
second camera gives near-infrared frames, kept grey (the Y plane of YUV420).

Each frame's pixels are copied out of the completed request, which is released at
once so the camera never runs out of buffers while inference is slow. A request is
asked for as a picamera2 job and waited for with a timeout; picamera2 keeps a job
that timed out in its queue, and that job later takes a request nobody would
release, so an abandoned job is cancelled and whatever request it still gets is
given back (see :class:`_Claim`).

Frame times are the sensor's: libcamera's ``SensorTimestamp`` (start of exposure,
in CLOCK_BOOTTIME nanoseconds) is mapped onto the injected clock by subtracting the
frame's age, measured on the sensor's clock at the moment of capture. The colour and
IR frames are paired on those timestamps: an IR frame further than
``ir_pair_tolerance_s`` from the colour frame is dropped (the NIR check is then
inconclusive), since a face moves between two unsynchronised sensors' frames.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from ..clock import Clock
from ..errors import CameraError, HardwareError
from ..types import Frame
from . import CameraConfig, SourceBase

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "on Raspberry Pi OS run `sudo apt install python3-picamera2` and create the venv with "
    "--system-site-packages, with the numpy that python3-picamera2 was built against (numpy<2 "
    "on Bookworm: scripts/install.sh uses constraints/bookworm.txt); or set camera.source = "
    "'opencv'"
)
# A frame older than this when it is read has a timestamp we cannot map (a clock
# the kernel changed, a driver's bug); it is stamped with the time of capture.
MAX_FRAME_AGE_S = 5.0
# Extra frames read from the lagging camera to pair a colour and an IR frame.
PAIRING_TRIES = 3
# A job's wait ends in concurrent.futures' TimeoutError, which is the builtin one only
# from Python 3.11 on.
TIMEOUTS = (TimeoutError, concurrent.futures.TimeoutError)


def import_picamera2() -> Callable[[int], Any]:
    """The Picamera2 class, imported only when a picamera2 source is made.

    Any failure is a HardwareError: a missing package (ImportError), and also a
    numpy that does not match picamera2's compiled modules ("numpy.dtype size
    changed", a ValueError) or a broken libcamera.
    """
    try:
        from picamera2 import Picamera2
    except Exception as exc:
        raise HardwareError(
            f"picamera2 cannot be imported ({type(exc).__name__}: {exc}); {INSTALL_HINT}"
        ) from None
    return Picamera2


def boottime_ns() -> int:
    """Now on the clock libcamera stamps frames with."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)


def stream_to_bgr(array: np.ndarray, stream: dict) -> np.ndarray:
    """A picamera2 stream array as BGR at the stream's configured size.

    YUV420 arrives as ``(height * 3 / 2, stride)`` bytes, padding included; it is
    converted first and the padding columns cropped after.
    """
    width, height = stream["size"]
    fmt = stream["format"]
    if fmt == "YUV420":
        # picamera2's YUV420 is I420 (Y, then U, then V). OpenCV's COLOR_YUV420p2BGR
        # is an alias of the YV12 conversion (V before U) and would swap the chroma.
        return cv2.cvtColor(array, cv2.COLOR_YUV2BGR_I420)[:height, :width]
    if fmt == "RGB888":  # picamera2's RGB888 is B, G, R in memory
        return array[:height, :width, :3]
    if fmt == "BGR888":
        return cv2.cvtColor(array[:height, :width, :3], cv2.COLOR_RGB2BGR)
    raise CameraError(f"unsupported picamera2 stream format {fmt!r}")


def stream_to_grey(array: np.ndarray, stream: dict) -> np.ndarray:
    """The luminance plane of a YUV420 stream, cropped to its configured size."""
    width, height = stream["size"]
    if stream["format"] != "YUV420":
        raise CameraError(f"near-infrared stream must be YUV420, got {stream['format']!r}")
    return array[:height, :width]


def camera_controls(config: CameraConfig) -> dict[str, Any]:
    """libcamera controls for the ``[camera]`` settings: frame rate and exposure.

    FrameDurationLimits (microseconds, shortest and longest frame) bounds the
    exposure auto exposure may choose: a fixed rate caps it at one frame period,
    a lower ``min_fps`` lets it expose longer at a dark door.
    """
    slowest = config.min_fps or config.fps
    controls: dict[str, Any] = {
        "FrameDurationLimits": (round(1e6 / config.fps), round(1e6 / slowest)),
        "AeEnable": config.auto_exposure,
    }
    if config.exposure_us:
        controls["ExposureTime"] = config.exposure_us
    if config.analogue_gain:
        controls["AnalogueGain"] = config.analogue_gain
    return controls


class _Claim:
    """Who releases the request of one capture job: the reader, or nobody needs to.

    picamera2's event loop calls :meth:`completed` once the job has taken a
    request. If the reader gave up waiting first (:meth:`abandon`), whichever of the
    two runs second releases the request, so it is released exactly once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._abandoned = False
        self._completed = False

    def completed(self, job: Any) -> None:
        with self._lock:
            self._completed = True
            abandoned = self._abandoned
        if abandoned:
            _release_result(job)

    def abandon(self, job: Any) -> None:
        with self._lock:
            self._abandoned = True
            completed = self._completed
        if completed:
            _release_result(job)


def _release_result(job: Any) -> None:
    try:
        request = job.get_result(timeout=0)
    except Exception:  # cancelled, or the capture itself failed: no request was taken
        return
    request.release()


class Picamera2Source(SourceBase):
    """Frames from a Pi camera: full-resolution ``image``, ``lores`` and optional ``ir``.

    ``camera_class`` is ``picamera2.Picamera2`` unless a test injects a fake with the
    same methods (``create_video_configuration``, ``configure``, ``start``,
    ``stream_configuration``, ``capture_request``, ``wait``,
    ``cancel_all_and_flush``, ``stop``, ``close``); ``sensor_clock`` (nanoseconds on
    the clock of ``SensorTimestamp``) likewise. ``timeout`` bounds the wait for one
    frame, so a camera that stops delivering is reported instead of hanging the reader.
    """

    def __init__(
        self,
        clock: Clock,
        config: CameraConfig,
        *,
        timeout: float = 2.0,
        camera_class: Callable[[int], Any] | None = None,
        sensor_clock: Callable[[], int] = boottime_ns,
    ):
        super().__init__(clock)
        self._camera_class = camera_class if camera_class is not None else import_picamera2()
        self._config = config
        self._controls = camera_controls(config)
        self._pair_tolerance_ns = round(config.ir_pair_tolerance_s * 1e9)
        self._timeout = timeout
        self._sensor_clock = sensor_clock
        self._camera: Any = None
        self._ir: Any = None
        self._streams: dict[str, dict] = {}

    @classmethod
    def from_config(cls, config: CameraConfig, clock: Clock) -> Picamera2Source:
        return cls(clock, config)

    def open(self) -> None:
        config = self._config
        try:
            self._camera = self._start(
                config.camera_num,
                main={"size": tuple(config.main_size), "format": "RGB888"},
                lores={"size": tuple(config.lores_size), "format": "YUV420"},
            )
            self._streams = {
                name: dict(self._camera.stream_configuration(name)) for name in ("main", "lores")
            }
            if config.ir_camera >= 0:
                self._ir = self._start(
                    config.ir_camera, main={"size": tuple(config.main_size), "format": "YUV420"}
                )
                self._streams["ir"] = dict(self._ir.stream_configuration("main"))
        except Exception as exc:
            self.close()
            raise CameraError(f"cannot open picamera2 camera: {exc}") from exc

    def _start(self, camera_num: int, **streams: dict) -> Any:
        camera = self._camera_class(camera_num)
        try:
            config = camera.create_video_configuration(
                **streams, controls=dict(self._controls), buffer_count=4
            )
            camera.configure(config)
            camera.start()
        except Exception:
            _shut(camera)
            raise
        return camera

    def close(self) -> None:
        cameras = (self._ir, self._camera)
        self._camera = self._ir = None
        for camera in cameras:
            if camera is not None:
                _shut(camera)

    def read(self) -> Frame:
        if self._camera is None:
            raise CameraError("picamera2 camera is not open")
        try:
            (main, lores), sensor_ns, now = self._capture(self._camera, ("main", "lores"))
            ir = None
            if self._ir is not None:
                (ir,), ir_ns, _ = self._capture(self._ir, ("main",))
                for _ in range(PAIRING_TRIES):
                    offset = self._offset(sensor_ns, ir_ns)
                    if offset is None or abs(offset) <= self._pair_tolerance_ns:
                        break
                    if offset > 0:  # the IR frame is the older one: take the next
                        (ir,), ir_ns, _ = self._capture(self._ir, ("main",))
                    else:
                        (main, lores), sensor_ns, now = self._capture(
                            self._camera, ("main", "lores")
                        )
                offset = self._offset(sensor_ns, ir_ns)
                if offset is None or abs(offset) > self._pair_tolerance_ns:
                    ir = None  # not one moment: the NIR check must not compare them
        except CameraError:
            raise
        except Exception as exc:  # picamera2 raises plain RuntimeError and friends
            raise CameraError(f"picamera2 camera stopped delivering frames: {exc}") from exc
        # Conversions after release: the request went back to the camera first.
        return self._frame(
            stream_to_bgr(main, self._streams["main"]),
            self._frame_time(sensor_ns, now),
            lores=stream_to_bgr(lores, self._streams["lores"]),
            ir=None if ir is None else stream_to_grey(ir, self._streams["ir"]),
        )

    def _capture(self, camera: Any, names: tuple[str, ...]) -> tuple[list, int | None, tuple]:
        """Copies of the named streams of the next request, its SensorTimestamp, and
        (clock now, sensor clock now) read together just after it arrived."""
        claim = _Claim()
        job = camera.capture_request(wait=False, signal_function=claim.completed)
        try:
            request = camera.wait(job, timeout=self._timeout)
        except BaseException as exc:  # the job may still take a request: hand it back
            claim.abandon(job)
            _cancel_jobs(camera)
            if isinstance(exc, TIMEOUTS):
                raise CameraError(
                    f"picamera2 camera delivered no frame within {self._timeout:g} s"
                ) from None
            raise
        try:
            # Copies: older picamera2 versions hand out views of the buffer.
            arrays = [request.make_array(name).copy() for name in names]
            sensor_ns = request.get_metadata().get("SensorTimestamp")
        finally:
            request.release()
        return arrays, sensor_ns, (self._clock.now(), self._sensor_clock())

    @staticmethod
    def _offset(colour_ns: int | None, ir_ns: int | None) -> int | None:
        """How much later the colour frame started than the IR one; None if unknown."""
        if colour_ns is None or ir_ns is None:
            return None
        return colour_ns - ir_ns

    def _frame_time(self, sensor_ns: int | None, now: tuple[float, int]) -> float:
        clock_now, sensor_now = now
        if sensor_ns is None:
            return clock_now
        age = (sensor_now - sensor_ns) / 1e9
        if not 0.0 <= age <= MAX_FRAME_AGE_S:
            log.debug("picamera2 frame timestamp %d is %.3f s from now; using now", sensor_ns, age)
            return clock_now
        return clock_now - age


def _cancel_jobs(camera: Any) -> None:
    """Drop the jobs a timed-out capture left queued."""
    try:
        camera.cancel_all_and_flush()
    except Exception as exc:  # a picamera2 without it: the claim releases what the job takes
        log.debug("picamera2 cancel_all_and_flush failed: %s", exc)


def _shut(camera: Any) -> None:
    """Stop and close a camera that may already be gone (close follows failures)."""
    for step in (camera.stop, camera.close):
        try:
            step()
        except Exception as exc:
            log.debug("picamera2 %s failed while closing: %s", step.__name__, exc)
