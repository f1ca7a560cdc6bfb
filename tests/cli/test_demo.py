"""The README's first command: the demo enrols one photo and replays a visit."""

import re

from edge.cli import main


def test_demo_grants_the_enrolled_person_once_and_denies_the_stranger(tmp_path, capsys):
    assert main(["demo", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"granted\s+Barack Obama\s+similarity\s+0\.[5-9]", out)
    assert re.search(r"denied_unknown\s+-\s+similarity", out)
    assert "relay: 1 unlock pulse(s)" in out and "locked at exit: True" in out
    # The work folder holds a config a person can reuse with 'facegate run'.
    assert main(["check-config", "--config", str(tmp_path / "config.toml")]) == 0
