"""The gallery shared by real processes: rekey while another has it open, a crash
right after a rekey, a killed backup, two enrolments of one face at once, and
restoring backups across a rekey."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge import cli
from edge.errors import ExitCode, RefusedError
from edge.gallery.backup import partial_path, partials_path
from edge.gallery.key import (
    generate_key,
    key_fingerprint,
    key_pragma_value,
    pending_key_path,
    read_key,
    write_key,
)
from edge.gallery.store import Gallery, GalleryConfig, create_gallery
from edge.types import Embedding
from tests.helpers import REPO

WORKER = Path(__file__).with_name("worker.py")


@pytest.fixture
def config(tmp_path, monkeypatch) -> GalleryConfig:
    """An initialised gallery with one person, named by $FACEGATE_CONFIG for the CLI."""
    config = GalleryConfig(path=str(tmp_path / "g.db"), key_file=str(tmp_path / "g.key"))
    create_gallery(config)
    with Gallery.from_config(config) as gallery:
        vector = np.random.default_rng(1).standard_normal(128).astype(np.float32)
        gallery.add_person("Ada", "user", [Embedding(vector / np.linalg.norm(vector), "m")], [0.9])
    path = tmp_path / "config.toml"
    path.write_text(f'[gallery]\npath = "{config.path}"\nkey_file = "{config.key_file}"\n')
    monkeypatch.setenv("FACEGATE_CONFIG", str(path))
    return config


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


class Worker:
    def __init__(self, config: GalleryConfig, *action: str):
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), config.path, config.key_file, *action],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )

    def says(self) -> str:
        return self.proc.stdout.readline().strip()

    def go(self) -> None:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self) -> str:
        out, _ = self.proc.communicate("go\n", timeout=60)
        assert self.proc.returncode == 0
        return out.strip()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


def sha(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --- rekey -----------------------------------------------------------------------------


def test_rekey_is_refused_while_another_process_has_the_gallery_open(config, capsys):
    other = Worker(config, "enrol", "Bob")  # a process with the gallery open, like the daemon
    assert other.says() == "ready"
    key = read_key(config.key_file)
    code, _, err = run(capsys, "gallery", "rekey")
    assert code == ExitCode.REFUSED
    assert "while another process has it open: stop the service first" in err
    assert read_key(config.key_file) == key and not pending_key_path(Path(config.key_file)).exists()
    assert other.finish().startswith("enrolled")  # it was never disturbed
    code, out, _ = run(capsys, "gallery", "rekey")
    assert code == 0 and "the old key (sha256:" in out
    with Gallery.from_config(config) as gallery:
        assert [p.name for p in gallery.people()] == ["Ada", "Bob"]


def test_check_right_after_a_crash_that_followed_a_rekey_finds_nothing_wrong(config, capsys):
    worker = Worker(config, "rekey")
    assert worker.says() == "rekeyed"
    worker.kill()  # the process dies with the gallery still open
    code, out, _ = run(capsys, "gallery", "check")
    assert (code, out.splitlines()[-1]) == (0, "ok: 1 people, templates: 1 of m, 1 events")


def test_check_says_what_it_found_of_an_interrupted_rekey(config, capsys):
    write_key(pending_key_path(Path(config.key_file)), generate_key())  # crashed before switching
    code, out, _ = run(capsys, "gallery", "check")
    assert code == 0
    assert out.splitlines()[0] == (
        "note: rolled back an interrupted rekey: the gallery never switched to the key in "
        f"g.key.new, which was removed; {config.key_file} still opens it"
    )


def test_check_distrusts_page_failures_while_the_log_cannot_be_copied(config):
    # A rekey whose pages never reached the file (its process died before copying
    # them), and a reader whose snapshot keeps them in the write-ahead log meanwhile.
    with Gallery.from_config(config) as gallery, Gallery.from_config(config) as reader:
        reader._conn.execute("BEGIN")
        reader.people()
        gallery._conn.execute(f"PRAGMA rekey = {key_pragma_value(generate_key())}")
        (problem,) = gallery.check()
        assert re.fullmatch(
            rf"\d+ page\(s\) of {config.path} failed authentication, but \d+ "
            r"newer page\(s\) are still in its write-ahead log \(another "
            r"process has the gallery open\): stop the service and check again "
            r"before restoring anything",
            problem,
        )
        reader._conn.execute("COMMIT")
        assert gallery.check() == []  # copied in now: every page is under the new key


# --- backups ---------------------------------------------------------------------------


def test_a_killed_backup_leaves_nothing_behind_after_the_next_command(config, tmp_path, capsys):
    target = tmp_path / "usb" / "gallery-backup.db"
    target.parent.mkdir()
    writer = Worker(config, "backup", str(target))
    assert writer.says() == "writing"
    partial = partial_path(target)
    assert partial.exists()
    assert run(capsys, "people", "list")[0] == 0
    assert partial.exists()  # being written: left alone
    writer.kill()
    assert partial.exists() and not target.exists()
    assert run(capsys, "people", "list")[0] == 0
    assert not partial.exists()
    assert partials_path(Path(config.path)).read_text() == ""


def test_backup_names_its_key_and_rekey_keeps_what_a_restore_needs(config, tmp_path, capsys):
    before = tmp_path / "before.db"
    code, out, _ = run(capsys, "gallery", "backup", str(before))
    old = key_fingerprint(read_key(config.key_file))
    assert code == 0 and f"it opens with the key {old}" in out
    assert Path(f"{before}.fingerprint").read_text() == old + "\n"
    # encrypted: SQLite's plain header is gone (a 3-byte name can occur in random bytes)
    assert not before.read_bytes().startswith(b"SQLite format 3\0")
    run(capsys, "gallery", "rekey")
    with Gallery.from_config(config) as gallery:
        gallery.add_person("Bob", "user", [Embedding(np.eye(128, dtype=np.float32)[0], "m")], [0.9])
    code, out, _ = run(capsys, "gallery", "restore", str(before))
    assert code == 0, out
    assert "opened with a key retired by an earlier rekey" in out
    replaced = out.split("the gallery it replaced is kept as ")[1].strip()
    with Gallery.from_config(config) as gallery:  # opens with the current key file
        assert [p.name for p in gallery.people()] == ["Ada"]
        assert old in gallery.retired_keys()
        assert gallery.check() == []
    with Gallery.open(replaced, config.key_file) as kept:
        assert [p.name for p in kept.people()] == ["Ada", "Bob"]


def test_restore_checks_before_it_replaces_anything(config, tmp_path, capsys):
    backup = tmp_path / "b.db"
    run(capsys, "gallery", "backup", str(backup))
    damaged = tmp_path / "damaged.db"
    data = bytearray(backup.read_bytes())
    data[5000] ^= 0xFF  # one byte of the second page
    damaged.write_bytes(bytes(data))
    before = sha(config.path)
    code, _, err = run(capsys, "gallery", "restore", str(damaged))
    assert code == ExitCode.GALLERY
    assert f"backup {damaged} fails its check, so nothing was replaced" in err
    assert sha(config.path) == before
    assert not [
        p
        for p in Path(config.path).parent.iterdir()
        if "restoring" in p.name or "replaced" in p.name
    ]


def test_restore_without_the_key_names_the_key_it_needs(config, tmp_path, capsys):
    backup = tmp_path / "b.db"
    run(capsys, "gallery", "backup", str(backup))
    needed = key_fingerprint(read_key(config.key_file))
    other = tmp_path / "other"
    other.mkdir()
    moved = GalleryConfig(path=str(other / "g.db"), key_file=str(other / "g.key"))
    create_gallery(moved)  # a new device: its own key, never rekeyed from the old one
    code, _, err = run(
        capsys, "gallery", "restore", str(backup), "--config", str(_config_file(moved, other))
    )
    assert code == ExitCode.GALLERY_KEY
    assert f"it needs the key {needed} (from b.db.fingerprint)" in err
    code, out, _ = run(
        capsys,
        "gallery",
        "restore",
        str(backup),
        "--config",
        str(_config_file(moved, other)),
        "--key",
        config.key_file,
    )
    assert code == 0 and f"opened with the key in {config.key_file}" in out
    with Gallery.from_config(moved) as gallery:
        assert [p.name for p in gallery.people()] == ["Ada"]


def test_restore_is_refused_while_another_process_has_the_gallery_open(config, tmp_path, capsys):
    backup = tmp_path / "b.db"
    run(capsys, "gallery", "backup", str(backup))
    other = Worker(config, "enrol", "Bob")
    assert other.says() == "ready"
    before = sha(config.path)
    code, _, err = run(capsys, "gallery", "restore", str(backup))
    assert code == ExitCode.REFUSED and "cannot restore gallery" in err
    assert sha(config.path) == before
    other.finish()


def _config_file(config: GalleryConfig, folder: Path) -> Path:
    path = folder / "config.toml"
    path.write_text(f'[gallery]\npath = "{config.path}"\nkey_file = "{config.key_file}"\n')
    return path


# --- enrolment -------------------------------------------------------------------------


def test_two_enrolments_of_one_face_at_once_let_only_one_through(config):
    first, second = Worker(config, "enrol", "Carol"), Worker(config, "enrol", "Dora")
    assert first.says() == second.says() == "ready"
    first.go()
    second.go()  # both reach the write together
    outcomes = sorted([first.finish(), second.finish()])
    assert outcomes[0].startswith("enrolled")
    assert outcomes[1].startswith("refused: this face already matches")
    with Gallery.from_config(config) as gallery:
        assert len(gallery.people()) == 2  # Ada and one of them


def test_enrol_refusal_raised_inside_the_transaction_changes_nothing(config):
    with Gallery.from_config(config) as gallery:
        revision = gallery.revision()

        def refuse():
            raise RefusedError("a duplicate")

        with pytest.raises(RefusedError):
            gallery.add_person(
                "Eve", "user", [Embedding(np.ones(4, np.float32) / 2, "m")], [0.9], check=refuse
            )
        assert gallery.revision() == revision and len(gallery.people()) == 1
