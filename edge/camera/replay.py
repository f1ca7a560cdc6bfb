"""Replay camera: a video file or a folder of images, played at a fixed frame rate.

Timestamps are synthetic and deterministic: frame ``n`` (counting from 0 since the
first ``open()``) is stamped ``start + n / fps``, where ``start`` is the injected
clock's time at that first open. So under a FakeClock a replay produces the same
frames with the same timestamps every run, whatever the speed of the machine.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..clock import Clock
from ..errors import CameraError, ConfigError
from ..types import Frame
from ..vision.images import IMAGE_SUFFIXES
from . import CameraConfig, EndOfStream, SourceBase, as_bgr


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name (the replay order)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


class ReplaySource(SourceBase):
    """Frames from a video file or a folder of images.

    ``loop``: start again at the end; otherwise ``read()`` raises EndOfStream after
    the last frame. ``realtime``: ``read()`` waits (``clock.sleep``) until each
    frame's timestamp, like a real camera; otherwise it returns frames as fast as
    they are asked for (tests, benchmarks, the demo). Reopening starts the input
    again from its first frame; ``seq`` and timestamps keep increasing.
    """

    def __init__(
        self,
        path: str | Path,
        clock: Clock,
        *,
        fps: float = 15.0,
        loop: bool = False,
        realtime: bool = False,
    ):
        super().__init__(clock)
        if not fps > 0:
            raise ConfigError(f"replay fps must be positive, got {fps!r}")
        self._path = Path(path)
        if self._path.is_dir():
            self._images: list[Path] | None = list_images(self._path)
            if not self._images:
                kinds = ", ".join(sorted(IMAGE_SUFFIXES))
                raise ConfigError(f"replay folder holds no images ({kinds}): {self._path}")
        elif self._path.is_file():
            self._images = None
        else:
            raise ConfigError(f"replay path not found: {self._path}")
        self._fps = float(fps)
        self._loop = loop
        self._realtime = realtime
        self._start: float | None = None
        self._capture: cv2.VideoCapture | None = None
        self._index = 0  # position in the folder during this pass
        self._is_open = False

    @classmethod
    def from_config(cls, config: CameraConfig, clock: Clock) -> ReplaySource:
        return cls(
            config.replay_path, clock, fps=config.fps, loop=config.loop, realtime=config.realtime
        )

    def open(self) -> None:
        if self._images is None:
            self._capture = self._open_video()
        self._index = 0
        if self._start is None:
            self._start = self._clock.now()
        self._is_open = True

    def _open_video(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self._path))
        if not capture.isOpened():
            capture.release()
            raise CameraError(f"cannot open replay video {self._path}")
        return capture

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self._is_open = False

    def read(self) -> Frame:
        if not self._is_open or self._start is None:
            raise CameraError(f"replay source {self._path} is not open")
        image = self._next_image()
        timestamp = self._start + self._seq / self._fps
        if self._realtime:
            self._clock.sleep(timestamp - self._clock.now())
        return self._frame(image, timestamp)

    def _next_image(self) -> np.ndarray:
        if self._images is not None:
            return self._next_from_folder(self._images)
        capture = self._capture
        if capture is None:
            raise CameraError(f"replay source {self._path} is not open")
        ok, image = capture.read()
        if not ok and self._loop:
            capture.release()
            capture = self._capture = self._open_video()
            ok, image = capture.read()
            if not ok:
                raise CameraError(f"replay video {self._path} has no frames")
        if not ok:
            raise EndOfStream(f"end of replay video {self._path}")
        return as_bgr(image)

    def _next_from_folder(self, images: list[Path]) -> np.ndarray:
        if self._index >= len(images):
            if not self._loop:
                raise EndOfStream(f"end of replay folder {self._path}")
            self._index = 0
        path = images[self._index]
        self._index += 1
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise CameraError(f"cannot decode replay image {path}")
        return image
