"""The crop the passive RGB liveness models see, cut as their authors cut it.

The MiniFASNet models were trained on a rectangle ``scale`` times the face box,
centred on the box and resized to the input size without keeping the aspect
ratio. Where the rectangle would cross the frame's edge it is shifted back
inside rather than clipped or padded, so the face sits off-centre but at its
trained size; where it could not fit at all, the scale shrinks until it does.
A different recipe (square, padded, clipped) changes the scores the models give.

Their boxes came from another detector, wider and lower on the face than YuNet's;
``training_box`` moves and resizes a YuNet box to match (the manifest's
``box_adjust``, measured on the authors' sample image, see
scripts/convert_minifasnet.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..types import Face


def training_box(face: Face, adjust: Sequence[float]) -> Face:
    """``face`` with its box centre moved by (dx, dy) box sides and its sides scaled by
    (sx, sy): ``adjust`` is (dx, dy, sx, sy)."""
    dx, dy, sx, sy = adjust
    cx, cy = face.center
    cx, cy = cx + dx * face.width, cy + dy * face.height
    half_w, half_h = sx * face.width / 2, sy * face.height / 2
    return Face((cx - half_w, cy - half_h, cx + half_w, cy + half_h), face.landmarks, face.score)


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
