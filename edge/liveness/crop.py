"""The crop the passive RGB liveness models see, cut as their authors cut it.

The MiniFASNet models were trained on a rectangle ``scale`` times the face box,
centred on the box and resized to the input size without keeping the aspect
ratio. Where the rectangle would cross the frame's edge it is shifted back
inside rather than clipped or padded, so the face sits off-centre but at its
trained size; where it could not fit at all, the scale shrinks until it does.
A different recipe (square, padded, clipped) changes the scores the models give.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..types import Face


def scaled_crop(image: np.ndarray, face: Face, scale: float, size: int) -> np.ndarray:
    """``size`` x ``size`` BGR crop of ``scale`` times the face box (see the module)."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = face.bbox
    box_w, box_h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    scale = min(scale, (height - 1) / box_h, (width - 1) / box_w)
    crop_w, crop_h = scale * box_w, scale * box_h
    cx, cy = face.center
    left = min(max(cx - crop_w / 2, 0.0), width - 1 - crop_w)
    top = min(max(cy - crop_h / 2, 0.0), height - 1 - crop_h)
    # Whole pixels, both ends inclusive, as the authors cut them.
    cols = slice(int(left), int(left + crop_w) + 1)
    rows = slice(int(top), int(top + crop_h) + 1)
    return cv2.resize(image[rows, cols], (size, size), interpolation=cv2.INTER_LINEAR)
