"""Temporal cues: a flat picture turning vs a real head turning, and blinks."""

import numpy as np
import pytest

from edge.liveness.motion import PLANAR, STILL, THREE_D, blinked, motion, nose_parallax

# A face in 3-D (x right, y down, z towards the camera, units ~ eye distances):
# eyes and mouth corners near one plane, the nose tip well in front of it.
FACE_3D = np.array(
    [
        [-0.5, -0.4, 0.0],  # right eye (image left)
        [0.5, -0.4, 0.0],  # left eye
        [0.0, 0.15, 0.55],  # nose tip
        [-0.4, 0.6, 0.0],  # right mouth corner
        [0.4, 0.6, 0.0],  # left mouth corner
    ]
)


def project(
    points: np.ndarray,
    yaw_deg: float,
    distance: float = 8.0,
    focal: float = 800.0,
    centre=(320.0, 240.0),
) -> np.ndarray:
    """Pinhole image of ``points`` turned by ``yaw_deg`` about the vertical axis."""
    a = np.radians(yaw_deg)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    p = points @ rot.T
    z = distance - p[:, 2]
    return np.stack([centre[0] + focal * p[:, 0] / z, centre[1] + focal * p[:, 1] / z], axis=1)


def flat(points: np.ndarray) -> np.ndarray:
    """The same face printed on paper: every point in the z = 0 plane."""
    out = points.copy()
    out[:, 2] = 0.0
    return out


def track(points, yaws, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return [project(points, y) + rng.normal(0, noise, (5, 2)) for y in yaws]


TURN = [0, 5, 10, 15, 20, 25]


def test_real_head_turning_shows_depth():
    result = motion(track(FACE_3D, TURN, noise=0.5), min_turn=0.06, max_planar_parallax=0.04)
    assert result.state == THREE_D
    assert result.parallax > 0.1


def test_flat_picture_turning_is_planar():
    result = motion(track(flat(FACE_3D), TURN, noise=0.5), min_turn=0.06, max_planar_parallax=0.04)
    assert result.state == PLANAR
    assert result.parallax < 0.04


def test_a_still_face_is_inconclusive_not_judged():
    # Sliding and tilting within the image plane is no out-of-plane turn.
    base = project(FACE_3D, 0)
    moves = [base + [dx, 0.0] for dx in (0, 10, 20, 30)]
    result = motion(moves, min_turn=0.06, max_planar_parallax=0.04)
    assert result.state == STILL
    assert motion([base], 0.06, 0.04).state == STILL


def test_parallax_of_a_flat_picture_is_zero_under_any_homography():
    reference = project(flat(FACE_3D), 0)
    assert nose_parallax(reference, project(flat(FACE_3D), 30)) == pytest.approx(0.0, abs=1e-3)
    assert nose_parallax(project(FACE_3D, 0), project(FACE_3D, 30)) > 0.15


def test_blink_is_a_dip_that_comes_back():
    assert blinked([0.3, 0.31, 0.29, 0.08, 0.1, 0.3, 0.3], dip=0.6)


def test_eyes_open_throughout_or_closed_for_good_are_not_blinks():
    assert not blinked([0.3, 0.31, 0.29, 0.3, 0.28], dip=0.6)
    assert not blinked([0.3, 0.3, 0.3, 0.05, 0.05], dip=0.6)  # never reopened
    assert not blinked([0.3, 0.1], dip=0.6)  # too short to tell
