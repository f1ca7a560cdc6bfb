"""The facegate configuration: one TOML file, one section per component.

Loading is pure: it reads the file and validates it, nothing else. Unknown keys,
wrong types and out-of-bounds values are errors that name the key and its line.
Each component declares its own section (see ``schema.setting``); ``Config`` lists
them, and each component receives only its own.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .access.decision import DecisionConfig
from .access.door import DoorConfig
from .access.gpio import GpioConfig
from .camera import CameraConfig
from .control import ControlConfig
from .errors import ConfigError
from .gallery.enrolment import EnrolmentConfig
from .gallery.matcher import MatcherConfig
from .gallery.store import GalleryConfig
from .liveness.policy import LivenessConfig
from .mqtt_config import MqttConfig
from .schema import build_section, setting
from .vision.detector import DetectorConfig
from .vision.embedder import EmbedderConfig
from .vision.landmarks import LandmarksConfig
from .vision.models import ModelsConfig
from .vision.quality import QualityConfig
from .vision.track_cache import TrackingConfig

if sys.version_info >= (3, 11):
    import tomllib  # novermin: the fallback below is for 3.10
else:  # Python 3.10 (JetPack 6): tomli is the same parser
    import tomli as tomllib

DEFAULT_PATH = Path("/etc/facegate/config.toml")
# Sections that had another name; scripts/install.sh renames them in an installed file.
RENAMED = {"enrollment": "enrolment"}


@dataclass(frozen=True)
class DaemonConfig:
    """What the service prints to its log (the journal)."""

    log_names: bool = setting(
        False,
        "print people's names in the service log; by default it names them by "
        "person id only, so that 'facegate people delete' leaves no name behind anywhere",
    )


@dataclass(frozen=True)
class WebConfig:
    """The administrators' web app (``facegate web``, a service of its own)."""

    listen: str = setting(
        "0.0.0.0", "address to serve HTTPS on: 0.0.0.0 = every interface, 127.0.0.1 = this host"
    )
    port: int = setting(8443, "HTTPS port", min=1, max=65535)
    cert: str = setting(
        "/etc/facegate/web/cert.pem",
        "TLS certificate (PEM); 'facegate web cert' makes a self-signed one for this device, "
        "or name one the site supplies",
    )
    key: str = setting(
        "/etc/facegate/web/key.pem", "the certificate's private key (PEM), the service user's only"
    )
    session_minutes: float = setting(
        30.0, "a signed-in session ends after this long without a request", min=1.0, max=1440.0
    )
    login_attempts: int = setting(
        5,
        "failed logins in a row, for one name or from one address, before logins are "
        "refused for lockout_minutes",
        min=1,
        max=100,
    )
    lockout_minutes: float = setting(
        15.0, "how long logins stay refused after too many failures", min=1.0, max=1440.0
    )
    max_upload_mb: float = setting(
        20.0, "most megabytes one enrolment upload may hold (all its photos)", min=1.0, max=500.0
    )


@dataclass(frozen=True)
class Config:
    """The whole configuration, one section per component, in the file's order.

    Each component is given its own section (or, for the pipeline, the few it is
    made of); only the daemon, the doctor and the commands see the whole.
    """

    models: ModelsConfig = field(default_factory=ModelsConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    landmarks: LandmarksConfig = field(default_factory=LandmarksConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    liveness: LivenessConfig = field(default_factory=LivenessConfig)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    door: DoorConfig = field(default_factory=DoorConfig)
    gpio: GpioConfig = field(default_factory=GpioConfig)
    gallery: GalleryConfig = field(default_factory=GalleryConfig)
    matcher: MatcherConfig = field(default_factory=MatcherConfig)
    enrolment: EnrolmentConfig = field(default_factory=EnrolmentConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    web: WebConfig = field(default_factory=WebConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)


def sections() -> dict[str, type]:
    """Section name -> its dataclass, in the file's order."""
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


def default_config() -> Config:
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


def _locate(text: str, message: str, section: str) -> tuple[int, str]:
    """(line, message) for ``message`` ("section.key: ..."): the key's line, or its
    section's line when the key is not in the file (a rule may name one left out);
    0 when neither is."""
    line = _line_of(text, message.split(":", 1)[0]) or _line_of(text, section) or 0
    return line, message


def _format(source: str, line: int, message: str) -> str:
    return f"{source}:{line}: {message}" if line else f"{source}: {message}"


def validate_text(text: str, source: str = "<string>") -> tuple[Config | None, list[str]]:
    """(Config, []) for valid TOML text, else (None, every error found).

    Each section is validated on its own, so one run reports a problem in every
    section that has one (within a section, the first).
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [f"{source}: not valid TOML: {exc}"]
    known = sections()
    valid = ", ".join(sorted(known))
    found = [
        _locate(text, f"[{name}]: renamed to [{RENAMED[name]}]", name)
        if name in RENAMED
        else _locate(text, f"[{name}]: unknown section (valid sections: {valid})", name)
        for name in sorted(set(raw) - set(known))
    ]
    values = {}
    for name, cls in known.items():
        try:
            values[name] = build_section(cls, raw.get(name, {}), name)
        except ConfigError as exc:
            found.append(_locate(text, str(exc), name))
    if found:  # in file order, as a person reads the file
        found.sort(key=lambda item: item[0] or float("inf"))
        return None, [_format(source, line, m) for line, m in found]
    return Config(**values), []


def parse_config(text: str, source: str = "<string>") -> Config:
    """Validate TOML text and return the frozen Config; raises the first ConfigError."""
    config, errors = validate_text(text, source)
    if config is None:
        raise ConfigError(errors[0])
    return config


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; a missing file is a ConfigError too."""
    path = Path(path)
    return parse_config(_read(path), source=str(path))


def load_sections(path: str | Path, names: tuple[str, ...]) -> dict[str, Any]:
    """Only the named sections of a config file, valid whatever the others hold.

    For 'facegate lock', which must drive the relay to its locked level even when an
    edit broke some other section since the daemon started.
    """
    path = Path(path)
    text = _read(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    known = sections()
    found = {}
    for name in names:
        try:
            found[name] = build_section(known[name], raw.get(name, {}), name)
        except ConfigError as exc:
            raise ConfigError(_format(str(path), *_locate(text, str(exc), name))) from None
    return found


def config_errors(path: str | Path) -> tuple[Config | None, list[str]]:
    """(Config, []) for a valid file, else (None, every error as "file:line: key: ...")."""
    path = Path(path)
    try:
        text = _read(path)
    except ConfigError as exc:
        return None, [str(exc)]
    return validate_text(text, source=str(path))
