"""The administrator's commands, run through edge.cli.main on a temporary config."""

from __future__ import annotations

import csv
import datetime as dt
import io
import unicodedata

import numpy as np
import pytest

from edge import cli
from edge.errors import ExitCode
from edge.gallery.store import Gallery
from edge.types import Embedding
from edge.vision import pipeline
from tests.gallery.test_enrolment import FakePipeline, photo

MODEL = "sface-test"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def unit(seed: int) -> Embedding:
    v = np.random.default_rng(seed).standard_normal(16).astype(np.float32)
    return Embedding(v / np.linalg.norm(v), MODEL)


def seed_people(paths) -> tuple[int, int]:
    with Gallery.open(*paths) as g:
        ada = g.add_person("Ada", "admin", [unit(1)], [0.9], now=0.0)
        bob = g.add_person("Bob", "user", [unit(2)], [0.9], now=0.0)
    return ada, bob


def test_init_uses_env_config_and_refuses_twice(initialised, capsys):
    _, key = initialised
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    code, _, err = run(capsys, "init")
    assert code == ExitCode.REFUSED and err.startswith("facegate: a gallery already exists")
    assert err.count("\n") == 1


def test_missing_config_file_is_a_config_error(tmp_path, capsys):
    code, _, err = run(capsys, "people", "list", "--config", str(tmp_path / "none.toml"))
    assert code == ExitCode.CONFIG and "config file not found" in err


def test_people_list_show_rename_disable_enable(initialised, capsys):
    ada, bob = seed_people(initialised)
    code, out, _ = run(capsys, "people", "list")
    assert code == 0
    lines = out.splitlines()
    assert "Ada" in lines[1] and "admin" in lines[1] and "Bob" in lines[2]
    assert run(capsys, "people", "disable", "Bob")[0] == 0
    code, out, _ = run(capsys, "people", "show", str(bob))
    assert "state:       disabled" in out and "name:        Bob" in out
    assert run(capsys, "people", "enable", "Bob")[0] == 0
    assert run(capsys, "people", "rename", "Bob", "Robert")[0] == 0
    code, out, _ = run(capsys, "people", "show", "Robert")
    assert "state:       enabled" in out
    code, _, err = run(capsys, "people", "rename", "Robert", "Ada")
    assert code == ExitCode.REFUSED and "already exists" in err
    code, _, err = run(capsys, "people", "show", "Nobody")
    assert code == ExitCode.NOT_FOUND and "Nobody" in err


def test_people_schedule_sets_shows_refuses_and_clears(initialised, capsys):
    _, bob = seed_people(initialised)
    code, out, _ = run(capsys, "people", "schedule", "Bob", "mon-fri 08:00-18:00", "sat 9:00-12:00")
    assert code == 0 and "mon-fri 08:00-18:00, sat 09:00-12:00" in out
    code, out, _ = run(capsys, "people", "show", "Bob")
    assert "schedule:    mon-fri 08:00-18:00, sat 09:00-12:00" in out
    code, _, err = run(capsys, "people", "schedule", "Bob", "weekdays 8-6")
    assert code == ExitCode.REFUSED and "not like 'mon-fri 08:00-18:00'" in err
    code, _, err = run(capsys, "people", "schedule", "Bob")
    assert code == ExitCode.REFUSED and "--clear" in err
    with Gallery.open(*initialised) as g:  # the refusals changed nothing
        assert str(g.person(bob).schedule) == "mon-fri 08:00-18:00, sat 09:00-12:00"
    assert run(capsys, "people", "schedule", "Bob", "--clear")[0] == 0
    code, out, _ = run(capsys, "people", "show", "Bob")
    assert "schedule:    any time" in out


def test_people_delete_needs_yes(initialised, capsys):
    ada, bob = seed_people(initialised)
    code, _, err = run(capsys, "people", "delete", "Bob")
    assert code == ExitCode.REFUSED and "--yes" in err
    assert run(capsys, "people", "delete", "Bob", "--yes")[0] == 0
    with Gallery.open(*initialised) as g:
        assert [p.name for p in g.people()] == ["Ada"]


def test_events_filters_and_csv(initialised, capsys):
    ada, _ = seed_people(initialised)
    now = dt.datetime.now().timestamp()
    with Gallery.open(*initialised) as g:
        g.log_event("granted", now - 7200, person_id=ada, score=0.71, liveness=0.93)
        g.log_event("denied_unknown", now - 60, score=0.12, reason="no match")
    code, out, _ = run(capsys, "events", "--since", "1h")
    assert code == 0 and "denied_unknown" in out and "granted" not in out
    code, out, _ = run(capsys, "events", "--kind", "granted", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["kind"], r["name"], r["score"], r["liveness"]) for r in rows] == [
        ("granted", "Ada", "0.710", "0.930")
    ]
    code, out, _ = run(capsys, "events", "--since", "1970-01-01", "--kind", "enrolled")
    assert out.count("enrolled") == 2
    with pytest.raises(SystemExit):
        cli.main(["events", "--since", "yesterday-ish"])
    with pytest.raises(SystemExit):
        cli.main(["events", "--kind", "opened"])


def test_attendance_first_last_count_per_local_day(initialised, capsys):
    ada, bob = seed_people(initialised)

    def at(day: int, hour: int, minute: int = 0) -> float:
        return dt.datetime(2024, 5, day, hour, minute).astimezone().timestamp()

    with Gallery.open(*initialised) as g:
        for t in (at(1, 8, 5), at(1, 12), at(1, 17, 30)):
            g.log_event("granted", t, person_id=ada)
        g.log_event("granted", at(2, 9), person_id=bob)
        g.log_event("denied_unknown", at(2, 10))
        g.log_event("granted", at(3, 9), person_id=ada)  # outside the range
    code, out, _ = run(capsys, "attendance", "--from", "2024-05-01", "--to", "2024-05-02", "--csv")
    assert code == 0
    rows = [
        (r["day"], r["name"], r["first_in"], r["last_out"], r["passes"])
        for r in csv.DictReader(io.StringIO(out))
    ]
    assert rows == [
        ("2024-05-01", "Ada", "08:05:00", "17:30:00", "3"),
        ("2024-05-02", "Bob", "09:00:00", "09:00:00", "1"),
    ]
    code, _, err = run(capsys, "attendance", "--from", "2024-05-02", "--to", "2024-05-01")
    assert code == ExitCode.USAGE and "before" in err


def test_gallery_check_backup_rekey(initialised, tmp_path, capsys):
    seed_people(initialised)
    code, out, _ = run(capsys, "gallery", "check")
    assert code == 0 and out.startswith("ok: 2 people") and f"2 of {MODEL}" in out
    backup = tmp_path / "backup.db"
    assert run(capsys, "gallery", "backup", str(backup))[0] == 0
    code, _, err = run(capsys, "gallery", "backup", str(backup))
    assert code == ExitCode.REFUSED
    old_key = initialised[1].read_bytes()
    code, out, _ = run(capsys, "gallery", "rekey")
    assert code == 0 and initialised[1].read_bytes() != old_key
    assert run(capsys, "people", "list")[0] == 0
    # the backup was made under the old key, so it no longer opens with the new one
    with pytest.raises(Exception, match="cannot decrypt"):
        Gallery.open(backup, initialised[1])


def test_wrong_key_and_corrupt_gallery_exit_codes(initialised, capsys):
    db, key = initialised
    key.write_text("00" * 32 + "\n")
    code, _, err = run(capsys, "people", "list")
    assert code == ExitCode.GALLERY_KEY and str(db) in err and "00" * 8 not in err
    with open(db, "r+b") as f:
        f.truncate(1000)
    code, _, err = run(capsys, "gallery", "check")
    assert code == ExitCode.GALLERY and str(db) in err and "truncated" in err


def test_enrol_from_photos_prints_verdicts_and_refuses_duplicates(
    initialised, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(
        pipeline.Pipeline, "from_config", classmethod(lambda cls, config: FakePipeline())
    )
    ada = [photo(tmp_path, f"ada{i}", seed=i) for i in range(3)]
    blurred = photo(tmp_path, "blurred", blurred=1)
    code, out, _ = run(
        capsys, "enrol", "--name", "Ada", "--role", "admin", *map(str, ada), str(blurred)
    )
    assert code == 0
    assert f"{ada[0]}: ok" in out and f"{blurred}: too small, blurred" in out
    assert "enrolled Ada as #1 with 3 templates from 3 usable photos" in out
    again = [photo(tmp_path, f"again{i}", seed=10 + i) for i in range(2)]
    code, out, err = run(capsys, "enrol", "--name", "Ada2", *map(str, again))
    assert code == ExitCode.REFUSED and "already matches Ada (#1)" in err
    code, _, err = run(capsys, "enrol", "--name", "Bob", str(again[0]), str(blurred))
    assert code == ExitCode.REFUSED and "only 1 of 1" in err
    # 'enroll', the command's old spelling, still works
    code, out, _ = run(capsys, "enroll", "--name", "Ada2", "--force", *map(str, again))
    assert code == 0
    with Gallery.open(*initialised) as g:
        assert [(p.name, p.role, p.templates) for p in g.people()] == [
            ("Ada", "admin", 3),
            ("Ada2", "user", 2),
        ]


# --- what people type and read -----------------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["Eve\nroot", "\x1b[31mred", "Ad\u202eA", "Z\u200bero", "tab\tbed", "ne\x85l"]
)
def test_a_name_with_control_or_invisible_characters_is_refused_in_one_line(
    initialised, capsys, bad
):
    seed_people(initialised)
    code, _, err = run(capsys, "people", "rename", "Bob", bad)
    assert code == ExitCode.REFUSED
    assert err.startswith("facegate: a name cannot contain U+") and err.count("\n") == 1
    assert bad not in err and "\x1b" not in err  # shown escaped, never raw
    code, _, err = run(capsys, "enrol", "--name", bad, "no-such-photo.jpg")
    assert code == ExitCode.REFUSED and "a name cannot contain U+" in err  # before any photo


def test_nfc_and_nfd_spellings_are_one_name(initialised, capsys):
    ada, bob = seed_people(initialised)
    composed, decomposed = "José", unicodedata.normalize("NFD", "José")
    assert composed != decomposed
    assert run(capsys, "people", "rename", "Bob", decomposed)[0] == 0
    code, out, _ = run(capsys, "people", "show", composed)
    assert code == 0 and f"name:        {composed}\n" in out
    code, _, err = run(capsys, "people", "rename", "Ada", composed)
    assert code == ExitCode.REFUSED and "already exists" in err
    with Gallery.open(*initialised) as g:
        assert g.person(bob).name == composed


def test_csv_cells_that_start_like_a_formula_are_neutralised(initialised, capsys):
    formula = "=cmd|' /C calc'!A0"
    with Gallery.open(*initialised) as g:
        pid = g.add_person(formula, "user", [unit(3)], [0.9], now=0.0)
        when = dt.datetime(2024, 5, 1, 9).astimezone().timestamp()
        g.log_event("granted", when, person_id=pid, score=-0.12)
        g.log_event("door_forced", when + 1, reason="@SUM(1+1)*cmd|' /C calc'!A0")
    code, out, _ = run(capsys, "events", "--since", "2024-05-01", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    granted, forced = rows[-2:]
    assert (granted["name"], granted["score"]) == ("'" + formula, "-0.120")  # a number stays
    assert forced["reason"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    code, out, _ = run(capsys, "attendance", "--from", "2024-05-01", "--to", "2024-05-01", "--csv")
    (row,) = csv.DictReader(io.StringIO(out))
    assert row["name"] == "'" + formula
    code, out, _ = run(capsys, "events", "--since", "2024-05-01")  # the terminal shows it as is
    assert formula in out


@pytest.mark.parametrize(
    "argv",
    [
        ("attendance", "--from", "0001-01-01", "--to", "0001-01-02"),
        ("attendance", "--from", "2024-01-01", "--to", "9999-12-31"),
        ("events", "--since", "0001-01-01"),
    ],
)
def test_dates_out_of_range_are_one_line_usage_errors(initialised, capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        cli.main(list(argv))
    assert exit_.value.code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "is out of range: give a date between 1970 and 9999" in err
    assert "Traceback" not in err and "invalid parse" not in err


def test_init_where_folders_cannot_be_made_says_so_in_one_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = tmp_path / "c.toml"
    config.write_text(f'[gallery]\npath = "{blocker}/g.db"\nkey_file = "{tmp_path}/k/g.key"\n')
    code, _, err = run(capsys, "init", "--config", str(config))
    assert code == ExitCode.GALLERY
    assert err == f"facegate: cannot create the folder {blocker}: a file of that name is there\n"
    config.write_text(f'[gallery]\npath = "{tmp_path}/g/g.db"\nkey_file = "{blocker}/k/g.key"\n')
    code, _, err = run(capsys, "init", "--config", str(config))
    assert code == ExitCode.GALLERY_KEY
    assert err == f"facegate: cannot create the folder {blocker}/k: Not a directory\n"
