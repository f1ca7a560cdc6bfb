"""What scripts/install.sh made on this machine: every folder and file, its owner
and mode (.ci/run then runs `facegate doctor` and the service as the service user).

It inspects the real install, so it runs only where one was just made: .ci/run
installs with --board generic and sets FACEGATE_INSTALLED=1.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path

import pytest

from tests.test_systemd_unit import install_var

pytestmark = pytest.mark.skipif(
    os.environ.get("FACEGATE_INSTALLED") != "1",
    reason="inspects a real install: set FACEGATE_INSTALLED=1 after scripts/install.sh",
)

USER = install_var("SERVICE_USER")
CONF_DIR, KEY_DIR = Path(install_var("CONF_DIR")), Path(install_var("KEY_DIR"))
STATE_DIR, PREFIX = Path(install_var("STATE_DIR")), Path(install_var("PREFIX"))
UNIT = Path(install_var("UNIT_DIR")) / install_var("UNIT_NAME")
WEB_UNIT = Path(install_var("UNIT_DIR")) / install_var("WEB_UNIT_NAME")
WEB_DIR = Path(install_var("WEB_DIR"))


def owner(path: Path) -> tuple[str, str, int]:
    info = path.lstat()
    return (
        pwd.getpwuid(info.st_uid).pw_name,
        grp.getgrgid(info.st_gid).gr_name,
        stat.S_IMODE(info.st_mode),
    )


def test_the_service_user_cannot_log_in_and_may_use_the_devices():
    account = pwd.getpwnam(USER)
    assert account.pw_shell == "/usr/sbin/nologin" and account.pw_dir == str(STATE_DIR)
    groups = {g.gr_name for g in grp.getgrall() if USER in g.gr_mem}
    assert {"gpio", "video"} <= groups


def test_config_folder_holds_only_the_config_the_key_folder_and_the_webs():
    assert owner(CONF_DIR) == ("root", USER, 0o750)
    web = ["web"] if WEB_UNIT.exists() else []
    assert sorted(p.name for p in CONF_DIR.iterdir()) == ["config.toml", "key", *web]
    assert owner(CONF_DIR / "config.toml") == ("root", USER, 0o640)


def test_the_key_belongs_to_the_service_user_alone():
    assert owner(KEY_DIR) == (USER, USER, 0o700)
    # no .new, no .tmp; the site key that .ci/run made for the MQTT client
    assert sorted(p.name for p in KEY_DIR.iterdir()) == ["gallery.key", "site.key"]
    assert owner(KEY_DIR / "gallery.key") == (USER, USER, 0o600)
    assert owner(KEY_DIR / "site.key") == (USER, USER, 0o600)


def test_state_is_private_to_the_service_user():
    assert owner(STATE_DIR) == (USER, USER, 0o700)
    files = list(STATE_DIR.iterdir())
    assert "gallery.db" in {p.name for p in files}
    for path in files:
        assert owner(path) == (USER, USER, 0o600), path


def test_code_and_venv_are_roots_and_read_only_to_everyone_else():
    assert owner(PREFIX) == ("root", "root", 0o755)
    checked = 0
    for folder, dirs, files in os.walk(PREFIX):
        for name in dirs + files:
            path = Path(folder) / name
            if path.is_symlink():  # venv/bin/python -> the system's
                continue
            user, group, mode = owner(path)
            assert (user, group) == ("root", "root"), path
            assert not mode & (stat.S_IWGRP | stat.S_IWOTH), path
            assert mode & stat.S_IROTH, path  # the service user reads every file
            checked += 1
    assert checked > 1000  # the venv's packages were walked, not an empty tree


def test_the_installed_unit_is_the_shipped_one():
    assert owner(UNIT) == ("root", "root", 0o644)
    assert UNIT.read_text() == (PREFIX / "app" / "systemd" / UNIT.name).read_text()
    wanted = UNIT.parent / "multi-user.target.wants" / UNIT.name
    assert wanted.is_symlink() and wanted.resolve() == UNIT


@pytest.mark.skipif(not WEB_UNIT.exists(), reason="installed without --web")
def test_the_web_app_has_its_certificate_and_its_unit_enabled():
    assert owner(WEB_DIR) == (USER, USER, 0o700)
    assert sorted(p.name for p in WEB_DIR.iterdir()) == ["cert.pem", "key.pem"]
    assert owner(WEB_DIR / "key.pem") == (USER, USER, 0o600)
    assert owner(WEB_UNIT) == ("root", "root", 0o644)
    assert WEB_UNIT.read_text() == (PREFIX / "app" / "systemd" / WEB_UNIT.name).read_text()
    wanted = WEB_UNIT.parent / "multi-user.target.wants" / WEB_UNIT.name
    assert wanted.is_symlink() and wanted.resolve() == WEB_UNIT


def test_the_broker_client_is_installed_and_may_reach_only_the_broker():
    # .ci/run's last installer run: --mqtt, with [mqtt] host = "127.0.0.1"
    unit = Path(install_var("UNIT_DIR")) / install_var("MQTT_UNIT_NAME")
    assert owner(unit) == ("root", "root", 0o644)
    assert unit.read_text() == (PREFIX / "app" / "systemd" / unit.name).read_text()
    drop_in = unit.parent / f"{unit.name}.d" / "broker.conf"
    assert owner(drop_in) == ("root", "root", 0o644)
    lines = [line for line in drop_in.read_text().splitlines() if not line.startswith("#")]
    assert lines == ["[Service]", "IPAddressAllow=127.0.0.1"]
    wanted = unit.parent / "multi-user.target.wants" / unit.name
    assert wanted.is_symlink() and wanted.resolve() == unit
    # and the door daemon has no drop-in that lets it onto the network
    for extra in (UNIT.parent / f"{UNIT.name}.d").glob("*.conf"):
        assert "IPAddressAllow" not in extra.read_text(), extra
