"""``facegate eval liveness``: run labelled presentations through the liveness checker.

The manifest is a TSV file with the header ``label attack path``: ``label`` is
``live`` or ``spoof``, ``attack`` names the attack type (``none`` for live samples),
and ``path``, relative to the manifest's folder, is an image, a video, or a
``.txt`` file listing frame paths in order (relative to that file's folder).

Each sample is one presentation: its frames pass through the checker in order, as
they would at the door, and the verdict on its last frame with a face is the
sample's verdict. Only ``live`` counts as accepted; a spoof or an inconclusive
verdict keeps the door shut. A sample in which no face is ever found is rejected.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FacegateError
from ..liveness.calibration import Presentation
from ..liveness.metrics import operating_points
from ..liveness.policy import LivenessChecker
from ..liveness.rgb import PassiveRgb
from ..types import Face, Frame, Liveness, Verdict
from ..vision.images import read_image, read_video
from ..vision.pipeline import Pipeline

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif"}
LABELS = ("live", "spoof")
COLUMNS = ("label", "attack", "path")


@dataclass(frozen=True)
class Sample:
    label: str
    attack: str
    path: Path


@dataclass(frozen=True)
class Outcome:
    """What the checker said about one sample; ``liveness`` is None when no face was found."""

    sample: Sample
    frames: int
    liveness: Liveness | None

    @property
    def accepted(self) -> bool:
        return self.liveness is not None and self.liveness.verdict is Verdict.LIVE

    @property
    def score(self) -> float:
        return self.liveness.score if self.liveness is not None else 0.0


def read_manifest(path: Path) -> list[Sample]:
    """Samples in file order; errors name the file and line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise FacegateError(f"{path}: cannot read the manifest: {exc.strerror}") from None
    if not lines or tuple(lines[0].split("\t")) != COLUMNS:
        raise FacegateError(f"{path}:1: the header must be '{'<TAB>'.join(COLUMNS)}'")
    samples = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise FacegateError(
                f"{path}:{number}: expected 3 tab-separated fields, got {len(fields)}"
            )
        label, attack, rel = fields
        if label not in LABELS:
            raise FacegateError(f"{path}:{number}: label must be live or spoof, got {label!r}")
        if (label == "live") != (attack == "none"):
            raise FacegateError(
                f"{path}:{number}: live samples have attack 'none' and "
                f"spoof samples name their attack, got {label} / {attack}"
            )
        sample_path = Path(path).parent / rel
        if not sample_path.exists():
            raise FacegateError(f"{path}:{number}: {sample_path}: no such file")
        samples.append(Sample(label, attack, sample_path))
    if not samples:
        raise FacegateError(f"{path}: no samples")
    return samples


def frames_of(path: Path) -> Iterator[np.ndarray]:
    """BGR frames of an image, a video or a .txt list of frame paths, in order."""
    if path.suffix.lower() == ".txt":
        for line in path.read_text(encoding="utf-8").split():
            yield read_image(path.parent / line)
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        yield from read_video(path)
    else:
        yield read_image(path)


def presenter(faces: list[Face]) -> Face | None:
    """The biggest face: the person presenting, not someone passing behind."""
    return max(faces, key=lambda f: f.width * f.height, default=None)


def run_sample(checker: LivenessChecker, pipeline: Pipeline, sample: Sample, fps: float) -> Outcome:
    """Feed a sample's frames to a fresh history."""
    checker.reset()
    verdict, count = None, 0
    for count, image in enumerate(frames_of(sample.path), start=1):
        face = presenter(pipeline.detect(image))
        if face is None:
            continue
        face, mesh = pipeline.refine(image, face)
        verdict = checker.check(Frame(image, (count - 1) / fps, seq=count), face, mesh)
    return Outcome(sample, count, verdict)


def collect_outputs(
    samples: list[Sample], pipeline: Pipeline, rgb: PassiveRgb
) -> list[Presentation]:
    """Each sample's frames through the RGB models alone, for fitting a calibration."""
    presentations = []
    for sample in samples:
        frames = []
        for image in frames_of(sample.path):
            face = presenter(pipeline.detect(image))
            if face is not None:
                frames.append(tuple(rgb.outputs(image, face)))
        presentations.append(Presentation(sample.label, sample.attack, tuple(frames)))
    return presentations


def summarise(outcomes: list[Outcome], threshold: float, level: str) -> dict:
    """ISO/IEC 30107-3 figures: APCER per attack type, BPCER, ACER, and counts."""
    live = [o for o in outcomes if o.sample.label == "live"]
    by_attack: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        if o.sample.label == "spoof":
            by_attack[o.sample.attack].append(o)
    apcer = {
        a: float(np.mean([o.accepted for o in group])) for a, group in sorted(by_attack.items())
    }
    bpcer = float(np.mean([not o.accepted for o in live])) if live else float("nan")
    worst = max(apcer.values()) if apcer else float("nan")
    counts: dict[str, dict[str, int]] = {}
    # Which layers refused each kind of sample: where a layer never refuses an attack
    # the others let through, it is not helping on this data.
    refused_by: dict[str, dict[str, int]] = {}
    for o in outcomes:
        key = "live" if o.sample.label == "live" else o.sample.attack
        verdict = o.liveness.verdict if o.liveness is not None else "no_face"
        counts.setdefault(key, {}).setdefault(verdict, 0)
        counts[key][verdict] += 1
        cues = o.liveness.cues if o.liveness is not None else ()
        for cue in cues:
            refused_by.setdefault(key, {}).setdefault(cue, 0)
            refused_by[key][cue] += 1
        if len(cues) == 1:
            refused_by[key].setdefault(f"{cues[0]}_alone", 0)
            refused_by[key][f"{cues[0]}_alone"] += 1
    result = {
        "level": level,
        "threshold": threshold,
        "samples": len(outcomes),
        "apcer": apcer,
        "bpcer": bpcer,
        "acer": (worst + bpcer) / 2,
        "verdicts": counts,
        "refused_by": refused_by,
    }
    # The layer's score alone, at the two ISO operating points: how this layer compares
    # with another whatever threshold each is run at.
    result["scores"] = operating_points(
        np.array([o.score for o in live]),
        {a: np.array([o.score for o in group]) for a, group in by_attack.items()},
    )
    return result
