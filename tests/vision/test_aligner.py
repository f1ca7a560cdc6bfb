import cv2
import numpy as np
import pytest

from edge.types import Face
from edge.vision.aligner import TEMPLATE_112, align, similarity_transform


def _apply(matrix, points):
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_similarity_transform_recovers_a_known_transform():
    angle, scale, shift = np.deg2rad(17.0), 2.3, np.array([40.0, -12.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = TEMPLATE_112
    dst = scale * src @ rot.T + shift
    matrix = similarity_transform(src, dst)
    assert np.allclose(matrix[:, :2], scale * rot, atol=1e-9)
    assert np.allclose(matrix[:, 2], shift, atol=1e-9)


def test_similarity_transform_never_reflects():
    mirrored = TEMPLATE_112 * np.array([-1.0, 1.0])
    matrix = similarity_transform(mirrored, TEMPLATE_112)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_align_puts_landmarks_on_the_template():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    # A face twice the template size, rotated 10 degrees, at (200, 100).
    angle = np.deg2rad(10)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = (2.0 * TEMPLATE_112 @ rot.T + [200, 100]).astype(np.float32)
    aligned = align(image, Face((0, 0, 1, 1), landmarks, 0.9))
    assert aligned.image.shape == (112, 112, 3)
    matrix = similarity_transform(landmarks, TEMPLATE_112)
    assert np.allclose(_apply(matrix, landmarks), TEMPLATE_112, atol=1e-4)
    # The crop's pixel at the nose template point is the frame's pixel at the nose.
    nose_src = landmarks[2].round().astype(int)
    expected = cv2.warpAffine(image, matrix, (112, 112))
    assert np.array_equal(aligned.image, expected)
    assert nose_src.min() >= 0


@pytest.mark.parametrize("shape", [(4, 2), (5, 3), (10,)])
def test_align_rejects_wrong_landmark_shapes(shape):
    image = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(ValueError, match="5 \\(x, y\\) landmarks"):
        align(image, Face((0, 0, 1, 1), np.zeros(shape, np.float32), 0.9))


def test_degenerate_landmarks_are_refused():
    with pytest.raises(ValueError, match="degenerate"):
        similarity_transform(np.zeros((5, 2)), TEMPLATE_112)
