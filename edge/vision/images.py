"""Reading image files into the pipeline's pixel format (BGR uint8, 3 channels).

``read_image`` reads the header first (``image_header``) and refuses, before any
decoding, an image over the pixel limit, a truncated file and a format facegate does
not read; after decoding, an image with nothing visible (fully transparent).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ..errors import ImageError
from .image_header import read_header

# The still-image files the replay camera, the benchmark and evaluations read.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
# Most pixels an image may have: 50 million, about 150 MB decoded; a Raspberry Pi with
# 1 GB still has room for that beside the running service. Enrolment has it as a
# setting (enrolment.max_photo_pixels).
MAX_PIXELS = 50_000_000
# No file in the formats read (16-bit RGBA PNG stored uncompressed at worst) needs
# more bytes per pixel: a bigger file is refused before it is read into memory.
BYTES_PER_PIXEL = 8


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


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file (EXIF orientation applied) as BGR uint8; raises ImageError
    saying what is wrong with it, without decoding it when its header says enough."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > BYTES_PER_PIXEL * max_pixels:
                raise ImageError(
                    f"{path}: {size / 1e6:.0f} MB is more than an image of "
                    f"{max_pixels / 1e6:g} million pixels needs"
                )
            data = f.read()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such image file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image file") from None
    except PermissionError:
        raise ImageError(f"{path}: permission denied") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read it: {exc.strerror}") from None
    return decode_image(data, str(path), max_pixels)


def decode_image(data: bytes, path: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode the bytes of an image file (an upload) as ``read_image`` does; ``path``
    names it in errors."""
    if len(data) > BYTES_PER_PIXEL * max_pixels:
        raise ImageError(
            f"{path}: {len(data) / 1e6:.0f} MB is more than an image of "
            f"{max_pixels / 1e6:g} million pixels needs"
        )
    try:
        header = read_header(data)
    except ImageError as exc:
        raise ImageError(f"{path}: {exc}") from None
    if header.pixels > max_pixels:
        raise ImageError(
            f"{path}: {header.width} x {header.height} is {header.pixels / 1e6:.1f} million "
            f"pixels, more than the {max_pixels / 1e6:g} million allowed"
        )
    if not header.complete:
        raise ImageError(f"{path}: the {header.format} file is truncated")
    pixels = np.frombuffer(data, np.uint8)
    try:
        if header.alpha:
            unchanged = cv2.imdecode(pixels, cv2.IMREAD_UNCHANGED)
            if (
                unchanged is not None
                and unchanged.ndim == 3
                and unchanged.shape[2] == 4
                and not unchanged[..., 3].any()
            ):
                raise ImageError(f"{path}: fully transparent: there is nothing to see")
        # IMREAD_COLOR applies EXIF orientation and gives 8-bit BGR whatever the file
        # holds (grey, 16-bit, alpha), which is exactly what the pipeline wants.
        image = cv2.imdecode(pixels, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageError(
            f"{path}: cannot decode the {header.format} data: {getattr(exc, 'err', None) or exc}"
        ) from None
    if image is None:
        raise ImageError(f"{path}: cannot decode the {header.format} data")
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
