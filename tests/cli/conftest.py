"""Fixtures of the command tests: a temporary config, and a gallery made by 'init'."""

from __future__ import annotations

import pytest

from edge import cli


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text(
        f'[gallery]\npath = "{tmp_path / "g.db"}"\nkey_file = "{tmp_path / "keys" / "g.key"}"\n'
        "[enrolment]\nmin_templates = 2\nmax_templates = 3\n"
    )
    monkeypatch.setenv("FACEGATE_CONFIG", str(path))
    return path


@pytest.fixture
def initialised(config_file, tmp_path, capsys):
    code = cli.main(["init"])
    out = capsys.readouterr().out
    assert code == 0 and "created gallery" in out
    return tmp_path / "g.db", tmp_path / "keys" / "g.key"
