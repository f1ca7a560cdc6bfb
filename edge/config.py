"""The facegate configuration: one TOML file, one section per component.

Loading is pure: it reads the file and validates it, nothing else. Unknown keys,
wrong types and out-of-bounds values are errors that name the key and its line.
Each component declares its own section (see ``schema.setting``) and receives only
that section.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .schema import build_section

DEFAULT_PATH = Path("/etc/facegate/config.toml")

# Section name -> dataclass. Imported lazily inside sections() so that importing
# config does not import every component (and so that there is no import cycle).


def sections() -> dict[str, type]:
    from .camera import CameraConfig
    from .decision import DecisionConfig
    from .detector import DetectorConfig
    from .door import DoorConfig
    from .embedder import EmbedderConfig
    from .gpio import GpioConfig
    from .enrollment import EnrollmentConfig
    from .gallery import GalleryConfig
    from .matcher import MatcherConfig
    from .models import ModelsConfig
    from .quality import QualityConfig

    return {
        "models": ModelsConfig,
        "detector": DetectorConfig,
        "quality": QualityConfig,
        "embedder": EmbedderConfig,
        "camera": CameraConfig,
        "decision": DecisionConfig,
        "door": DoorConfig,
        "gpio": GpioConfig,
        "gallery": GalleryConfig,
        "matcher": MatcherConfig,
        "enrollment": EnrollmentConfig,
    }


def _make_config_class() -> type:
    fields = [
        (name, cls, dataclasses.field(default_factory=cls)) for name, cls in sections().items()
    ]
    return dataclasses.make_dataclass("Config", fields, frozen=True)


def default_config() -> Any:
    """The configuration with every default, as if the file were empty."""
    return parse_config("", source="<defaults>")


def _line_of(text: str, dotted: str) -> int | None:
    """Line number (1-based) where ``section.key`` (or a section) is set in ``text``."""
    section, _, key = dotted.rpartition(".")
    current = ""
    for lineno, line in enumerate(text.splitlines(), start=1):
        m = _HEADER.match(line)
        if m:
            current = m.group(1)
            if current == dotted:
                return lineno
            continue
        m = _ASSIGN.match(line)
        if m and current == section and m.group(1) == key:
            return lineno
    return None


_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-]+)\s*\]")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


def parse_config(text: str, source: str = "<string>") -> Any:
    """Validate TOML text and return the frozen Config; raises ConfigError."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    known = sections()
    unknown = sorted(set(raw) - set(known))
    if unknown:
        line = _line_of(text, unknown[0])
        at = f"{source}:{line}" if line else source
        valid = ", ".join(sorted(known))
        raise ConfigError(f"{at}: [{unknown[0]}]: unknown section (valid sections: {valid})")
    values = {}
    for name, cls in known.items():
        try:
            values[name] = build_section(cls, raw.get(name, {}), name)
        except ConfigError as exc:
            message = str(exc)
            dotted = message.split(":", 1)[0]
            line = _line_of(text, dotted)
            at = f"{source}:{line}" if line else source
            raise ConfigError(f"{at}: {message}") from None
    return _make_config_class()(**values)


def load_config(path: str | Path) -> Any:
    """Read and validate a config file; a missing file is a ConfigError too."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    return parse_config(text, source=str(path))
