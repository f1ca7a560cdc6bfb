"""A thin, checked wrapper over one ncnn network.

Every ncnn call that returns a status is checked: a silent non-zero return would
otherwise give garbage embeddings that look like a stranger.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import ModelError
from .models import ModelSpec

# ncnn's wheels run their threads on GNU libgomp, which by default spins up to
# 300,000 times waiting for a sibling thread before it sleeps (ncnn's
# openmp_blocktime option reaches only LLVM's runtime). With other work on the
# cores the sibling is often descheduled and the spinning starves it: under load
# a frame took 10-30x longer (README, Speed under load). Sleeping at once costs
# little. libgomp reads this once, when ncnn is first imported, and every ncnn
# import in facegate comes after this module's; an operator's own setting stays.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


class NcnnModel:
    """Loads a verified model in the constructor; ``run`` feeds inputs, extracts outputs.

    ``fp32`` computes in fp32 throughout whatever the manifest says; ``keep_blobs`` keeps
    every intermediate blob of a run (ncnn's light mode frees them as it goes, and a blob
    extracted later is computed again): both for measuring a net's activations
    (scripts/quantise_int8.py).
    """

    def __init__(self, spec: ModelSpec, threads: int, fp32: bool = False, keep_blobs: bool = False):
        import ncnn  # imported here so that modules not running models need no ncnn

        self._ncnn = ncnn
        self.spec = spec
        self.net = ncnn.Net()
        self.net.opt.num_threads = threads
        self.net.opt.use_vulkan_compute = False
        self.net.opt.lightmode = not keep_blobs
        if fp32 or spec.entry.get("precision") == "fp32":
            # ncnn stores activations in fp16 where the CPU allows (x86 F16C, ARMv8.2):
            # networks fed raw 0-255 pixels then drift by 1e-3 in their logits.
            self.net.opt.use_fp16_storage = False
            self.net.opt.use_fp16_packed = False
            self.net.opt.use_fp16_arithmetic = False
            self.net.opt.use_bf16_storage = False
        if self.net.load_param(str(spec.param_path)) != 0:
            raise ModelError(f"ncnn could not parse {spec.param_path}")
        if self.net.load_model(str(spec.bin_path)) != 0:
            raise ModelError(f"ncnn could not load weights {spec.bin_path}")
        self.threads = threads

    def run(self, inputs: dict, outputs: list[str]) -> list[np.ndarray]:
        """Run the net; ``inputs`` maps blob names to ncnn.Mat. Returns numpy copies."""
        with self.net.create_extractor() as ex:
            for name, mat in inputs.items():
                if ex.input(name, mat) != 0:
                    raise ModelError(f"{self.spec.model_id}: cannot feed input blob {name!r}")
            results = []
            for name in outputs:
                ret, mat = ex.extract(name)
                if ret != 0:
                    raise ModelError(
                        f"{self.spec.model_id}: extracting blob {name!r} failed ({ret})"
                    )
                results.append(np.array(mat, copy=True))
            return results


class ImageInput:
    """Turns a BGR crop into the input Mat a manifest entry asks for (size, colour, mean/norm)."""

    def __init__(self, spec: ModelSpec):
        import ncnn

        spec_in = spec.input
        self.model_id = spec.model_id
        self.size = tuple(spec_in["size"])
        pixel = {"RGB": "PIXEL_BGR2RGB", "BGR": "PIXEL_BGR"}.get(spec_in["color"])
        if pixel is None:
            raise ModelError(f"{spec.model_id}: unsupported input colour {spec_in['color']!r}")
        self._pixel_type = getattr(ncnn.Mat.PixelType, pixel)
        self._mean = [float(v) for v in spec_in["mean"]]
        self._norm = [float(v) for v in spec_in["norm"]]
        self._normalise = self._mean != [0.0] * 3 or self._norm != [1.0] * 3

    def mat(self, image: np.ndarray):
        import ncnn

        w, h = self.size
        if image.shape[:2] != (h, w):
            raise ValueError(f"{self.model_id} needs a {w}x{h} image, got {image.shape}")
        mat = ncnn.Mat.from_pixels(image, self._pixel_type, w, h)
        if self._normalise:
            mat.substract_mean_normalize(self._mean, self._norm)
        return mat
