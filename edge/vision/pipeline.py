"""The vision pipeline: detect -> face mesh -> align -> quality gate -> embed.

Built from its own config sections with models verified against the manifest.
``analyse`` is the per-frame path (meshes and aligns once per face, embeds only
faces that pass the quality gate), ``detect`` then ``analyse_face`` the same for a
loop that picks which faces to analyse; ``check_quality``/``embed`` serve
enrolment and evaluation, which look at one face at a time. All of them align on
the mesh's five points (see landmarks.py), so gallery templates and door frames
are cut the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from ..types import AlignedFace, Embedding, Face, FaceAnalysis, Frame, Mesh, Quality, Subject
from .aligner import align
from .detector import Detector, DetectorConfig
from .embedder import Embedder, EmbedderConfig
from .landmarks import MIN_PRESENCE, FaceMesh, LandmarksConfig, five_points
from .models import ModelsConfig, model_spec
from .quality import QualityConfig, QualityGate


class PipelineSections(Protocol):
    """The config sections the pipeline is built from (``config.Config`` has them)."""

    @property
    def models(self) -> ModelsConfig: ...
    @property
    def detector(self) -> DetectorConfig: ...
    @property
    def landmarks(self) -> LandmarksConfig: ...
    @property
    def embedder(self) -> EmbedderConfig: ...
    @property
    def quality(self) -> QualityConfig: ...


class Stopwatch:
    """Collects per-stage durations when passed to ``Pipeline.analyse`` (benchmarks)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def start(self) -> None:
        self.laps = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps[stage] = self.laps.get(stage, 0.0) + (now - self._last)
        self._last = now


def no_lap(stage: str) -> None:
    """A lap that is not timed (no stopwatch given)."""
    return None


def person_at_the_door(results: list[FaceAnalysis]) -> Subject | None:
    """The biggest embedded face: the person standing at the door, not passers-by."""
    embedded = [
        Subject(r.face, r.embedding, r.mesh)
        for r in results
        if r.embedding is not None and r.mesh is not None
    ]
    return max(embedded, key=lambda s: s.face.width * s.face.height, default=None)


class Pipeline:
    def __init__(
        self, detector: Detector, mesh: FaceMesh, embedder: Embedder, quality: QualityGate
    ):
        self.detector = detector
        self.mesh = mesh
        self.embedder = embedder
        self.quality = quality

    @classmethod
    def from_config(cls, config: PipelineSections) -> Pipeline:
        """Load and verify the models (raises ModelError naming a bad file)."""
        models_dir = config.models.resolved_dir()
        light = config.models.resolved_light_threads()
        detector = Detector(config.detector, model_spec(models_dir, config.detector.model), light)
        mesh = FaceMesh(model_spec(models_dir, config.landmarks.model), light)
        embedder_spec = model_spec(models_dir, config.embedder.model, config.embedder.precision)
        embedder = Embedder(config.embedder, embedder_spec, config.models.resolved_threads())
        return cls(detector, mesh, embedder, QualityGate(config.quality))

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    def detect(
        self, image: np.ndarray, lores: np.ndarray | None = None, input_size: int | None = None
    ) -> list[Face]:
        return self.detector.detect(image, lores, input_size)

    def refine(self, image: np.ndarray, face: Face) -> tuple[Face, Mesh]:
        """The face with the mesh's five landmarks instead of the detector's, and the mesh;
        the detector's landmarks stay when the mesh sees no face."""
        mesh = self.mesh.landmarks(image, face)
        if not mesh.presence >= MIN_PRESENCE:
            return face, mesh
        return Face(face.bbox, five_points(mesh.points), face.score), mesh

    def align(self, image: np.ndarray, face: Face) -> AlignedFace:
        return align(image, self.refine(image, face)[0])

    def check_quality(self, image: np.ndarray, face: Face) -> Quality:
        return self.quality.assess(self.align(image, face))

    def embed(self, image: np.ndarray, face: Face) -> Embedding:
        return self.embedder.embed(self.align(image, face))

    def analyse(self, frame: Frame, stopwatch: Stopwatch | None = None) -> list[FaceAnalysis]:
        """Every face in the frame with its quality verdict and, if it passed, embedding."""
        lap: Callable[[str], None] = stopwatch.lap if stopwatch else no_lap
        faces = self.detector.detect(frame.image, frame.lores)
        lap("detect")
        return [self.analyse_face(frame, face, lap) for face in faces]

    def analyse_face(
        self, frame: Frame, face: Face, lap: Callable[[str], None] = no_lap
    ) -> FaceAnalysis:
        """One detected face: its quality verdict and, if it passed, its embedding."""
        geometry = self.quality.check_geometry(face)
        if geometry[0]:  # too small or turned away: not worth aligning
            return FaceAnalysis(face, Quality(False, tuple(geometry[0]), geometry[1]))
        refined, mesh = self.refine(frame.image, face)
        lap("mesh")
        aligned = align(frame.image, refined)
        lap("align")
        quality = self.quality.assess(aligned, geometry)
        lap("quality")
        embedding = self.embedder.embed(aligned) if quality.passed else None
        lap("embed")
        return FaceAnalysis(refined, quality, embedding, mesh)
