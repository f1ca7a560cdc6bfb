#!/usr/bin/env python3
"""Make the int8 variant of the embedder from its fp32 ncnn files, in ncnn's int8 format.

ncnn's PyPI wheel and its source package carry no quantisation tools (the source
package holds src/ but not tools/quantize), so this does what ncnn2table and
ncnn2int8 do, in ncnn's own file format, and ncnn's int8 kernels run the result:

1. calibration faces: images of LFW View 1's DevTrain pairs (never DevTest), each cut
   to the 112x112 aligned face exactly as the door does (detector, face mesh, aligner);
2. the table: for every Convolution, ConvolutionDepthWise and InnerProduct, one scale
   per output channel for the weights (127 / largest |weight|) and one for its input
   blob, from the fp32 net's activations on the calibration faces (127 / the magnitude
   that all but 0.002% of the non-zero values stay under, from 2048-bin histograms);
3. the files: those layers get ``8=int8_scale_term`` in the .param, and in the .bin
   their weights become int8 (ncnn's tag 0x000D4B38), followed by the bias and the
   scales, which is where ncnn's loader looks for them.

The manifest entry of the fp32 model gets ``variants.int8`` with both files' sha256,
the fp32 files' sha256 they came from, the calibration set and the tool. Rerun it after
scripts/convert_models.py, which rewrites the fp32 entry without its variants.

Usage: python scripts/quantise_int8.py --data ../shared/data/lfw_view1
           [--model sface_2021dec] [--models-dir models_ncnn] [--faces 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.config import default_config  # noqa: E402
from edge.errors import ModelError  # noqa: E402
from edge.evaluation.pairs import nearest_centre, read_pairs  # noqa: E402
from edge.vision.images import read_image  # noqa: E402
from edge.vision.models import (  # noqa: E402
    ModelSpec,
    load_manifest,
    model_spec,
    sha256_file,
    update_manifest,
)
from edge.vision.ncnn_model import ImageInput, NcnnModel  # noqa: E402
from edge.vision.pipeline import Pipeline  # noqa: E402

CALIBRATION_PAIRS = "pairsDevTrain.txt"
INT8_TAG = 0x000D4B38  # ncnn ModelBin: the weights that follow are int8
FP32_TAG = 0
HISTOGRAM_BINS = 2048
# The clipping point of each input blob: the magnitude 99.998% of its non-zero values
# stay under. Chosen on DevTrain faces outside the calibration set (README, INT8):
# KL-divergence clipping (ncnn2table's default method, in this script's first version)
# clipped too hard for an embedding (cosine to fp32 down to 0.96), the plain maximum too
# little (0.98); this kept every face above 0.993.
KEPT_SHARE = 0.99998


@dataclass(frozen=True)
class Quantisable:
    """Where a layer type keeps its sizes in the .param, and the int8_scale_term it gets
    (param key 8 in all three; depthwise takes one weight scale per group)."""

    outputs_key: int
    bias_key: int
    size_key: int
    scale_term: int


QUANTISABLE = {
    "Convolution": Quantisable(outputs_key=0, bias_key=5, size_key=6, scale_term=2),
    "ConvolutionDepthWise": Quantisable(outputs_key=0, bias_key=5, size_key=6, scale_term=1),
    "InnerProduct": Quantisable(outputs_key=0, bias_key=1, size_key=2, scale_term=2),
}
# Layers whose weights are plain fp32 arrays: (param key of the channel count, arrays).
PLAIN_WEIGHTS = {"PReLU": (0, 1), "BatchNorm": (0, 4)}
NO_WEIGHTS = {"Input", "BinaryOp", "Flatten", "Split", "Reshape", "Permute", "Sigmoid"}


@dataclass
class Layer:
    kind: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[int, str]
    line: str

    def int_param(self, key: int, default: int = 0) -> int:
        return int(self.params.get(key, default))


def read_param(path: Path) -> tuple[list[str], list[Layer]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != "7767517":
        raise ModelError(f"{path}: not an ncnn .param file (magic 7767517)")
    layers = []
    for line in lines[2:]:
        fields = line.split()
        kind, name, n_in, n_out = fields[0], fields[1], int(fields[2]), int(fields[3])
        bottoms = fields[4 : 4 + n_in]
        tops = fields[4 + n_in : 4 + n_in + n_out]
        params = {}
        for token in fields[4 + n_in + n_out :]:
            key, value = token.split("=", 1)
            params[int(key)] = value
        layers.append(Layer(kind, name, bottoms, tops, params, line))
    return lines[:2], layers


def split_weights(layers: list[Layer], blob: bytes) -> list[dict[str, np.ndarray]]:
    """Each layer's arrays in the .bin, in layer order; refuses what it cannot read."""
    offset, out = 0, []

    def floats(count: int) -> np.ndarray:
        nonlocal offset
        array = np.frombuffer(blob, dtype="<f4", count=count, offset=offset)
        offset += 4 * count
        return array

    for layer in layers:
        arrays: dict[str, np.ndarray] = {}
        if layer.kind in QUANTISABLE:
            keys = QUANTISABLE[layer.kind]
            if layer.int_param(8):
                raise ModelError(f"layer {layer.name} is already quantised")
            (tag,) = struct.unpack_from("<I", blob, offset)
            if tag != FP32_TAG:
                raise ModelError(f"layer {layer.name}: weights are not plain fp32 (tag {tag:#x})")
            offset += 4
            arrays["weight"] = floats(layer.int_param(keys.size_key))
            if layer.int_param(keys.bias_key):
                arrays["bias"] = floats(layer.int_param(keys.outputs_key))
        elif layer.kind in PLAIN_WEIGHTS:
            key, multiplier = PLAIN_WEIGHTS[layer.kind]
            arrays["data"] = floats(layer.int_param(key) * multiplier)
        elif layer.kind not in NO_WEIGHTS:
            raise ModelError(f"layer type {layer.kind} ({layer.name}) is not supported here")
        out.append(arrays)
    if offset != len(blob):
        raise ModelError(f".bin has {len(blob) - offset} bytes the .param does not account for")
    return out


def weight_scales(layer: Layer, weight: np.ndarray) -> np.ndarray:
    """One scale per output channel (per group for depthwise): 127 / largest |weight|."""
    groups = layer.int_param(7, 1) if layer.kind == "ConvolutionDepthWise" else layer.int_param(0)
    absmax = np.abs(weight.reshape(groups, -1)).max(axis=1)
    return np.where(absmax > 0, 127.0 / np.maximum(absmax, 1e-30), 1.0).astype(np.float32)


def quantise(weight: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """As ncnn rounds: half away from zero, clipped to +-127 (-128 is never used)."""
    scaled = weight.reshape(len(scales), -1) * scales[:, None]
    return np.clip(np.trunc(scaled + np.copysign(0.5, scaled)), -127, 127).astype(np.int8)


class Activations:
    """The fp32 net's input blobs of the layers to quantise, face by face."""

    def __init__(self, spec: ModelSpec, layers: list[Layer], threads: int):
        self.model = NcnnModel(spec, threads, fp32=True, keep_blobs=True)
        self.image = ImageInput(spec)
        self.input = spec.input["blob"]
        self.blobs = sorted({layer.bottoms[0] for layer in layers})

    def __call__(self, face: np.ndarray) -> dict[str, np.ndarray]:
        found = self.model.run({self.input: self.image.mat(face)}, self.blobs)
        return {
            blob: np.abs(values).reshape(-1) for blob, values in zip(self.blobs, found, strict=True)
        }


def activation_scales(activations: Activations, faces: list[np.ndarray]) -> dict[str, float]:
    """127 / clipping point per blob, from two passes: the range, then the histogram."""
    absmax = dict.fromkeys(activations.blobs, 0.0)
    for face in faces:
        for blob, values in activations(face).items():
            absmax[blob] = max(absmax[blob], float(values.max()))
    histograms = {blob: np.zeros(HISTOGRAM_BINS) for blob in activations.blobs}
    for face in faces:
        for blob, values in activations(face).items():
            nonzero = values[values > 0]  # zeros (after PReLU/ReLU, padding) say nothing
            histograms[blob] += np.histogram(nonzero, HISTOGRAM_BINS, (0.0, absmax[blob]))[0]
    scales = {}
    for blob, histogram in histograms.items():
        share = np.cumsum(histogram) / max(histogram.sum(), 1.0)
        kept = int(np.searchsorted(share, KEPT_SHARE)) + 1
        scales[blob] = 127.0 / (kept * absmax[blob] / HISTOGRAM_BINS)
    return scales


def calibration_faces(data: Path, count: int) -> tuple[list[np.ndarray], list[str]]:
    """Up to ``count`` aligned faces from DevTrain's images, evenly spread over its people."""
    pairs = read_pairs(data / CALIBRATION_PAIRS)
    paths = sorted({p.first for p in pairs} | {p.second for p in pairs})
    chosen = [paths[i] for i in np.linspace(0, len(paths) - 1, min(count, len(paths))).astype(int)]
    pipeline = Pipeline.from_config(default_config())
    faces, used = [], []
    for rel in chosen:
        image = read_image(data / "images" / rel)
        found = pipeline.detect(image)
        if found:
            faces.append(pipeline.align(image, nearest_centre(found, image)).image)
            used.append(rel)
    return faces, used


def write_int8(
    header: list[str],
    layers: list[Layer],
    weights: list[dict[str, np.ndarray]],
    scales: dict[str, float],
    param_out: Path,
    bin_out: Path,
    store_int8: bool = True,
) -> int:
    """Write the int8 net; returns how many layers run in int8. ``store_int8=False``
    leaves the weights fp32 beside their scales, for ncnn to quantise as it loads them:
    the same net in a 4x bigger file (tests compare the two)."""
    lines, chunks, quantised = list(header), [], 0
    for layer, arrays in zip(layers, weights, strict=True):
        if layer.kind in QUANTISABLE:
            w_scales = weight_scales(layer, arrays["weight"])
            if store_int8:
                q = quantise(arrays["weight"], w_scales).reshape(-1).tobytes()
                chunks += [struct.pack("<I", INT8_TAG), q, b"\0" * (-len(q) % 4)]
            else:
                chunks += [struct.pack("<I", FP32_TAG), arrays["weight"].astype("<f4").tobytes()]
            if "bias" in arrays:
                chunks.append(arrays["bias"].astype("<f4").tobytes())
            chunks.append(w_scales.astype("<f4").tobytes())
            chunks.append(np.float32(scales[layer.bottoms[0]]).astype("<f4").tobytes())
            lines.append(f"{layer.line} 8={QUANTISABLE[layer.kind].scale_term}")
            quantised += 1
        else:
            chunks += [a.astype("<f4").tobytes() for a in arrays.values()]
            lines.append(layer.line)
    param_out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bin_out.write_bytes(b"".join(chunks))
    return quantised


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="LFW View 1 folder")
    parser.add_argument("--model", default="sface_2021dec")
    parser.add_argument("--models-dir", type=Path, default=Path("models_ncnn"))
    parser.add_argument("--faces", type=int, default=1000, help="calibration faces")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import ncnn

    spec = model_spec(args.models_dir, args.model)
    header, layers = read_param(spec.param_path)
    weights = split_weights(layers, spec.bin_path.read_bytes())
    faces, used = calibration_faces(args.data, args.faces)
    print(f"{len(faces)} calibration faces from {CALIBRATION_PAIRS}", file=sys.stderr)
    targets = [layer for layer in layers if layer.kind in QUANTISABLE]
    scales = activation_scales(Activations(spec, targets, args.threads), faces)

    param_out = args.models_dir / f"{args.model}_int8.ncnn.param"
    bin_out = args.models_dir / f"{args.model}_int8.ncnn.bin"
    quantised = write_int8(header, layers, weights, scales, param_out, bin_out)
    variant = {
        "precision": "int8",
        "param": {"file": param_out.name, "sha256": sha256_file(param_out)},
        "bin": {"file": bin_out.name, "sha256": sha256_file(bin_out)},
        "made_from": {"param_sha256": spec.param_sha256, "bin_sha256": spec.bin_sha256},
        "conversion": (
            f"scripts/quantise_int8.py: {quantised} Convolution/ConvolutionDepthWise/"
            "InnerProduct layers in ncnn int8 (per-channel weight scales 127/absmax; input "
            f"scales 127/the {KEPT_SHARE:.3%} point of non-zero |values| in "
            f"{HISTOGRAM_BINS}-bin histograms); other layers fp32"
        ),
        "tool": {"script": "scripts/quantise_int8.py", "ncnn": ncnn.__version__},
        "calibration": {
            "data": f"LFW View 1 {CALIBRATION_PAIRS} images (never DevTest)",
            "faces": len(faces),
            "preprocessing": "facegate detector + face mesh + aligner, nearest-centre face",
            "images_sha256": hashlib.sha256("\n".join(used).encode()).hexdigest(),
        },
    }
    entry = load_manifest(args.models_dir)["models"][args.model]
    entry["variants"] = {**entry.get("variants", {}), "int8": variant}
    update_manifest(args.models_dir, {args.model: entry})
    print(f"wrote {param_out} and {bin_out} ({quantised} layers int8)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
