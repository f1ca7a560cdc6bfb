"""Near-infrared check: the face seen in colour must also be there, as skin, in NIR.

A phone or tablet screen emits visible light only, so under NIR illumination it
shows no face at all. A print can show one: black carbon ink and toner absorb NIR
while paper reflects it strongly (more than skin), so a black-and-white laser print,
or the black ink of a colour print, draws the face in NIR. Finding a face is
therefore only the first test. The colour camera's face box is mapped into the IR
frame by an affine registration from the config (measured once when the cameras
are mounted), and a face found there by the same detector must overlap it. Within
that face (its inner half: cheeks, nose, eyes) the NIR image must look like lit
skin: brightness in skin's range, some contrast (a blank or black patch is not a
face), little fine grain (skin scatters NIR under its surface and looks smooth,
while a print's halftone dots and paper fibres show as grain when the camera
resolves them), and little clipped white (paper under the illuminator saturates
where skin seldom does).

These statistics catch prints whose dots or paper show. A carbon print with a
screen too fine for the camera to resolve, of a photo taken in NIR, shows neither:
the RGB model and the flatness cue must catch that one.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..types import Face
from ..vision.detector import Detector


@dataclass(frozen=True)
class NirResult:
    passed: bool
    reason: str = ""


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class NirCheck:
    def __init__(
        self,
        detector: Detector,
        registration: tuple[float, ...],
        min_iou: float,
        brightness: tuple[float, float],
        min_contrast: float,
        max_grain: float,
        max_saturated: float,
    ):
        self.detector = detector
        self.registration = np.asarray(registration, dtype=np.float64).reshape(2, 3)
        self.min_iou = min_iou
        self.brightness = brightness
        self.min_contrast = min_contrast
        self.max_grain = max_grain
        self.max_saturated = max_saturated

    def expected_box(self, face: Face) -> tuple[float, float, float, float]:
        """The colour face box mapped into IR pixels (the box around its mapped corners)."""
        x1, y1, x2, y2 = face.bbox
        corners = np.array([[x1, y1, 1], [x2, y1, 1], [x2, y2, 1], [x1, y2, 1]], dtype=np.float64)
        mapped = corners @ self.registration.T
        return (*mapped.min(axis=0), *mapped.max(axis=0))

    def check(self, ir_image: np.ndarray, face: Face) -> NirResult:
        if ir_image.ndim == 2:
            ir_image = cv2.cvtColor(ir_image, cv2.COLOR_GRAY2BGR)
        expected = self.expected_box(face)
        found = self.detector.detect(ir_image)
        best = max(found, key=lambda f: _iou(f.bbox, expected), default=None)
        if best is None:
            return NirResult(False, "no face in the infrared frame")
        overlap = _iou(best.bbox, expected)
        if not overlap >= self.min_iou:
            return NirResult(
                False,
                f"infrared face not where the colour face is "
                f"(overlap {overlap:.2f} < {self.min_iou:g})",
            )
        return self._skin(ir_image, best)

    def _skin(self, ir_image: np.ndarray, face: Face) -> NirResult:
        # The inner half of the box: cheeks, nose and eyes, not hair or background.
        x1, y1, x2, y2 = face.bbox
        qx, qy = (x2 - x1) / 4, (y2 - y1) / 4
        patch = ir_image[int(y1 + qy) : int(y2 - qy), int(x1 + qx) : int(x2 - qx)]
        if patch.size == 0:
            return NirResult(False, "infrared face too small to measure")
        grey = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY).astype(np.float32)
        mean, contrast = float(grey.mean()), float(grey.std())
        low, high = self.brightness
        if not low <= mean <= high:
            return NirResult(
                False, f"infrared face brightness {mean:.0f} outside skin's {low:g}-{high:g}"
            )
        if not contrast >= self.min_contrast:
            return NirResult(
                False,
                f"infrared face has no texture (contrast {contrast:.1f} < {self.min_contrast:g})",
            )
        # Grain: what a 1.5 px blur removes, relative to the brightness.
        grain = float(np.std(grey - cv2.GaussianBlur(grey, (0, 0), 1.5))) / mean
        if not grain <= self.max_grain:
            return NirResult(
                False,
                f"infrared face is grainy like print dots or paper "
                f"(grain {grain:.3f} > {self.max_grain:g})",
            )
        saturated = float(np.mean(grey >= 250))
        if not saturated <= self.max_saturated:
            return NirResult(
                False,
                f"infrared face is clipped white like lit paper "
                f"({100 * saturated:.0f}% of it > {100 * self.max_saturated:g}%)",
            )
        return NirResult(True)
