#!/usr/bin/env python3
"""Convert the MiniFASNet liveness pair to ncnn and pin its parity with torch.

The weights are the two files Minivision released with Silent-Face-Anti-Spoofing
(Apache-2.0), kept in ../shared/models/minifasnet with their sha256. The network
is written here from the published structure, its widths read from the weights'
shapes; the weights must load into it with no key missing or left over. Each
network is traced with a second output, the 128 features that feed the last layer
(site calibration may use them), and converted with pnnx at fp32 (pnnx's fp16
default moves probabilities by up to 0.036).

The authors cut their crops around the boxes of another detector, wider and lower
than YuNet's. The script measures how on their own sample (image_T1, where the
weights' README gives their box): the manifest's box_adjust moves and resizes a
YuNet box onto theirs, so the networks see the crops they were trained on.

The authors' licence is copied beside the models as LICENSE.minifasnet. The
script then cuts the authors' crop (edge.liveness.crop) from real faces, runs
torch and ncnn on the same crops, exits if they differ by more than 1e-4, and
stores the crops and torch's outputs in tests/data/minifasnet_reference.npz, so
the parity test runs without torch.

Needs torch on the CPU (``pip install torch==2.13.0``) and pnnx
(``pip install --no-deps pnnx``); neither is needed on the device.

Usage: python scripts/convert_minifasnet.py [--weights ../shared/models/minifasnet]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pnnx_convert import pnnx  # noqa: E402

from edge.config import default_config  # noqa: E402
from edge.liveness.crop import scaled_crop, training_box  # noqa: E402
from edge.liveness.rgb import RgbModel  # noqa: E402
from edge.vision.images import read_image  # noqa: E402
from edge.vision.models import ModelSpec, sha256_file, update_manifest  # noqa: E402
from edge.vision.pipeline import Pipeline  # noqa: E402

SIZE = 80
UPSTREAM = (
    "Silent-Face-Anti-Spoofing by Minivision, github.com/minivision-ai/"
    "Silent-Face-Anti-Spoofing commit b6d5f04ad78778917853b25c778acef6d5626d15, "
    "resources/anti_spoof_models/"
)
SOURCES = {
    "minifasnet_v2": {
        "file": "2.7_80x80_MiniFASNetV2.pth",
        "sha256": "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0",
        "scale": 2.7,
    },
    "minifasnet_v1se": {
        "file": "4_0_0_80x80_MiniFASNetV1SE.pth",
        "sha256": "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990",
        "scale": 4.0,
    },
}
# Real faces for the parity check (Apache-2.0 and MIT, see tests/data/SOURCES.md and
# edge/evaluation/demo_faces/SOURCES.md).
FACES = (
    "silentface_samples_minivision/image_T1.jpg",
    "silentface_samples_minivision/image_F1.jpg",
    "silentface_samples_minivision/image_F2.jpg",
)
OWN_FACES = ("edge/evaluation/demo_faces/obama_1.jpg",)
# The authors' detector box (x, y, width, height) on image_T1, from the weights' README.
AUTHORS_BOX = (106.0, 147.0, 207.0, 213.0)
REFERENCE = REPO / "tests" / "data" / "minifasnet_reference.npz"
TOLERANCE = 1e-4


def build_network(state: dict):
    """MiniFASNet (V2, or V1SE when the weights hold squeeze-excitation steps) with the
    widths the weights' shapes give."""
    import torch
    from torch import nn

    def width(name: str) -> int:
        return state[f"{name}.weight"].shape[0]

    class ConvBlock(nn.Module):
        """conv (no bias) + BN (+ PReLU)."""

        def __init__(self, cin, cout, kernel, stride, groups=1, act=True):
            super().__init__()
            self.conv = nn.Conv2d(
                cin,
                cout,
                kernel,
                stride,
                kernel // 2 if kernel == 3 else 0,
                groups=groups,
                bias=False,
            )
            self.bn = nn.BatchNorm2d(cout)
            if act:
                self.prelu = nn.PReLU(cout)

        def forward(self, x):
            x = self.bn(self.conv(x))
            return self.prelu(x) if hasattr(self, "prelu") else x

    class SqueezeExcite(nn.Module):
        def __init__(self, channels, hidden):
            super().__init__()
            self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(hidden)
            self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)

        def forward(self, x):
            w = torch.mean(x, dim=(2, 3), keepdim=True)
            w = torch.relu(self.bn1(self.fc1(w)))
            return x * torch.sigmoid(self.bn2(self.fc2(w)))

    class Separable(nn.Module):
        """1x1 expand, 3x3 depthwise, 1x1 project (no activation), optional SE and shortcut."""

        def __init__(self, prefix, cin, cout, stride, residual):
            super().__init__()
            hidden = width(f"{prefix}.conv.conv")
            self.conv = ConvBlock(cin, hidden, 1, 1)
            self.conv_dw = ConvBlock(hidden, hidden, 3, stride, groups=hidden)
            self.project = ConvBlock(hidden, cout, 1, 1, act=False)
            self.residual = residual
            if f"{prefix}.se_module.fc1.weight" in state:
                self.se_module = SqueezeExcite(cout, width(f"{prefix}.se_module.fc1"))

        def forward(self, x):
            y = self.project(self.conv_dw(self.conv(x)))
            if hasattr(self, "se_module"):
                y = self.se_module(y)
            return x + y if self.residual else y

    class Stage(nn.Module):
        def __init__(self, prefix, channels):
            super().__init__()
            count = len({k.split(".")[2] for k in state if k.startswith(f"{prefix}.model.")})
            self.model = nn.Sequential(
                *[
                    Separable(f"{prefix}.model.{i}", channels, channels, 1, True)
                    for i in range(count)
                ]
            )

        def forward(self, x):
            return self.model(x)

    class MiniFASNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = ConvBlock(3, 32, 3, 2)
            self.conv2_dw = ConvBlock(32, 32, 3, 1, groups=32)
            self.conv_23 = Separable("conv_23", 32, 64, 2, False)
            self.conv_3 = Stage("conv_3", 64)
            self.conv_34 = Separable("conv_34", 64, 128, 2, False)
            self.conv_4 = Stage("conv_4", 128)
            self.conv_45 = Separable("conv_45", 128, 128, 2, False)
            self.conv_5 = Stage("conv_5", 128)
            self.conv_6_sep = ConvBlock(128, 512, 1, 1)
            self.conv_6_dw = ConvBlock(512, 512, 5, 1, groups=512, act=False)
            self.linear = nn.Linear(512, 128, bias=False)
            self.bn = nn.BatchNorm1d(128)
            self.prob = nn.Linear(128, 3, bias=False)

        def forward(self, x):
            for stage in (
                self.conv1,
                self.conv2_dw,
                self.conv_23,
                self.conv_3,
                self.conv_34,
                self.conv_4,
                self.conv_45,
                self.conv_5,
                self.conv_6_sep,
                self.conv_6_dw,
            ):
                x = stage(x)
            features = self.bn(self.linear(torch.flatten(x, 1)))
            return self.prob(features), features

    net = MiniFASNet()
    net.load_state_dict(state, strict=True)
    return net.eval()


def load_state(path: Path, sha256: str) -> dict:
    import torch

    if not path.is_file():
        sys.exit(f"{path}: not found (is --weights the minifasnet folder?)")
    if sha256_file(path) != sha256:
        sys.exit(f"{path}: expected sha256 {sha256}, found {sha256_file(path)}")
    state = torch.load(path, map_location="cpu", weights_only=False)
    return {k.removeprefix("module."): v for k, v in state.items()}


def measure_box_adjust(pipeline: Pipeline, data: Path) -> list[float]:
    """(dx, dy, sx, sy) taking our detector's box on image_T1 onto the authors' box."""
    face = presenter(pipeline, read_image(data / FACES[0]))
    x, y, w, h = AUTHORS_BOX
    (cx, cy), (our_w, our_h) = face.center, (face.width, face.height)
    adjust = [(x + w / 2 - cx) / our_w, (y + h / 2 - cy) / our_h, w / our_w, h / our_h]
    return [round(v, 3) for v in adjust]


def presenter(pipeline: Pipeline, image: np.ndarray):
    return max(pipeline.detect(image), key=lambda f: f.width * f.height)


def manifest_entry(
    model_id: str, src: dict, param: Path, weights: Path, parameters: int, box_adjust: list[float]
) -> dict:
    return {
        "role": "liveness",
        "licence": "Apache-2.0",
        "parameters": parameters,
        "input": {
            "blob": "in0",
            "layout": "NCHW",
            "color": "BGR",
            "size": [SIZE, SIZE],
            "mean": [0.0, 0.0, 0.0],
            "norm": [1.0, 1.0, 1.0],
            "crop_scale": src["scale"],
            "box_adjust": box_adjust,
            "note": "raw 0-255 values; the crop is crop_scale x the face box (first moved by "
            "(dx, dy) box sides and scaled by (sx, sy), box_adjust, onto the box of the "
            "authors' detector), shifted inside the frame (edge/liveness/crop.py)",
        },
        "precision": "fp32",
        "outputs": {"logits": "out0", "features": "out1", "live_index": 1, "classes": 3},
        "notes": "softmax over 3 logits; class 1 is a live face, 0 and 2 are attacks. "
        "features: the 128 values that feed the last layer.",
        "training_data": "the authors' own, not published",
        "source": {
            "file": src["file"],
            "sha256": src["sha256"],
            "upstream": UPSTREAM,
            "script": "scripts/convert_minifasnet.py",
        },
        "conversion": "network written from the published structure, torch.jit.trace, "
        "pnnx fp16=0 (ncnn fp32)",
        "param": {"file": param.name, "sha256": sha256_file(param)},
        "bin": {"file": weights.name, "sha256": sha256_file(weights)},
    }


def reference_crops(
    pipeline: Pipeline, scale: float, box_adjust: list[float], data: Path
) -> np.ndarray:
    crops = []
    for path in [data / f for f in FACES] + [REPO / f for f in OWN_FACES]:
        image = read_image(path)
        crops.append(
            scaled_crop(image, training_box(presenter(pipeline, image), box_adjust), scale, SIZE)
        )
    return np.stack(crops)


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weights",
        type=Path,
        default=REPO.parent / "shared" / "models" / "minifasnet",
        help="folder holding the two released .pth files",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=REPO.parent / "shared" / "data",
        help="the shared data folder (faces for the parity check)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "models_ncnn")
    args = parser.parse_args()

    pipeline = Pipeline.from_config(default_config())
    box_adjust = measure_box_adjust(pipeline, args.data)
    print(f"box_adjust (dx, dy, sx, sy) from image_T1: {box_adjust}")
    entries, reference = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for model_id, src in SOURCES.items():
            net = build_network(load_state(args.weights / src["file"], src["sha256"]))
            script = Path(tmp) / f"{model_id}.pt"
            torch.jit.trace(net, torch.zeros(1, 3, SIZE, SIZE)).save(str(script))
            param, weights = pnnx(script, f"inputshape=[1,3,{SIZE},{SIZE}]")
            out_param = args.out / f"{model_id}.ncnn.param"
            out_bin = args.out / f"{model_id}.ncnn.bin"
            shutil.copyfile(param, out_param)
            shutil.copyfile(weights, out_bin)
            parameters = sum(p.numel() for p in net.parameters())
            entries[model_id] = manifest_entry(
                model_id, src, out_param, out_bin, parameters, box_adjust
            )

            crops = reference_crops(pipeline, src["scale"], box_adjust, args.data)
            with torch.no_grad():
                logits, features = net(torch.from_numpy(crops).permute(0, 3, 1, 2).float())
            reference[f"{model_id}_crops"] = crops
            reference[f"{model_id}_logits"] = logits.numpy()
            reference[f"{model_id}_features"] = features.numpy()
            spec = ModelSpec(
                model_id,
                out_param,
                out_bin,
                entries[model_id]["param"]["sha256"],
                entries[model_id]["bin"]["sha256"],
                entries[model_id],
            )
            ours = RgbModel(spec, threads=1)
            worst = 0.0
            for crop, want_logits, want_features in zip(
                crops, logits.numpy(), features.numpy(), strict=True
            ):
                got = ours.outputs(crop)
                worst = max(
                    worst,
                    float(np.abs(got.logits - want_logits).max()),
                    float(np.abs(got.features - want_features).max()),
                )
            print(
                f"{model_id}: {parameters} parameters, ncnn vs torch on {len(crops)} real faces: "
                f"largest difference {worst:.2e}"
            )
            if not worst <= TOLERANCE:
                sys.exit(f"{model_id}: ncnn differs from torch by {worst:.2e} > {TOLERANCE:g}")
    shutil.copyfile(args.weights / "LICENSE", args.out / "LICENSE.minifasnet")
    update_manifest(args.out, entries)
    np.savez_compressed(REFERENCE, **reference)
    print(f"wrote {len(entries)} models to {args.out} and the parity reference {REFERENCE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
