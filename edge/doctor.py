"""Health checks for ``facegate check-config`` and ``facegate doctor``.

Each check is a small function returning a :class:`Check` and printing nothing;
the commands in ``cli/ops.py`` print them. Doctor only looks: it configures no GPIO
pin (a running door's relay must not be touched) and writes nothing, except that
opening the gallery does what any opening does: hold its lock file, remove partial
backups nobody is writing, and migrate an older schema forward.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .access.gpio import GpioConfig
from .access.gpio.rpi import import_gpio_module
from .camera import CameraConfig, EndOfStream, create_source
from .certificate import fingerprint, load_certificate
from .clock import SystemClock
from .config import Config, WebConfig
from .errors import CameraError, ConfigError, FacegateError
from .gallery import outbox, sync
from .gallery.key import read_key, read_private
from .gallery.store import Gallery, GalleryConfig
from .mqtt_config import MqttConfig
from .vision.models import BASE_PRECISION, model_spec

OK, WARN, FAIL = "ok", "warn", "FAIL"
MIN_YEAR = 2024  # a clock before this was never set (no RTC, no network yet)
DISK_FAIL_BYTES = 50 * 1024 * 1024
DISK_WARN_BYTES = 500 * 1024 * 1024
CAMERA_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, ``ok``/``warn``/``FAIL``, and what to do."""

    name: str
    status: str
    message: str

    def line(self) -> str:
        return f"{self.status:<4}  {self.name}: {self.message}"


# --- configuration ----------------------------------------------------------------


def config_warnings(config: Config) -> list[str]:
    """Valid choices that should never reach a real door."""
    warnings = []
    if config.gpio.backend == "mock":
        warnings.append('mock GPIO: the door is not driven (gpio.backend = "mock")')
    if config.camera.source == "replay":
        warnings.append(
            f"replay camera: frames come from {config.camera.replay_path}, not a camera "
            '(camera.source = "replay")'
        )
    return warnings


# --- models -----------------------------------------------------------------------


def check_model(models_dir: Path, model_id: str, precision: str = BASE_PRECISION) -> Check:
    """The model's files at that precision exist and match the manifest's sha256."""
    name = f"model {model_id}" if precision == BASE_PRECISION else f"model {model_id} ({precision})"
    try:
        spec = model_spec(models_dir, model_id, precision)
    except FacegateError as exc:
        return Check(name, FAIL, f"{exc}; reinstall the models (scripts/install.sh copies them)")
    return Check(name, OK, f"{spec.param_path.name} and {spec.bin_path.name} match the manifest")


# --- gallery ----------------------------------------------------------------------


def check_gallery_key(key_file: str | Path) -> Check:
    """The key file exists, is a 256-bit hex key, mode 0600, owned by this user."""
    try:
        read_key(key_file)  # it checks mode and owner and says how to fix them
    except FacegateError as exc:
        return Check("gallery key", FAIL, str(exc))
    return Check("gallery key", OK, f"{key_file} (mode 0600)")


def check_gallery(config: GalleryConfig) -> Check:
    """The gallery opens with its key and passes its integrity check."""
    try:
        with Gallery.from_config(config) as gallery:
            problems = gallery.check()
            people = len(gallery.people())
    except FacegateError as exc:
        return Check("gallery", FAIL, str(exc))
    if problems:
        return Check(
            "gallery",
            FAIL,
            f"{config.path}: {'; '.join(problems)}; restore it from a backup",
        )
    return Check("gallery", OK, f"{config.path}: integrity ok, {people} people")


def disk_space_status(folder: Path, free_bytes: int) -> Check:
    """Judge the free space left beside the gallery (the event log grows there)."""
    free_mb = free_bytes // (1024 * 1024)
    if free_bytes < DISK_FAIL_BYTES:
        return Check("disk space", FAIL, f"{free_mb} MB free in {folder}; free some space now")
    if free_bytes < DISK_WARN_BYTES:
        return Check("disk space", WARN, f"only {free_mb} MB free in {folder}; free some space")
    return Check("disk space", OK, f"{free_mb} MB free in {folder}")


def check_disk_space(folder: str | Path) -> Check:
    folder = Path(folder)
    try:
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return Check(
            "disk space",
            FAIL,
            f"cannot examine {folder}: {exc.strerror}; create it or fix gallery.path",
        )
    return disk_space_status(folder, free)


# --- devices ----------------------------------------------------------------------


def check_camera(config: CameraConfig, timeout_s: float = CAMERA_TIMEOUT_S) -> Check:
    """Open the camera, read one frame, close it, within ``timeout_s``.

    The attempt runs in a daemon thread so that a driver that blocks forever
    costs a FAIL line, not a hung doctor.
    """
    outcome: dict[str, Any] = {}

    def grab() -> None:
        try:
            source = create_source(config, SystemClock())
            with source:
                frame = source.read()
            outcome["frame"] = frame
        except EndOfStream:
            outcome["error"] = "the replay input has no frames"
        except CameraError as exc:
            outcome["error"] = (
                f"{exc} (if the facegate service is running, it holds the camera: stop it first)"
            )
        except FacegateError as exc:
            outcome["error"] = str(exc)
        except Exception as exc:  # a driver's own exception: report it, do not crash doctor
            outcome["error"] = f"{type(exc).__name__}: {exc}"

    worker = threading.Thread(target=grab, name="doctor-camera", daemon=True)
    worker.start()
    worker.join(timeout_s)
    name = f"camera ({config.source})"
    if worker.is_alive():
        return Check(
            name,
            FAIL,
            f"no frame within {timeout_s:g} s; is the camera connected, "
            "and is the facegate service (which holds it) stopped?",
        )
    if "error" in outcome:
        return Check(name, FAIL, outcome["error"])
    height, width = outcome["frame"].image.shape[:2]
    where = ""
    if config.source == "replay":
        where = f" from {config.replay_path} (a recording, not a camera)"
    return Check(name, OK, f"read a {width}x{height} frame{where}")


def check_gpio(config: GpioConfig) -> Check:
    """The GPIO library imports. No pin is configured: the door may be in use."""
    if config.backend == "mock":
        return Check(
            "gpio", WARN, 'mock GPIO: the door is not driven; set gpio.backend = "rpi" at a door'
        )
    try:
        import_gpio_module(config.module)
    except FacegateError as exc:
        return Check("gpio", FAIL, str(exc))
    return Check("gpio", OK, f"{config.module} imports (pins not touched)")


# --- clock ------------------------------------------------------------------------


def ntp_synchronized(run: Callable[..., Any] = subprocess.run) -> bool | None:
    """systemd's NTP verdict: True, False, or None when it cannot be known."""
    if shutil.which("timedatectl") is None:
        return None
    try:
        result = run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    answer = result.stdout.strip()
    return {"yes": True, "no": False}.get(answer) if result.returncode == 0 else None


def check_clock(wall: float, synchronized: bool | None) -> Check:
    """A wall clock before MIN_YEAR was never set; schedules and the log need it."""
    year = dt.datetime.fromtimestamp(wall, dt.timezone.utc).year
    if year < MIN_YEAR:
        return Check(
            "clock",
            FAIL,
            f"the system clock says {year}; set the time (or enable "
            "NTP): schedules and the event log depend on it",
        )
    if synchronized is None:
        return Check(
            "clock",
            WARN,
            "NTP sync unknown (no timedatectl answer); make sure the "
            "time is kept, e.g. by systemd-timesyncd",
        )
    if not synchronized:
        return Check(
            "clock",
            WARN,
            "not synchronised with NTP; enable it with 'timedatectl set-ntp true' or fit an RTC",
        )
    return Check("clock", OK, "synchronised with NTP")


# --- all of them ------------------------------------------------------------------


def check_web_certificate(config: WebConfig, wall: float) -> Check:
    """The web app's certificate and its fingerprint, for the first visit's comparison."""
    if not Path(config.cert).exists():
        return Check(
            "web", OK, f"no certificate at {config.cert}: the web app is not set up (optional)"
        )
    try:
        cert = load_certificate(config.cert)
    except ConfigError as exc:
        return Check("web", FAIL, str(exc))
    expires = cert.not_valid_after_utc.timestamp()
    if not wall < expires:
        return Check("web", FAIL, f"{config.cert} expired; make a new one with 'facegate web cert'")
    return Check(
        "web",
        OK,
        f"https://<this device>:{config.port}/ certificate SHA-256 fingerprint {fingerprint(cert)}",
    )


def check_site(config: MqttConfig, gallery: GalleryConfig, wall: float) -> list[Check]:
    """With [mqtt] on: the site key file is guarded, and the gallery says when the site
    was last heard in full and how many events wait for the broker."""
    try:
        read_private(Path(config.site_key_file), "site key file", "see README, Many doors")
        checks = [Check("site key", OK, f"{config.site_key_file} (mode 0600)")]
    except FacegateError as exc:
        checks = [Check("site key", FAIL, str(exc))]
    try:
        with Gallery.from_config(gallery) as opened:
            synced = sync.last_sync(opened)
            with opened.reading() as conn:
                waiting = outbox.waiting(conn)
    except FacegateError as exc:
        return [*checks, Check("site sync", FAIL, str(exc))]
    queued = f"{waiting} event(s) wait for the broker"
    if synced is None:
        return [*checks, Check("site sync", WARN, f"never synced with the site; {queued}")]
    age = wall - synced
    said = f"last in step with site {config.site!r} {age:.0f} s ago; {queued}"
    limit = config.max_offline_seconds
    if limit and not age <= limit:
        return [
            *checks,
            Check(
                "site sync",
                FAIL,
                f"{said}: past max_offline_seconds ({limit:g}), the door denies everyone; "
                "is facegate-mqtt running and the broker reachable? (journalctl -u facegate-mqtt)",
            ),
        ]
    return [*checks, Check("site sync", OK, said)]


def run_checks(config: Config, hardware: bool = True) -> list[Check]:
    """Every check on a valid config, in the order a person would fix things.

    The gallery is opened only when its key is usable; otherwise the key's FAIL
    already says what to fix. Without ``hardware`` the camera and the GPIO are left
    alone (the web app asks while the daemon owns them; its status tells of them).
    """
    models_dir = config.models.resolved_dir()
    checks = [
        check_model(models_dir, config.detector.model),
        check_model(models_dir, config.landmarks.model),
        check_model(models_dir, config.embedder.model, config.embedder.precision),
    ]
    if config.liveness.level != "off":
        checks += [check_model(models_dir, model) for model in config.liveness.models]
    checks.append(check_gallery_key(config.gallery.key_file))
    if checks[-1].status == OK:
        checks.append(check_gallery(config.gallery))
        if config.mqtt.enabled:
            checks += check_site(config.mqtt, config.gallery, time.time())
    if hardware:
        checks += [check_camera(config.camera), check_gpio(config.gpio)]
    checks += [
        check_clock(time.time(), ntp_synchronized()),
        check_disk_space(Path(config.gallery.path).parent),
        check_web_certificate(config.web, time.time()),
    ]
    return checks
