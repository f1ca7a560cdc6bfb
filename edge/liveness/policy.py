"""Fusing the liveness layers into one verdict per frame, at a configured level.

Levels:

* ``off``: no liveness check; the daemon grants on recognition alone.
* ``standard``: the passive RGB score, averaged over the face's recent frames,
  must reach ``threshold`` (or the site calibration's threshold, when one is
  active); a face that turns and moves like a flat picture is a spoof; with an IR
  camera, the NIR check must pass. Any one of these layers saying spoof denies.
  Stillness is not held against anyone.

The temporal cues follow the face mesh's points (the pipeline's, computed once per
face), not the detector's: YuNet's five landmarks jitter by up to a fifth of the
eye distance between frames, enough to make still live faces look flat and prints
look deep (measured on NUAA runs).
* ``strict``: as standard with ``strict_threshold``, and the person must also
  give positive evidence of life: a blink or a head turn with depth. Until they
  do, the verdict is inconclusive and the door stays shut.

History belongs to the face at the door: it restarts when the face jumps to a
different place or is not seen for ``track_gap_seconds``, so one person's blink
never vouches for the next face. When the loop follows faces (``[tracking]``), each
track keeps its own history, which the loop drops when the track ends or its face
turns out to be another.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import ConfigError
from ..schema import setting
from ..types import Face, Frame, Liveness, Mesh, Verdict
from ..vision.detector import Detector
from ..vision.landmarks import MIN_PRESENCE, eye_openness
from ..vision.models import ModelsConfig, model_spec
from .calibration import Head
from .motion import PLANAR, THREE_D, blinked, motion
from .nir import NirCheck
from .rgb import PassiveRgb, RgbModel

LEVELS = ("off", "standard", "strict")


@dataclass(frozen=True)
class LivenessConfig:
    RETIRED_KEYS: ClassVar[dict[str, str]] = {
        "model": "the RGB layer is now 'models', a list of manifest ids (default: the "
        "MiniFASNet pair); delete this line to use the default",
    }

    level: str = setting(
        "standard",
        "presentation-attack checks: off, standard or strict (see README)",
        choices=LEVELS,
    )
    models: tuple[str, ...] = setting(
        ("minifasnet_v2", "minifasnet_v1se"),
        "passive RGB liveness model ids in the manifest; their live probabilities are averaged",
    )
    threshold: float = setting(
        0.5,
        "standard: mean live score over the recent frames needed to pass (a site "
        "calibration brings its own)",
        min=0.0,
        max=1.0,
    )
    strict_threshold: float = setting(
        0.8, "strict: the same, at the strict level", min=0.0, max=1.0
    )
    window_frames: int = setting(
        8, "recent frames of the same face whose scores and landmarks are combined", min=1, max=120
    )
    track_gap_seconds: float = setting(
        1.0,
        "a face unseen this long (or jumping elsewhere) starts a new history",
        min=0.05,
        max=30.0,
    )
    min_turn: float = setting(
        0.06,
        "head turn (foreshortening of the eye-mouth quad, log ratio) needed before "
        "flatness can be judged",
        min=0.0,
        max=1.0,
    )
    max_planar_parallax: float = setting(
        0.04,
        "nose parallax (eye distances) at or below which a turning face is flat",
        min=0.0,
        max=1.0,
    )
    blink_dip: float = setting(
        0.6,
        "eye openness below this share of its typical value counts as closed",
        min=0.05,
        max=0.95,
    )
    nir_registration: tuple[float, float, float, float, float, float] = setting(
        (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
        "affine map a, b, c, d, e, f from colour to IR pixels: x' = a x + b y + c, "
        "y' = d x + e y + f",
    )
    nir_min_iou: float = setting(
        0.4, "overlap needed between the mapped colour face box and the IR face", min=0.0, max=1.0
    )
    nir_brightness: tuple[float, float] = setting(
        (40.0, 235.0), "grey levels the inner face must average in NIR", min=0.0, max=255.0
    )
    nir_min_contrast: float = setting(
        6.0,
        "standard deviation of grey levels the inner face must reach in NIR",
        min=0.0,
        max=128.0,
    )
    nir_max_grain: float = setting(
        0.15,
        "fine grain (what a 1.5 px blur removes, over the brightness) the inner face "
        "may show in NIR; print dots and paper show more",
        min=0.0,
        max=10.0,
    )
    nir_max_saturated: float = setting(
        0.10,
        "share of the inner face that may be clipped white (>= 250) in NIR; lit paper clips more",
        min=0.0,
        max=1.0,
    )

    def validate(self) -> None:
        if not self.models or len(set(self.models)) != len(self.models):
            raise ConfigError("liveness.models: name one or more models, each once")
        if self.nir_brightness[0] >= self.nir_brightness[1]:
            raise ConfigError("liveness.nir_brightness: the first value must be below the second")


@dataclass
class _Seen:
    time: float
    centre: np.ndarray
    score: float
    points: np.ndarray
    openness: float


class LivenessChecker:
    """One verdict per frame for the face at the door (see the module's levels)."""

    def __init__(
        self,
        config: LivenessConfig,
        rgb: PassiveRgb,
        nir: NirCheck | None = None,
        calibrated_threshold: float | None = None,
    ):
        if config.level == "off":
            raise ValueError("no checker at level 'off'")
        self.config = config
        self.rgb = rgb
        self.nir = nir
        self.calibrated_threshold = calibrated_threshold
        self._histories: dict[int | None, deque[_Seen]] = {}

    @classmethod
    def from_config(
        cls,
        section: LivenessConfig,
        models: ModelsConfig,
        detector: Detector,
        *,
        ir_camera: bool,
        calibration: Head | None = None,
    ) -> LivenessChecker:
        """The checker at the section's level (ValueError at 'off'). ``detector`` is
        shared with the pipeline for the NIR frame; ``calibration`` is the site's
        active head (ModelError if it was fitted on other models)."""
        if section.level == "off":
            raise ValueError("no checker at level 'off'")
        nir = None
        if ir_camera:
            nir = NirCheck(
                detector,
                section.nir_registration,
                section.nir_min_iou,
                section.nir_brightness,
                section.nir_min_contrast,
                section.nir_max_grain,
                section.nir_max_saturated,
            )
        return cls(
            section,
            rgb_layer(section, models, calibration),
            nir,
            calibration.threshold if calibration is not None else None,
        )

    @property
    def threshold(self) -> float:
        """The calibration's threshold at both levels when one is active (strict still asks
        for a blink or a turn), else the configured one for the level."""
        c = self.config
        if self.calibrated_threshold is not None:
            return self.calibrated_threshold
        return c.strict_threshold if c.level == "strict" else c.threshold

    def reset(self) -> None:
        """Forget every face's history."""
        self._histories.clear()

    def forget(self, track: int) -> None:
        """Forget one tracked face's history (its track ended, or it is another face)."""
        self._histories.pop(track, None)

    def check(self, frame: Frame, face: Face, mesh: Mesh, track: int | None = None) -> Liveness:
        """The verdict on ``face`` in ``frame``: the pipeline's refined face (landmarks
        from the mesh, see Pipeline.refine) and its face mesh; ``track`` names the
        tracked face whose history this frame joins (None: the one untracked face)."""
        history = self._histories.setdefault(track, deque(maxlen=self.config.window_frames))
        self._follow(history, frame.timestamp, face)
        if not mesh.presence >= MIN_PRESENCE:
            # Noise points could fake a blink or a turn: this frame says nothing.
            return Liveness(0.0, Verdict.INCONCLUSIVE, ("the face mesh sees no face",))
        history.append(
            _Seen(
                frame.timestamp,
                np.asarray(face.center),
                self.rgb.score(frame.image, face),
                face.landmarks,
                float(np.mean(eye_openness(mesh.points))),
            )
        )
        score = float(np.mean([s.score for s in history]))
        spoof: dict[str, str] = {}  # cue -> reason
        if not score >= self.threshold:  # a NaN score is a spoof, not a pass
            spoof["rgb"] = f"rgb score {score:.2f} below {self.threshold:g}"
        moved = motion(
            [s.points for s in history], self.config.min_turn, self.config.max_planar_parallax
        )
        if moved.state == PLANAR:
            spoof["flat"] = f"turns like a flat picture (parallax {moved.parallax:.3f})"
        if self.nir is not None:
            if frame.ir is None:
                return Liveness(score, Verdict.INCONCLUSIVE, ("no infrared frame",))
            nir = self.nir.check(frame.ir, face)
            if not nir.passed:
                spoof["nir"] = nir.reason
        if spoof:
            return Liveness(score, Verdict.SPOOF, tuple(spoof.values()), tuple(spoof))
        if self.config.level == "strict":
            blink = blinked([s.openness for s in history], self.config.blink_dip)
            if not blink and moved.state != THREE_D:
                return Liveness(score, Verdict.INCONCLUSIVE, ("no blink or head turn seen yet",))
        return Liveness(score, Verdict.LIVE)

    def _follow(self, history: deque[_Seen], time: float, face: Face) -> None:
        """Start a new history when the face was lost for a while or jumped elsewhere."""
        if not history:
            return
        last = history[-1]
        gap = time - last.time
        jump = float(np.linalg.norm(np.asarray(face.center) - last.centre))
        if not (gap <= self.config.track_gap_seconds and jump <= max(face.width, face.height)):
            history.clear()


def rgb_layer(
    section: LivenessConfig, models: ModelsConfig, calibration: Head | None = None
) -> PassiveRgb:
    """The RGB layer of the networks the section names, with the site's head when one is
    given (ModelError if it was fitted on other networks); at any level, since site
    calibration fits it whatever the level in use."""
    models_dir = models.resolved_dir()
    threads = models.resolved_light_threads()
    networks = [RgbModel(model_spec(models_dir, m), threads) for m in section.models]
    if calibration is not None:
        calibration.check_models(section.models, [m.spec.bin_sha256 for m in networks])
    return PassiveRgb(networks, calibration)
