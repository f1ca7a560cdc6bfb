"""config.example.toml: parses, sets every key of every section, and explains each one."""

from __future__ import annotations

import dataclasses
import re

from edge.config import default_config, parse_config, sections
from tests.helpers import REPO

EXAMPLE = REPO / "config.example.toml"
HEADER = re.compile(r"^\[([a-z_]+)\]$")
ASSIGN = re.compile(r"^([a-z_]+) = ")


def example_lines() -> list[str]:
    return EXAMPLE.read_text(encoding="utf-8").splitlines()


def keys_by_section() -> dict[str, list[tuple[int, str]]]:
    """Section -> [(line index, key)] of every uncommented assignment."""
    found: dict[str, list[tuple[int, str]]] = {}
    section = None
    for index, line in enumerate(example_lines()):
        if m := HEADER.match(line):
            section = m.group(1)
            found.setdefault(section, [])
        elif m := ASSIGN.match(line):
            assert section is not None, f"line {index + 1}: key before any section"
            found[section].append((index, m.group(1)))
    return found


def test_example_parses_to_the_defaults():
    # The defaults are already the Raspberry Pi choices (rpi GPIO, picamera2), so
    # the installed example behaves exactly like an empty file.
    config = parse_config(EXAMPLE.read_text(encoding="utf-8"), source=str(EXAMPLE))
    defaults = default_config()
    for name in sections():
        assert getattr(config, name) == getattr(defaults, name), f"[{name}] differs from defaults"
    assert (config.gpio.backend, config.gpio.module) == ("rpi", "RPi.GPIO")
    assert config.camera.source == "picamera2"


def test_every_setting_appears_in_the_example():
    found = keys_by_section()
    assert list(found) == list(sections()), "sections missing or out of registry order"
    for name, cls in sections().items():
        keys = [key for _, key in found[name]]
        expected = [f.name for f in dataclasses.fields(cls)]
        missing = sorted(set(expected) - set(keys))
        assert not missing, f"[{name}] lacks {missing} in {EXAMPLE.name}"
        assert len(keys) == len(set(keys)), f"[{name}] sets a key twice"


def test_every_key_is_preceded_by_a_comment():
    lines = example_lines()
    for entries in keys_by_section().values():
        for index, key in entries:
            assert lines[index - 1].startswith("# "), f"line {index + 1} ({key}) has no comment"
