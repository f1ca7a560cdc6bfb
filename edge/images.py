"""Reading image files into the pipeline's pixel format (BGR uint8, 3 channels)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .errors import ImageError

# The still-image files the replay camera, the benchmark and evaluations read.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Return a 3-channel BGR uint8 view/copy of a grey, BGR or BGRA image."""
    if image.dtype != np.uint8:
        raise ImageError(f"expected 8-bit pixels, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise ImageError(f"unsupported image shape {image.shape}")


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file (EXIF orientation applied) as BGR uint8; raises ImageError."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such image file")
    # IMREAD_COLOR applies EXIF orientation and gives 8-bit BGR whatever the file
    # holds (grey, 16-bit, alpha), which is exactly what the pipeline wants.
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(f"{path}: not a readable image")
    return image


def read_video(path: str | Path) -> Iterator[np.ndarray]:
    """The BGR frames of a video file in order; raises ImageError if it cannot be opened."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ImageError(f"{path}: cannot open the video")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        capture.release()
