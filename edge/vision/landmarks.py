"""MediaPipe's 468-point face mesh on ncnn: dense landmarks for one detected face.

Two uses. YuNet's five landmarks are off by up to a fifth of the eye distance on
some faces; the mesh places the same five points steadily, and aligning on them
lifts verification accuracy (LFW View 1 DevTrain 99.32% -> 99.64%). And the liveness
cues need eyelids and a steady nose: the mesh gives both corners and both lids of
each eye, so ``eye_openness`` can follow a blink from frame to frame.

The model wants an upright face with a margin around it: the crop is rotated so
the eyes are level and is larger than the detector's box. Points come back in the
frame's pixels, like every other landmark in facegate (see types.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import ModelError
from ..schema import setting
from ..types import Face, Mesh
from .models import ModelSpec
from .ncnn_model import ImageInput, NcnnModel

# Crop side over the detector box's longer side, and how far the crop centre sits
# below the box centre (in box sides). Together they put the crop where MediaPipe's
# own tracking crop (1.5 x the mesh's extent) falls relative to a YuNet box on real
# faces: the mesh spans 0.95 of the box and its centre lies 0.04 lower.
CROP_SCALE = 1.45
CROP_DROP = 0.04

# Mesh indices per eye (the subject's right eye is on the image's left): the two
# corners, then two (upper lid, lower lid) pairs, as in the usual eye aspect ratio.
RIGHT_EYE = ((33, 133), ((160, 144), (158, 153)))
LEFT_EYE = ((362, 263), ((385, 380), (387, 373)))
# Below this presence score the mesh did not find a face in its crop (a profile,
# a bad box): its points are then noise, fit neither to align on nor to judge by.
MIN_PRESENCE = 0.5
# The nose tip and the mouth corners (subject's right, then left).
NOSE_TIP = 1
MOUTH_CORNERS = (61, 291)


def crop_transform(face: Face, size: int) -> np.ndarray:
    """The 2x3 affine mapping frame pixels onto the model's ``size`` x ``size`` input:
    centred on the face, rotated so the eyes are level, with a margin all round."""
    right_eye, left_eye = np.asarray(face.landmarks[:2], np.float64)
    angle = math.atan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0])
    cos, sin = math.cos(angle), math.sin(angle)
    box_side = max(face.width, face.height)
    down = np.array([-sin, cos])  # the face's own "down" in the frame
    centre = np.asarray(face.center, np.float64) + CROP_DROP * box_side * down
    scale = size / (CROP_SCALE * box_side)
    rotation = scale * np.array([[cos, sin], [-sin, cos]])
    return np.hstack([rotation, (size / 2 - rotation @ centre)[:, None]])


@dataclass(frozen=True)
class LandmarksConfig:
    model: str = setting(
        "face_landmark_2019jan",
        "face mesh model id: its five points align faces for the "
        "embedder, and the liveness cues follow it",
    )


class FaceMesh:
    """Loads the verified mesh model in the constructor; ``landmarks`` runs it on one face."""

    def __init__(self, spec: ModelSpec, threads: int):
        self.net = NcnnModel(spec, threads)
        self.model_id = spec.model_id
        self._image = ImageInput(spec)
        self.size = self._image.size[0]
        self._input = spec.input["blob"]
        self._outputs = [spec.outputs["landmarks"], spec.outputs["presence"]]
        self._points = int(spec.entry["points"])

    def landmarks(self, image_bgr: np.ndarray, face: Face) -> Mesh:
        transform = crop_transform(face, self.size)
        # Replicated borders, as in MediaPipe's own crop, for faces near the frame's edge.
        crop = cv2.warpAffine(
            image_bgr,
            transform,
            (self.size, self.size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        points, presence = self.run(crop)
        return Mesh(points=_to_frame(points, transform), presence=presence)

    def run(self, crop_bgr: np.ndarray) -> tuple[np.ndarray, float]:
        """The bare model on a ``size`` x ``size`` BGR crop: (468, 3) points in crop pixels
        and the presence score."""
        raw, logit = self.net.run({self._input: self._image.mat(crop_bgr)}, self._outputs)
        if raw.size != 3 * self._points or logit.size != 1:
            raise ModelError(
                f"{self.model_id}: expected {3 * self._points} coordinates and one score, "
                f"got {raw.size} and {logit.size}"
            )
        # tanh form of the sigmoid: no overflow for any logit
        presence = 0.5 * (1.0 + math.tanh(float(logit.reshape(-1)[0]) / 2))
        return raw.reshape(self._points, 3), presence


def _to_frame(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
    inverse = cv2.invertAffineTransform(transform)
    frame = np.empty_like(points, dtype=np.float32)
    frame[:, :2] = points[:, :2] @ inverse[:, :2].T + inverse[:, 2]
    frame[:, 2] = points[:, 2] * math.hypot(*inverse[:, 0])  # the crop's scale, undone
    return frame


def five_points(points: np.ndarray) -> np.ndarray:
    """The mesh's equivalents of the detector's five landmarks, in their order (types.py):
    eye centres (mid-corners), nose tip, mouth corners. The mesh places them far more
    steadily than YuNet, which matters for the liveness flatness cue."""
    xy = np.asarray(points, np.float32)[:, :2]
    return np.stack(
        [
            xy[list(RIGHT_EYE[0])].mean(axis=0),
            xy[list(LEFT_EYE[0])].mean(axis=0),
            xy[NOSE_TIP],
            xy[MOUTH_CORNERS[0]],
            xy[MOUTH_CORNERS[1]],
        ]
    )


def eye_openness(points: np.ndarray) -> tuple[float, float]:
    """Eye aspect ratio (mean lid gap over corner-to-corner width) of the subject's
    (right, left) eye. Scale-free, so any pixel scale of the mesh will do. Open eyes
    read about 0.2-0.35 on real faces; the ratio falls towards 0 as the lids close."""
    xy = np.asarray(points, np.float64)[:, :2]
    return _aspect_ratio(xy, RIGHT_EYE), _aspect_ratio(xy, LEFT_EYE)


def _aspect_ratio(xy: np.ndarray, eye: tuple) -> float:
    (corner_a, corner_b), lids = eye
    gaps = [np.linalg.norm(xy[upper] - xy[lower]) for upper, lower in lids]
    return float(np.mean(gaps) / np.linalg.norm(xy[corner_a] - xy[corner_b]))
