"""Track once, embed little: what each tracked face was decided to be, and when to look again.

A face is embedded on every good frame while its track is undecided. Once the loop
has decided about it (``checked``), its frames are detection only, until one of these
says the decision may no longer belong to the face in the box, and it is embedded
again (``due`` names why):

* ``reverify_s`` have passed since it was last checked;
* its track missed a frame (a face that left and one that came back are not
  assumed to be one);
* it is crowded (another face touches it, or could have taken its track), or a new
  face came into view;
* its embedding drifted: a face less similar than ``same_face_min_similarity`` to
  the track's previous embedding is another face, and the track starts afresh.

The last three unsettle the track at once, whether or not it is embedded on that
frame (it may not be the face at the door then): on any doubt the face is embedded
before its decision counts again. Tracking saves work; it never adds trust. What is
settled is the caller's key (the loop uses who, and whether a spoof); a check that
gives another key unsettles the track.

While the biggest face in view (the face at the door) is settled and would still be
GLANCE_MIN_FACE_PX tall in a smaller image (``glance_input_size``), detection glances:
it runs on that image. A face it misses has missed a frame, and is embedded when seen
again. Smaller faces are not embedded meanwhile anyway: the face at the door is the one
observed.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..errors import ConfigError
from ..schema import setting
from ..types import Embedding, Face
from .detector import STRIDE_ALIGN
from .tracker import Sighting, Tracker

UNDECIDED = "undecided"
REVERIFY = "re-verification due"
MISSED = "missed a frame"
CROWDED = "crowded"
NEW_FACE = "another face came into view"
DRIFTED = "its embedding drifted: another face"
CHANGED = "a check saw something else than what it was decided as"
COOLED = "its person's cooldown is over"

K = TypeVar("K", bound=Hashable)

# YuNet finds faces from about 10-16 px tall; a glance keeps the face at the door at
# twice that or more.
GLANCE_MIN_FACE_PX = 32.0


@dataclass(frozen=True)
class TrackingConfig:
    """Following faces across frames so that a decided face is not embedded every frame."""

    enabled: bool = setting(
        True,
        "follow faces across frames and embed a decided face again only every "
        "reverify_s or when it changes; false embeds every face on every frame",
    )
    ttl_s: float = setting(
        0.5, "a track unseen this long ends; a face seen after it is a new face", min=0.05, max=10.0
    )
    min_iou: float = setting(
        0.3,
        "overlap (IoU) a face needs with a track's predicted box to continue it",
        min=0.05,
        max=1.0,
    )
    reverify_s: float = setting(
        3.0, "a decided face is embedded and checked again after this long", min=0.1, max=60.0
    )
    same_face_min_similarity: float = setting(
        0.5,
        "an embedding of a tracked face less similar than this to the track's previous "
        "one is another face: the track starts afresh",
        min=-1.0,
        max=1.0,
    )
    glance_input_size: int = setting(
        160,
        "longer side (px) of the image detection runs on while the face at the door "
        "(the biggest in view) is decided and would be 32 px tall in it (at or above "
        "detector.input_size: no glance)",
        min=64,
        max=1920,
    )

    def validate(self) -> None:
        if self.glance_input_size % STRIDE_ALIGN:
            raise ConfigError(
                f"tracking.glance_input_size: {self.glance_input_size} is not a multiple "
                f"of {STRIDE_ALIGN}"
            )


def _area(box: tuple[float, float, float, float]) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


@dataclass
class _Memory(Generic[K]):
    embedding: Embedding | None = None
    settled: K | None = None
    checked_at: float = 0.0
    why: str = UNDECIDED  # why it is not settled


class TrackCache(Generic[K]):
    """The tracker and, per track, its last embedding and what it was settled as."""

    def __init__(self, config: TrackingConfig) -> None:
        self.config = config
        self._tracker = Tracker(config.min_iou, config.ttl_s)
        self._memory: dict[int, _Memory[K]] = {}
        self._door: Sighting | None = None  # the last frame's biggest face

    def update(self, time: float, faces: Sequence[Face]) -> tuple[list[Sighting], list[int]]:
        """Follow this frame's faces: (a Sighting per face, ids of tracks that ended)."""
        sightings, ended = self._tracker.update(time, [f.bbox for f in faces])
        for track in ended:
            self._memory.pop(track, None)
        arrived = any(s.fresh for s in sightings)
        self._door = max(sightings, key=lambda s: _area(s.box), default=None)
        for s in sightings:
            if s.fresh:
                self._memory[s.track] = _Memory[K]()
            elif not s.continuous:
                self.unsettle(s.track, MISSED)
            elif s.crowded:
                self.unsettle(s.track, CROWDED)
            elif arrived:
                self.unsettle(s.track, NEW_FACE)
        return sightings, ended

    def reset(self) -> list[int]:
        """Forget every track (camera lost, or frames not followed); returns their ids."""
        self._memory.clear()
        self._door = None
        return self._tracker.reset()

    def glance(self, frame_size: tuple[int, int]) -> int | None:
        """The input size the next frame's detection may use (``glance_input_size``),
        or None for the configured one: the last frame's biggest face must be settled,
        and tall enough at that size (``frame_size``: width, height)."""
        door = self._door
        if door is None or self._memory[door.track].settled is None:
            return None
        size = self.config.glance_input_size
        tall = (door.box[3] - door.box[1]) * size / max(frame_size)
        return size if tall >= GLANCE_MIN_FACE_PX else None

    def due(self, track: int, time: float) -> str | None:
        """Why the face of ``track`` must be embedded on this frame; None when what it was
        settled as still stands."""
        memory = self._memory[track]
        if memory.settled is None:
            return memory.why
        if not time - memory.checked_at < self.config.reverify_s:  # NaN: check
            return REVERIFY
        return None

    def settled(self, track: int) -> K | None:
        return self._memory[track].settled

    def embedded(self, track: int, embedding: Embedding) -> bool:
        """Record the track's new embedding; True when it is another face than the
        previous one (the track is then undecided, and its history should go)."""
        memory = self._memory[track]
        previous, memory.embedding = memory.embedding, embedding
        if previous is None:
            return False
        if embedding.similarity(previous) >= self.config.same_face_min_similarity:
            return False
        self.unsettle(track, DRIFTED)  # a NaN similarity lands here too: another face
        return True

    def checked(self, track: int, key: K, time: float, decided: bool) -> None:
        """What an embedded frame of ``track`` showed (``key``) and whether it decided;
        a decision settles the track, a check that agrees with it renews it, anything
        else leaves it undecided."""
        memory = self._memory[track]
        if decided or (memory.settled is not None and memory.settled == key):
            memory.settled, memory.checked_at = key, time
        elif memory.settled is not None:
            self.unsettle(track, CHANGED)

    def unsettle(self, track: int, why: str) -> None:
        """The track is undecided again, for the reason given."""
        memory = self._memory[track]
        if memory.settled is not None:
            memory.settled, memory.why = None, why
