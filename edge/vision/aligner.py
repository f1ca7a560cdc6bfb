"""Face alignment: a pure similarity transform of 5 landmarks onto a fixed template.

The template is the standard 112x112 five-point layout that MobileFaceNet/ArcFace
style embedders (SFace included) were trained on; an embedder fed anything else
loses accuracy.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..types import AlignedFace, Face

ALIGNED_SIZE = 112
# right eye, left eye, nose, right mouth corner, left mouth corner (see types.py)
TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation+uniform scale+translation mapping src points onto dst.

    Both are (N, 2). Returns the 2x3 affine matrix. This is the closed-form
    Procrustes/Umeyama solution without reflection.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(
            f"expected two (N, 2) point sets with N >= 2, got {src.shape} and {dst.shape}"
        )
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c**2).sum() / len(src)
    if src_var <= 1e-12:
        raise ValueError("landmarks are degenerate (all at one point)")
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0  # forbid a reflection
    rotation = u @ np.diag(d) @ vt
    scale = (s * d).sum() / src_var
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def align(image: np.ndarray, face: Face) -> AlignedFace:
    """Warp ``face`` out of ``image`` (BGR) onto the 112x112 template."""
    landmarks = np.asarray(face.landmarks)
    if landmarks.shape != (5, 2):
        raise ValueError(f"alignment needs 5 (x, y) landmarks, got shape {landmarks.shape}")
    matrix = similarity_transform(landmarks, TEMPLATE_112)
    crop = cv2.warpAffine(image, matrix, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_LINEAR)
    return AlignedFace(image=crop, face=face)
