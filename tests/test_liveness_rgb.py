"""The passive RGB model's wrapper: one crop per scale in the manifest, each to its own blob."""

import cv2
import pytest

from edge.liveness.crop import context_crop
from edge.liveness.policy import LivenessConfig
from edge.liveness.rgb import PassiveRgb
from edge.models import bundled_models_dir, model_spec

from .vision_helpers import pipeline


@pytest.fixture(scope="module")
def rgb() -> PassiveRgb:
    return PassiveRgb(model_spec(bundled_models_dir(), LivenessConfig().model), threads=1)


@pytest.fixture(scope="module")
def photo(fixtures):
    image = cv2.imread(str(fixtures / "faces" / "obama_1.jpg"))
    (face,) = pipeline().detect(image)
    return image, face


def test_the_bundled_model_takes_an_inner_and_a_wider_crop(rgb):
    scales = [c["scale"] for c in rgb.net.spec.input["crops"]]
    assert len(scales) == 2 and scales[0] < 1.0 < scales[1]


def test_a_face_is_scored_on_the_crops_its_manifest_names(rgb, photo):
    image, face = photo
    spec = rgb.net.spec.input
    crops = [context_crop(image, face, c["scale"], spec["size"][0]) for c in spec["crops"]]
    score = rgb.score(image, face)
    assert 0.0 <= score <= 1.0
    assert score == pytest.approx(rgb.score_crops(crops), abs=1e-6)
    # Each crop goes to its own input: swapping them is a different question.
    assert abs(rgb.score_crops(crops[::-1]) - score) > 1e-3


def test_the_wrong_number_of_crops_is_refused(rgb, photo):
    image, face = photo
    with pytest.raises(ValueError, match="takes 2 crops, got 1"):
        rgb.score_crops([context_crop(image, face, 1.4, 80)])
