"""The embedder's int8 variant: chosen by config, verified like any model file, and
close to the fp32 network on real faces."""

import json
import shutil

import numpy as np
import pytest

from edge.config import parse_config
from edge.errors import ConfigError, ModelError
from edge.evaluation.pairs import nearest_centre, read_pairs
from edge.vision.images import read_image
from edge.vision.models import MANIFEST_NAME, bundled_models_dir, model_spec, sha256_file
from tests.helpers import FACES, pipeline

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
