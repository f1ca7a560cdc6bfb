"""GPIO backends: pin-level access to the door hardware, behind a registry.

A backend knows pins (BCM numbers) and levels (``True`` = high), nothing about
doors; ``door.py`` maps roles and polarity onto it. Every backend shares the
bookkeeping in :class:`GpioBackend` (which pins are set up, in which direction,
whether it is closed), so misuse fails the same way on a Pi and in a test.

Outputs keep driving their last level when the backend closes: releasing the relay
pin would leave it floating, and an active-low relay module reads a floating or
pulled-down input as "energise", which would unlock the door. The door controller
writes the locked level before it closes the backend. On a Pi the level outlives the
process too; on a Jetson (JetPack 6) the kernel releases the lines when the process
exits and they revert to their default, so there a hold resistor on the relay input
keeps the door locked whenever no process drives it (firmware_config/jetson.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from ...clock import Clock
from ...errors import ConfigError, GpioError
from ...schema import setting

# BCM numbers of the 40-pin header's GPIOs (same on Pi 1B+ to Pi 5; Jetson.GPIO
# maps BCM numbers onto its own header in BCM mode).
MAX_BCM_PIN = 27
PULLS = ("up", "down", "off")


@dataclass(frozen=True)
class GpioConfig:
    """Which GPIO backend drives the door, and through which library."""

    backend: str = setting(
        "rpi",
        "'rpi' drives real pins through the RPi.GPIO API; 'mock' drives nothing "
        "(demo and tests only, never on a door)",
        choices=("rpi", "mock"),
    )
    module: str = setting(
        "RPi.GPIO",
        "Python module providing the RPi.GPIO API for backend 'rpi': 'RPi.GPIO' "
        "(package RPi.GPIO on Pi 4 and earlier, rpi-lgpio on Pi 5) or 'Jetson.GPIO'",
        choices=("RPi.GPIO", "Jetson.GPIO"),
    )
    mock_state_file: str = setting(
        "",
        "backend 'mock' only: a JSON file mirroring every output pin's level, so that "
        "another process can watch the relay or lock it ('facegate lock'); empty = none",
    )


class GpioBackend:
    """Pin-level GPIO access; subclasses implement the ``_``-prefixed primitives.

    Levels are booleans (True = electrically high). Pins are BCM numbers 0..27.
    A pin is set up once, as an output with the level it drives from its first
    instant, or as an input with a pull; every later call checks that.
    """

    name = "abstract"

    def __init__(self) -> None:
        self._modes: dict[int, str] = {}
        self._closed = False

    # -- public API, identical for every backend ------------------------------

    def setup_output(self, pin: int, level: bool) -> None:
        """Make ``pin`` an output that drives ``level`` from the moment it exists."""
        self._claim(pin, "out")
        self._setup_output(pin, bool(level))

    def setup_input(self, pin: int, pull: str) -> None:
        """Make ``pin`` an input with pull 'up', 'down' or 'off'."""
        if pull not in PULLS:
            raise GpioError(f"GPIO{pin}: pull must be one of {', '.join(PULLS)}, got {pull!r}")
        self._claim(pin, "in")
        self._setup_input(pin, pull)

    def write(self, pin: int, level: bool) -> None:
        """Drive an output pin high (True) or low (False)."""
        self._check(pin, "write")
        if self._modes[pin] != "out":
            raise GpioError(f"GPIO{pin} is an input; it cannot be written")
        self._write(pin, bool(level))

    def read(self, pin: int) -> bool:
        """The level of a set-up pin (an output reads back what it drives)."""
        self._check(pin, "read")
        return self._read(pin)

    def close(self) -> None:
        """Release the inputs; outputs keep their last level (see module doc). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._release(sorted(p for p, mode in self._modes.items() if mode == "in"))

    @property
    def closed(self) -> bool:
        return self._closed

    # -- checks shared by every backend ---------------------------------------

    def _claim(self, pin: int, mode: str) -> None:
        if self._closed:
            raise GpioError(f"GPIO backend {self.name!r} is closed")
        _check_pin_number(pin)
        if pin in self._modes:
            raise GpioError(f"GPIO{pin} is already set up as an {self._modes[pin]}put")
        self._modes[pin] = mode

    def _check(self, pin: int, action: str) -> None:
        if self._closed:
            raise GpioError(f"cannot {action} GPIO{pin}: backend {self.name!r} is closed")
        if pin not in self._modes:
            raise GpioError(f"cannot {action} GPIO{pin}: it was never set up")

    # -- primitives -----------------------------------------------------------

    def _setup_output(self, pin: int, level: bool) -> None:
        raise NotImplementedError

    def _setup_input(self, pin: int, pull: str) -> None:
        raise NotImplementedError

    def _write(self, pin: int, level: bool) -> None:
        raise NotImplementedError

    def _read(self, pin: int) -> bool:
        raise NotImplementedError

    def _release(self, input_pins: list[int]) -> None:
        raise NotImplementedError


def _check_pin_number(pin: object) -> None:
    if isinstance(pin, bool) or not isinstance(pin, int) or not 0 <= pin <= MAX_BCM_PIN:
        raise GpioError(f"GPIO pin must be a BCM number 0..{MAX_BCM_PIN}, got {pin!r}")


# Backend name -> module defining create(config, clock). Imported on demand so
# that choosing 'mock' never imports hardware code and vice versa.
BACKENDS = {
    "mock": "edge.access.gpio.mock",
    "rpi": "edge.access.gpio.rpi",
}


def open_backend(config: GpioConfig, clock: Clock) -> GpioBackend:
    """Open the backend named in ``config``; an unknown name lists the valid ones."""
    module_name = BACKENDS.get(config.backend)
    if module_name is None:
        valid = ", ".join(sorted(BACKENDS))
        raise ConfigError(f"gpio.backend: unknown backend {config.backend!r} (valid: {valid})")
    create: Callable[[GpioConfig, Clock], GpioBackend] = importlib.import_module(module_name).create
    return create(config, clock)
