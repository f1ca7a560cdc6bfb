"""Demo replay sequence built from the credited fixture photos."""

from __future__ import annotations

import numpy as np
import pytest

from edge.camera.replay import ReplaySource
from edge.clock import FakeClock
from edge.errors import ImageError, RefusedError
from edge.evaluation.demo_sequence import (
    BACKGROUND_BGR,
    approach_frames,
    build_sequence,
    write_sequence,
)
from tests.helpers import FACES


@pytest.fixture(scope="module")
def photos():
    return sorted(FACES.glob("*.jpg"))


def foreground_box(frame):
    """(x1, y1, x2, y2) of the pixels that are not background, or None."""
    ys, xs = np.nonzero(np.any(frame != BACKGROUND_BGR, axis=2))
    if len(xs) == 0:
        return None
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def test_demo_photos_are_small_and_credited(photos):
    assert len(photos) >= 3
    sources = (FACES / "SOURCES.md").read_text()
    for photo in photos:
        assert photo.stat().st_size <= 40_000
        assert f"`{photo.name}`" in sources


def test_sequence_shape_and_determinism(photos):
    first = build_sequence(photos, frames_per_person=12, gap_frames=3)
    second = build_sequence(photos, frames_per_person=12, gap_frames=3)
    assert len(first) == len(photos) * 15
    assert all(f.shape == (480, 640, 3) and f.dtype == np.uint8 for f in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    # Gaps are empty doorways; every approach frame shows someone.
    for person in range(len(photos)):
        block = first[person * 15 : (person + 1) * 15]
        assert all(foreground_box(f) is None for f in block[:3])
        assert all(foreground_box(f) is not None for f in block[3:])


def test_a_person_grows_and_moves_while_approaching(photos):
    boxes = [foreground_box(f) for f in approach_frames(photos[0], frames=16)]
    heights = [b[3] - b[1] for b in boxes]
    centers_x = [(b[0] + b[2]) / 2 for b in boxes]
    assert all(b > a for a, b in zip(heights, heights[1:], strict=False))
    assert heights[0] == pytest.approx(0.5 * 480, abs=2)
    assert heights[-1] == pytest.approx(0.95 * 480, abs=2)
    assert centers_x[-1] - centers_x[0] > 20  # drifts in towards the middle
    assert len({b[1] for b in boxes}) > 2  # and bobs


def test_write_sequence_is_a_replayable_folder(tmp_path, photos):
    paths = write_sequence(photos[:2], tmp_path / "demo", frames_per_person=4, gap_frames=1)
    assert [p.name for p in paths[:2]] == ["frame_0000.jpg", "frame_0001.jpg"]
    with ReplaySource(tmp_path / "demo", FakeClock(), fps=10) as source:
        frames = [source.read() for _ in range(len(paths))]
    assert all(f.image.shape == (480, 640, 3) for f in frames)
    assert foreground_box(frames[0].image) is None  # a gap first, in name order
    with pytest.raises(RefusedError, match="already holds"):
        write_sequence(photos[:1], tmp_path / "demo")


def test_bad_photos_are_refused(tmp_path):
    with pytest.raises(ImageError, match="cannot read"):
        build_sequence([tmp_path / "missing.jpg"])
    with pytest.raises(ImageError, match="BGR uint8"):
        build_sequence([np.zeros((10, 10), np.uint8)])
    with pytest.raises(ValueError):
        build_sequence([])
