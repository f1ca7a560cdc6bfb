"""The MiniFASNet pair on ncnn: parity with torch, the authors' crop, and the fused score.

The reference outputs were computed by torch in scripts/convert_minifasnet.py on
crops of real faces (the silentface samples and a face_recognition photo), stored
in tests/data/minifasnet_reference.npz with the crops themselves, so this runs
without torch.
"""

import numpy as np
import pytest

from edge.liveness.crop import scaled_crop, training_box
from edge.liveness.policy import LivenessConfig
from edge.liveness.rgb import ModelOutputs, PassiveRgb, RgbModel, fused_probability
from edge.types import Face
from edge.vision.models import bundled_models_dir, model_spec
from tests.helpers import FACES

TOLERANCE = 1e-4
MODELS = LivenessConfig().models


@pytest.fixture(scope="module")
def models() -> dict[str, RgbModel]:
    return {m: RgbModel(model_spec(bundled_models_dir(), m), threads=1) for m in MODELS}


@pytest.fixture(scope="module")
def reference(fixtures):
    return np.load(fixtures / "minifasnet_reference.npz")


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_the_default_layer_is_the_apache_licensed_minifasnet_pair():
    assert MODELS == ("minifasnet_v2", "minifasnet_v1se")
    for model_id in MODELS:
        entry = model_spec(bundled_models_dir(), model_id).entry
        assert entry["licence"] == "Apache-2.0" and entry["precision"] == "fp32"


@pytest.mark.parametrize("model_id", MODELS)
def test_ncnn_matches_torch_on_real_faces(models, reference, model_id):
    crops = reference[f"{model_id}_crops"]
    assert crops.shape == (4, 80, 80, 3)
    outputs = [models[model_id].outputs(crop) for crop in crops]
    logits = np.stack([o.logits for o in outputs])
    features = np.stack([o.features for o in outputs])
    np.testing.assert_allclose(logits, reference[f"{model_id}_logits"], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(features, reference[f"{model_id}_features"], rtol=0, atol=TOLERANCE)
    probabilities = softmax(reference[f"{model_id}_logits"])[:, 1]
    np.testing.assert_allclose(
        [o.live_probability for o in outputs], probabilities, rtol=0, atol=TOLERANCE
    )


def test_the_reference_faces_are_told_apart_as_their_authors_say(reference):
    # Crops 0-2: the silentface samples, a real face, a print and a tablet replay
    # (T1, F1, F2); 3: a face_recognition photo of a person, shot by a press camera.
    fused = np.mean([softmax(reference[f"{m}_logits"])[:, 1] for m in MODELS], axis=0)
    assert fused[0] > 0.9 and fused[1] < 0.5 and fused[2] < 0.5


def box(x1, y1, x2, y2) -> Face:
    return Face((x1, y1, x2, y2), np.zeros((5, 2), np.float32), 0.9)


def test_the_crop_is_scaled_and_centred_on_the_box():
    image = np.zeros((400, 600, 3), np.uint8)
    image[190:210, 290:310] = 255  # a white square at the box's centre
    crop = scaled_crop(image, box(280, 180, 320, 220), 2.0, 80)
    # 80 px wide box: the square is 20 of them, a quarter of the crop, in its middle.
    white = np.argwhere(crop[:, :, 0] > 127)
    assert white.min(axis=0) == pytest.approx((30, 30), abs=1)
    assert white.max(axis=0) == pytest.approx((49, 49), abs=1)


def test_a_crop_crossing_the_edge_is_shifted_inside_not_padded():
    image = np.full((400, 600, 3), 200, np.uint8)
    image[:, :10] = 0  # a dark band at the left edge
    crop = scaled_crop(image, box(0, 150, 100, 250), 2.7, 80)
    # Shifted, not padded: only the dark band's share of the 270 px crop is dark.
    dark_columns = np.flatnonzero(crop[40, :, 0] < 100)
    assert len(dark_columns) == pytest.approx(80 * 10 / 270, abs=1.5)
    assert dark_columns.min() == 0


def test_the_training_box_moves_and_resizes_the_detected_box():
    moved = training_box(box(100, 100, 200, 300), (0.1, -0.05, 1.5, 0.5))
    assert moved.bbox == pytest.approx((85.0, 140.0, 235.0, 240.0))


def test_on_the_authors_sample_our_box_lands_on_theirs(shared_data, models):
    import cv2

    from tests.helpers import pipeline

    image = cv2.imread(str(shared_data / "silentface_samples_minivision" / "image_T1.jpg"))
    face = max(pipeline().detect(image), key=lambda f: f.width)
    for model in models.values():
        x1, y1, x2, y2 = training_box(face, model.box_adjust).bbox
        # Their detector's box, x, y, w, h = 106, 147, 207, 213 (the weights' README).
        assert (x1, y1, x2 - x1, y2 - y1) == pytest.approx((106, 147, 207, 213), abs=1.0)


def test_a_crop_larger_than_the_frame_shrinks_to_fit():
    import cv2

    image = np.random.default_rng(0).integers(0, 255, (200, 300, 3), np.uint8)
    crop = scaled_crop(image, box(100, 50, 200, 150), 4.0, 80)
    # The scale shrinks to (200 - 1) / 100: a 199 px square, the frame's full height,
    # centred on the box across.
    np.testing.assert_array_equal(crop, cv2.resize(image[0:200, 50:250], (80, 80)))


def test_the_default_score_is_the_mean_live_probability():
    live = ModelOutputs(np.array([0.0, 2.0, 0.0]), np.zeros(128), 1)
    spoof = ModelOutputs(np.array([3.0, 0.0, 1.0]), np.zeros(128), 1)
    assert fused_probability([live, spoof]) == pytest.approx(
        (live.live_probability + spoof.live_probability) / 2
    )
    assert live.live_probability == pytest.approx(np.exp(2) / (np.exp(2) + 2))


def test_the_layer_scores_a_face_through_every_model(models):
    import cv2

    from tests.helpers import pipeline

    image = cv2.imread(str(FACES / "obama_1.jpg"))
    (face,) = pipeline().detect(image)
    layer = PassiveRgb(list(models.values()))
    outputs = layer.outputs(image, face)
    assert [o.logits.shape for o in outputs] == [(3,), (3,)]
    assert layer.score(image, face) == pytest.approx(fused_probability(outputs), abs=1e-9)
    with pytest.raises(ValueError, match="at least one model"):
        PassiveRgb([])
