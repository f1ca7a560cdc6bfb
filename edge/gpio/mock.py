"""A GPIO backend with no hardware: tests and the demo drive its inputs and read
back every output change, stamped with the injected clock."""

from __future__ import annotations

from dataclasses import dataclass

from ..clock import Clock
from . import GpioBackend, GpioConfig

NAME = "mock"


@dataclass(frozen=True)
class PinChange:
    """An output pin set to ``level`` at monotonic ``time`` (setup included)."""

    time: float
    pin: int
    level: bool


class MockGpio(GpioBackend):
    """In-memory pins. Inputs idle at the level their pull gives them ('off' reads low).

    ``setup_order`` lists pins in the order they were set up; ``changes`` records
    every output level driven, so a test can assert what the relay did and when.
    """

    name = NAME

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self._clock = clock
        self._levels: dict[int, bool] = {}
        self.setup_order: list[int] = []
        self.changes: list[PinChange] = []
        self.released: list[int] = []

    def drive(self, pin: int, level: bool) -> None:
        """Set the electrical level seen on an input pin (a button, a door contact)."""
        self._check(pin, "drive")
        if self._modes[pin] != "in":
            raise ValueError(f"GPIO{pin} is an output; drive inputs only")
        self._levels[pin] = bool(level)

    def level(self, pin: int) -> bool:
        """The present level of any set-up pin, readable after close too."""
        return self._levels[pin]

    def history(self, pin: int) -> list[tuple[float, bool]]:
        """(time, level) of every level driven on output ``pin``, oldest first."""
        return [(c.time, c.level) for c in self.changes if c.pin == pin]

    def _setup_output(self, pin: int, level: bool) -> None:
        self.setup_order.append(pin)
        self._set(pin, level)

    def _setup_input(self, pin: int, pull: str) -> None:
        self.setup_order.append(pin)
        self._levels[pin] = pull == "up"

    def _write(self, pin: int, level: bool) -> None:
        self._set(pin, level)

    def _read(self, pin: int) -> bool:
        return self._levels[pin]

    def _release(self, input_pins: list[int]) -> None:
        self.released.extend(input_pins)

    def _set(self, pin: int, level: bool) -> None:
        self._levels[pin] = level
        self.changes.append(PinChange(self._clock.now(), pin, level))


def create(config: GpioConfig, clock: Clock) -> MockGpio:
    return MockGpio(clock)
