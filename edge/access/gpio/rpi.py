"""GPIO through the RPi.GPIO API, which three packages provide under two names.

* ``RPi.GPIO`` module: package RPi.GPIO on Pi 4 and earlier, rpi-lgpio on Pi 5
  (RPi.GPIO itself cannot drive the Pi 5's RP1 chip). On Raspberry Pi OS both come
  from apt (python3-rpi.gpio, python3-rpi-lgpio), which also covers Python versions
  that have no lgpio wheel.
* ``Jetson.GPIO`` module: package Jetson.GPIO on NVIDIA Jetson boards. It ignores
  internal pulls: inputs there need external pull resistors.

The module is imported only when the backend opens, and only here. A missing module
or one that cannot start is a HardwareError naming the fix, never a silent fallback
and never a traceback: these libraries raise whatever they like at import
(rpi-lgpio: ``lgpio.error`` when the chip cannot be opened or its notify FIFO cannot
be made in the working directory; RuntimeError or NotImplementedError off a Pi).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ...clock import Clock
from ...errors import GpioError, HardwareError
from . import GpioBackend, GpioConfig

NAME = "rpi"

INSTALL_HINT = {
    "RPi.GPIO": "on Raspberry Pi OS run 'sudo apt install python3-rpi-lgpio' on a Pi 5 or "
    "'sudo apt install python3-rpi.gpio' on a Pi 4 or earlier, in a venv made with "
    "--system-site-packages (scripts/install.sh does both)",
    "Jetson.GPIO": "install 'Jetson.GPIO' into the venv (scripts/install.sh does this on a Jetson)",
}

ACCESS_HINT = (
    "is the user in the 'gpio' group, are the udev rules from firmware_config/ installed, "
    "and is the working directory (or $LG_WD, for lgpio) writable? The unit sets both"
)


def import_gpio_module(module_name: str) -> ModuleType:
    """Import the named RPi.GPIO-API module or raise HardwareError saying what to do."""
    if module_name not in INSTALL_HINT:
        valid = ", ".join(sorted(INSTALL_HINT))
        raise GpioError(f"unknown GPIO module {module_name!r} (valid: {valid})")
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise HardwareError(
            f"GPIO module {module_name} cannot be imported ({exc}); {INSTALL_HINT[module_name]}"
        ) from None
    except Exception as exc:  # lgpio.error, RuntimeError, NotImplementedError, OSError...
        raise HardwareError(
            f"GPIO module {module_name} cannot start: {_describe(exc)} (is it the right module "
            f"for this board? {ACCESS_HINT})"
        ) from None


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class RpiGpio(GpioBackend):
    """Pins through an RPi.GPIO-API module in BCM numbering.

    ``gpio`` is the imported module; tests pass a fake object with the same API.
    A library failure while starting (numbering mode, which opens the chip on
    rpi-lgpio, or setting up a pin) is a HardwareError: no access, wrong board. A pin
    the board lacks (ValueError) and a failure while driving a set-up pin are
    GpioErrors.
    """

    name = NAME

    def __init__(self, gpio: Any) -> None:
        super().__init__()
        self._gpio = gpio
        # "channel in use" is expected: outputs outlive us
        self._call(gpio.setwarnings, False, failure=HardwareError)
        self._call(gpio.setmode, gpio.BCM, failure=HardwareError)

    def _setup_output(self, pin: int, level: bool) -> None:
        self._call(
            self._gpio.setup, pin, self._gpio.OUT, initial=self._level(level), failure=HardwareError
        )

    def _setup_input(self, pin: int, pull: str) -> None:
        if pull == "off":
            self._call(self._gpio.setup, pin, self._gpio.IN, failure=HardwareError)
        else:
            pud = self._gpio.PUD_UP if pull == "up" else self._gpio.PUD_DOWN
            self._call(
                self._gpio.setup, pin, self._gpio.IN, pull_up_down=pud, failure=HardwareError
            )

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
    def _call(
        func: Callable[..., Any], *args: Any, failure: type = GpioError, **kwargs: Any
    ) -> Any:
        where = f"GPIO {getattr(func, '__name__', 'call')}{args}"
        try:
            return func(*args, **kwargs)
        except ValueError as exc:  # a pin or mode this board does not have
            raise GpioError(f"{where}: {exc}") from None
        except Exception as exc:  # mostly no access to /dev/gpiomem or gpiochip (lgpio.error)
            raise failure(f"{where}: {_describe(exc)}; {ACCESS_HINT}") from None


def create(config: GpioConfig, clock: Clock) -> RpiGpio:
    return RpiGpio(import_gpio_module(config.module))
