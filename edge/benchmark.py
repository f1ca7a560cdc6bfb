"""Per-frame latency of the pipeline, side by side with OpenCV's runtime.

Frames are decoded one at a time (never all held in memory, so the peak RSS
reported is the pipeline's) and only the pipeline's work is timed.
"""

from __future__ import annotations

import itertools
import resource
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import FacegateError
from .images import IMAGE_SUFFIXES, read_image, read_video
from .liveness.policy import LivenessChecker
from .pipeline import Pipeline, Stopwatch, person_at_the_door
from .reference import OpenCVReference
from .types import Frame

def frame_paths(images: Path, limit: int) -> list[Path]:
    paths = sorted(p for p in Path(images).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FacegateError(f"{images}: no images found")
    return paths[:limit]


def iter_frames(images: Path | None, video: Path | None, limit: int) -> Iterator[np.ndarray]:
    """BGR frames from a folder of images or a video file, at most ``limit``."""
    if images is not None:
        for path in frame_paths(images, limit):
            yield read_image(path)
        return
    yield from itertools.islice(read_video(video), limit)


def percentiles(values_ms: list[float]) -> tuple[float, float]:
    if not values_ms:
        return float("nan"), float("nan")
    return float(np.median(values_ms)), float(np.percentile(values_ms, 90))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_pipeline(pipeline: Pipeline, frames: Iterator[np.ndarray],
                 liveness: LivenessChecker | None = None, fps: float = 15.0) -> dict:
    """Pipeline latency per frame; the liveness check of the person at the door is timed
    on its own, since OpenCV's pipeline has none to compare with."""
    stopwatch = Stopwatch()
    totals, stages, faces, checks = [], {}, [], []
    for i, image in enumerate(frames):
        frame = Frame(image=image, timestamp=i / fps, seq=i)
        stopwatch.start()
        start = time.perf_counter()
        results = pipeline.analyse(frame, stopwatch)
        totals.append((time.perf_counter() - start) * 1000)
        faces.append(sum(r.embedding is not None for r in results))
        for stage, seconds in stopwatch.laps.items():
            stages.setdefault(stage, []).append(seconds * 1000)
        subject = person_at_the_door(results)
        if liveness is not None and subject is not None:
            start = time.perf_counter()
            liveness.check(frame, subject.face, subject.mesh)
            checks.append((time.perf_counter() - start) * 1000)
    median, p90 = percentiles(totals)
    extra = {}
    if liveness is not None:
        extra["liveness_median_ms"], extra["liveness_p90_ms"] = percentiles(checks)
        extra["liveness_level"] = liveness.config.level
    return {
        **extra,
        "frames": len(totals),
        "end_to_end_median_ms": median,
        "end_to_end_p90_ms": p90,
        "stages": {stage: percentiles(v)[0] for stage, v in stages.items()},
        "stages_p90": {stage: percentiles(v)[1] for stage, v in stages.items()},
        "embedded_faces_per_frame": float(np.mean(faces)) if faces else 0.0,
    }


def reference_frame(reference: OpenCVReference, image: np.ndarray) -> None:
    """OpenCV's usual use: detect at frame size, then align and embed every face."""
    for face in reference.detect(image):
        reference.embed(image, face)


def run_reference(reference: OpenCVReference, frames: Iterator[np.ndarray]) -> dict:
    totals = []
    for image in frames:
        start = time.perf_counter()
        reference_frame(reference, image)
        totals.append((time.perf_counter() - start) * 1000)
    median, p90 = percentiles(totals)
    return {"opencv_median_ms": median, "opencv_p90_ms": p90}
