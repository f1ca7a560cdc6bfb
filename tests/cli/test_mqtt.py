"""'facegate site-key' and 'facegate attendance --site', through edge.cli.main."""

from __future__ import annotations

import datetime as dt

from edge.gallery import sync
from edge.gallery.outbox import OutboxEvent
from edge.gallery.store import Gallery
from edge.mqtt.site_key import read_site_keys
from tests.cli.test_gallery import run, unit


def test_site_key_new_show_rotate_import(config_file, tmp_path, capsys):
    key = tmp_path / "keys" / "site.key"
    key.parent.mkdir(mode=0o700, exist_ok=True)
    config_file.write_text(config_file.read_text() + f'[mqtt]\nsite_key_file = "{key}"\n')
    code, out, _ = run(capsys, "site-key", "new")
    first = read_site_keys(key).current_id
    assert code == 0 and f"{first}  current (seals)" in out
    assert run(capsys, "site-key", "new")[0] == 77  # never overwritten
    code, out, _ = run(capsys, "site-key", "rotate")
    second = read_site_keys(key).current_id
    assert out.splitlines()[-2:] == [f"{second}  current (seals)", f"{first}  kept (reads)"]
    other = tmp_path / "other.key"
    other.write_text(key.read_text())
    key.unlink()
    code, out, _ = run(capsys, "site-key", "import", str(other))
    assert code == 0 and read_site_keys(key).current_id == second
    assert run(capsys, "site-key", "show")[1] == out
    # --config after the action, as the installer's instructions write it
    assert run(capsys, "site-key", "show", "--config", str(config_file))[1] == out


def test_attendance_for_the_site_counts_every_terminals_passes(initialised, capsys):
    path, key = initialised
    noon = dt.datetime(2026, 3, 2, 12, 0).timestamp()
    with Gallery.open(path, key) as gallery:
        pid = gallery.add_person("Ada", "user", [unit(1)], [0.9], now=noon - 3600)
        uid = gallery.person(pid).uid
        gallery.log_event("granted", noon, person_id=pid)
        for seq, hours in ((7, 2), (8, 5)):
            event = OutboxEvent(seq, noon + hours * 3600, "granted", uid, None, 0.8, None, None)
            sync.collect_event(gallery, "back-door", event)
        # a duplicate of one of them (delivered twice by the broker) changes nothing
        assert not sync.collect_event(gallery, "back-door", event)
    code, out, _ = run(capsys, "attendance", "--from", "2026-03-02", "--to", "2026-03-02")
    assert code == 0 and out.splitlines()[-1].split()[-1] == "1"
    code, out, _ = run(
        capsys, "attendance", "--site", "--from", "2026-03-02", "--to", "2026-03-02", "--csv"
    )
    assert out.splitlines()[1] == f"2026-03-02,{pid},Ada,12:00:00,17:00:00,5.00,3"
