"""`facegate eval liveness`: the manifest format, the figures, and the command itself."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edge.cli import main
from edge.errors import FacegateError
from edge.evaluation.liveness import Outcome, Sample, frames_of, read_manifest, summarise
from edge.types import Liveness
from tests.helpers import REPO


def write(path, text):
    path.write_text(text)
    return path


def test_manifest_rows_resolve_relative_to_the_manifest(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "b.jpg").write_bytes(b"x")
    manifest = write(
        tmp_path / "m.tsv", "label\tattack\tpath\nlive\tnone\ta.jpg\n\nspoof\treplay\tb.jpg\n"
    )
    samples = read_manifest(manifest)
    assert samples == [
        Sample("live", "none", tmp_path / "a.jpg"),
        Sample("spoof", "replay", tmp_path / "b.jpg"),
    ]


@pytest.mark.parametrize(
    "body, message",
    [
        ("label attack path\n", ":1: the header must be"),
        ("label\tattack\tpath\nlive\tnone\n", ":2: expected 3 tab-separated fields, got 2"),
        ("label\tattack\tpath\nreal\tnone\ta.jpg\n", ":2: label must be live or spoof, got 'real'"),
        ("label\tattack\tpath\nspoof\tnone\ta.jpg\n", ":2: live samples have attack 'none'"),
        ("label\tattack\tpath\nlive\tnone\tmissing.jpg\n", ":2: "),
        ("label\tattack\tpath\n", ": no samples"),
    ],
)
def test_bad_manifests_name_the_line(tmp_path, body, message):
    (tmp_path / "a.jpg").write_bytes(b"x")
    with pytest.raises(FacegateError, match=message):
        read_manifest(write(tmp_path / "m.tsv", body))


def test_frames_come_from_an_image_a_sequence_list_or_a_video(tmp_path):
    frames = [np.full((48, 64, 3), v, np.uint8) for v in (10, 120, 240)]
    for i, f in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), f)
    write(tmp_path / "seq.txt", "f2.png\nf0.png\n")
    assert [int(f.mean()) for f in frames_of(tmp_path / "seq.txt")] == [240, 10]
    assert [int(f.mean()) for f in frames_of(tmp_path / "f1.png")] == [120]
    video = cv2.VideoWriter(str(tmp_path / "v.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 48))
    for f in frames:
        video.write(f)
    video.release()
    assert [round(f.mean() / 10) for f in frames_of(tmp_path / "v.avi")] == [1, 12, 24]


def outcome(label, attack, verdict, score=0.5, cues=()):
    liveness = None if verdict is None else Liveness(score, verdict, cues=cues)
    return Outcome(Sample(label, attack, None), 1, liveness)


def test_summary_counts_only_live_verdicts_as_accepted():
    outcomes = [
        outcome("live", "none", "live", 0.9),
        outcome("live", "none", "inconclusive", 0.8),
        outcome("live", "none", "live", 0.7),
        outcome("live", "none", None),
        outcome("spoof", "print", "spoof", 0.1),
        outcome("spoof", "print", "live", 0.6),
        outcome("spoof", "replay", "spoof", 0.2),
        outcome("spoof", "replay", "spoof", 0.3),
    ]
    r = summarise(outcomes, 0.5, "standard")
    assert r["samples"] == 8
    assert r["apcer"] == {"print": 0.5, "replay": 0.0}
    assert r["bpcer"] == 0.5
    assert r["acer"] == pytest.approx(0.5)
    assert r["verdicts"]["live"] == {"live": 2, "inconclusive": 1, "no_face": 1}
    assert r["verdicts"]["print"] == {"spoof": 1, "live": 1}
    # Scores alone: the no-face live sample scores 0, below every attack.
    assert r["scores"]["auc"] == pytest.approx((4 + 4 + 4 + 0) / 16)
    assert r["scores"]["bpcer_at_apcer"] == 0.25  # only the no-face sample under 0.6+
    assert set(r["scores"]["apcer_at_bpcer"]) == {"print", "replay"}


def test_summary_says_which_layer_refused_and_which_refused_alone():
    outcomes = [
        outcome("spoof", "print", "spoof", 0.1, ("rgb", "flat")),
        outcome("spoof", "print", "spoof", 0.7, ("flat",)),
        outcome("spoof", "replay", "spoof", 0.2, ("rgb",)),
        outcome("live", "none", "spoof", 0.3, ("rgb",)),
        outcome("live", "none", "live", 0.9),
    ]
    r = summarise(outcomes, 0.5, "standard")
    assert r["refused_by"] == {
        "print": {"rgb": 1, "flat": 2, "flat_alone": 1},
        "replay": {"rgb": 1, "rgb_alone": 1},
        "live": {"rgb": 1, "rgb_alone": 1},
    }


def test_eval_liveness_command_on_nuaa_frames(shared_data, tmp_path, capsys):
    root = shared_data / "nuaa_train"
    live = sorted((root / "ClientRaw" / "0009").glob("*.jpg"))[:3]
    spoof = sorted((root / "ImposterRaw" / "0009").glob("*.jpg"))[:3]
    write(tmp_path / "seq.txt", "".join(f"{p}\n" for p in live))
    rows = [f"live\tnone\t{p}" for p in live] + [f"spoof\tprint\t{p}" for p in spoof]
    rows.append("live\tnone\tseq.txt")
    manifest = write(tmp_path / "m.tsv", "label\tattack\tpath\n" + "\n".join(rows) + "\n")
    assert main(["eval", "liveness", "--manifest", str(manifest), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["samples"] == 7
    assert set(result["apcer"]) == {"print"}
    for key in ("bpcer", "acer", "threshold"):
        assert 0.0 <= result[key] <= 1.0
    assert sum(result["verdicts"]["live"].values()) == 4
    assert sum(result["verdicts"]["print"].values()) == 3
    assert result["level"] == "standard"
    assert result["models"] == ["minifasnet_v2", "minifasnet_v1se"]
    assert 0.0 <= result["scores"]["auc"] <= 1.0
    assert set(result["scores"]["apcer_at_bpcer"]) == {"print"}


def test_eval_liveness_measures_one_model_or_refuses_an_unknown_one(shared_data, tmp_path, capsys):
    live = sorted((shared_data / "nuaa_train" / "ClientRaw" / "0009").glob("*.jpg"))[0]
    spoof = sorted((shared_data / "nuaa_train" / "ImposterRaw" / "0009").glob("*.jpg"))[0]
    manifest = write(
        tmp_path / "m.tsv", f"label\tattack\tpath\nlive\tnone\t{live}\nspoof\tprint\t{spoof}\n"
    )
    assert (
        main(
            ["eval", "liveness", "--manifest", str(manifest), "--model", "minifasnet_v2", "--json"]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["models"] == ["minifasnet_v2"] and result["samples"] == 2
    assert main(["eval", "liveness", "--manifest", str(manifest), "--model", "nope"]) == 79
    assert "model 'nope' not in" in capsys.readouterr().err
    assert (
        main(
            [
                "eval",
                "liveness",
                "--manifest",
                str(manifest),
                "--model",
                "minifasnet_v2",
                "--model",
                "minifasnet_v2",
            ]
        )
        == 78
    )
    assert "each once" in capsys.readouterr().err


def test_eval_liveness_refuses_level_off(tmp_path, capsys):
    (tmp_path / "a.jpg").write_bytes(b"x")
    manifest = write(tmp_path / "m.tsv", "label\tattack\tpath\nlive\tnone\ta.jpg\n")
    config = write(tmp_path / "c.toml", '[liveness]\nlevel = "off"\n')
    code = main(["eval", "liveness", "--manifest", str(manifest), "--config", str(config)])
    assert code != 0
    assert "liveness.level is off" in capsys.readouterr().err


def test_nuaa_manifest_script_writes_manifests_the_evaluator_reads(shared_data, tmp_path):
    script = REPO / "scripts" / "nuaa_liveness_manifest.py"
    subprocess.run(
        [
            sys.executable,
            str(script),
            "--data",
            str(shared_data / "nuaa_train"),
            "--out",
            str(tmp_path),
            "--subjects",
            "0009",
            "--session",
            "02",
            "--run",
            "5",
        ],
        check=True,
        capture_output=True,
    )
    frames = read_manifest(tmp_path / "frames.tsv")
    runs = read_manifest(tmp_path / "sequences.tsv")
    assert {s.label for s in frames} == {"live", "spoof"} == {s.label for s in runs}
    # NUAA names are SUBJECT_GLASSES_POSITION_SESSION_FRAME.
    assert {tuple(s.path.name.split("_")[i] for i in (0, 3)) for s in frames} == {("0009", "02")}
    listed = [line for s in runs for line in s.path.read_text().split()]
    assert len(listed) == 5 * len(runs)
    assert all((runs[0].path.parent / line).is_file() for line in listed)
    assert len(listed) <= len(frames)
