"""The ncnn pipeline against OpenCV's runtime on the very same ONNX files."""

import numpy as np
import pytest

from edge.errors import ModelError
from edge.evaluation.reference import OpenCVReference
from edge.vision.aligner import align
from edge.vision.images import read_image
from edge.vision.models import bundled_models_dir
from tests.helpers import pipeline

PHOTOS = [
    "face_recognition_examples/examples/obama.jpg",
    "face_recognition_examples/examples/two_people.jpg",
    "face_recognition_examples/examples/obama-480p.jpg",
    "nuaa_train/ClientRaw/0001/0001_00_00_01_0.jpg",
    "lfw_view1/images/Aaron_Peirsol/Aaron_Peirsol_0002.jpg",
]


@pytest.fixture(scope="module")
def reference():
    try:
        return OpenCVReference.from_manifest(bundled_models_dir(), "yunet_2023mar", "sface_2021dec")
    except ModelError as exc:
        pytest.skip(f"reference runtime unavailable: {exc}")


@pytest.mark.parametrize("photo", PHOTOS)
def test_ncnn_matches_opencv_on_real_photos(shared_data, reference, photo):
    image = read_image(shared_data / photo)
    # Same detection size as OpenCV's usual use: the full frame.
    ours = pipeline("[detector]\ninput_size = 1920\n")
    mine, theirs = ours.detect(image), reference.detect(image)
    assert len(mine) == len(theirs) >= 1
    for a, b in zip(mine, theirs, strict=True):
        assert np.abs(np.subtract(a.bbox, b.bbox)).max() <= 1.0
        assert np.abs(a.landmarks - b.landmarks).max() <= 1.0
        # Runtime parity: both embed a crop aligned on the detector's landmarks (the
        # pipeline itself aligns on the face mesh's, which OpenCV does not have).
        cosine = float(ours.embedder.embed(align(image, a)).vector @ reference.embed(image, b))
        assert cosine >= 0.999
