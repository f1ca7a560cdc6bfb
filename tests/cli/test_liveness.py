"""`facegate liveness capture|calibrate|status` and eval with a site calibration, end to end.

The commands run as the CLI runs them: a real config file, a real encrypted gallery,
the replay camera standing in for the door's, and real NUAA frames.
"""

import json
from pathlib import Path

import pytest

from edge.access.gpio.mock import MockGpio
from edge.cli import main
from edge.clock import FakeClock
from edge.config import load_config
from edge.daemon import build_daemon
from edge.errors import ExitCode, ModelError
from edge.evaluation.liveness import read_manifest
from edge.gallery.store import Gallery
from tests.helpers import FACES


def write_config(tmp_path: Path, **liveness) -> Path:
    path = tmp_path / "config.toml"
    settings = "".join(f"{k} = {json.dumps(v)}\n" for k, v in liveness.items())
    path.write_text(
        f'[camera]\nsource = "replay"\nreplay_path = "{FACES}"\nrealtime = false\nloop = true\n'
        f'fps = 15.0\n[gpio]\nbackend = "mock"\n'
        f'[gallery]\npath = "{tmp_path / "g.db"}"\nkey_file = "{tmp_path / "g.key"}"\n'
        f'[control]\nsocket = ""\n'
        f"[liveness]\n{settings}"
    )
    assert main(["init", "--config", str(path)]) == ExitCode.OK
    return path


def test_capture_records_presentations_into_a_manifest(tmp_path, capsys):
    config = write_config(tmp_path)
    out = tmp_path / "captures"
    assert (
        main(
            [
                "liveness",
                "capture",
                "--config",
                str(config),
                "--out",
                str(out),
                "--label",
                "live",
                "--seconds",
                "1",
            ]
        )
        == ExitCode.OK
    )
    assert (
        main(
            [
                "liveness",
                "capture",
                "--config",
                str(config),
                "--out",
                str(out),
                "--label",
                "spoof",
                "--attack",
                "print",
                "--seconds",
                "0.5",
            ]
        )
        == ExitCode.OK
    )
    lines = capsys.readouterr().out.splitlines()[1:]  # after init's line
    # 15 frames a second from the (looping) replay camera: the three photos, each a face.
    assert (
        lines[0]
        == f"{out / 'capture_001'}: 15 frames, 15 with a face; added to {out / 'manifest.tsv'}"
    )
    samples = read_manifest(out / "manifest.tsv")
    assert [(s.label, s.attack, s.path.parent.name) for s in samples] == [
        ("live", "none", "capture_001"),
        ("spoof", "print", "capture_002"),
    ]
    assert len(samples[1].path.read_text().split()) == 8
    assert len(list((out / "capture_002").glob("*.jpg"))) == 8


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--label", "live", "--attack", "print"], "--label live takes no --attack"),
        (["--label", "spoof"], "--label spoof needs one"),
        (["--label", "spoof", "--attack", "a\tb"], "--attack must be a word"),
        (["--label", "live", "--seconds", "0"], "--seconds must be above 0"),
    ],
)
def test_capture_refuses_bad_arguments_and_records_nothing(tmp_path, capsys, argv, message):
    config = write_config(tmp_path)
    out = tmp_path / "captures"
    code = main(["liveness", "capture", "--config", str(config), "--out", str(out), *argv])
    assert code == ExitCode.FAILURE and message in capsys.readouterr().err
    assert not out.exists()


def nuaa_manifest(root: Path, data: Path, per_kind: int = 4, run: int = 3) -> Path:
    """Runs of ``run`` frames from NUAA session 01: ``per_kind`` live and print runs."""
    rows = []
    for label, attack, folder in (("live", "none", "ClientRaw"), ("spoof", "print", "ImposterRaw")):
        frames = sorted((data / "nuaa_train" / folder).glob("*/*_01_*.jpg"))[::40]
        for i in range(per_kind):
            listing = root / f"{label}_{i}.txt"
            listing.write_text("".join(f"{p}\n" for p in frames[i * run : (i + 1) * run]))
            rows.append(f"{label}\t{attack}\t{listing.name}\n")
    manifest = root / "m.tsv"
    manifest.write_text("label\tattack\tpath\n" + "".join(rows))
    return manifest


def test_calibrate_status_eval_and_revert(shared_data, tmp_path, capsys):
    # At this (strict) door the default layer's threshold refuses many live faces:
    # the calibration picks its own for a 2% BPCER and beats it on the held-back runs.
    config = write_config(tmp_path, threshold=0.999)
    manifest = nuaa_manifest(tmp_path, shared_data)
    capsys.readouterr()
    assert (
        main(
            [
                "liveness",
                "calibrate",
                "--config",
                str(config),
                "--manifest",
                str(manifest),
                "--require-attacks",
                "print",
                "--json",
            ]
        )
        == ExitCode.OK
    )
    report = json.loads(capsys.readouterr().out)
    assert report["applied"] and report["id"] == 1
    assert report["held_back"] == {
        "live": {"presentations": 1, "frames": 3},
        "print": {"presentations": 1, "frames": 3},
    }
    assert report["calibrated"]["acer"] < report["uncalibrated"]["acer"]
    assert report["uncalibrated"]["threshold"] == 0.999

    assert main(["liveness", "status", "--config", str(config)]) == ExitCode.OK
    status = capsys.readouterr().out
    assert status.startswith("calibration #1 of ") and "head on logits" in status

    assert (
        main(["eval", "liveness", "--config", str(config), "--manifest", str(manifest), "--json"])
        == ExitCode.OK
    )
    calibrated = json.loads(capsys.readouterr().out)
    assert calibrated["calibration"] == 1
    assert calibrated["threshold"] == pytest.approx(report["calibrated"]["threshold"])
    # --model measures the named networks as they come, without the calibration.
    assert (
        main(
            [
                "eval",
                "liveness",
                "--config",
                str(config),
                "--manifest",
                str(manifest),
                "--model",
                "minifasnet_v2",
                "--model",
                "minifasnet_v1se",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["calibration"] is None

    assert main(["liveness", "calibrate", "--config", str(config), "--revert"]) == ExitCode.OK
    assert "calibration #1 no longer applies" in capsys.readouterr().out
    assert main(["liveness", "status", "--config", str(config)]) == ExitCode.OK
    assert "default layer" in capsys.readouterr().out
    assert (
        main(["eval", "liveness", "--config", str(config), "--manifest", str(manifest), "--json"])
        == ExitCode.OK
    )
    reverted = json.loads(capsys.readouterr().out)
    assert reverted["calibration"] is None and reverted["threshold"] == 0.999
    with Gallery.from_config(load_config(config).gallery) as gallery:
        assert [e.kind for e in gallery.events()] == ["liveness_calibrated", "liveness_reverted"]


def test_calibration_refuses_a_manifest_without_replays_unless_told(shared_data, tmp_path, capsys):
    config = write_config(tmp_path)
    manifest = nuaa_manifest(tmp_path, shared_data)  # prints only
    code = main(["liveness", "calibrate", "--config", str(config), "--manifest", str(manifest)])
    assert code == ExitCode.FAILURE
    assert "no captures of attack type(s) replay" in capsys.readouterr().err
    with Gallery.from_config(load_config(config).gallery) as gallery:
        assert gallery.liveness_calibrations() == []


def test_a_calibration_that_does_not_help_is_stored_but_not_applied(shared_data, tmp_path, capsys):
    config = write_config(tmp_path)  # threshold 0.5: no errors on these frames to beat
    manifest = nuaa_manifest(tmp_path, shared_data)
    capsys.readouterr()
    assert (
        main(
            [
                "liveness",
                "calibrate",
                "--config",
                str(config),
                "--manifest",
                str(manifest),
                "--require-attacks",
                "print",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "not applied" in out and "uncalibrated threshold 0.500" in out
    with Gallery.from_config(load_config(config).gallery) as gallery:
        (attempt,) = gallery.liveness_calibrations()
        assert not attempt.active and json.loads(attempt.report)["applied"] is False
        assert gallery.events() == []


def test_the_service_loads_the_calibration_and_refuses_one_for_other_models(
    shared_data, tmp_path, capsys
):
    config_path = write_config(tmp_path, threshold=0.999, level="standard")
    manifest = nuaa_manifest(tmp_path, shared_data)
    assert (
        main(
            [
                "liveness",
                "calibrate",
                "--config",
                str(config_path),
                "--manifest",
                str(manifest),
                "--require-attacks",
                "print",
            ]
        )
        == 0
    )
    config = load_config(config_path)
    clock = FakeClock()
    daemon = build_daemon(config, clock, threaded=False, gpio=MockGpio(clock))
    try:
        assert daemon.liveness.rgb.head.calibration_id == 1
        assert daemon.liveness.threshold == daemon.liveness.rgb.head.threshold != 0.999
    finally:
        daemon.close()
    # The same calibration with one network left out of the config: refused at start.
    text = config_path.read_text().replace(
        "[liveness]\n", '[liveness]\nmodels = ["minifasnet_v2"]\n'
    )
    config_path.write_text(text)
    with pytest.raises(ModelError, match="fitted on minifasnet_v2, minifasnet_v1se"):
        build_daemon(load_config(config_path), clock, threaded=False, gpio=MockGpio(clock))
