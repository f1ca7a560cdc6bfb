"""Temporal liveness cues from landmarks: does the face move like a flat picture, and blink?

Flatness. The eyes and mouth corners of a face lie close to one plane; the nose tip
stands well out of it. Between two views of a flat picture (a print, a screen),
all five points move by one homography, so the homography fitted to the four
planar points predicts where the nose went. On a real head turning, the nose
leaves that prediction by roughly its depth times the sine of the turn: parallax.
Parallax can only be seen when the face turns out of the image plane, which shows
as foreshortening of the eye-mouth quad; with too little turn the cue says
"still" (inconclusive) rather than guess.

Blinks. An eye-openness series (from the face mesh) that dips well below its
typical value and comes back is a blink. No blink proves nothing; people do not
blink on cue.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

THREE_D = "three_d"
PLANAR = "planar"
STILL = "still"

# Landmark rows (see edge.types): the four near-coplanar points and the nose tip.
_QUAD = [0, 1, 4, 3]  # right eye, left eye, left mouth corner, right mouth corner
_NOSE = 2


@dataclass(frozen=True)
class Motion:
    """``state`` is THREE_D, PLANAR or STILL; ``turn`` is the largest foreshortening
    seen, ``parallax`` the median nose parallax (in eye distances) over frames that
    turned enough."""

    state: str
    turn: float
    parallax: float


def _shape(points: np.ndarray) -> float:
    """log(width/height) of the eye-mouth quad: changes when the face turns out of plane."""
    eye_mid = (points[0] + points[1]) / 2
    mouth_mid = (points[3] + points[4]) / 2
    width = np.linalg.norm(points[1] - points[0]) + np.linalg.norm(points[4] - points[3])
    height = np.linalg.norm(mouth_mid - eye_mid)
    return float(np.log(max(width, 1e-6) / max(2 * height, 1e-6)))


def nose_parallax(reference: np.ndarray, current: np.ndarray) -> float:
    """How far the nose left the flat-picture prediction, in eye distances of ``current``."""
    homography = cv2.getPerspectiveTransform(
        reference[_QUAD].astype(np.float32), current[_QUAD].astype(np.float32)
    )
    predicted = cv2.perspectiveTransform(
        reference[_NOSE].reshape(1, 1, 2).astype(np.float32), homography
    ).reshape(2)
    eye_distance = float(np.linalg.norm(current[1] - current[0]))
    return float(np.linalg.norm(predicted - current[_NOSE])) / max(eye_distance, 1e-6)


def motion(landmarks: list[np.ndarray], min_turn: float, max_planar_parallax: float) -> Motion:
    """Classify a face's landmark track (oldest first) as THREE_D, PLANAR or STILL."""
    if len(landmarks) < 2:
        return Motion(STILL, 0.0, 0.0)
    reference = landmarks[0]
    base = _shape(reference)
    turned = [(abs(_shape(p) - base), p) for p in landmarks[1:]]
    turn = max(t for t, _ in turned)
    moving = [nose_parallax(reference, p) for t, p in turned if t >= min_turn]
    if not moving:
        return Motion(STILL, turn, 0.0)
    parallax = float(np.median(moving))
    return Motion(THREE_D if parallax > max_planar_parallax else PLANAR, turn, parallax)


def blinked(openness: list[float], dip: float) -> bool:
    """True when the series falls below ``dip`` x its median and rises back above it."""
    if len(openness) < 3:
        return False
    series = np.asarray(openness, dtype=np.float64)
    typical = float(np.median(series))
    if typical <= 0:
        return False
    closed = np.flatnonzero(series < dip * typical)
    return bool(closed.size) and closed[0] > 0 and bool(np.any(series[closed[0] :] >= typical))
