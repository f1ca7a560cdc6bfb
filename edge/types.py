"""The small value types that flow through the pipeline.

Conventions, the same everywhere in facegate:

* Boxes are ``(x1, y1, x2, y2)`` in pixels of the frame the face came from
  (the full-resolution frame, even when detection ran on a smaller image).
* Landmarks are a ``(5, 2)`` float32 array of ``(x, y)`` in the same pixels, in the
  order right eye, left eye, nose tip, right mouth corner, left mouth corner
  (the subject's right eye appears on the left of the image).
* Similarity is cosine similarity in ``[-1, 1]``; higher means more alike. No module
  speaks of distances.
* Timestamps on frames are monotonic seconds (``Clock.now()``); wall-clock time is
  used only for the event log.

The words facegate logs and compares are enums here, one place for each vocabulary.
Each is a ``str`` enum, so a member is equal to, stored as and printed as its value.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from .errors import ModelMismatchError

LANDMARK_NAMES = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")


class Word(str, enum.Enum):
    """A str enum that prints as its value on every Python (3.12 changed format()) and
    hashes as its value, so a member and its string are one key in a dict."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return str(self.value).__format__(spec)

    __hash__ = str.__hash__


class EventKind(Word):
    """What the event log records: decisions, door events and changes to the gallery."""

    GRANTED = "granted"
    DENIED_UNRECORDED = "denied_unrecorded"
    DENIED_UNKNOWN = "denied_unknown"
    DENIED_SPOOF = "denied_spoof"
    DENIED_SCHEDULE = "denied_schedule"
    DENIED_DISABLED = "denied_disabled"
    DENIED_LOCKOUT = "denied_lockout"
    ENROLLED = "enrolled"
    REMOVED = "removed"
    DOOR_FORCED = "door_forced"
    DOOR_HELD_OPEN = "door_held_open"
    EXIT_REQUEST = "exit_request"
    LIVENESS_CALIBRATED = "liveness_calibrated"
    LIVENESS_REVERTED = "liveness_reverted"
    REMOTE_UNLOCK = "remote_unlock"
    # changes an administrator made through the web app or its API (the event's actor)
    PERSON_UPDATED = "person_updated"
    ADMIN_ADDED = "admin_added"
    ADMIN_REMOVED = "admin_removed"
    ADMIN_PASSWORD_CHANGED = "admin_password_changed"
    ADMIN_LOGIN = "admin_login"
    ADMIN_LOCKED_OUT = "admin_locked_out"
    API_TOKEN_CREATED = "api_token_created"
    API_TOKEN_REVOKED = "api_token_revoked"
    DENIED_OFFLINE = "denied_offline"  # cut off from the site longer than max_offline
    SYNCED = "synced"  # a person's record changed by another terminal of the site
    SYNC_REFUSED = "sync_refused"  # a person message forged, replayed, older or unusable
    OUTBOX_DROPPED = "outbox_dropped"  # events that waited for the broker past retention


class DoorSignal(Word):
    """What the door hardware asks of the loop without it being an event to log."""

    ENROL_PRESSED = "enrol_pressed"  # the enrol button held long enough


class Notice(Word):
    """What the loop reports besides logged events: enrolment at the door, and events
    it could not write before it stopped."""

    ENROLMENT_STARTED = "enrolment_started"
    ENROLMENT_REFUSED = "enrolment_refused"
    ENROLMENT_FAILED = "enrolment_failed"
    EVENTS_LOST = "events_lost"


class Refusal(Word):
    """Why a recognised person may not enter now (the gallery says, the decision logs)."""

    NOT_FOUND = "not_found"
    DISABLED = "disabled"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    OUTSIDE_SCHEDULE = "outside_schedule"
    OFFLINE = "offline"  # the last sync with the site is older than max_offline


class SyncOutcome(Word):
    """What applying a person or a deletion from another terminal did (``gallery.sync``)."""

    ADDED = "added"
    UPDATED = "updated"
    REMOVED = "removed"
    CURRENT = "current"  # this version is the one the gallery has
    REFUSED = "refused"  # older than the gallery's, or unusable; logged


class Verdict(Word):
    """The liveness verdict on one frame."""

    LIVE = "live"
    SPOOF = "spoof"
    INCONCLUSIVE = "inconclusive"


class CameraState(Word):
    """Where the camera stands (``camera.supervisor``)."""

    STARTING = "starting"
    OK = "ok"
    DOWN = "down"
    ENDED = "ended"  # a replay came to its end
    STOPPED = "stopped"


class EnrolmentState(Word):
    """Where an enrolment at the door stands (``gallery.enrolment``)."""

    IDLE = "idle"
    COLLECTING = "collecting"
    COMPLETE = "complete"
    TIMED_OUT = "timed_out"


class DoorState(Word):
    """The door as a person there would see it; the alarm states while the door is
    still open after a forced opening or past its hold time."""

    LOCKED = "locked"
    UNLOCKED = "unlocked"
    OPEN = "open"
    HELD_OPEN = "held_open"
    FORCED = "forced"


@dataclass(frozen=True, eq=False)
class Frame:
    """One camera frame: BGR uint8 pixels and when they were captured.

    ``lores`` is an optional smaller copy of the same view (picamera2's second
    stream) that detection may use instead of downscaling ``image``; ``ir`` is an
    optional near-infrared frame captured at the same moment.
    """

    image: np.ndarray
    timestamp: float
    seq: int = 0
    lores: np.ndarray | None = None
    ir: np.ndarray | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the full-resolution image."""
        h, w = self.image.shape[:2]
        return w, h


@dataclass(frozen=True, eq=False)
class Face:
    """A detected face in frame pixels (see the module conventions)."""

    bbox: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    @property
    def width(self) -> float:
        return self.bbox[2] - self.bbox[0]

    @property
    def height(self) -> float:
        return self.bbox[3] - self.bbox[1]

    @property
    def center(self) -> tuple[float, float]:
        return ((self.bbox[0] + self.bbox[2]) / 2.0, (self.bbox[1] + self.bbox[3]) / 2.0)


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """A 112x112 BGR crop with the landmarks on the canonical template."""

    image: np.ndarray
    face: Face


@dataclass(frozen=True, eq=False)
class Embedding:
    """A unit-length float32 vector and the id of the model that made it.

    Embeddings from different models live in different spaces; comparing them is a
    bug, which is why the model id travels with the vector.
    """

    vector: np.ndarray
    model_id: str

    def similarity(self, other: Embedding) -> float:
        """Cosine similarity with another embedding of the same model."""
        if other.model_id != self.model_id:
            raise ModelMismatchError(self.model_id, other.model_id)
        return float(np.dot(self.vector, other.vector))


@dataclass(frozen=True)
class Quality:
    """The quality gate's verdict on one face; ``reasons`` names every failed check."""

    passed: bool
    reasons: tuple[str, ...] = ()
    metrics: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Liveness:
    """Liveness verdict: ``live``, ``spoof`` or ``inconclusive``, with its reasons.

    ``score`` is the probability-like live score in [0, 1]; higher means more live.
    ``cues`` names the layers behind a spoof verdict (``rgb``, ``flat``, ``nir``), so an
    evaluation can tell which layer does the work.
    """

    score: float
    verdict: Verdict
    reasons: tuple[str, ...] = ()
    cues: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict", Verdict(self.verdict))  # ValueError if not one


# The similarity where there is nobody to compare with (an empty gallery; no runner-up):
# the lowest a cosine can be, so that it passes no threshold. The loop reports it as none.
NO_SIMILARITY = -1.0


@dataclass(frozen=True)
class Match:
    """Result of a 1:N search. ``person_id`` is None when nobody passed the threshold.

    ``similarity`` is the best cosine similarity found (whether or not it passed),
    ``runner_up`` the best similarity of any *other* person (NO_SIMILARITY when
    there is none), and ``margin`` their difference.
    """

    person_id: int | None
    name: str | None
    similarity: float
    runner_up: float = NO_SIMILARITY

    @property
    def margin(self) -> float:
        return self.similarity - self.runner_up

    @property
    def known(self) -> bool:
        return self.person_id is not None


@dataclass(frozen=True, eq=False)
class Mesh:
    """The face mesh of one face: (468, 3) float32 points, x and y in frame pixels, z
    in the same scale as x (relative depth, smaller is nearer the camera), and
    ``presence``, the model's face score in [0, 1]."""

    points: np.ndarray
    presence: float


@dataclass(frozen=True, eq=False)
class Subject:
    """The person at the door in one frame: a face that was embedded, and so aligned on
    its mesh."""

    face: Face
    embedding: Embedding
    mesh: Mesh


@dataclass(frozen=True, eq=False)
class FaceAnalysis:
    """What the pipeline learnt about one face in a frame.

    ``embedding`` is None when the face failed the quality gate: such faces are
    not embedded at all, which is most of the per-frame saving on a busy door.
    ``face`` carries the mesh's five landmarks and ``mesh`` the mesh itself for faces
    that were aligned; both are the detector's alone for faces rejected before that.
    """

    face: Face
    quality: Quality
    embedding: Embedding | None = None
    mesh: Mesh | None = None
