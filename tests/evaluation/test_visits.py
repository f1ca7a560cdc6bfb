"""facegate bench --visit: the visit's frames, and the loop replayed on the demo visit
(the figures' meaning is in test_daemon_end_to_end.py, on the same helper)."""

import json
from pathlib import Path

import pytest

from edge.cli import main
from edge.errors import FacegateError
from edge.evaluation.visits import link_frames, natural_order, visit_frames


def touch(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name for name in names]
    for path in paths:
        path.write_bytes(b"")
    return paths


def test_frames_play_in_the_order_their_names_count():
    names = ["s_01_105.jpg", "s_01_12.jpg", "s_01_2.jpg", "s_02_9.jpg"]
    ordered = natural_order([Path(n) for n in names])
    assert [p.name for p in ordered] == ["s_01_2.jpg", "s_01_12.jpg", "s_01_105.jpg", "s_02_9.jpg"]


def test_a_visit_is_a_folder_or_a_list_of_frames_relative_to_it(tmp_path):
    frames = touch(tmp_path / "f", "a_10.jpg", "a_9.png", "notes.txt")
    assert visit_frames(tmp_path / "f") == [frames[1], frames[0]]
    listing = tmp_path / "visit.txt"
    listing.write_text("f/a_10.jpg\n\nf/a_9.png\n")
    assert visit_frames(listing) == [frames[0], frames[1]]
    linked = link_frames(visit_frames(listing), tmp_path / "linked")
    assert [(p.name, p.resolve()) for p in sorted(linked.iterdir())] == [
        ("frame_00000.jpg", frames[0]),
        ("frame_00001.png", frames[1]),
    ]


def test_a_visit_with_no_frames_or_a_missing_one_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FacegateError, match="no frames"):
        visit_frames(tmp_path / "empty")
    listing = tmp_path / "visit.txt"
    listing.write_text("gone.jpg\n")
    with pytest.raises(FacegateError, match="frames not found: .*gone.jpg"):
        visit_frames(listing)
    with pytest.raises(FacegateError, match="no such folder"):
        visit_frames(tmp_path / "nothing")


def test_bench_visit_needs_the_visitors_photos(tmp_path, capsys):
    touch(tmp_path, "frame_1.jpg")
    assert main(["bench", "--visit", str(tmp_path)]) == 1
    assert "--visit needs --enrol PHOTO" in capsys.readouterr().err


def test_bench_on_the_demo_visit_decides_alike_and_embeds_less_with_tracking(capsys):
    code = main(["bench", "--visit", "demo", "--liveness", "off", "--runs", "1", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    on, off = result["tracking_on"], result["tracking_off"]
    assert on["decisions"] == off["decisions"] == ["granted"]
    assert on["frames_to_decision"] == off["frames_to_decision"] <= 5
    assert off["embedded_visit"] == off["frames_with_a_face"] == 16
    assert on["embedded_visit"] < off["embedded_visit"]
    assert result["cpu_ratio"] == off["cpu_ms_visit"] / on["cpu_ms_visit"]
