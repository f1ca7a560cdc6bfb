"""The passive RGB liveness layer on ncnn: face crops -> one live score.

The layer runs one or more networks, each on its own crop of the face (the scale
is in its manifest entry), and keeps each network's three logits and the 128
features under them. By default the live score is the mean of the networks' live
probabilities, as the MiniFASNet authors fuse their pair; a site calibration
(``calibration.py``) replaces that with a head fitted on the same outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..types import Face
from ..vision.models import ModelSpec
from ..vision.ncnn_model import ImageInput, NcnnModel
from .crop import scaled_crop, training_box


@dataclass(frozen=True, eq=False)
class ModelOutputs:
    """One network's outputs on one face: ``logits`` (classes,) and ``features``."""

    logits: np.ndarray
    features: np.ndarray
    live_index: int

    @property
    def live_probability(self) -> float:
        shifted = np.exp(self.logits - self.logits.max())
        return float(shifted[self.live_index] / shifted.sum())


class RgbModel:
    """One liveness network: the crop its manifest names, fed raw, to logits and features."""

    def __init__(self, spec: ModelSpec, threads: int):
        self.model_id = spec.model_id
        self.spec = spec
        self.net = NcnnModel(spec, threads)
        self._image = ImageInput(spec)
        self.scale = float(spec.input["crop_scale"])
        self.box_adjust = tuple(float(v) for v in spec.input["box_adjust"])
        self._logits = spec.outputs["logits"]
        self._features = spec.outputs["features"]
        self._live = int(spec.outputs["live_index"])

    def crop(self, image: np.ndarray, face: Face) -> np.ndarray:
        return scaled_crop(
            image, training_box(face, self.box_adjust), self.scale, self._image.size[0]
        )

    def outputs(self, crop: np.ndarray) -> ModelOutputs:
        logits, features = self.net.run(
            {self.spec.input["blob"]: self._image.mat(crop)}, [self._logits, self._features]
        )
        return ModelOutputs(
            logits.reshape(-1).astype(np.float64),
            features.reshape(-1).astype(np.float64),
            self._live,
        )


def fused_probability(outputs: Sequence[ModelOutputs]) -> float:
    """The uncalibrated score: the mean live probability of the networks."""
    return float(np.mean([o.live_probability for o in outputs]))


class PassiveRgb:
    """Scores one face in one frame; 1.0 is surely live, 0.0 surely an attack.

    ``head`` (a fitted calibration, or None for the default fusion) maps the
    networks' outputs to the score.
    """

    def __init__(self, models: Sequence[RgbModel], head=None):
        if not models:
            raise ValueError("the RGB layer needs at least one model")
        self.models = list(models)
        self.head = head

    @property
    def model_ids(self) -> tuple[str, ...]:
        return tuple(m.model_id for m in self.models)

    def outputs(self, image: np.ndarray, face: Face) -> list[ModelOutputs]:
        return [m.outputs(m.crop(image, face)) for m in self.models]

    def score(self, image: np.ndarray, face: Face) -> float:
        return self.score_outputs(self.outputs(image, face))

    def score_outputs(self, outputs: Sequence[ModelOutputs]) -> float:
        if self.head is None:
            return fused_probability(outputs)
        return self.head.score(outputs)
