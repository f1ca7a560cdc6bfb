"""Quality gate: is this face good enough to identify (or enrol) from?

Each check has a named reason so a denial or a rejected enrolment photo says what
to fix. Size and pose come from the detector's geometry; sharpness and exposure
from the aligned 112x112 crop, so they do not depend on the camera's resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import ConfigError
from ..schema import setting
from ..types import AlignedFace, Face, Quality

TOO_SMALL = "too_small"
BLURRED = "blurred"
TOO_DARK = "too_dark"
TOO_BRIGHT = "too_bright"
POSE = "pose"
LOW_SCORE = "low_score"


@dataclass(frozen=True)
class QualityConfig:
    min_face_px: float = setting(
        60.0,
        "minimum inter-ocular-based face size in frame pixels (bigger = stricter)",
        min=10.0,
        max=2000.0,
    )
    min_score: float = setting(0.8, "minimum detector score (bigger = stricter)", min=0.0, max=1.0)
    min_sharpness: float = setting(
        40.0,
        "minimum variance of the Laplacian on the aligned grey crop (bigger = stricter)",
        min=0.0,
        max=10000.0,
    )
    min_brightness: float = setting(
        40.0, "minimum mean grey level of the aligned crop", min=0.0, max=255.0
    )
    max_brightness: float = setting(
        215.0, "maximum mean grey level of the aligned crop", min=0.0, max=255.0
    )
    max_roll_deg: float = setting(
        25.0, "maximum head roll (eye-line tilt) in degrees", min=0.0, max=90.0
    )
    max_yaw: float = setting(
        0.35,
        "maximum nose offset from the eye midpoint, in inter-eye distances (turned head)",
        min=0.0,
        max=2.0,
    )
    pitch_range: tuple[float, float] = setting(
        (0.25, 0.75),
        "allowed nose height between eye line (0) and mouth line (1)",
        min=0.0,
        max=1.0,
    )

    def validate(self) -> None:
        if self.min_brightness >= self.max_brightness:
            raise ConfigError("quality.min_brightness: must be below quality.max_brightness")
        if self.pitch_range[0] >= self.pitch_range[1]:
            raise ConfigError("quality.pitch_range: the first value must be below the second")


def pose(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(roll degrees, yaw ratio, pitch ratio) estimated from 5 landmarks.

    Roll is the eye-line angle. Yaw is the nose's horizontal offset from the eye
    midpoint in inter-eye distances, measured in the roll-corrected frame (0 when
    frontal). Pitch is where the nose sits between eye line (0) and mouth line (1).
    """
    right_eye, left_eye, nose, mouth_r, mouth_l = np.asarray(landmarks, dtype=np.float64)
    eye_vec = left_eye - right_eye
    eye_dist = float(np.hypot(*eye_vec))
    if eye_dist < 1e-6:
        return 90.0, 1.0, 0.5
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    axis_x = eye_vec / eye_dist
    axis_y = np.array([-axis_x[1], axis_x[0]])
    eye_mid = (right_eye + left_eye) / 2
    mouth_mid = (mouth_r + mouth_l) / 2
    yaw = float(np.dot(nose - eye_mid, axis_x)) / eye_dist
    mouth_depth = float(np.dot(mouth_mid - eye_mid, axis_y))
    pitch = float(np.dot(nose - eye_mid, axis_y)) / mouth_depth if mouth_depth > 1e-6 else 0.0
    return roll, yaw, pitch


def face_size(face: Face) -> float:
    """Face size in pixels, from the landmarks (steadier than the box)."""
    points = np.asarray(face.landmarks, dtype=np.float64)
    eye_dist = float(np.hypot(*(points[1] - points[0])))
    mouth_mid = (points[3] + points[4]) / 2
    eye_mid = (points[0] + points[1]) / 2
    # On the 112 template the inter-eye distance is ~35 px and eye-to-mouth ~40 px
    # of a 112 px face; scale whichever is larger back to a whole-face size.
    return max(eye_dist / 35.2, float(np.hypot(*(mouth_mid - eye_mid))) / 40.7) * 112.0


class QualityGate:
    def __init__(self, config: QualityConfig):
        self.config = config

    def check_geometry(self, face: Face) -> tuple[list[str], dict]:
        """Checks that need only the detection: size, score, pose."""
        c = self.config
        reasons: list[str] = []
        size = face_size(face)
        roll, yaw, pitch = pose(face.landmarks)
        # Each check is written so that a NaN measurement fails it.
        if not size >= c.min_face_px:
            reasons.append(TOO_SMALL)
        if not face.score >= c.min_score:
            reasons.append(LOW_SCORE)
        if not (
            abs(roll) <= c.max_roll_deg
            and abs(yaw) <= c.max_yaw
            and c.pitch_range[0] <= pitch <= c.pitch_range[1]
        ):
            reasons.append(POSE)
        return reasons, {"size_px": size, "roll_deg": roll, "yaw": yaw, "pitch": pitch}

    def assess(
        self, aligned: AlignedFace, geometry: tuple[list[str], dict] | None = None
    ) -> Quality:
        """All checks on an aligned face; ``reasons`` lists every failed one.

        ``geometry`` is ``check_geometry``'s result when the caller already has it.
        """
        c = self.config
        reasons, metrics = geometry if geometry is not None else self.check_geometry(aligned.face)
        reasons, metrics = list(reasons), dict(metrics)
        grey = cv2.cvtColor(aligned.image, cv2.COLOR_BGR2GRAY)
        # Central region only: the template's corners are background or padding.
        centre = grey[16:104, 16:96]
        sharpness = float(cv2.Laplacian(centre, cv2.CV_32F).var())
        brightness = float(centre.mean())
        if not sharpness >= c.min_sharpness:
            reasons.append(BLURRED)
        if not brightness >= c.min_brightness:
            reasons.append(TOO_DARK)
        elif not brightness <= c.max_brightness:
            reasons.append(TOO_BRIGHT)
        metrics.update(sharpness=sharpness, brightness=brightness)
        return Quality(passed=not reasons, reasons=tuple(reasons), metrics=metrics)
