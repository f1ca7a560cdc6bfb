"""The passive RGB liveness model on ncnn: context crops around a face -> live score."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..models import ModelSpec
from ..ncnn_model import ImageInput, NcnnModel
from ..types import Face
from .crop import context_crop


class PassiveRgb:
    """Scores one face in one frame; 1.0 is surely live, 0.0 surely an attack.

    The network takes one crop per scale listed in its manifest entry (input.crops),
    each fed to its own input blob.
    """

    def __init__(self, spec: ModelSpec, threads: int):
        self.model_id = spec.model_id
        self.net = NcnnModel(spec, threads)
        self._image = ImageInput(spec)
        self._crops = [(c["blob"], float(c["scale"])) for c in spec.input["crops"]]
        self._output = spec.outputs["probabilities"]
        self._live = int(spec.outputs["live_index"])

    def score(self, image: np.ndarray, face: Face) -> float:
        size = self._image.size[0]
        return self.score_crops([context_crop(image, face, scale, size)
                                 for _, scale in self._crops])

    def score_crops(self, crops: Sequence[np.ndarray]) -> float:
        """The score of already cut crops, in the manifest's order (training checks its
        export with this)."""
        if len(crops) != len(self._crops):
            raise ValueError(f"{self.model_id} takes {len(self._crops)} crops, got {len(crops)}")
        inputs = {blob: self._image.mat(crop) for (blob, _), crop in zip(self._crops, crops)}
        (probs,) = self.net.run(inputs, [self._output])
        return float(probs.reshape(-1)[self._live])
