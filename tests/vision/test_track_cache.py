"""What a track was decided as, and when its face must be embedded again."""

from __future__ import annotations

import numpy as np
import pytest

from edge.errors import ConfigError
from edge.schema import build_section
from edge.types import Embedding, Face
from edge.vision.track_cache import (
    CHANGED,
    CROWDED,
    DRIFTED,
    MISSED,
    NEW_FACE,
    REVERIFY,
    UNDECIDED,
    TrackCache,
    TrackingConfig,
)

DT = 0.1
FRAME = (640, 480)
ADA, BOB = ("Ada", False), ("Bob", False)


def face(x: float) -> Face:
    return Face((x, 100.0, x + 200.0, 340.0), np.zeros((5, 2), np.float32), 0.9)


def vector(*values: float) -> Embedding:
    v = np.array(values, np.float32)
    return Embedding(v / np.linalg.norm(v), "m")


def settled_cache(**config) -> tuple[TrackCache, int]:
    """A cache whose one track, at x = 100, was decided as Ada at t = 0."""
    cache: TrackCache = TrackCache(TrackingConfig(**config))
    (s,), _ = cache.update(0.0, [face(100)])
    assert cache.due(s.track, 0.0) == UNDECIDED
    cache.embedded(s.track, vector(1, 0))
    cache.checked(s.track, ADA, 0.0, decided=True)
    return cache, s.track


def test_a_decided_track_needs_no_embedding_until_reverify_s_has_passed():
    cache, track = settled_cache(reverify_s=1.0)
    for i in range(1, 10):
        cache.update(i * DT, [face(100 + i)])
        assert cache.due(track, i * DT) is None
    cache.update(1.0, [face(110)])
    assert cache.due(track, 1.0) == REVERIFY
    cache.embedded(track, vector(1, 0.1))
    cache.checked(track, ADA, 1.0, decided=False)  # the check agrees: renewed
    cache.update(1.1, [face(111)])
    assert cache.due(track, 1.1) is None


def test_a_check_that_sees_someone_else_unsettles_the_track():
    cache, track = settled_cache(reverify_s=0.5)
    cache.update(0.5, [face(100)])
    cache.checked(track, BOB, 0.5, decided=False)
    assert cache.due(track, 0.5) == CHANGED and cache.settled(track) is None


def test_an_embedding_unlike_the_tracks_last_is_another_face():
    cache, track = settled_cache()
    cache.update(DT, [face(100)])
    assert not cache.embedded(track, vector(0.9, 0.2))  # the same face, a little turned
    assert cache.settled(track) == ADA
    assert cache.embedded(track, vector(0, 1))  # orthogonal: someone else
    assert cache.due(track, DT) == DRIFTED


def test_a_nan_embedding_counts_as_another_face():
    cache, track = settled_cache()
    cache.update(DT, [face(100)])
    assert cache.embedded(track, Embedding(np.full(2, np.nan, np.float32), "m"))
    assert cache.settled(track) is None


@pytest.mark.parametrize(
    ("frames", "why"),
    [
        ([[], [face(100)]], MISSED),  # unseen for a frame, back within the TTL
        ([[face(100), face(250)]], CROWDED),  # another face touches it
        ([[face(100), face(600)]], NEW_FACE),  # another face, far away, came into view
    ],
)
def test_any_doubt_about_the_face_in_the_box_unsettles_it_at_once(frames, why):
    cache, track = settled_cache()
    for i, faces in enumerate(frames, start=1):
        cache.update(i * DT, faces)
    assert cache.settled(track) is None and cache.due(track, len(frames) * DT) == why


def test_a_track_that_ends_is_forgotten_and_its_place_taken_by_a_new_undecided_one():
    cache, track = settled_cache(ttl_s=0.3)
    _, ended = cache.update(0.5, [])
    assert ended == [track]
    (s,), _ = cache.update(0.6, [face(100)])
    assert s.track != track and cache.due(s.track, 0.6) == UNDECIDED


def test_reset_forgets_every_decision():
    cache, track = settled_cache()
    assert cache.reset() == [track]
    (s,), _ = cache.update(DT, [face(100)])
    assert s.fresh and cache.due(s.track, DT) == UNDECIDED


def test_the_next_frame_glances_only_while_the_biggest_face_in_view_is_settled():
    cache, track = settled_cache()
    assert cache.glance(FRAME) == 160
    small = Face((600.0, 100.0, 650.0, 160.0), np.zeros((5, 2), np.float32), 0.9)
    cache.update(DT, [face(100), small])
    assert cache.glance(FRAME) is None  # a new face came into view: Ada is unsettled
    cache.embedded(track, vector(1, 0))
    cache.checked(track, ADA, DT, decided=True)
    assert cache.glance(FRAME) == 160  # a smaller face beside her, undecided, changes nothing
    closer = Face((560.0, 60.0, 800.0, 380.0), np.zeros((5, 2), np.float32), 0.9)
    cache.update(2 * DT, [face(100), closer])  # someone bigger than Ada comes up
    assert cache.glance(FRAME) is None  # the face at the door now is undecided
    cache.reset()
    assert cache.glance(FRAME) is None  # nobody in view: detect in full
    cache, track = settled_cache()
    cache.update(DT, [])
    assert cache.glance(FRAME) is None  # missed in the last frame: look in full again


def test_a_face_too_small_to_be_found_in_a_glance_is_detected_at_full_size():
    cache, track = settled_cache()  # 240 px tall: 60 px at 160 of 640
    assert cache.glance(FRAME) == 160
    assert cache.glance((1920, 1080)) is None  # 20 px at 160 of 1920


def test_a_glance_size_that_is_not_a_multiple_of_32_is_refused():
    with pytest.raises(ConfigError, match="tracking.glance_input_size: 150 is not a multiple"):
        build_section(TrackingConfig, {"glance_input_size": 150}, "tracking")
