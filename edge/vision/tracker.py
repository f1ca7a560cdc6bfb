"""Following faces from frame to frame by their boxes and motion.

Pure: boxes and frame times in, track ids out; no pixels, no models. Each track
predicts where its box will be from a constant velocity (of each box edge, so a face
walking up grows as well as moves), and a detection joins the track whose predicted
box it overlaps most, best pair first, if that overlap (IoU) reaches ``min_iou``; a
detection that joins none starts a new track. A track not seen for ``ttl_s`` ends.

The tracker also says when a pairing may be wrong, so that whoever trusts a track's
identity checks it instead: a sighting is ``continuous`` only if its track was seen
in the previous frame too, and ``crowded`` when its box touches another face's box
or could have paired with another track (two faces crossing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels (edge.types)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes; 0 for boxes that do not meet."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if not (w > 0 and h > 0):
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Sighting:
    """Where one detection of a frame went: its track, and how far to trust the pairing."""

    track: int
    box: Box
    fresh: bool  # the first sighting of this track
    continuous: bool  # its track was also seen in the previous frame
    crowded: bool  # touches another face, or could have joined another track


@dataclass
class _Track:
    id: int
    box: Box
    velocity: tuple[float, float, float, float]  # pixels per second, per box edge
    last_seen: float
    moving: bool  # seen twice or more, so ``velocity`` is measured, not assumed

    def predict(self, time: float) -> Box:
        dt = time - self.last_seen
        x1, y1, x2, y2 = (c + v * dt for c, v in zip(self.box, self.velocity, strict=True))
        return (x1, y1, x2, y2)


class Tracker:
    """Tracks over a stream of frames; ``update`` once per analysed frame, in time order."""

    # Weight of the newest measurement in the velocity: smooths detector jitter.
    VELOCITY_GAIN = 0.5

    def __init__(self, min_iou: float, ttl_s: float) -> None:
        if not 0.0 < min_iou <= 1.0:
            raise ValueError(f"min_iou must be in (0, 1], got {min_iou!r}")
        if not ttl_s > 0.0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s!r}")
        self.min_iou = min_iou
        self.ttl_s = ttl_s
        self._tracks: dict[int, _Track] = {}
        self._next_id = 1
        self._last_time = -math.inf
        self._seen_last: set[int] = set()

    @property
    def tracks(self) -> list[int]:
        """Ids of the live tracks."""
        return list(self._tracks)

    def reset(self) -> list[int]:
        """End every track (the camera was lost: nothing before the gap pairs with after);
        returns their ids."""
        ended = list(self._tracks)
        self._tracks.clear()
        self._seen_last = set()
        return ended

    def update(self, time: float, boxes: Sequence[Box]) -> tuple[list[Sighting], list[int]]:
        """Pair this frame's boxes with the tracks: (one Sighting per box, in the boxes'
        order; ids of the tracks that ended, unseen for longer than ``ttl_s``)."""
        if not time >= self._last_time:  # NaN included
            raise ValueError(f"frame time {time} is older than the previous one, {self._last_time}")
        for box in boxes:
            if not all(math.isfinite(c) for c in box) or not (box[2] > box[0] and box[3] > box[1]):
                raise ValueError(f"not a box: {box!r}")
        self._last_time = time
        ended = [t.id for t in self._tracks.values() if not time - t.last_seen <= self.ttl_s]
        for track_id in ended:
            del self._tracks[track_id]
        predicted = {t.id: t.predict(time) for t in self._tracks.values()}
        overlaps = [
            (iou(box, guess), i, track_id)
            for i, box in enumerate(boxes)
            for track_id, guess in predicted.items()
        ]
        candidates = [o for o in overlaps if o[0] >= self.min_iou]
        paired: dict[int, int] = {}  # box index -> track id
        for _, i, track_id in sorted(candidates, key=lambda o: -o[0]):
            if i not in paired and track_id not in paired.values():
                paired[i] = track_id
        sightings = []
        for i, box in enumerate(boxes):
            rivals = sum(1 for o in candidates if o[1] == i)
            if i in paired:
                track_id = paired[i]
                rivals += sum(1 for o in candidates if o[2] == track_id) - 1
                continuous = track_id in self._seen_last
                self._follow(self._tracks[track_id], time, box)
            else:
                track_id = self._start(time, box)
                continuous = False
            touches = any(iou(box, other) > 0.0 for j, other in enumerate(boxes) if j != i)
            sightings.append(
                Sighting(track_id, box, i not in paired, continuous, touches or rivals > 1)
            )
        self._seen_last = {s.track for s in sightings}
        return sightings, ended

    def _start(self, time: float, box: Box) -> int:
        track_id = self._next_id
        self._next_id += 1
        self._tracks[track_id] = _Track(track_id, box, (0.0, 0.0, 0.0, 0.0), time, False)
        return track_id

    def _follow(self, track: _Track, time: float, box: Box) -> None:
        dt = time - track.last_seen
        if dt > 0:
            measured = tuple((new - old) / dt for new, old in zip(box, track.box, strict=True))
            gain = self.VELOCITY_GAIN if track.moving else 1.0
            v1, v2, v3, v4 = (
                gain * m + (1 - gain) * v for m, v in zip(measured, track.velocity, strict=True)
            )
            track.velocity = (v1, v2, v3, v4)
            track.moving = True
        track.box = box
        track.last_seen = time
