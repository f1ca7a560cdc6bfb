"""facegate check-config: every error with file:line and key, warnings for risky choices."""

from __future__ import annotations

from edge import cli
from edge.config import sections
from edge.errors import ExitCode
from tests.helpers import FACES


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_bad_key_is_reported_with_its_line_and_exit_78(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text("[camera]\nfps = 15.0\nfsp = 30\n")
    code, out, err = run(capsys, "check-config", "--config", str(path))
    assert code == ExitCode.CONFIG == 78
    assert f"{path}:3: camera.fsp: unknown key" in err
    assert "config OK" not in out


def test_an_error_in_every_section_is_reported(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(
        '[detector]\nmin_score = 3.0\n\n[camera]\nsource = "replay"\n\n[nonsense]\nx = 1\n'
        '[matcher]\nmin_similarity = "high"\n'
    )
    code, _, err = run(capsys, "check-config", "--config", str(path))
    assert code == ExitCode.CONFIG
    lines = err.splitlines()
    assert lines == [
        f"facegate: {path}:2: detector.min_score: 3.0 is above the maximum 1.0",
        # a rule names a key that is absent: the section's line is given
        f"facegate: {path}:4: camera.replay_path: required when camera.source = 'replay'",
        f"facegate: {path}:7: [nonsense]: unknown section (valid sections: "
        f"{', '.join(sorted(sections()))})",
        f"facegate: {path}:10: matcher.min_similarity: expected a number, got 'high'",
    ]


def test_invalid_toml_and_missing_file_are_config_errors(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text("[camera\n")
    code, _, err = run(capsys, "check-config", "--config", str(path))
    assert code == ExitCode.CONFIG and "not valid TOML" in err
    code, _, err = run(capsys, "check-config", "--config", str(tmp_path / "none.toml"))
    assert code == ExitCode.CONFIG and "config file not found" in err


def test_valid_config_says_ok(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text("[matcher]\nmin_similarity = 0.5\n")
    code, out, err = run(capsys, "check-config", "--config", str(path))
    assert code == ExitCode.OK
    assert out == f"config OK: {path}\n"
    assert err == ""


def test_mock_gpio_and_replay_camera_are_warned_about(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(
        f'[gpio]\nbackend = "mock"\n[camera]\nsource = "replay"\nreplay_path = "{FACES}"\n'
    )
    code, out, err = run(capsys, "check-config", "--config", str(path))
    assert code == ExitCode.OK
    assert out == f"config OK: {path}\n"
    assert "warning: mock GPIO: the door is not driven" in err
    assert "warning: replay camera" in err
