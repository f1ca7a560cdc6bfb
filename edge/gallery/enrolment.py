"""Enrolment: from several captures of a new face to a few trustworthy templates.

* ``build_templates`` drops captures that disagree with the robust centre of all of
  them (a passer-by, a misdetection), then keeps a few diverse ones.
* ``EnrolmentSession`` is the on-device flow as a pure state machine on an
  injected clock: an administrator is recognised, the enrol button is pressed
  within a short window, good frames are collected until there are enough or
  time runs out. The daemon feeds it; nothing here touches hardware.
* ``guidance`` turns why a frame was not taken into what to tell the person at the
  door ("come closer"), for the web app's capture at the door camera.
* ``capture_from_images`` is the same collection from photo files, with one
  verdict per file; ``enrol_photos`` then enrols the person from the photos that
  agree. Every enrolment from photos takes these two steps (``facegate enrol``, the web
  app's upload, the evaluations), reporting the verdicts between them as it will.
* ``enrol`` stores the person and templates in one gallery transaction, refusing
  inside it a face that already matches someone else; ``enrol_templates`` does it
  with a matcher of its own (the web app's capture at the door camera).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..clock import Clock
from ..errors import ConfigError, FacegateError, ModelMismatchError, RefusedError
from ..schema import setting
from ..types import Embedding, EnrolmentState, Face, FaceAnalysis, Liveness, Quality, Verdict
from ..vision.images import MAX_PIXELS, decode_image, read_image
from .matcher import Matcher, MatcherConfig
from .store import Gallery, Person


@dataclass(frozen=True)
class EnrolmentConfig:
    """How many captures make a person, and the rules of on-device enrolment."""

    frames: int = setting(10, "good camera frames to collect for one enrolment", min=1, max=100)
    min_templates: int = setting(
        3,
        "fewest captures that must agree with each other to enrol (camera or photos)",
        min=1,
        max=50,
    )
    max_templates: int = setting(5, "most templates stored per person", min=1, max=50)
    outlier_min_similarity: float = setting(
        0.45,
        "a capture whose cosine similarity to the robust centre of all captures is "
        "below this is dropped as an outlier (bigger = stricter)",
        min=-1.0,
        max=1.0,
    )
    admin_window_s: float = setting(
        10.0,
        "seconds after an administrator is recognised during which the enrol "
        "button starts an enrolment",
        min=1.0,
        max=120.0,
    )
    timeout_s: float = setting(
        30.0,
        "seconds to collect the frames before the enrolment is abandoned",
        min=5.0,
        max=600.0,
    )
    max_photo_pixels: int = setting(
        MAX_PIXELS,
        "photos given to 'facegate enrol' with more pixels than this are refused "
        "from their header, before they are decoded (3 bytes of memory per pixel)",
        min=100_000,
        max=1_000_000_000,
    )

    def validate(self) -> None:
        if self.min_templates > self.max_templates:
            raise ConfigError("enrolment.min_templates: must not exceed enrolment.max_templates")
        if self.min_templates > self.frames:
            raise ConfigError("enrolment.min_templates: must not exceed enrolment.frames")


@dataclass(frozen=True)
class TemplateSet:
    """Templates chosen for one person, their qualities, and how many captures were dropped."""

    embeddings: tuple[Embedding, ...]
    qualities: tuple[float, ...]
    rejected: int


def build_templates(
    embeddings: Sequence[Embedding], qualities: Sequence[float], config: EnrolmentConfig
) -> TemplateSet:
    """Reject outliers, then keep up to ``max_templates`` diverse captures.

    The centre is the normalised coordinate-wise median, which a minority of
    foreign faces cannot drag towards themselves (a mean could be). Among the
    captures that agree with it, the best-quality one is kept first, then each
    next one is the capture least similar to those already kept (spread over
    expressions and lighting rather than near-copies of one frame).
    Raises RefusedError when fewer than ``min_templates`` captures agree.
    """
    if len(embeddings) != len(qualities):
        raise ValueError("one quality per embedding")
    if not embeddings:
        raise RefusedError("no usable face captures")
    model_id = embeddings[0].model_id
    for other in embeddings:
        if other.model_id != model_id:
            raise ModelMismatchError(model_id, other.model_id)
    vectors = np.stack([np.asarray(e.vector, dtype=np.float32) for e in embeddings])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    centre = np.median(vectors, axis=0)
    centre /= np.linalg.norm(centre)
    keep = [int(i) for i in np.flatnonzero(vectors @ centre >= config.outlier_min_similarity)]
    if len(keep) < config.min_templates:
        raise RefusedError(
            f"only {len(keep)} of {len(embeddings)} face captures agree with each other, "
            f"at least {config.min_templates} are needed (the others may show someone else)"
        )
    quality = np.asarray(qualities, dtype=np.float64)
    chosen = [max(keep, key=lambda i: quality[i])]
    while len(chosen) < min(config.max_templates, len(keep)):
        rest = [i for i in keep if i not in chosen]
        closeness = (vectors[rest] @ vectors[chosen].T).max(axis=1)
        chosen.append(rest[int(np.argmin(closeness))])
    return TemplateSet(
        embeddings=tuple(embeddings[i] for i in chosen),
        qualities=tuple(float(quality[i]) for i in chosen),
        rejected=len(embeddings) - len(keep),
    )


def templates_to_json(templates: TemplateSet) -> dict[str, Any]:
    """A TemplateSet as JSON-ready data (the daemon hands a capture to the web app)."""
    return {
        "templates": [
            {"model_id": e.model_id, "vector": [float(x) for x in e.vector], "quality": q}
            for e, q in zip(templates.embeddings, templates.qualities, strict=True)
        ],
        "rejected": templates.rejected,
    }


def templates_from_json(data: Any) -> TemplateSet:
    """The TemplateSet ``templates_to_json`` made; RefusedError for anything else."""
    try:
        items = data["templates"]
        embeddings, qualities = [], []
        for item in items:
            vector = np.asarray(item["vector"], dtype=np.float32)
            quality = float(item["quality"])
            if vector.ndim != 1 or not 0 < vector.size <= 4096:
                raise ValueError("a template is a vector")
            if not (np.all(np.isfinite(vector)) and np.isfinite(quality)):
                raise ValueError("a template holds finite numbers")
            embeddings.append(Embedding(vector, str(item["model_id"])))
            qualities.append(quality)
        rejected = int(data["rejected"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RefusedError(f"the daemon's capture is not a set of templates: {exc}") from None
    if not embeddings:
        raise RefusedError("the daemon's capture holds no templates")
    return TemplateSet(tuple(embeddings), tuple(qualities), rejected)


# --- on-device session ---------------------------------------------------------------


class EnrolmentSession:
    """The on-device enrolment rules, driven by an injected clock.

    ``authorise`` when an enabled administrator's face was recognised;
    ``button_pressed`` starts collecting only within ``admin_window_s`` of that
    (one authorisation, one enrolment), or ``start`` does for an administrator signed
    in to the web app; ``offer`` each analysed frame; when
    ``state`` is ``complete``, ``templates()`` gives the TemplateSet to ``enrol``.
    """

    def __init__(self, config: EnrolmentConfig, clock: Clock, require_liveness: bool):
        self.config = config
        self.clock = clock
        self.require_liveness = require_liveness
        self.authorised_by: int | None = None
        self._admin: tuple[int, float] | None = None
        self._started: float | None = None
        self._embeddings: list[Embedding] = []
        self._qualities: list[float] = []

    @property
    def state(self) -> str:
        if self._started is None:
            return EnrolmentState.IDLE
        if len(self._embeddings) >= self.config.frames:
            return EnrolmentState.COMPLETE
        if self.clock.now() - self._started > self.config.timeout_s:
            return EnrolmentState.TIMED_OUT
        return EnrolmentState.COLLECTING

    def renewed(self) -> EnrolmentSession:
        """A fresh, idle session with this one's settings."""
        return EnrolmentSession(self.config, self.clock, self.require_liveness)

    def authorise(self, admin: Person) -> None:
        """An administrator's face was just recognised (the daemon calls this)."""
        if not admin.is_enabled_admin:
            raise RefusedError(f"{admin.name} is not an enabled administrator")
        self._admin = (admin.id, self.clock.now())

    def button_pressed(self) -> None:
        """Start collecting, if an administrator authorised it within the window."""
        if self.state != EnrolmentState.IDLE:
            raise RefusedError(f"an enrolment is already {self.state.replace('_', ' ')}")
        now = self.clock.now()
        if self._admin is None or now - self._admin[1] > self.config.admin_window_s:
            raise RefusedError(
                "enrolment needs an administrator recognised within "
                f"{self.config.admin_window_s:g} s before the enrol button is pressed"
            )
        self.authorised_by, _ = self._admin
        self._admin = None  # one authorisation starts one enrolment
        self._started = now

    def start(self) -> None:
        """Start collecting for an administrator who asked through the web app (they
        signed in there, so no face nor button is needed)."""
        if self.state != EnrolmentState.IDLE:
            raise RefusedError(f"an enrolment is already {self.state.replace('_', ' ')}")
        self._admin = None
        self._started = self.clock.now()

    @property
    def collected(self) -> int:
        """Good captures so far."""
        return len(self._embeddings)

    def offer(self, faces: Sequence[FaceAnalysis], liveness: Liveness | None = None) -> str:
        """Consider one analysed frame; returns 'accepted' or why it was not."""
        if self.state != EnrolmentState.COLLECTING:
            return self.state
        if not faces:
            return "no_face"
        if len(faces) > 1:
            return "several_faces"
        face = faces[0]
        if not face.quality.passed or face.embedding is None:
            return "quality:" + ",".join(face.quality.reasons)
        if self.require_liveness and (liveness is None or liveness.verdict is not Verdict.LIVE):
            return "not_live"
        self._embeddings.append(face.embedding)
        self._qualities.append(face.face.score)
        return "accepted"

    def templates(self) -> TemplateSet:
        """The templates built from the collected frames (only once complete)."""
        if self.state != EnrolmentState.COMPLETE:
            raise RefusedError(f"the enrolment is {self.state.replace('_', ' ')}, not complete")
        return build_templates(self._embeddings, self._qualities, self.config)


# What to tell the person at the door, for each reason ``offer`` gives (quality reasons
# are quality.py's names).
_GUIDANCE = {
    "accepted": "good: keep looking at the camera",
    "no_face": "step in front of the camera",
    "several_faces": "one person at a time, please",
    "not_live": "look at the camera yourself: no photo or screen",
    "too_small": "come closer",
    "too_dark": "too dark: light the face",
    "too_bright": "too bright: move out of the glare",
    "blurred": "hold still",
    "pose": "look at the camera",
    "low_score": "look at the camera",
}


def guidance(verdict: str) -> str:
    """What to tell the person at the door, from what ``offer`` returned."""
    if verdict.startswith("quality:"):
        reasons = [r for r in verdict.removeprefix("quality:").split(",") if r]
        return "; ".join(dict.fromkeys(_GUIDANCE.get(r, r.replace("_", " ")) for r in reasons))
    return _GUIDANCE.get(verdict, verdict.replace("_", " "))


# --- from photo files --------------------------------------------------------------


class FacePipeline(Protocol):
    """The part of ``edge.vision.pipeline.Pipeline`` enrolment from photos needs."""

    @property
    def model_id(self) -> str: ...

    def detect(self, image: np.ndarray) -> list[Face]: ...

    def check_quality(self, image: np.ndarray, face: Face) -> Quality: ...

    def embed(self, image: np.ndarray, face: Face) -> Embedding: ...


@dataclass(frozen=True)
class Upload:
    """A photo that came as bytes (through the web app) rather than as a file."""

    name: str
    data: bytes


@dataclass(frozen=True)
class ImageVerdict:
    """What one photo gave: ``verdict`` is 'ok' or why it cannot be used."""

    path: Path
    verdict: str
    embedding: Embedding | None = None
    quality: float = 0.0

    @property
    def ok(self) -> bool:
        return self.embedding is not None


# choose(faces, image) -> the face to enrol from a photo that shows several.
ChooseFace = Callable[[list[Face], np.ndarray], Face]


def capture_from_images(
    pipeline: FacePipeline,
    paths: Sequence[Path | Upload],
    max_pixels: int = MAX_PIXELS,
    choose: ChooseFace | None = None,
) -> list[ImageVerdict]:
    """Detect, check and embed the face of each photo; one verdict each.

    A photo must show a single face, unless ``choose`` picks one of several (an
    evaluation on photos of celebrities with others in the background).
    """
    verdicts = []
    for photo in paths:
        path = Path(photo.name) if isinstance(photo, Upload) else Path(photo)
        try:
            if isinstance(photo, Upload):
                image = decode_image(photo.data, photo.name, max_pixels)
            else:
                image = read_image(path, max_pixels)
        except FacegateError as exc:
            verdicts.append(ImageVerdict(path, f"unreadable ({exc})"))
            continue
        faces = pipeline.detect(image)
        if len(faces) == 1:
            face = faces[0]
        elif faces and choose is not None:
            face = choose(faces, image)
        else:
            verdicts.append(ImageVerdict(path, "no face" if not faces else f"{len(faces)} faces"))
            continue
        quality = pipeline.check_quality(image, face)
        if not quality.passed:
            reasons = ", ".join(r.replace("_", " ") for r in quality.reasons)
            verdicts.append(ImageVerdict(path, reasons))
            continue
        embedding = pipeline.embed(image, face)
        verdicts.append(ImageVerdict(path, "ok", embedding, face.score))
    return verdicts


def enrol_photos(
    gallery: Gallery,
    verdicts: Sequence[ImageVerdict],
    name: str,
    role: str,
    config: EnrolmentConfig,
    matcher: MatcherConfig,
    force: bool = False,
    actor: str | None = None,
) -> tuple[int, TemplateSet]:
    """Enrol a person from the usable photos among ``verdicts`` (``capture_from_images``'):
    outliers dropped, then ``enrol``. Returns the person id and the templates stored;
    RefusedError when too few photos agree or the face is known already.
    """
    pairs = [(v.embedding, v.quality) for v in verdicts if v.embedding is not None]
    templates = build_templates([e for e, _ in pairs], [q for _, q in pairs], config)
    return enrol_templates(gallery, templates, name, role, matcher, force, actor), templates


def enrol_templates(
    gallery: Gallery,
    templates: TemplateSet,
    name: str,
    role: str,
    matcher: MatcherConfig,
    force: bool = False,
    actor: str | None = None,
) -> int:
    """``enrol``, matched against the gallery's people of the templates' model (a loop
    that already holds a matcher calls ``enrol`` with it). Returns the person id."""
    known = Matcher(gallery, matcher, templates.embeddings[0].model_id)
    return enrol(gallery, known, name, role, templates, force=force, actor=actor)


# --- storing -------------------------------------------------------------------------


def enrol(
    gallery: Gallery,
    matcher: Matcher,
    name: str,
    role: str,
    templates: TemplateSet,
    force: bool = False,
    now: float | None = None,
    actor: str | None = None,
) -> int:
    """Store a new person unless their face already matches someone (then RefusedError,
    naming who and how closely, unless ``force``); ``actor`` names the administrator
    who did it, when one did. Returns the person id.

    The match runs inside the gallery's write transaction, so two enrolments of one
    face at the same moment cannot both pass it.
    """

    def refuse_a_known_face() -> None:
        matches = [matcher.match(e) for e in templates.embeddings]
        known = [m for m in matches if m.known]
        if known:
            best = max(known, key=lambda m: m.similarity)
            raise RefusedError(
                f"this face already matches {best.name} (#{best.person_id}) with similarity "
                f"{best.similarity:.2f}; enrol with force (--force) to keep them apart"
            )

    return gallery.add_person(
        name,
        role,
        list(templates.embeddings),
        list(templates.qualities),
        now=now,
        check=None if force else refuse_a_known_face,
        actor=actor,
    )
