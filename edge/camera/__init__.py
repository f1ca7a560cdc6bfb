"""Camera sources: one ``FrameSource`` protocol, one module per kind of camera.

Kinds (``camera.source`` in the config), each a module in this package:

* ``picamera2``: a Raspberry Pi camera through picamera2 (full-resolution main
  stream, a small stream for detection, optional near-infrared second camera);
* ``opencv``: a V4L2 device or a GStreamer pipeline (Jetson CSI cameras);
* ``replay``: a video file or a folder of images, for tests, benchmarks and the demo.

:func:`create_source` builds the source a config names, without opening it: the
:class:`~edge.camera.supervisor.CameraSupervisor` opens it, so that a camera missing
at boot is retried exactly like a camera lost later.
"""

from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from ..clock import Clock
from ..errors import CameraError, ConfigError, ExitCode, FacegateError
from ..schema import setting
from ..types import Frame

# Kind -> "module:class". Modules are imported only when their kind is chosen, so a
# Pi-only dependency is never imported on a Jetson or a laptop.
SOURCE_KINDS: dict[str, str] = {
    "picamera2": "edge.camera.picamera2:Picamera2Source",
    "opencv": "edge.camera.opencv:OpenCVSource",
    "replay": "edge.camera.replay:ReplaySource",
}


class EndOfStream(FacegateError, EOFError):
    """A replay source that does not loop has delivered its last frame.

    Deliberately *not* a CameraError: running out of recorded frames is not a
    fault, so the supervisor must not reopen and retry it; it reports the source
    as ended and the daemon stops cleanly.
    """

    exit_code = ExitCode.OK


@runtime_checkable
class FrameSource(Protocol):
    """A camera: ``open()``, then ``read()`` frames, then ``close()``.

    ``read()`` blocks until the next frame and returns an ``edge.types.Frame`` with
    a monotonic timestamp from the injected clock and a ``seq`` that increases for
    the life of the object (across close and reopen). It raises CameraError when
    the device fails or disconnects, and EndOfStream when a finite input ends.
    ``close()`` is safe to call twice and on a source that never opened.
    Sources are context managers (``with source: ...`` opens and closes).
    """

    def open(self) -> None: ...

    def read(self) -> Frame: ...

    def close(self) -> None: ...

    def __enter__(self) -> FrameSource: ...

    def __exit__(self, *exc_info: object) -> None: ...


class SourceBase(abc.ABC):
    """Context-manager behaviour and frame numbering shared by the sources."""

    def __init__(self, clock: Clock):
        self._clock = clock
        self._seq = 0

    @abc.abstractmethod
    def open(self) -> None: ...

    @abc.abstractmethod
    def read(self) -> Frame: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> SourceBase:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _frame(
        self,
        image: np.ndarray,
        timestamp: float,
        lores: np.ndarray | None = None,
        ir: np.ndarray | None = None,
    ) -> Frame:
        self._seq += 1
        return Frame(image=image, timestamp=timestamp, seq=self._seq, lores=lores, ir=ir)


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Grey or BGRA pixels as 3-channel BGR uint8 (the Frame convention)."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


@dataclass(frozen=True)
class CameraConfig:
    """The ``[camera]`` section: which camera, its geometry and reconnect backoff."""

    source: str = setting(
        "picamera2", "camera kind: picamera2, opencv or replay", choices=tuple(SOURCE_KINDS)
    )
    device: int | str = setting(
        0,
        "opencv: V4L2 device index (0 = /dev/video0) or a path such as /dev/video2",
        min=0,
        max=63,
    )
    pipeline: str = setting(
        "",
        "opencv: a GStreamer pipeline ending in appsink, used instead of device; for a Jetson CSI "
        "camera: nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,"
        "framerate=30/1 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! "
        "video/x-raw,format=BGR ! appsink drop=1 max-buffers=1",
    )
    fourcc: str = setting(
        "MJPG",
        "opencv V4L2: pixel format to ask the device for; empty = its default",
        choices=("", "MJPG", "YUYV"),
    )
    camera_num: int = setting(0, "picamera2: index of the colour camera", min=0, max=7)
    ir_camera: int = setting(
        -1, "picamera2: index of a second, near-infrared camera; -1 = none", min=-1, max=7
    )
    replay_path: str = setting("", "replay: a video file or a folder of images (sorted by name)")
    loop: bool = setting(False, "replay: start again at the end instead of ending the stream")
    realtime: bool = setting(
        True, "replay: pace frames to fps; false = as fast as they are read (tests, benchmarks)"
    )
    fps: float = setting(15.0, "frames per second asked of the camera, or replayed", min=1, max=120)
    main_size: tuple[int, int] = setting(
        (1280, 720), "width, height of the full-resolution frames", min=64, max=4096
    )
    lores_size: tuple[int, int] = setting(
        (640, 360),
        "picamera2: width, height of the small stream used for detection",
        min=64,
        max=4096,
    )
    auto_exposure: bool = setting(
        True,
        "picamera2: the camera chooses exposure time and gain (AeEnable); false = "
        "exposure_us and analogue_gain fix them",
    )
    exposure_us: int = setting(
        0,
        "picamera2: exposure time in microseconds; 0 = chosen by auto exposure, more fixes "
        "it (auto exposure then varies only the gain); required when auto_exposure = false",
        min=0,
        max=1_000_000,
    )
    analogue_gain: float = setting(
        0.0, "picamera2: sensor gain; 0 = chosen by auto exposure, 1..64 fixes it", min=0, max=64
    )
    min_fps: float = setting(
        0.0,
        "picamera2: lowest frame rate auto exposure may slow to in the dark, so that a "
        "frame can be exposed up to 1/min_fps s; 0 = fps (a fixed frame rate)",
        min=0,
        max=120,
    )
    ir_pair_tolerance_s: float = setting(
        0.02,
        "picamera2: most seconds between the colour and IR frames' sensor timestamps for "
        "them to count as one moment; an unpaired IR frame makes the NIR check inconclusive",
        min=0.0005,
        max=0.5,
    )
    backoff_initial: float = setting(
        0.5, "seconds before the first reopen of a failed camera", min=0.01, max=60
    )
    backoff_max: float = setting(
        30.0,
        "longest wait between reopen attempts (the wait doubles up to this)",
        min=0.1,
        max=3600,
    )

    def validate(self) -> None:
        if self.backoff_max < self.backoff_initial:
            raise ConfigError("camera.backoff_max: must not be below camera.backoff_initial")
        if self.lores_size[0] > self.main_size[0] or self.lores_size[1] > self.main_size[1]:
            raise ConfigError("camera.lores_size: must not be larger than camera.main_size")
        if self.pipeline and "appsink" not in self.pipeline:
            raise ConfigError("camera.pipeline: a GStreamer pipeline must end in appsink")
        if self.source == "replay" and not self.replay_path:
            raise ConfigError("camera.replay_path: required when camera.source = 'replay'")
        if self.ir_camera == self.camera_num:
            raise ConfigError("camera.ir_camera: must differ from camera.camera_num")
        if not self.auto_exposure and self.exposure_us == 0:
            raise ConfigError("camera.exposure_us: required (above 0) when auto_exposure = false")
        if 0 < self.analogue_gain < 1:
            raise ConfigError("camera.analogue_gain: 0 (automatic) or at least 1")
        if self.min_fps > self.fps:
            raise ConfigError("camera.min_fps: must not be above camera.fps")


def create_source(config: CameraConfig, clock: Clock) -> FrameSource:
    """The (unopened) source that ``config.source`` names.

    Raises ConfigError listing the valid kinds for an unknown kind, and whatever
    the source's ``from_config`` raises for settings it cannot use.
    """
    target = SOURCE_KINDS.get(config.source)
    if target is None:
        valid = ", ".join(sorted(SOURCE_KINDS))
        raise ConfigError(
            f"camera.source: unknown camera source {config.source!r} (valid: {valid})"
        )
    module_name, class_name = target.split(":")
    source_class = getattr(importlib.import_module(module_name), class_name)
    return source_class.from_config(config, clock)


__all__ = [
    "SOURCE_KINDS",
    "CameraConfig",
    "CameraError",
    "EndOfStream",
    "FrameSource",
    "SourceBase",
    "as_bgr",
    "create_source",
]
