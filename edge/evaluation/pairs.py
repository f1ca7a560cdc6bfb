"""Verification accuracy on LFW-format pair lists (the LFW protocol).

Scores are cosine similarities. Accuracy is 10-fold: each fold's threshold is the
one that maximises accuracy on the other nine folds. A list with a header of
``folds n`` (LFW View 2's pairs.txt) keeps its own folds; a list with a single
count (View 1's pairsDevTest.txt) is split into 10 folds by position within each
class, so every fold holds the same share of same and different pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FacegateError, NotFoundError

FOLDS = 10


@dataclass(frozen=True)
class Pair:
    first: str  # image path relative to the images folder
    second: str
    same: bool
    fold: int


def lfw_image(name: str, number: str) -> str:
    return f"{name}/{name}_{int(number):04d}.jpg"


def read_pairs(path: Path) -> list[Pair]:
    """Parse an LFW pair list; raises FacegateError naming the bad line (NotFoundError
    for a missing file)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such pair list") from None
    except UnicodeDecodeError:
        raise FacegateError(f"{path}: not a text pair list (binary data)") from None
    except OSError as exc:
        raise FacegateError(f"{path}: cannot read the pair list: {exc.strerror}") from None
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines:
        raise FacegateError(f"{path}: empty pair list")
    header = lines[0]
    try:
        numbers = [int(v) for v in header]
    except ValueError:
        raise FacegateError(
            f"{path}:1: expected a count header, got {' '.join(header)!r}"
        ) from None
    per_fold = numbers[1] if len(numbers) == 2 else None
    pairs, counters = [], {True: 0, False: 0}
    for lineno, fields in enumerate(lines[1:], start=2):
        try:
            if len(fields) == 3:
                name, i, j = fields
                first, second, same = lfw_image(name, i), lfw_image(name, j), True
            elif len(fields) == 4:
                a, i, b, j = fields
                first, second, same = lfw_image(a, i), lfw_image(b, j), False
            else:
                raise ValueError
        except ValueError:
            raise FacegateError(
                f"{path}:{lineno}: expected 'name i j' or 'name1 i name2 j'"
            ) from None
        if per_fold is not None:
            fold = (lineno - 2) // (2 * per_fold)
        else:
            fold = counters[same] % FOLDS
            counters[same] += 1
        pairs.append(Pair(first, second, same, fold))
    return pairs


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """Threshold maximising accuracy of ``score >= t`` meaning 'same person'."""
    order = np.argsort(scores)
    s, y = scores[order], same[order]
    # Cutting before position k accepts s[k:]: correct = negatives below + positives above.
    neg_below = np.concatenate([[0], np.cumsum(~y)])
    pos_above = np.concatenate([np.cumsum(y[::-1])[::-1], [0]])
    correct = neg_below + pos_above
    k = int(np.argmax(correct))
    if k == 0:
        return float(s[0]) - 1e-6
    if k == len(s):
        return float(s[-1]) + 1e-6
    return float((s[k - 1] + s[k]) / 2)


def tar_at_far(scores: np.ndarray, same: np.ndarray, far: float) -> tuple[float, float]:
    """(TAR, threshold) at the strictest threshold whose false accept rate <= far."""
    negatives = np.sort(scores[~same])[::-1]
    allowed = int(np.floor(far * len(negatives)))
    threshold = float(negatives[allowed]) if allowed < len(negatives) else -1.0
    return float(np.mean(scores[same] > threshold)), threshold


def verification_metrics(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict:
    accuracies, thresholds = [], []
    for fold in np.unique(folds):
        test = folds == fold
        if same[~test].all() or not same[~test].any():
            raise FacegateError(
                "too few pairs for the fold protocol: each fold needs same and different "
                "pairs outside it to choose a threshold"
            )
        t = best_threshold(scores[~test], same[~test])
        thresholds.append(t)
        accuracies.append(float(np.mean((scores[test] >= t) == same[test])))
    tar, far_threshold = tar_at_far(scores, same, 1e-3)
    return {
        "pairs": int(len(scores)),
        "folds": int(len(accuracies)),
        "accuracy": float(np.mean(accuracies)),
        "accuracy_std": float(np.std(accuracies)),
        "threshold": float(np.mean(thresholds)),
        "tar_at_far_1e-3": tar,
        "far_1e-3_threshold": far_threshold,
        "negatives": int(np.sum(~same)),
    }


def nearest_centre(faces: list, image: np.ndarray):
    """The face whose box centre is nearest the image centre (LFW centres the subject)."""
    height, width = image.shape[:2]
    return min(
        faces, key=lambda f: (f.center[0] - width / 2) ** 2 + (f.center[1] - height / 2) ** 2
    )


def score_pairs(
    pairs: list[Pair],
    embed_image: Callable[[Path], np.ndarray | None],
    images_dir: Path,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Cosine score per pair (each image embedded once) and the failed-detection count.

    A pair with an image where no face was found scores -1, i.e. 'different'.
    """
    paths = sorted({p.first for p in pairs} | {p.second for p in pairs})
    vectors: dict[str, np.ndarray | None] = {}
    for i, rel in enumerate(paths, start=1):
        vectors[rel] = embed_image(images_dir / rel)
        if progress:
            progress(i, len(paths))
    failed = sum(v is None for v in vectors.values())

    def similarity(pair: Pair) -> float:
        first, second = vectors[pair.first], vectors[pair.second]
        return -1.0 if first is None or second is None else float(first @ second)

    scores = np.array([similarity(p) for p in pairs])
    return scores, failed
