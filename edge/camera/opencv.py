"""OpenCV camera: a V4L2 device (USB or CSI behind V4L2) or a GStreamer pipeline.

The GStreamer form is how a Jetson CSI camera is read (``nvarguscamerasrc ... !
appsink drop=1 max-buffers=1``); ``drop=1 max-buffers=1`` makes the appsink keep
only the newest frame, and on V4L2 the driver queue is shrunk to one buffer, so a
slow reader gets fresh frames rather than a backlog.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2

from ..clock import Clock
from ..errors import CameraError
from ..types import Frame
from . import CameraConfig, SourceBase, as_bgr


class OpenCVSource(SourceBase):
    """Frames from ``cv2.VideoCapture`` on V4L2 or GStreamer.

    ``device`` is an index (0 = /dev/video0) or a device path; ``pipeline``, when
    given, is used instead. ``fourcc``, ``size`` and ``fps`` are requests to a V4L2
    device (a GStreamer pipeline states its own caps). ``capture_factory`` is
    ``cv2.VideoCapture`` unless a test injects a fake.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        device: int | str = 0,
        pipeline: str = "",
        fourcc: str = "MJPG",
        size: tuple[int, int] = (1280, 720),
        fps: float = 30.0,
        capture_factory: Callable[..., cv2.VideoCapture] = cv2.VideoCapture,
    ):
        super().__init__(clock)
        # A device given as text "2" means index 2, not a file called "2".
        if isinstance(device, str) and device.isdigit():
            device = int(device)
        self._device = device
        self._pipeline = pipeline
        self._fourcc = fourcc
        self._size = size
        self._fps = fps
        self._factory = capture_factory
        self._capture: cv2.VideoCapture | None = None

    @classmethod
    def from_config(cls, config: CameraConfig, clock: Clock) -> OpenCVSource:
        return cls(
            clock,
            device=config.device,
            pipeline=config.pipeline,
            fourcc=config.fourcc,
            size=config.main_size,
            fps=config.fps,
        )

    @property
    def name(self) -> str:
        """How the camera is named in errors and status."""
        return (
            f"GStreamer pipeline {self._pipeline!r}"
            if self._pipeline
            else f"V4L2 device {self._device!r}"
        )

    def open(self) -> None:
        if self._pipeline:
            capture = self._factory(self._pipeline, cv2.CAP_GSTREAMER)
        else:
            capture = self._factory(self._device, cv2.CAP_V4L2)
        if not capture.isOpened():
            capture.release()
            raise CameraError(f"cannot open {self.name}")
        if not self._pipeline:
            if self._fourcc:  # before the size: the size a device offers depends on the format
                capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*self._fourcc))
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self._size[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self._size[1])
            capture.set(cv2.CAP_PROP_FPS, self._fps)
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._capture = capture

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def read(self) -> Frame:
        if self._capture is None:
            raise CameraError(f"{self.name} is not open")
        ok, image = self._capture.read()
        if not ok or image is None:
            raise CameraError(f"{self.name} delivered no frame (disconnected?)")
        return self._frame(as_bgr(image), self._clock.now())
