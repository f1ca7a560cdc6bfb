"""The installed key layout with a real second user: the key folder belongs to the
service user, and init, rekey and the other gallery commands work for it, whether a
person runs them as that user or as root (they then switch to the folder's owner).

Needs root and useradd; the user is created for the module and removed after.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from edge import cli
from edge.errors import ExitCode

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("runuser") is None,
    reason="needs root, useradd and runuser to create and act as a second user",
)


@pytest.fixture(scope="module")
def service_user():
    name = f"fgtest{os.getpid() % 100000}"
    subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", name], capture_output=True)


@pytest.fixture(scope="module")
def python(service_user):
    """A Python the second user can run, with facegate and its dependencies importable.

    This venv's own interpreter may sit where other users cannot read (pyenv under
    /root); the system interpreter of the same version with this venv's
    site-packages on its path then stands in.
    """
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "PYTHONPATH": os.pathsep.join(
            [str(REPO), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
        ),
    }
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/python{version}"):
        probe = subprocess.run(
            [
                "runuser",
                "-u",
                service_user.pw_name,
                "--",
                candidate,
                "-c",
                "import edge.cli, sqlcipher3, numpy",
            ],
            env=env,
            capture_output=True,
            timeout=60,
        )
        if probe.returncode == 0:
            return [candidate], env
    pytest.skip(f"no Python {version} that {service_user.pw_name} can run with facegate")


@pytest.fixture
def layout(service_user):
    """/etc/facegate and /var/lib/facegate as the installer makes them, in a folder
    other users can enter."""
    root = Path(tempfile.mkdtemp(prefix="facegate-owner-"))
    root.chmod(0o755)
    key_dir, state = root / "key", root / "state"
    for folder in (key_dir, state):
        folder.mkdir(mode=0o700)
        os.chown(folder, service_user.pw_uid, service_user.pw_gid)
    config = root / "config.toml"
    config.write_text(
        f'[gallery]\npath = "{state / "gallery.db"}"\nkey_file = "{key_dir / "gallery.key"}"\n'
    )
    config.chmod(0o644)
    yield config, key_dir / "gallery.key", state / "gallery.db"
    shutil.rmtree(root)


def facegate(python, *argv, user=None):
    command, env = python
    prefix = ["runuser", "-u", user, "--"] if user else []
    return subprocess.run(
        [*prefix, *command, "-m", "edge", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def owner_and_mode(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_uid, info.st_mode & 0o777


def test_init_and_rekey_run_as_root_make_files_the_service_user_owns(python, layout, service_user):
    config, key, db = layout
    result = facegate(python, "init", "--config", str(config))
    assert result.returncode == 0, result.stderr
    uid = service_user.pw_uid
    assert owner_and_mode(key) == (uid, 0o600) and owner_and_mode(db)[0] == uid

    old_key = key.read_text()
    result = facegate(python, "gallery", "rekey", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert key.read_text() != old_key and owner_and_mode(key) == (uid, 0o600)
    assert not key.with_name("gallery.key.new").exists()
    # root reads the gallery through the same switch; the service user directly
    assert facegate(python, "people", "list", "--config", str(config)).returncode == 0
    result = facegate(
        python, "gallery", "check", "--config", str(config), user=service_user.pw_name
    )
    assert result.returncode == 0 and result.stdout.startswith("ok: 0 people"), result.stderr


def test_the_service_user_rotates_the_key_itself(python, layout, service_user):
    config, key, _ = layout
    assert (
        facegate(python, "init", "--config", str(config), user=service_user.pw_name).returncode == 0
    )
    old_key = key.read_text()
    result = facegate(
        python, "gallery", "rekey", "--config", str(config), user=service_user.pw_name
    )
    assert result.returncode == 0, result.stderr
    assert key.read_text() != old_key
    assert facegate(python, "gallery", "check", "--config", str(config)).returncode == 0


def test_a_user_other_than_the_owner_is_refused_the_key(python, layout):
    config, _, _ = layout
    assert facegate(python, "init", "--config", str(config)).returncode == 0
    result = facegate(python, "people", "list", "--config", str(config), user="nobody")
    assert result.returncode == ExitCode.GALLERY_KEY, result.stderr
    assert result.stderr.startswith("facegate: no permission to open gallery")
    assert result.stderr.count("\n") == 1


def test_root_that_cannot_switch_user_is_told_the_command_to_run(
    layout, service_user, monkeypatch, capsys
):
    config, _, _ = layout

    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "initgroups", refuse)
    code = cli.main(["people", "list", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == ExitCode.REFUSED
    assert f"cannot become {service_user.pw_name}" in err
    assert f"runuser -u {service_user.pw_name} -- " in err and err.count("\n") == 1
