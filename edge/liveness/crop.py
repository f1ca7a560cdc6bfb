"""The context crop the passive RGB liveness model sees, shared by training and runtime.

A square around the detected box, ``scale`` times the box's longer side, resized to
``size`` pixels in one warp. The context matters: a print's edge, the fingers that
hold it and a screen's bezel sit outside the face box. Parts of the square beyond
the frame are black, the same in training as at the door.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..types import Face


def context_crop(image: np.ndarray, face: Face, scale: float, size: int,
                 shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """``size`` x ``size`` BGR crop centred on the face box (plus ``shift`` box-sides)."""
    side = scale * max(face.width, face.height)
    cx, cy = face.center
    cx += shift[0] * side
    cy += shift[1] * side
    k = size / side
    # Maps frame pixels to crop pixels: scale about the square's corner.
    matrix = np.array([[k, 0.0, size / 2.0 - k * cx],
                       [0.0, k, size / 2.0 - k * cy]], dtype=np.float64)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
