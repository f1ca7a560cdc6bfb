"""Replay camera: folders and video files, timestamps, looping, end of stream."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.camera import CameraError, EndOfStream, FrameSource
from edge.camera.replay import ReplaySource
from edge.clock import FakeClock
from edge.errors import ConfigError

LEVELS = (20, 120, 220)


@pytest.fixture
def folder(tmp_path):
    """Three solid grey frames; names sort in a different order than they were written."""
    root = tmp_path / "frames"
    root.mkdir()
    for name, level in zip(
        ("b.png", "c.png", "a.png"), (LEVELS[1], LEVELS[2], LEVELS[0]), strict=True
    ):
        cv2.imwrite(str(root / name), np.full((48, 64, 3), level, np.uint8))
    (root / "notes.txt").write_text("not a frame")
    return root


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (64, 48))
    assert writer.isOpened()
    for level in LEVELS:
        writer.write(np.full((48, 64, 3), level, np.uint8))
    writer.release()
    return path


def level_of(frame) -> int:
    return int(round(float(frame.image.mean())))


def test_folder_plays_in_name_order_with_timestamps_from_the_clock(folder):
    clock = FakeClock(start=100.0)
    with ReplaySource(folder, clock, fps=10) as source:
        assert isinstance(source, FrameSource)
        frames = [source.read() for _ in range(3)]
        with pytest.raises(EndOfStream):
            source.read()
    assert [level_of(f) for f in frames] == list(LEVELS)
    assert [f.seq for f in frames] == [1, 2, 3]
    assert [f.timestamp for f in frames] == pytest.approx([100.0, 100.1, 100.2])
    assert frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8
    assert clock.now() == 100.0  # not realtime: no waiting


def test_end_of_stream_is_not_a_camera_failure():
    assert not issubclass(EndOfStream, CameraError)


def test_folder_loops(folder):
    clock = FakeClock(start=0.0)
    with ReplaySource(folder, clock, fps=4, loop=True) as source:
        frames = [source.read() for _ in range(7)]
    assert [level_of(f) for f in frames] == list(LEVELS) * 2 + [LEVELS[0]]
    assert [f.timestamp for f in frames] == pytest.approx([i / 4 for i in range(7)])


def test_realtime_paces_reads_with_the_clock(folder):
    clock = FakeClock(start=50.0)
    with ReplaySource(folder, clock, fps=5, realtime=True) as source:
        source.read()
        assert clock.now() == pytest.approx(50.0)
        source.read()
        source.read()
    assert clock.now() == pytest.approx(50.4)


def test_reopen_starts_the_input_again_and_keeps_counting(folder):
    clock = FakeClock(start=0.0)
    source = ReplaySource(folder, clock, fps=10)
    with source:
        first = source.read()
    with source:
        again = source.read()
    assert level_of(again) == level_of(first)
    assert again.seq == 2 and again.timestamp > first.timestamp


def test_video_file_plays_then_ends(video):
    clock = FakeClock(start=10.0)
    with ReplaySource(video, clock, fps=10) as source:
        frames = [source.read() for _ in range(3)]
        with pytest.raises(EndOfStream):
            source.read()
    assert [abs(level_of(f) - lvl) <= 3 for f, lvl in zip(frames, LEVELS, strict=True)] == [
        True
    ] * 3
    assert [f.timestamp for f in frames] == pytest.approx([10.0, 10.1, 10.2])


def test_video_file_loops(video):
    with ReplaySource(video, FakeClock(), fps=10, loop=True) as source:
        frames = [source.read() for _ in range(5)]
    assert abs(level_of(frames[3]) - LEVELS[0]) <= 3
    assert abs(level_of(frames[4]) - LEVELS[1]) <= 3


def test_bad_inputs_are_refused_clearly(tmp_path, folder):
    with pytest.raises(ConfigError, match="not found"):
        ReplaySource(tmp_path / "missing", FakeClock())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no images"):
        ReplaySource(tmp_path / "empty", FakeClock())
    with pytest.raises(ConfigError, match="fps"):
        ReplaySource(folder, FakeClock(), fps=0)
    with pytest.raises(CameraError, match="not open"):
        ReplaySource(folder, FakeClock()).read()
    not_video = tmp_path / "clip.avi"
    not_video.write_bytes(b"garbage")
    with pytest.raises(CameraError, match="cannot open replay video"):
        ReplaySource(not_video, FakeClock()).open()


def test_undecodable_image_is_a_camera_error(folder):
    (folder / "0_broken.jpg").write_bytes(b"not a jpeg")
    with ReplaySource(folder, FakeClock()) as source:
        with pytest.raises(CameraError, match="0_broken.jpg"):
            source.read()
