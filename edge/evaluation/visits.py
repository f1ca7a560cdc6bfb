"""What one visit costs: the door loop replayed on a visit, with tracking on and off.

The real loop (``build_daemon``: the pipeline, liveness at the configured level, the
matcher, the decision machine, the event log) runs on a replayed folder of frames
against a gallery with the visitor enrolled, on a fake clock stepped one frame
interval at a time, with a mock door. Per visit it reports the frames and the
milliseconds from first sight (the first frame with a face) to the first decision,
and the CPU time of all the process's threads spent on the frames that show a face.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..access.gpio.mock import MockGpio
from ..camera.replay import list_images
from ..clock import FakeClock
from ..config import Config
from ..daemon import Outcome, build_daemon
from ..errors import FacegateError
from ..gallery.enrolment import capture_from_images, enrol_photos
from ..gallery.store import Gallery, create_gallery
from ..notify import Notifier
from ..types import Face, FaceAnalysis, Frame
from ..vision.pipeline import Pipeline

VISITOR = "visitor"


def natural_order(paths: Sequence[Path]) -> list[Path]:
    """Frame files in the order their names count (frame_2 before frame_10)."""

    def key(path: Path) -> list[Any]:
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]

    return sorted(paths, key=key)


def visit_frames(source: Path) -> list[Path]:
    """A visit's frames: a folder's images in natural order, or a text file listing
    frame paths in order, one a line, relative to the file."""
    if source.is_dir():
        frames = natural_order(list_images(source))
    elif source.is_file():
        lines = source.read_text(encoding="utf-8").splitlines()
        frames = [source.parent / line.strip() for line in lines if line.strip()]
        missing = [str(p) for p in frames if not p.is_file()]
        if missing:
            raise FacegateError(f"{source}: frames not found: {', '.join(missing[:3])}")
    else:
        raise FacegateError(f"{source}: no such folder or frame list")
    if not frames:
        raise FacegateError(f"{source}: no frames")
    return frames


def link_frames(frames: Sequence[Path], folder: Path) -> Path:
    """The frames as ``folder/frame_NNNNN<suffix>`` links, the names the replay camera
    plays in order."""
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        (folder / f"frame_{i:05d}{frame.suffix.lower()}").symlink_to(frame.resolve())
    return folder


def enrol_visitor(config: Config, pipeline: Pipeline, photos: Sequence[Path]) -> int:
    """A new gallery (the config's) with the visitor enrolled from ``photos``."""
    create_gallery(config.gallery)
    verdicts = capture_from_images(pipeline, photos, config.enrolment.max_photo_pixels)
    with Gallery.from_config(config.gallery) as gallery:
        person_id, _ = enrol_photos(
            gallery, verdicts, VISITOR, "user", config.enrolment, config.matcher
        )
    return person_id


class _Metered:
    """The pipeline, noting per frame how many faces it found and how many it embedded."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.inner = pipeline
        self.model_id = pipeline.model_id
        self.detector = pipeline.detector
        self.faces: list[int] = []  # per analysed frame
        self.embedded: list[int] = []

    def analyse(self, frame: Frame) -> list[FaceAnalysis]:
        results = self.inner.analyse(frame)
        self.faces.append(len(results))
        self.embedded.append(sum(r.embedding is not None for r in results))
        return results

    def detect(
        self, image: np.ndarray, lores: np.ndarray | None = None, input_size: int | None = None
    ) -> list[Face]:
        faces = self.inner.detect(image, lores, input_size)
        self.faces.append(len(faces))
        self.embedded.append(0)
        return faces

    def analyse_face(self, frame: Frame, face: Face) -> FaceAnalysis:
        result = self.inner.analyse_face(frame, face)
        self.embedded[-1] += result.embedding is not None
        return result


def replay_visit(config: Config, pipeline: Pipeline, folder: Path, fps: float) -> dict:
    """Run the loop on the frames in ``folder`` (gallery ready); the visit's figures."""
    camera = dataclasses.replace(
        config.camera, source="replay", replay_path=str(folder), fps=fps, realtime=False
    )
    config = dataclasses.replace(config, camera=camera)
    clock = FakeClock()
    metered = _Metered(pipeline)
    outcomes: list[Outcome] = []
    daemon = build_daemon(
        config,
        clock,
        pipeline=metered,  # type: ignore[arg-type]
        gpio=MockGpio(clock),
        notifier=Notifier({}),
        threaded=False,
        report=outcomes.append,
    )
    wall: list[float] = []
    cpu: list[float] = []
    decided_at: list[int] = []  # per analysed frame: decisions made so far
    try:
        while daemon.running:
            start, start_cpu = time.perf_counter(), time.process_time()
            daemon.step()
            spent, spent_cpu = time.perf_counter() - start, time.process_time() - start_cpu
            if len(metered.faces) > len(wall):  # this step analysed a frame
                wall.append(spent * 1000)
                cpu.append(spent_cpu * 1000)
                decided_at.append(len(outcomes))
            clock.advance(1.0 / fps)
    finally:
        daemon.close()
    return _figures(metered, wall, cpu, decided_at, outcomes, fps)


def _figures(
    metered: _Metered,
    wall: list[float],
    cpu: list[float],
    decided_at: list[int],
    outcomes: list[Outcome],
    fps: float,
) -> dict:
    seen = [i for i, n in enumerate(metered.faces) if n]
    if not seen:
        raise FacegateError("no face in any frame of the visit")
    first, last = seen[0], seen[-1]
    visit = slice(first, last + 1)
    result: dict[str, Any] = {
        "frames": len(wall),
        "first_sight": first,
        "frames_with_a_face": len(seen),
        "cpu_ms_visit": float(sum(cpu[visit])),
        "wall_ms_visit": float(sum(wall[visit])),
        "embedded_visit": int(sum(metered.embedded[visit])),
        "decisions": [str(o.kind) for o in outcomes],
    }
    if outcomes:
        decision = next(i for i, n in enumerate(decided_at) if n)
        result.update(
            decision=str(outcomes[0].kind),
            decided_as=outcomes[0].name,
            frames_to_decision=decision - first + 1,
            # the camera's time between the two frames, then the deciding frame's work
            ms_to_decision=(decision - first) * 1000 / fps + wall[decision],
            cpu_ms_to_decision=float(sum(cpu[first : decision + 1])),
        )
    return result
