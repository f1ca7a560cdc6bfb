"""Raspberry Pi camera through picamera2: the only module that imports picamera2.

Two streams from one camera: ``main`` at full resolution in "RGB888" (which
picamera2 lays out as BGR bytes, OpenCV's order) for cropping faces, and ``lores``
at a small size for detection. The lores stream is asked for as "YUV420" because
that is the one lores format both the Pi 4 ISP (VC4) and the Pi 5 ISP (PiSP)
accept; its pixels are converted from whatever format the configured stream
reports, so an RGB888 lores stream (possible on a Pi 5) is handled too. An optional
second camera gives near-infrared frames, kept grey (the Y plane of YUV420).

Each frame's pixels are copied out of the completed request, which is released at
once so the camera never runs out of buffers while inference is slow.

Frame timestamps come from the injected clock at capture, not from the sensor's
``SensorTimestamp``: that one is in the kernel's clock, which a FakeClock is not,
and the daemon compares frame times with its own deadlines; the difference (the
latency of one frame) does not matter to votes over a time window.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import cv2
import numpy as np

from ..clock import Clock
from ..errors import CameraError, ConfigError
from ..types import Frame
from . import CameraConfig, SourceBase

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "picamera2 is not installed: on Raspberry Pi OS run `sudo apt install python3-picamera2` "
    "and create the venv with --system-site-packages, or set camera.source = 'opencv'"
)


def import_picamera2() -> Callable[[int], Any]:
    """The Picamera2 class, imported only when a picamera2 source is made."""
    try:
        from picamera2 import Picamera2
    except ImportError as exc:
        raise ConfigError(f"camera.source: {INSTALL_HINT} ({exc})") from None
    return Picamera2


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


class Picamera2Source(SourceBase):
    """Frames from a Pi camera: full-resolution ``image``, ``lores`` and optional ``ir``.

    ``camera_class`` is ``picamera2.Picamera2`` unless a test injects a fake with the
    same methods (``create_video_configuration``, ``configure``, ``start``,
    ``stream_configuration``, ``captured_request``, ``stop``, ``close``).
    ``timeout`` bounds the wait for one frame, so a camera that stops delivering is
    reported instead of hanging the reader.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        camera_num: int = 0,
        main_size: tuple[int, int] = (1280, 720),
        lores_size: tuple[int, int] = (640, 360),
        fps: float = 15.0,
        ir_camera: int = -1,
        timeout: float = 2.0,
        camera_class: Callable[[int], Any] | None = None,
    ):
        super().__init__(clock)
        self._camera_class = camera_class if camera_class is not None else import_picamera2()
        self._camera_num = camera_num
        self._main_size = tuple(main_size)
        self._lores_size = tuple(lores_size)
        self._fps = float(fps)
        self._ir_num = ir_camera
        self._timeout = timeout
        self._camera: Any = None
        self._ir: Any = None
        self._streams: dict[str, dict] = {}

    @classmethod
    def from_config(cls, config: CameraConfig, clock: Clock) -> "Picamera2Source":
        return cls(
            clock,
            camera_num=config.camera_num,
            main_size=config.main_size,
            lores_size=config.lores_size,
            fps=config.fps,
            ir_camera=config.ir_camera,
        )

    def open(self) -> None:
        try:
            self._camera = self._start(
                self._camera_num,
                main={"size": self._main_size, "format": "RGB888"},
                lores={"size": self._lores_size, "format": "YUV420"},
            )
            self._streams = {
                name: dict(self._camera.stream_configuration(name)) for name in ("main", "lores")
            }
            if self._ir_num >= 0:
                self._ir = self._start(self._ir_num, main={"size": self._main_size, "format": "YUV420"})
                self._streams["ir"] = dict(self._ir.stream_configuration("main"))
        except Exception as exc:
            self.close()
            raise CameraError(f"cannot open picamera2 camera: {exc}") from exc

    def _start(self, camera_num: int, **streams: dict) -> Any:
        camera = self._camera_class(camera_num)
        try:
            config = camera.create_video_configuration(
                **streams, controls={"FrameRate": self._fps}, buffer_count=4
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
            with self._camera.captured_request(wait=self._timeout) as request:
                # Copies: older picamera2 versions hand out views of the buffer.
                main = request.make_array("main").copy()
                lores = request.make_array("lores").copy()
            timestamp = self._clock.now()
            ir = None
            if self._ir is not None:
                with self._ir.captured_request(wait=self._timeout) as request:
                    ir = request.make_array("main").copy()
        except Exception as exc:  # picamera2 raises plain RuntimeError/TimeoutError
            raise CameraError(f"picamera2 camera stopped delivering frames: {exc}") from exc
        # Conversions after release: the request goes back to the camera first.
        return self._frame(
            stream_to_bgr(main, self._streams["main"]),
            timestamp,
            lores=stream_to_bgr(lores, self._streams["lores"]),
            ir=None if ir is None else stream_to_grey(ir, self._streams["ir"]),
        )


def _shut(camera: Any) -> None:
    """Stop and close a camera that may already be gone (close follows failures)."""
    for step in (camera.stop, camera.close):
        try:
            step()
        except Exception as exc:
            log.debug("picamera2 %s failed while closing: %s", step.__name__, exc)
