"""facegate doctor and its checks, on temporary configs with a small fake model set."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from edge import cli, doctor
from edge.certificate import fingerprint, make_certificate
from edge.config import WebConfig, load_config
from edge.doctor import FAIL, OK, WARN
from edge.errors import CameraError, ExitCode
from edge.gallery import sync
from edge.gallery.store import Gallery
from edge.mqtt.site_key import new_site_key
from tests.helpers import FACES


def write_models(folder: Path) -> None:
    """A manifest of tiny 'models' whose hashes match (doctor only hashes them)."""
    folder.mkdir()
    models = {}
    for model_id in ("det-test", "emb-test", "live-test", "mesh-test"):
        entry = {}
        for part in ("param", "bin"):
            name = f"{model_id}.ncnn.{part}"
            data = f"{model_id} {part}".encode()
            (folder / name).write_bytes(data)
            entry[part] = {"file": name, "sha256": hashlib.sha256(data).hexdigest()}
        models[model_id] = entry
    (folder / "manifest.json").write_text(json.dumps({"format": 1, "models": models}))


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A config for a healthy test terminal: gallery created with 'facegate init'."""
    write_models(tmp_path / "models")
    path = tmp_path / "config.toml"
    path.write_text(
        f'[models]\ndir = "{tmp_path / "models"}"\n'
        '[detector]\nmodel = "det-test"\n[embedder]\nmodel = "emb-test"\n'
        '[landmarks]\nmodel = "mesh-test"\n[liveness]\nmodels = ["live-test"]\n'
        f'[gallery]\npath = "{tmp_path / "state" / "g.db"}"\n'
        f'key_file = "{tmp_path / "keys" / "g.key"}"\n'
        '[gpio]\nbackend = "mock"\n'
        f'[camera]\nsource = "replay"\nreplay_path = "{FACES}"\nrealtime = false\n'
    )
    assert cli.main(["init", "--config", str(path)]) == ExitCode.OK
    return path


def by_name(config_path: Path) -> dict[str, doctor.Check]:
    return {c.name: c for c in doctor.run_checks(load_config(config_path))}


def test_healthy_terminal_has_no_fail_and_exits_0(config_file, capsys):
    capsys.readouterr()
    code = cli.main(["doctor", "--config", str(config_file)])
    lines = capsys.readouterr().out.splitlines()
    assert code == ExitCode.OK
    assert lines[0] == f"ok    config: {config_file} is valid"
    names = [line.split(":")[0].split(maxsplit=1)[1] for line in lines]
    assert names == [
        "config",
        "model det-test",
        "model mesh-test",
        "model emb-test",
        "model live-test",
        "gallery key",
        "gallery",
        "camera (replay)",
        "gpio",
        "clock",
        "disk space",
        "web",
    ]
    assert not any(line.startswith(FAIL) for line in lines)


def test_models_gallery_and_replay_camera_are_ok(config_file):
    checks = by_name(config_file)
    for name in (
        "model det-test",
        "model mesh-test",
        "model emb-test",
        "model live-test",
        "gallery key",
        "gallery",
        "camera (replay)",
    ):
        assert checks[name].status == OK, checks[name]
    assert "integrity ok, 0 people" in checks["gallery"].message
    assert "read a 258x320 frame" in checks["camera (replay)"].message  # biden_1.jpg first


def test_tampered_model_file_fails_naming_the_file(config_file, capsys):
    tampered = config_file.parent / "models" / "emb-test.ncnn.bin"
    tampered.write_bytes(b"not the model")
    checks = by_name(config_file)
    assert checks["model det-test"].status == OK
    assert checks["model emb-test"].status == FAIL
    assert f"model file altered: {tampered}" in checks["model emb-test"].message
    capsys.readouterr()
    assert cli.main(["doctor", "--config", str(config_file)]) == ExitCode.FAILURE
    assert f"FAIL  model emb-test: model file altered: {tampered}" in capsys.readouterr().out


def test_missing_gallery_key_fails_and_skips_the_gallery(config_file):
    (config_file.parent / "keys" / "g.key").unlink()
    checks = by_name(config_file)
    assert checks["gallery key"].status == FAIL
    assert "not found; create it with 'facegate init'" in checks["gallery key"].message
    assert "gallery" not in checks  # the key's FAIL already says what to fix


def test_key_readable_by_others_fails_with_the_fix(config_file):
    key = config_file.parent / "keys" / "g.key"
    key.chmod(0o644)
    check = by_name(config_file)["gallery key"]
    assert check.status == FAIL
    assert f"chmod 600 {key}" in check.message


def test_damaged_gallery_fails(config_file):
    db = config_file.parent / "state" / "g.db"
    with open(db, "ab") as f:
        f.write(b"junk")  # no longer a whole number of pages
    check = by_name(config_file)["gallery"]
    assert check.status == FAIL and "is damaged" in check.message


def test_mock_gpio_is_a_warning(config_file):
    check = by_name(config_file)["gpio"]
    assert check.status == WARN
    assert "mock GPIO: the door is not driven" in check.message


def test_rpi_gpio_missing_module_fails_with_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "Jetson", None)  # makes the import fail
    check = doctor.check_gpio(SimpleNamespace(backend="rpi", module="Jetson.GPIO"))
    assert check.status == FAIL
    assert "install 'Jetson.GPIO'" in check.message


def test_replay_folder_without_images_fails(tmp_path):
    config = SimpleNamespace(
        source="replay", replay_path=str(tmp_path), fps=15.0, loop=False, realtime=False
    )
    check = doctor.check_camera(config)
    assert check.status == FAIL and "holds no images" in check.message


def test_camera_that_never_delivers_fails_without_hanging(monkeypatch):
    release = threading.Event()

    class StuckSource:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def read(self):
            release.wait()  # a driver that blocks; freed at the end of the test
            raise CameraError("released")

    monkeypatch.setattr(doctor, "create_source", lambda config, clock: StuckSource())
    try:
        check = doctor.check_camera(SimpleNamespace(source="opencv"), timeout_s=0.05)
    finally:
        release.set()
    assert check.status == FAIL and "no frame within 0.05 s" in check.message


def test_camera_error_mentions_the_running_service(monkeypatch):
    def broken(config, clock):
        raise CameraError("cannot open /dev/video0: busy")

    monkeypatch.setattr(doctor, "create_source", broken)
    check = doctor.check_camera(SimpleNamespace(source="opencv"))
    assert check.status == FAIL
    assert check.message.startswith("cannot open /dev/video0: busy")
    assert "stop it first" in check.message


@pytest.mark.parametrize(
    "year, synchronized, status",
    [(2000, True, FAIL), (2025, None, WARN), (2025, False, WARN), (2025, True, OK)],
)
def test_clock(year, synchronized, status):
    import datetime as dt

    wall = dt.datetime(year, 6, 1, tzinfo=dt.timezone.utc).timestamp()
    assert doctor.check_clock(wall, synchronized).status == status


def test_ntp_synchronized_reads_timedatectl(monkeypatch):
    monkeypatch.setattr(doctor.shutil, "which", lambda name: "/usr/bin/timedatectl")

    def answer(text, rc=0):
        return lambda argv, **kw: SimpleNamespace(stdout=text, returncode=rc)

    assert doctor.ntp_synchronized(answer("yes\n")) is True
    assert doctor.ntp_synchronized(answer("no\n")) is False
    assert doctor.ntp_synchronized(answer("", rc=1)) is None
    monkeypatch.setattr(doctor.shutil, "which", lambda name: None)
    assert doctor.ntp_synchronized(answer("yes\n")) is None


@pytest.mark.parametrize(
    "free_mb, status", [(10, FAIL), (49, FAIL), (50, WARN), (499, WARN), (500, OK)]
)
def test_disk_space_thresholds(free_mb, status):
    assert doctor.disk_space_status(Path("/x"), free_mb * 1024 * 1024).status == status


def test_missing_gallery_folder_fails_disk_check(tmp_path):
    check = doctor.check_disk_space(tmp_path / "absent")
    assert check.status == FAIL and "fix gallery.path" in check.message


def test_invalid_config_fails_doctor_with_every_error(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text("[camera]\nfps = 0\n[door]\nrelay_pin = 99\n")
    assert cli.main(["doctor", "--config", str(path)]) == ExitCode.FAILURE
    assert capsys.readouterr().out.splitlines() == [
        f"FAIL  config: {path}:2: camera.fps: 0.0 is below the minimum 1",
        f"FAIL  config: {path}:4: door.relay_pin: 99 is above the maximum 27",
    ]


def test_the_liveness_model_is_checked_only_when_liveness_is_on(config_file):
    (config_file.parent / "models" / "live-test.ncnn.bin").unlink()
    checks = by_name(config_file)
    assert checks["model live-test"].status == FAIL
    assert "model file missing" in checks["model live-test"].message
    config_file.write_text(
        config_file.read_text().replace("[liveness]\n", '[liveness]\nlevel = "off"\n')
    )
    assert "model live-test" not in by_name(config_file)


def test_doctor_prints_the_web_certificate_fingerprint_or_says_there_is_none(tmp_path):
    web = WebConfig(cert=str(tmp_path / "cert.pem"), key=str(tmp_path / "key.pem"))
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert "not set up" in doctor.check_web_certificate(web, now.timestamp()).message
    cert = make_certificate(web.cert, web.key, "door-1", ["192.0.2.7"], now)
    check = doctor.check_web_certificate(web, now.timestamp())
    assert check.status == doctor.OK and fingerprint(cert) in check.message
    assert len(fingerprint(cert).split(":")) == 32
    later = now + dt.timedelta(days=4000)
    assert doctor.check_web_certificate(web, later.timestamp()).status == doctor.FAIL


def test_with_mqtt_on_the_site_key_and_the_last_sync_are_checked(config_file, tmp_path):
    key = tmp_path / "keys" / "site.key"
    config_file.write_text(
        config_file.read_text()
        + '[mqtt]\nenabled = true\nhost = "broker"\nsite = "hq"\nterminal_id = "door1"\n'
        f'site_key_file = "{key}"\nmax_offline_seconds = 600.0\n'
    )
    checks = by_name(config_file)
    assert checks["site key"].status == FAIL and "not found" in checks["site key"].message
    assert checks["site sync"].status == WARN and "never synced" in checks["site sync"].message
    new_site_key(key)
    config = load_config(config_file)
    with Gallery.from_config(config.gallery) as gallery:
        sync.record_sync(gallery, 1000.0)
    site = {c.name: c for c in doctor.check_site(config.mqtt, config.gallery, 1300.0)}
    assert site["site key"].status == OK
    assert site["site sync"].status == OK and "300 s ago" in site["site sync"].message
    late = doctor.check_site(config.mqtt, config.gallery, 1700.0)[1]
    assert late.status == FAIL and "the door denies everyone" in late.message


def test_the_chosen_embedder_precision_is_the_one_checked(config_file):
    """An int8 choice the manifest cannot serve fails before the daemon tries to load it."""
    text = config_file.read_text().replace(
        '[embedder]\nmodel = "emb-test"\n', '[embedder]\nmodel = "emb-test"\nprecision = "int8"\n'
    )
    config_file.write_text(text)
    check = by_name(config_file)["model emb-test (int8)"]
    assert check.status == FAIL
    assert "no 'int8' files" in check.message and "(it has: fp32)" in check.message
