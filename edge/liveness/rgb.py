"""The passive RGB liveness model on ncnn: a context crop around a face -> live score."""

from __future__ import annotations

import numpy as np

from ..models import ModelSpec
from ..ncnn_model import ImageInput, NcnnModel
from ..types import Face
from .crop import context_crop


class PassiveRgb:
    """Scores one face in one frame; 1.0 is surely live, 0.0 surely an attack."""

    def __init__(self, spec: ModelSpec, threads: int):
        self.model_id = spec.model_id
        self.net = NcnnModel(spec, threads)
        self._image = ImageInput(spec)
        self._input = spec.input["blob"]
        self._scale = float(spec.input["crop"]["scale"])
        self._output = spec.outputs["probabilities"]
        self._live = int(spec.outputs["live_index"])

    def score(self, image: np.ndarray, face: Face) -> float:
        return self.score_crop(context_crop(image, face, self._scale, self._image.size[0]))

    def score_crop(self, crop: np.ndarray) -> float:
        """The score of an already cut context crop (training checks its export with this)."""
        (probs,) = self.net.run({self._input: self._image.mat(crop)}, [self._output])
        return float(probs.reshape(-1)[self._live])
