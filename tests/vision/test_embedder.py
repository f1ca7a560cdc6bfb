import numpy as np
import pytest

from edge.errors import ModelMismatchError
from edge.types import Embedding
from edge.vision.images import read_image
from tests.helpers import pipeline


def _embed(path):
    image = read_image(path)
    (face,) = pipeline().detect(image)
    return pipeline().embed(image, face)


def test_same_person_is_closer_than_different_people(shared_data):
    ex = shared_data / "face_recognition_examples/examples"
    a1, a2 = _embed(ex / "obama.jpg"), _embed(ex / "obama2.jpg")
    b = _embed(ex / "biden.jpg")
    for e in (a1, a2, b):
        assert e.model_id == "sface_2021dec"
        assert e.vector.shape == (128,) and e.vector.dtype == np.float32
        assert np.linalg.norm(e.vector) == pytest.approx(1.0, abs=1e-5)
    assert a1.similarity(a2) > 0.5
    assert a1.similarity(b) < 0.3


def test_embeddings_of_different_models_cannot_be_compared():
    v = np.ones(4, np.float32) / 2
    with pytest.raises(ModelMismatchError, match="'m1'.*'m2'"):
        Embedding(v, "m1").similarity(Embedding(v, "m2"))
