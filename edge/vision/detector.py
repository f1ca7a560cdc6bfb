"""YuNet face detector on ncnn: boxes, 5 landmarks and a score per face.

Detection runs on a downscaled copy of the frame (``input_size`` on the longer
side) because a door camera sees faces that are large in the frame; results are
mapped back to the full frame's pixels. Decoding and NMS are vectorised: the only
Python loop runs once per *kept* face, never per anchor.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import ConfigError
from ..schema import setting
from ..types import Face
from .models import ModelSpec
from .ncnn_model import NcnnModel

STRIDE_ALIGN = 32  # YuNet's coarsest stride: input sides must be multiples of it


@dataclass(frozen=True)
class DetectorConfig:
    model: str = setting("yunet_2023mar", "detector model id in models_ncnn/manifest.json")
    input_size: int = setting(
        320,
        "longer side (px) of the image detection runs on; frames are never upscaled",
        min=64,
        max=1920,
    )
    min_score: float = setting(0.7, "minimum face score (higher = stricter)", min=0.05, max=1.0)
    nms_iou: float = setting(
        0.3, "boxes overlapping more than this IoU are merged", min=0.05, max=0.95
    )
    max_faces: int = setting(16, "most faces reported per frame, best first", min=1, max=256)

    def validate(self) -> None:
        if self.input_size % STRIDE_ALIGN:
            raise ConfigError(
                f"detector.input_size: {self.input_size} is not a multiple of {STRIDE_ALIGN}"
            )


def _pad_to_stride(n: int) -> int:
    return -(-n // STRIDE_ALIGN) * STRIDE_ALIGN


def detection_image(
    source: np.ndarray, size: tuple[int, int], padded: tuple[int, int]
) -> np.ndarray:
    """``source`` scaled to ``size`` (w, h) and padded with black on the bottom and right
    to ``padded``, so that detection pixels keep their origin. OpenCV's bilinear resize
    gives ncnn's own pixels (within one grey level) in half its time."""
    if source.shape[1::-1] != size:
        source = cv2.resize(source, size, interpolation=cv2.INTER_LINEAR)
    if padded != size:
        source = cv2.copyMakeBorder(
            source, 0, padded[1] - size[1], 0, padded[0] - size[0], cv2.BORDER_CONSTANT, value=0
        )
    return np.ascontiguousarray(source)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, limit: int) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best first."""
    order = np.argsort(-scores)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size and len(keep) < limit:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        x1 = np.maximum(boxes[best, 0], boxes[rest, 0])
        y1 = np.maximum(boxes[best, 1], boxes[rest, 1])
        x2 = np.minimum(boxes[best, 2], boxes[rest, 2])
        y2 = np.minimum(boxes[best, 3], boxes[rest, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        iou = inter / (areas[best] + areas[rest] - inter + 1e-9)
        order = rest[iou <= iou_threshold]
    return np.array(keep, dtype=np.int64)


class Detector:
    """Finds faces in BGR images. Construct once; ``detect`` is called per frame."""

    def __init__(self, config: DetectorConfig, spec: ModelSpec, threads: int):
        self.config = config
        self.net = NcnnModel(spec, threads)
        self._input = spec.input["blob"]
        outputs = spec.outputs
        self._strides = tuple(outputs["strides"])
        self._heads = [
            (outputs["cls"][i], outputs["obj"][i], outputs["bbox"][i], outputs["kps"][i])
            for i in range(len(self._strides))
        ]
        self._blob_names = [name for head in self._heads for name in head]
        self._grids: dict[tuple[int, int], list[np.ndarray]] = {}

    def _grid(self, width: int, height: int) -> list[np.ndarray]:
        """Per stride, the (x, y) cell index of each anchor, in YuNet's row-major order."""
        key = (width, height)
        if key not in self._grids:
            grids = []
            for stride in self._strides:
                cols, rows = width // stride, height // stride
                ys, xs = np.mgrid[0:rows, 0:cols]
                grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32))
            self._grids[key] = grids
        return self._grids[key]

    def detect(
        self, image: np.ndarray, lores: np.ndarray | None = None, input_size: int | None = None
    ) -> list[Face]:
        """Faces in ``image`` coordinates, best first.

        ``lores`` is an optional smaller copy of the same view (a camera's second
        stream); when given, detection runs on it and skips the resize.
        ``input_size`` replaces the configured one for this call (a glance at faces
        already known to be large).
        """
        import ncnn

        height, width = image.shape[:2]
        source = lores if lores is not None else image
        src_h, src_w = source.shape[:2]
        size = input_size if input_size is not None else self.config.input_size
        scale = min(1.0, size / max(src_w, src_h))
        det_w, det_h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
        pad_w, pad_h = _pad_to_stride(det_w), _pad_to_stride(det_h)
        mat = ncnn.Mat.from_pixels(
            detection_image(source, (det_w, det_h), (pad_w, pad_h)),
            ncnn.Mat.PixelType.PIXEL_BGR,
            pad_w,
            pad_h,
        )
        blobs = self.net.run({self._input: mat}, self._blob_names)
        boxes, landmarks, scores = self._decode(blobs, pad_w, pad_h)
        if not len(scores):
            return []
        keep = nms(boxes, scores, self.config.nms_iou, self.config.max_faces)
        # Detection pixels per frame pixel (whether the source was lores or the frame).
        sx, sy = det_w / width, det_h / height
        factor = np.array([sx, sy, sx, sy], dtype=np.float32)
        faces = []
        for i in keep:
            box = boxes[i] / factor
            box[[0, 2]] = np.clip(box[[0, 2]], 0, width)
            box[[1, 3]] = np.clip(box[[1, 3]], 0, height)
            points = landmarks[i] / factor[:2]
            x1, y1, x2, y2 = (float(v) for v in box)
            faces.append(Face(bbox=(x1, y1, x2, y2), landmarks=points, score=float(scores[i])))
        return faces

    def _decode(self, blobs: list[np.ndarray], width: int, height: int):
        all_boxes, all_points, all_scores = [], [], []
        for k, (stride, grid) in enumerate(
            zip(self._strides, self._grid(width, height), strict=True)
        ):
            cls, obj, bbox, kps = (blobs[4 * k + j] for j in range(4))
            score = np.sqrt(np.clip(cls.ravel(), 0, 1) * np.clip(obj.ravel(), 0, 1))
            if score.shape[0] != grid.shape[0]:
                raise ValueError(
                    f"stride {stride}: {score.shape[0]} scores for {grid.shape[0]} anchors"
                )
            hit = np.nonzero(score >= self.config.min_score)[0]
            if not hit.size:
                continue
            cells = grid[hit]
            b = bbox.reshape(-1, 4)[hit]
            centre = (cells + b[:, :2]) * stride
            size = np.exp(b[:, 2:]) * stride
            all_boxes.append(np.concatenate([centre - size / 2, centre + size / 2], axis=1))
            points = kps.reshape(-1, 5, 2)[hit]
            all_points.append((points + cells[:, None, :]) * stride)
            all_scores.append(score[hit])
        if not all_scores:
            empty = np.zeros((0,), np.float32)
            return empty.reshape(0, 4), empty.reshape(0, 5, 2), empty
        return (
            np.concatenate(all_boxes).astype(np.float32),
            np.concatenate(all_points).astype(np.float32),
            np.concatenate(all_scores).astype(np.float32),
        )
