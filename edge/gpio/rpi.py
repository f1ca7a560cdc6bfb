"""GPIO through the RPi.GPIO API, which three packages provide under two names.

* ``RPi.GPIO`` module: package RPi.GPIO on Pi 4 and earlier, rpi-lgpio on Pi 5
  (RPi.GPIO itself cannot drive the Pi 5's RP1 chip).
* ``Jetson.GPIO`` module: package Jetson.GPIO on NVIDIA Jetson boards. It ignores
  internal pulls: inputs there need external pull resistors.

The module is imported only when the backend opens, and only here. A missing
module is an error naming the package to install, never a silent fallback.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Callable

from ..clock import Clock
from ..errors import GpioError
from . import GpioBackend, GpioConfig

NAME = "rpi"

INSTALL_HINT = {
    "RPi.GPIO": "install 'rpi-lgpio' on a Raspberry Pi 5 or 'RPi.GPIO' on a Pi 4 or "
    "earlier (scripts/install.sh picks the right one)",
    "Jetson.GPIO": "install 'Jetson.GPIO' (scripts/install.sh does this on a Jetson)",
}

ACCESS_HINT = (
    "is the user in the 'gpio' group and are the udev rules from firmware_config/ installed?"
)


def import_gpio_module(module_name: str) -> ModuleType:
    """Import the named RPi.GPIO-API module or raise GpioError saying what to install."""
    if module_name not in INSTALL_HINT:
        valid = ", ".join(sorted(INSTALL_HINT))
        raise GpioError(f"unknown GPIO module {module_name!r} (valid: {valid})")
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise GpioError(
            f"GPIO module {module_name} cannot be imported ({exc}); {INSTALL_HINT[module_name]}"
        ) from None
    except RuntimeError as exc:
        # Raised at import on a board the module does not support, or without access.
        raise GpioError(
            f"GPIO module {module_name} cannot start: {exc} (is it the right module for "
            f"this board? {ACCESS_HINT})"
        ) from None


class RpiGpio(GpioBackend):
    """Pins through an RPi.GPIO-API module in BCM numbering.

    ``gpio`` is the imported module; tests pass a fake object with the same API.
    Library exceptions (RuntimeError for a missing /dev/gpiomem, ValueError for a
    pin the board lacks) become GpioError.
    """

    name = NAME

    def __init__(self, gpio: Any) -> None:
        super().__init__()
        self._gpio = gpio
        self._call(gpio.setwarnings, False)  # "channel in use" is expected: outputs outlive us
        self._call(gpio.setmode, gpio.BCM)

    def _setup_output(self, pin: int, level: bool) -> None:
        self._call(self._gpio.setup, pin, self._gpio.OUT, initial=self._level(level))

    def _setup_input(self, pin: int, pull: str) -> None:
        if pull == "off":
            self._call(self._gpio.setup, pin, self._gpio.IN)
        else:
            pud = self._gpio.PUD_UP if pull == "up" else self._gpio.PUD_DOWN
            self._call(self._gpio.setup, pin, self._gpio.IN, pull_up_down=pud)

    def _write(self, pin: int, level: bool) -> None:
        self._call(self._gpio.output, pin, self._level(level))

    def _read(self, pin: int) -> bool:
        return bool(self._call(self._gpio.input, pin))

    def _release(self, input_pins: list[int]) -> None:
        if input_pins:
            self._call(self._gpio.cleanup, input_pins)

    def _level(self, level: bool) -> Any:
        return self._gpio.HIGH if level else self._gpio.LOW

    @staticmethod
    def _call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        where = f"GPIO {getattr(func, '__name__', 'call')}{args}"
        try:
            return func(*args, **kwargs)
        except ValueError as exc:  # a pin or mode this board does not have
            raise GpioError(f"{where}: {exc}") from None
        except (RuntimeError, OSError) as exc:  # mostly no access to /dev/gpiomem or gpiochip
            raise GpioError(f"{where}: {exc}; {ACCESS_HINT}") from None


def create(config: GpioConfig, clock: Clock) -> RpiGpio:
    return RpiGpio(import_gpio_module(config.module))
