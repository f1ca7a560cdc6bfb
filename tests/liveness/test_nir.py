"""The NIR layer on real near-infrared faces (nir_dev) and synthetic attacks on them.

No public IR spoof exists, so the attacks are made: a screen gives a black IR
frame, a misregistered or absent face is shifted away, a dim or flattened face
stands for material that does not reflect NIR like skin, and printed photos are
rendered as an NIR camera sees them (tests/liveness/synthetic_prints.py): carbon dots on
bright paper, where a face can be found, so the skin statistics must refuse them.
"""

import cv2
import numpy as np
import pytest

from edge.liveness.nir import NirCheck
from edge.liveness.policy import LivenessConfig
from edge.types import Face
from tests.helpers import FACES, pipeline
from tests.liveness.synthetic_prints import nir_print

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def check(registration=IDENTITY) -> NirCheck:
    c = LivenessConfig()
    return NirCheck(
        pipeline().detector,
        registration,
        c.nir_min_iou,
        c.nir_brightness,
        c.nir_min_contrast,
        c.nir_max_grain,
        c.nir_max_saturated,
    )


@pytest.fixture(scope="module")
def ir_face(shared_data):
    image = cv2.imread(str(shared_data / "nir_dev" / "3-0-neutral.jpg"))
    face = max(pipeline().detect(image), key=lambda f: f.width)
    return image, face


def test_every_real_nir_face_passes_where_the_colour_face_is(shared_data):
    paths = sorted((shared_data / "nir_dev").glob("*.jpg"))
    assert len(paths) > 100
    failures = []
    for path in paths:
        image = cv2.imread(str(path))
        face = max(pipeline().detect(image), key=lambda f: f.width)
        result = check().check(image, face)
        if not result.passed:
            failures.append((path.name, result.reason))
    assert failures == []


def test_a_screen_shows_no_face_in_nir(ir_face):
    image, face = ir_face
    result = check().check(np.zeros_like(image), face)
    assert not result.passed and result.reason == "no face in the infrared frame"


def test_the_ir_face_must_be_where_the_registration_puts_the_colour_face(ir_face):
    image, face = ir_face
    shifted = np.zeros_like(image)
    shifted[:, :-500] = image[:, 500:]  # the IR face sits 500 px left of the colour face
    assert "not where the colour face is" in check().check(shifted, face).reason
    assert check((1.0, 0.0, -500.0, 0.0, 1.0, 0.0)).check(shifted, face).passed


def test_registration_maps_the_colour_box_into_ir_pixels():
    face = Face((100.0, 50.0, 200.0, 170.0), np.zeros((5, 2), np.float32), 0.9)
    half_size = check((0.5, 0.0, 10.0, 0.0, 0.5, -5.0))
    assert half_size.expected_box(face) == pytest.approx((60.0, 20.0, 110.0, 80.0))


def test_nir_skin_statistics_reject_dark_and_flat_faces(ir_face):
    image, face = ir_face
    dark = (image * 0.2).astype(np.uint8)
    assert "brightness" in check().check(dark, face).reason
    dim_and_flat = (image * 0.3).astype(np.uint8)
    assert "no texture" in check().check(dim_and_flat, face).reason


def test_a_grey_ir_frame_is_accepted_as_one_channel(ir_face):
    image, face = ir_face
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    assert check().check(grey, face).passed


def found_face(image: np.ndarray) -> Face:
    """The face the detector finds in a print's NIR frame: the print does show one."""
    faces = pipeline().detect(image)
    assert faces, "the detector finds no face in this print; it would not test the statistics"
    return max(faces, key=lambda f: f.width)


@pytest.mark.parametrize("photo", ["obama_1.jpg", "obama_2.jpg"])
def test_a_laser_print_whose_dots_the_camera_resolves_is_refused_for_grain(photo):
    image = nir_print(cv2.imread(str(FACES / photo)), colour=False, cell=3.0, blur=0.6, paper=200)
    result = check().check(image, found_face(image))
    assert not result.passed and "grainy like print dots" in result.reason


@pytest.mark.parametrize("photo", ["obama_1.jpg", "obama_2.jpg"])
def test_a_colour_print_lit_to_clipping_is_refused_as_paper(photo):
    # Only the black ink shows in NIR; the paper around it clips under the illuminator.
    image = nir_print(cv2.imread(str(FACES / photo)), colour=True, cell=1.5, blur=1.5, paper=255)
    result = check().check(image, found_face(image))
    assert not result.passed and "clipped white like lit paper" in result.reason
