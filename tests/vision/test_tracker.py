"""The box tracker: association, motion, expiry, and when a pairing may be wrong."""

from __future__ import annotations

import math

import pytest

from edge.vision.tracker import Tracker, iou

DT = 0.1  # 10 frames per second


def box(x: float, y: float = 100.0, w: float = 200.0, h: float = 240.0):
    return (x, y, x + w, y + h)


def test_iou_of_equal_disjoint_and_half_overlapping_boxes():
    assert iou(box(0), box(0)) == 1.0
    assert iou(box(0), box(500)) == 0.0
    assert iou(box(0, w=200), box(100, w=200)) == pytest.approx(1 / 3)


def test_a_face_keeps_its_track_while_it_moves_and_a_far_one_starts_another():
    tracker = Tracker(min_iou=0.3, ttl_s=0.5)
    (first,), _ = tracker.update(0.0, [box(100)])
    assert first.fresh and not first.continuous
    (same,), _ = tracker.update(DT, [box(120)])
    assert same.track == first.track and not same.fresh and same.continuous
    far, near = tracker.update(2 * DT, [box(600), box(140)])[0]
    assert near.track == first.track
    assert far.fresh and far.track != first.track


def test_the_predicted_box_follows_a_face_faster_than_its_own_width_overlap_allows():
    # 120 px a frame on a 200 px box: the last box and the new one overlap by IoU 0.25,
    # under min_iou; the box predicted from the face's speed overlaps it fully.
    assert iou(box(240), box(360)) < 0.3
    tracker = Tracker(min_iou=0.3, ttl_s=0.5)
    xs = [0.0, 60.0, 180.0, 300.0, 420.0, 540.0]  # a step, then 120 px a frame
    tracks = [tracker.update(i * DT, [box(x)])[0][0].track for i, x in enumerate(xs)]
    assert len(set(tracks)) == 1


def test_without_motion_the_same_jump_starts_a_new_track():
    tracker = Tracker(min_iou=0.3, ttl_s=0.5)
    (a,), _ = tracker.update(0.0, [box(240)])
    (b,), _ = tracker.update(DT, [box(360)])
    assert b.fresh and b.track != a.track


def test_a_face_that_grows_as_it_walks_up_keeps_its_track():
    tracker = Tracker(min_iou=0.5, ttl_s=0.5)
    ids = set()
    for i in range(10):
        size = 100.0 * 1.12**i  # grows 12% a frame, as the demo visit does
        (s,), _ = tracker.update(i * DT, [box(300 - size / 2, 200 - size / 2, size, size)])
        ids.add(s.track)
    assert len(ids) == 1


def test_an_unseen_track_ends_after_its_ttl_and_a_face_there_then_is_new():
    tracker = Tracker(min_iou=0.3, ttl_s=0.5)
    (a,), _ = tracker.update(0.0, [box(100)])
    _, ended = tracker.update(0.3, [])
    assert ended == [] and tracker.tracks == [a.track]
    (back,), ended = tracker.update(0.4, [box(100)])
    assert back.track == a.track and not back.continuous  # it missed a frame
    _, ended = tracker.update(1.0, [])
    assert ended == [a.track] and tracker.tracks == []
    (again,), _ = tracker.update(1.1, [box(100)])
    assert again.fresh and again.track != a.track


def test_touching_faces_are_crowded_and_apart_they_are_not():
    tracker = Tracker(min_iou=0.3, ttl_s=0.5)
    apart = tracker.update(0.0, [box(0), box(400)])[0]
    assert [s.crowded for s in apart] == [False, False]
    touching = tracker.update(DT, [box(10), box(190)])[0]
    assert [s.crowded for s in touching] == [True, True]


def test_two_faces_crossing_are_crowded_while_either_could_take_the_others_track():
    tracker = Tracker(min_iou=0.3, ttl_s=0.5)
    crowded = []
    for i in range(11):
        left, right = box(40.0 * i), box(400.0 - 40.0 * i)  # they pass at i = 5
        sightings, _ = tracker.update(i * DT, [left, right])
        crowded.append(all(s.crowded for s in sightings))
    assert crowded[5] and not crowded[0] and not crowded[10]


def test_tracks_end_together_on_reset():
    tracker = Tracker(min_iou=0.3, ttl_s=0.5)
    sightings, _ = tracker.update(0.0, [box(0), box(400)])
    assert sorted(tracker.reset()) == sorted(s.track for s in sightings)
    assert tracker.tracks == []


@pytest.mark.parametrize("when", [math.nan, -1.0])
def test_a_frame_time_that_goes_back_or_is_nan_is_refused(when):
    tracker = Tracker(min_iou=0.3, ttl_s=0.5)
    tracker.update(0.0, [box(0)])
    with pytest.raises(ValueError, match="older than the previous"):
        tracker.update(when, [box(0)])


@pytest.mark.parametrize("bad", [(0.0, 0.0, math.nan, 10.0), (10.0, 0.0, 0.0, 10.0)])
def test_a_box_that_is_not_one_is_refused_and_changes_nothing(bad):
    tracker = Tracker(min_iou=0.3, ttl_s=0.5)
    (a,), _ = tracker.update(0.0, [box(0)])
    with pytest.raises(ValueError, match="not a box"):
        tracker.update(DT, [bad])
    (same,), _ = tracker.update(DT, [box(0)])
    assert same.track == a.track and same.continuous


@pytest.mark.parametrize("args", [(0.0, 0.5), (1.5, 0.5), (0.3, 0.0), (0.3, math.nan)])
def test_bounds_of_the_tracker_are_checked(args):
    with pytest.raises(ValueError):
        Tracker(*args)
