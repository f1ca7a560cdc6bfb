"""SFace (MobileFaceNet-style) embedder on ncnn: aligned 112x112 face -> unit vector."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..schema import setting
from ..types import AlignedFace, Embedding
from .models import BASE_PRECISION, PRECISIONS, ModelSpec
from .ncnn_model import ImageInput, NcnnModel


@dataclass(frozen=True)
class EmbedderConfig:
    model: str = setting("sface_2021dec", "embedder model id in models_ncnn/manifest.json")
    precision: str = setting(
        BASE_PRECISION,
        "which of the model's files run: fp32, or int8 where the manifest has them",
        choices=PRECISIONS,
    )


class Embedder:
    def __init__(self, config: EmbedderConfig, spec: ModelSpec, threads: int):
        self.net = NcnnModel(spec, threads)
        self.model_id = spec.model_id
        self.dim = int(spec.entry["embedding_dim"])
        self._image = ImageInput(spec)
        self._input = spec.input["blob"]
        self._output = spec.outputs["embedding"]

    def embed(self, aligned: AlignedFace) -> Embedding:
        mat = self._image.mat(aligned.image)
        (raw,) = self.net.run({self._input: mat}, [self._output])
        vector = raw.reshape(-1).astype(np.float32)
        if vector.shape[0] != self.dim:
            raise ModelError(f"{self.model_id}: expected {self.dim} values, got {vector.shape[0]}")
        norm = float(np.linalg.norm(vector))
        if not np.isfinite(norm) or norm < 1e-6:
            raise ModelError(f"{self.model_id}: produced a degenerate embedding")
        return Embedding(vector=vector / norm, model_id=self.model_id)
