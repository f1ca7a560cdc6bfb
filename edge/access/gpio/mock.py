"""A GPIO backend with no hardware: tests and the demo drive its inputs and read
back every output change, stamped with the injected clock.

With a state file, every output level is also written to that file, so that another
process can watch the relay (a fault-injection test) or set it ('facegate lock' after
the daemon was killed). Like a real pin, the file keeps the last level driven when
the process that drove it dies.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ...clock import Clock
from ...errors import GpioError
from . import GpioBackend, GpioConfig

NAME = "mock"


@dataclass(frozen=True)
class PinChange:
    """An output pin set to ``level`` at monotonic ``time`` (setup included)."""

    time: float
    pin: int
    level: bool


def read_state_file(path: str | Path) -> dict[int, bool]:
    """Pin -> level of every output any process drove through the state file."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return {}
    return {int(pin): bool(level) for pin, level in json.loads(text).items()}


class MockGpio(GpioBackend):
    """In-memory pins. Inputs idle at the level their pull gives them ('off' reads low).

    ``setup_order`` lists pins in the order they were set up; ``changes`` records
    every output level driven, so a test can assert what the relay did and when.
    ``state_file`` (optional) mirrors every output level for other processes.
    """

    name = NAME

    def __init__(self, clock: Clock, state_file: str | Path | None = None) -> None:
        super().__init__()
        self._clock = clock
        self._state_file = Path(state_file) if state_file else None
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
        if self._state_file is not None:
            # the file is the pin: if it fails, so did the write
            self._store(self._state_file, pin, level)
        self._levels[pin] = level
        self.changes.append(PinChange(self._clock.now(), pin, level))

    @staticmethod
    def _store(path: Path, pin: int, level: bool) -> None:
        """Merge one level into the state file, atomically for its readers; the lock
        file serialises writers in different processes."""
        try:
            with open(path.with_name(path.name + ".lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                levels = read_state_file(path)
                levels[pin] = level
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps({str(p): v for p, v in sorted(levels.items())}))
                os.replace(tmp, path)
        except (OSError, ValueError) as exc:
            raise GpioError(f"mock GPIO state file {path}: {exc}") from None


def create(config: GpioConfig, clock: Clock) -> MockGpio:
    return MockGpio(clock, config.mock_state_file or None)
