"""The embedder's int8 variant: chosen by config, verified like any model file, and
close to the fp32 network on real faces."""

import importlib.util
import json
import shutil
import sys

import numpy as np
import pytest

from edge.config import parse_config
from edge.errors import ConfigError, ModelError
from edge.evaluation.pairs import nearest_centre, read_pairs
from edge.vision.embedder import Embedder, EmbedderConfig
from edge.vision.images import read_image
from edge.vision.models import (
    MANIFEST_NAME,
    ModelSpec,
    bundled_models_dir,
    model_spec,
    sha256_file,
)
from tests.helpers import FACES, REPO, pipeline

INT8 = '[embedder]\nprecision = "int8"\n'
# The lowest cosine between the two precisions' embeddings of one face: 0.9937 on 51
# DevTrain faces outside the calibration set when the method was chosen, 0.9950 on the
# DevTest faces below, 0.9957 on the demo faces.
AGREEMENT = 0.99


def _both(image):
    """The fp32 and int8 embeddings of the face nearest the centre, cut once."""
    face = nearest_centre(pipeline().detect(image), image)
    aligned = pipeline().align(image, face)
    return pipeline().embedder.embed(aligned), pipeline(INT8).embedder.embed(aligned)


def test_config_chooses_the_files():
    fp32, int8 = pipeline().embedder.net.spec, pipeline(INT8).embedder.net.spec
    assert (fp32.precision, fp32.bin_path.name) == ("fp32", "sface_2021dec.ncnn.bin")
    assert (int8.precision, int8.bin_path.name) == ("int8", "sface_2021dec_int8.ncnn.bin")
    assert int8.model_id == fp32.model_id == "sface_2021dec"
    # every convolution and the final fully connected layer run in int8
    quantised = [
        line
        for line in int8.param_path.read_text().splitlines()
        if line.split()[0] in {"Convolution", "ConvolutionDepthWise", "InnerProduct"}
    ]
    assert len(quantised) == 28 and all(" 8=" in line for line in quantised)
    assert int8.bin_path.stat().st_size < fp32.bin_path.stat().st_size / 3


def test_int8_agrees_with_fp32_on_the_demo_faces():
    names = ("obama_1", "obama_2", "biden_1")
    embeddings = {name: _both(read_image(FACES / f"{name}.jpg")) for name in names}
    for fp32, int8 in embeddings.values():
        assert fp32.similarity(int8) >= AGREEMENT
    obama_1, obama_2, biden = (int8 for _, int8 in embeddings.values())
    assert obama_1.similarity(obama_2) > 0.5 and obama_1.similarity(biden) < 0.3


def test_int8_agrees_with_fp32_on_devtest_faces(shared_data):
    lfw = shared_data / "lfw_view1"
    pairs = read_pairs(lfw / "pairsDevTest.txt")
    paths = sorted({p.first for p in pairs})[::40][:20]  # people the calibration never saw
    faces = (_both(read_image(lfw / "images" / p)) for p in paths)
    agreement = [fp32.similarity(int8) for fp32, int8 in faces]
    print(f"int8-fp32 cosine: min {min(agreement):.4f}, median {np.median(agreement):.4f}")
    assert len(agreement) == 20 and min(agreement) >= AGREEMENT
    assert np.median(agreement) >= 0.99


def test_an_unknown_precision_is_a_config_error():
    with pytest.raises(
        ConfigError, match="embedder.precision: 'int4' is not one of 'fp32', 'int8'"
    ):
        parse_config('[embedder]\nprecision = "int4"\n')


def _copy_models(tmp_path):
    target = tmp_path / "models"
    shutil.copytree(bundled_models_dir(), target)
    return target


def test_a_precision_the_manifest_lacks_is_refused_naming_what_it_has(tmp_path):
    models = _copy_models(tmp_path)
    path = models / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    del manifest["models"]["sface_2021dec"]["variants"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match=r"no 'int8' files .*\(it has: fp32\)"):
        model_spec(models, "sface_2021dec", "int8")
    with pytest.raises(ModelError, match=r"no 'int8' files .*\(it has: fp32\)"):
        model_spec(models, "yunet_2023mar", "int8")


def test_altered_int8_weights_are_refused(tmp_path):
    models = _copy_models(tmp_path)
    path = models / "sface_2021dec_int8.ncnn.bin"
    with open(path, "r+b") as f:
        f.seek(4096)
        f.write(b"\x7f\x7f\x7f\x7f")
    with pytest.raises(ModelError, match=f"model file altered: {path}"):
        model_spec(models, "sface_2021dec", "int8")
    model_spec(models, "sface_2021dec")  # the fp32 files are untouched and still load


def test_manifest_records_what_the_int8_files_were_made_from():
    fp32 = model_spec(bundled_models_dir(), "sface_2021dec")
    variant = model_spec(bundled_models_dir(), "sface_2021dec", "int8").entry
    assert variant["precision"] == "int8"
    assert variant["made_from"] == {
        "param_sha256": sha256_file(fp32.param_path),
        "bin_sha256": sha256_file(fp32.bin_path),
    }
    assert variant["calibration"]["data"].startswith("LFW View 1 pairsDevTrain.txt")
    assert variant["calibration"]["faces"] >= 500


def _quantise_script():
    spec = importlib.util.spec_from_file_location(
        "quantise_int8", REPO / "scripts" / "quantise_int8.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_int8_weights_written_are_those_ncnn_would_make(tmp_path):
    """The script's int8 weights, against the same net left in fp32 weights beside the
    same scales, which ncnn quantises itself as it loads them: one network."""
    q = _quantise_script()
    fp32 = model_spec(bundled_models_dir(), "sface_2021dec")
    header, layers = q.read_param(fp32.param_path)
    weights = q.split_weights(layers, fp32.bin_path.read_bytes())
    aligned = []
    for name in ("obama_1", "obama_2", "biden_1"):
        image = read_image(FACES / f"{name}.jpg")
        aligned.append(pipeline().align(image, nearest_centre(pipeline().detect(image), image)))
    targets = [layer for layer in layers if layer.kind in q.QUANTISABLE]
    scales = q.activation_scales(q.Activations(fp32, targets, 1), [a.image for a in aligned])
    vectors = {}
    for store_int8 in (True, False):
        param, weights_file = tmp_path / f"{store_int8}.param", tmp_path / f"{store_int8}.bin"
        written = q.write_int8(
            header, layers, weights, scales, param, weights_file, store_int8=store_int8
        )
        assert written == 28
        spec = ModelSpec(
            "sface_2021dec",
            param,
            weights_file,
            sha256_file(param),
            sha256_file(weights_file),
            fp32.entry,
            "int8",
        )
        embedder = Embedder(EmbedderConfig(precision="int8"), spec, 1)
        vectors[store_int8] = np.stack([embedder.embed(a).vector for a in aligned])
    stored, loaded = (tmp_path / "True.bin").stat().st_size, (tmp_path / "False.bin").stat().st_size
    assert stored < loaded / 3
    np.testing.assert_allclose(vectors[True], vectors[False], atol=1e-5)
    # and it is a working net, not two identical failures
    with_fp32 = np.stack([pipeline().embedder.embed(a).vector for a in aligned])
    assert np.min(np.sum(vectors[True] * with_fp32, axis=1)) >= 0.98


def test_weights_round_half_away_from_zero_and_never_reach_minus_128():
    q = _quantise_script()
    weight = np.array([0.5, -0.5, 1.49, -1.5, 2.5, 200.0, -200.0], np.float32)
    quantised = q.quantise(weight, np.array([1.0], np.float32))
    assert quantised.dtype == np.int8
    np.testing.assert_array_equal(quantised, [[1, -1, 1, -2, 3, 127, -127]])
