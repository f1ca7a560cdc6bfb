import cv2
import numpy as np
import pytest

from edge.config import parse_config
from edge.errors import ConfigError
from edge.schema import build_section
from edge.types import AlignedFace, Face
from edge.vision.aligner import TEMPLATE_112
from edge.vision.quality import (
    BLURRED,
    POSE,
    TOO_DARK,
    TOO_SMALL,
    QualityConfig,
    QualityGate,
    face_size,
    pose,
)


def _face(landmarks, score=0.95):
    return Face((0, 0, 1, 1), np.asarray(landmarks, np.float32), score)


def _textured_crop(brightness=120):
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 40, (112, 112)).astype(np.float32)
    return cv2.cvtColor(np.clip(brightness + noise, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def test_frontal_template_has_no_roll_or_yaw():
    roll, yaw, pitch = pose(TEMPLATE_112)
    assert abs(roll) < 1.0 and abs(yaw) < 0.02 and 0.4 < pitch < 0.6


def test_roll_and_yaw_are_measured():
    angle = np.deg2rad(30)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rolled = (TEMPLATE_112 - 56) @ rot.T + 56
    assert pose(rolled)[0] == pytest.approx(30.0, abs=1.5)
    turned = TEMPLATE_112.copy()
    turned[2, 0] += 20  # nose pushed towards one eye: head turned
    assert pose(turned)[1] > 0.5


def test_face_size_scales_with_landmarks():
    assert face_size(_face(TEMPLATE_112)) == pytest.approx(112, rel=0.05)
    assert face_size(_face(TEMPLATE_112 * 3)) == pytest.approx(336, rel=0.05)


def test_good_face_passes_and_each_failure_is_named():
    gate = QualityGate(QualityConfig())
    good = AlignedFace(_textured_crop(), _face(TEMPLATE_112 * 2))
    assert gate.assess(good).passed
    small = AlignedFace(_textured_crop(), _face(TEMPLATE_112 * 0.3))
    assert gate.assess(small).reasons == (TOO_SMALL,)
    blurred = AlignedFace(cv2.GaussianBlur(_textured_crop(), (0, 0), 6), _face(TEMPLATE_112 * 2))
    assert BLURRED in gate.assess(blurred).reasons
    dark = AlignedFace(_textured_crop(brightness=10) // 4, _face(TEMPLATE_112 * 2))
    assert TOO_DARK in gate.assess(dark).reasons
    turned = TEMPLATE_112 * 2
    turned[2, 0] += 40
    assert POSE in gate.assess(AlignedFace(_textured_crop(), _face(turned))).reasons


def test_quality_config_cross_checks_name_the_key():
    with pytest.raises(ConfigError, match="quality.min_brightness"):
        build_section(QualityConfig, {"min_brightness": 200, "max_brightness": 100}, "quality")
    with pytest.raises(ConfigError, match=r"<string>:3: quality.max_roll_deg: 120.0 is above"):
        parse_config("[quality]\n# tilt\nmax_roll_deg = 120\n")
