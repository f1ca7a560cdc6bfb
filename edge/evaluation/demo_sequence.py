"""A replay sequence built from still photos, for the demo and the daemon tests.

Each photo is placed on a plain background and grows while drifting a little, so
it moves like a person stepping up to the door; a few empty frames separate the
people, so each photo is one visit. Everything is deterministic: the same photos
give the same frames, byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..errors import ImageError, RefusedError

# Bundled with the package (demo_faces/SOURCES.md): the demo enrols obama_1 and
# replays obama_2 and biden_1 walking up.
DEMO_PHOTOS = Path(__file__).with_name("demo_faces")
FRAME_SIZE = (640, 480)  # width, height
BACKGROUND_BGR = (180, 180, 180)


def _load(photo: str | Path | np.ndarray) -> np.ndarray:
    if isinstance(photo, np.ndarray):
        image = photo
    else:
        read = cv2.imread(str(photo), cv2.IMREAD_COLOR)
        if read is None:
            raise ImageError(f"cannot read photo {photo}")
        image = read
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ImageError(f"photo must be BGR uint8 (H, W, 3), got {image.dtype} {image.shape}")
    return image


def _paste(canvas: np.ndarray, image: np.ndarray, center: tuple[float, float]) -> None:
    """Copy ``image`` onto ``canvas`` centred at ``center``, clipped at the edges."""
    ch, cw = canvas.shape[:2]
    h, w = image.shape[:2]
    x0 = int(round(center[0] - w / 2))
    y0 = int(round(center[1] - h / 2))
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + w, cw), min(y0 + h, ch)
    if cx0 >= cx1 or cy0 >= cy1:
        return
    canvas[cy0:cy1, cx0:cx1] = image[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]


def approach_frames(
    photo: str | Path | np.ndarray,
    frames: int = 16,
    size: tuple[int, int] = FRAME_SIZE,
    scale_range: tuple[float, float] = (0.5, 0.95),
) -> list[np.ndarray]:
    """One person stepping up: ``frames`` frames, the photo growing from
    ``scale_range[0]`` to ``scale_range[1]`` of the frame height while it drifts
    from left of centre towards the middle and bobs slightly, as a walk does."""
    if frames < 2:
        raise ValueError(f"an approach needs at least 2 frames, got {frames}")
    image = _load(photo)
    width, height = size
    frames_out = []
    for i in range(frames):
        t = i / (frames - 1)
        scale = (scale_range[0] + (scale_range[1] - scale_range[0]) * t) * height / image.shape[0]
        scaled = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        center = (
            width / 2 - 0.06 * width * (1 - t),  # drifts in from the left
            height / 2 + 0.02 * height * np.sin(np.pi * i / 2),  # steps bob up and down
        )
        canvas = np.empty((height, width, 3), np.uint8)
        canvas[:] = BACKGROUND_BGR
        _paste(canvas, scaled, center)
        frames_out.append(canvas)
    return frames_out


def build_sequence(
    photos: Sequence[str | Path | np.ndarray],
    frames_per_person: int = 16,
    gap_frames: int = 4,
    size: tuple[int, int] = FRAME_SIZE,
) -> list[np.ndarray]:
    """The demo's replay: each photo approaches in turn, with ``gap_frames`` empty
    frames before each person (the door is clear between visits)."""
    if not photos:
        raise ValueError("a demo sequence needs at least one photo")
    if gap_frames < 0:
        raise ValueError(f"gap_frames must not be negative, got {gap_frames}")
    empty = np.empty((size[1], size[0], 3), np.uint8)
    empty[:] = BACKGROUND_BGR
    sequence: list[np.ndarray] = []
    for photo in photos:
        sequence.extend(empty.copy() for _ in range(gap_frames))
        sequence.extend(approach_frames(photo, frames_per_person, size))
    return sequence


def write_sequence(
    photos: Sequence[str | Path | np.ndarray],
    out_dir: str | Path,
    frames_per_person: int = 16,
    gap_frames: int = 4,
) -> list[Path]:
    """Write :func:`build_sequence` as ``frame_0000.jpg``... into ``out_dir`` (a
    folder the replay camera reads in name order); returns the paths written.

    Refuses a folder that already holds frames: leftovers of a longer sequence
    would be replayed after the new one.
    """
    out_dir = Path(out_dir)
    if out_dir.is_dir() and any(out_dir.glob("frame_*.jpg")):
        raise RefusedError(f"{out_dir} already holds frame_*.jpg files; use an empty folder")
    frames = build_sequence(photos, frames_per_person, gap_frames)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(frames):
        path = out_dir / f"frame_{i:04d}.jpg"
        if not cv2.imwrite(str(path), frame, [cv2.IMWRITE_JPEG_QUALITY, 92]):
            raise ImageError(f"cannot write {path}")
        paths.append(path)
    return paths
