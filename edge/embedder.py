"""SFace (MobileFaceNet-style) embedder on ncnn: aligned 112x112 face -> unit vector."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ModelError
from .models import ModelSpec
from .ncnn_model import NcnnModel
from .schema import setting
from .types import AlignedFace, Embedding


@dataclass(frozen=True)
class EmbedderConfig:
    model: str = setting("sface_2021dec", "embedder model id in models_ncnn/manifest.json")


class Embedder:
    def __init__(self, config: EmbedderConfig, spec: ModelSpec, threads: int):
        import ncnn

        self.net = NcnnModel(spec, threads)
        self.model_id = spec.model_id
        self.dim = int(spec.entry["embedding_dim"])
        spec_in = spec.input
        self._input = spec_in["blob"]
        self._output = spec.outputs["embedding"]
        self._size = tuple(spec_in["size"])
        pixel = {"RGB": "PIXEL_BGR2RGB", "BGR": "PIXEL_BGR"}.get(spec_in["color"])
        if pixel is None:
            raise ModelError(f"{spec.model_id}: unsupported input colour {spec_in['color']!r}")
        self._pixel_type = getattr(ncnn.Mat.PixelType, pixel)
        self._mean = [float(v) for v in spec_in["mean"]]
        self._norm = [float(v) for v in spec_in["norm"]]
        self._normalise = self._mean != [0.0] * 3 or self._norm != [1.0] * 3

    def embed(self, aligned: AlignedFace) -> Embedding:
        import ncnn

        image = aligned.image
        w, h = self._size
        if image.shape[:2] != (h, w):
            raise ValueError(f"{self.model_id} needs a {w}x{h} aligned face, got {image.shape}")
        mat = ncnn.Mat.from_pixels(image, self._pixel_type, w, h)
        if self._normalise:
            mat.substract_mean_normalize(self._mean, self._norm)
        (raw,) = self.net.run({self._input: mat}, [self._output])
        vector = raw.reshape(-1).astype(np.float32)
        if vector.shape[0] != self.dim:
            raise ModelError(f"{self.model_id}: expected {self.dim} values, got {vector.shape[0]}")
        norm = float(np.linalg.norm(vector))
        if not np.isfinite(norm) or norm < 1e-6:
            raise ModelError(f"{self.model_id}: produced a degenerate embedding")
        return Embedding(vector=vector / norm, model_id=self.model_id)
