"""The door: lock relay, door contact, exit and enrol buttons, status LED, buzzer.

Fail-secure by construction: the relay pin is the first pin set up, driving the
locked level from its first instant; an unlock is a pulse that ``tick`` ends when
due; ``lock_now``, ``lock_for_good`` and ``close`` lock unconditionally. Time comes in as arguments
(``now``, monotonic seconds): no threads, no sleeps, no clock reads here. The
daemon calls ``tick(now)`` every loop and logs the events it returns.

"Active" means, per pin: relay energised so the door unlocks, door contact
reporting open, button pressed, LED lit, buzzer sounding. Each pin's polarity says
which electrical level is active.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..errors import ConfigError
from ..schema import setting
from ..types import DoorSignal, DoorState, EventKind
from .gpio import MAX_BCM_PIN, PULLS, GpioBackend

POLARITIES = ("active_high", "active_low")
OPTIONAL = "; 0 = not fitted"


def _pin(default: int, what: str, required: bool = False) -> int:
    return setting(
        default,
        f"BCM GPIO number of the {what}" + ("" if required else OPTIONAL),
        min=1 if required else 0,
        max=MAX_BCM_PIN,
    )


def _polarity(default: str, active: str) -> str:
    return setting(
        default,
        f"'active_high' if a high level means {active}, else 'active_low'",
        choices=POLARITIES,
    )


def _pull(what: str) -> str:
    return setting(
        "up",
        f"internal pull on the {what} input: 'up', 'down' or 'off' "
        "(Jetson ignores internal pulls: fit resistors)",
        choices=PULLS,
    )


@dataclass(frozen=True)
class DoorConfig:
    """Door wiring (BCM numbering) and timings."""

    relay_pin: int = _pin(17, "lock relay", required=True)
    relay_polarity: str = _polarity("active_high", "the relay unlocks the door")
    unlock_seconds: float = setting(5.0, "length of one unlock pulse", min=0.5, max=60.0)
    door_contact_pin: int = _pin(0, "door contact (reed switch)")
    door_contact_polarity: str = _polarity("active_high", "the door is open")
    door_contact_pull: str = _pull("door contact")
    held_open_seconds: float = setting(
        30.0,
        "door open longer than this raises 'door_held_open' and the buzzer",
        min=1.0,
        max=3600.0,
    )
    exit_button_pin: int = _pin(0, "exit (request-to-exit) button")
    exit_button_polarity: str = _polarity("active_low", "the exit button is pressed")
    exit_button_pull: str = _pull("exit button")
    enrol_button_pin: int = _pin(0, "enrol button")
    enrol_button_polarity: str = _polarity("active_low", "the enrol button is pressed")
    enrol_button_pull: str = _pull("enrol button")
    enrol_hold_seconds: float = setting(
        3.0, "how long the enrol button must be held to raise 'enrol_pressed'", min=0.5, max=30.0
    )
    debounce_seconds: float = setting(
        0.05, "an input change counts once it has been stable this long", min=0.0, max=1.0
    )
    led_pin: int = _pin(0, "status LED (lit while the door is unlocked)")
    led_polarity: str = _polarity("active_high", "the LED is lit")
    buzzer_pin: int = _pin(0, "buzzer")
    buzzer_polarity: str = _polarity("active_high", "the buzzer sounds")
    alarm_seconds: float = setting(
        10.0,
        "how long the buzzer sounds after 'door_forced' or 'door_held_open'",
        min=0.1,
        max=600.0,
    )

    def validate(self) -> None:
        """Two roles on one fitted pin is a wiring error."""
        used: dict[int, str] = {}
        for f in fields(self):
            if not f.name.endswith("_pin"):
                continue
            pin = getattr(self, f.name)
            if pin == 0:
                continue
            if pin in used:
                raise ConfigError(f"door.{f.name}: GPIO{pin} is already used by door.{used[pin]}")
            used[pin] = f.name


@dataclass(frozen=True)
class DoorEvent:
    """Something the door hardware reported: an event for the log (door_forced,
    door_held_open, exit_request) or a signal for the loop (enrol_pressed)."""

    kind: EventKind | DoorSignal
    time: float
    detail: str = ""


class _Output:
    """An output pin in terms of active/inactive; set up inactive."""

    def __init__(self, backend: GpioBackend, pin: int, polarity: str) -> None:
        self._backend = backend
        self._pin = pin
        self._active_high = polarity == "active_high"
        backend.setup_output(pin, not self._active_high)
        self.active = False

    def set(self, active: bool) -> None:
        self._backend.write(self._pin, active == self._active_high)
        self.active = active


class _Input:
    """A debounced input: ``active`` changes once the new level has held for
    ``debounce`` seconds; ``since`` is when that new level was first seen."""

    def __init__(
        self, backend: GpioBackend, pin: int, polarity: str, pull: str, debounce: float, now: float
    ) -> None:
        self._backend = backend
        self._pin = pin
        self._active_high = polarity == "active_high"
        self._debounce = debounce
        backend.setup_input(pin, pull)
        self.active = self._sample()
        self.since = now
        self._pending_since: float | None = None

    def _sample(self) -> bool:
        return self._backend.read(self._pin) == self._active_high

    def update(self, now: float) -> bool:
        """Sample the pin; True when the debounced state changed."""
        if self._sample() == self.active:
            self._pending_since = None
            return False
        if self._pending_since is None:
            self._pending_since = now
        if now - self._pending_since < self._debounce:
            return False
        self.active = not self.active
        self.since = self._pending_since
        self._pending_since = None
        return True


class DoorController:
    """Drives the door from ``grant``/``tick`` calls; returns DoorEvents from ``tick``.

    Owns ``backend`` from construction on: ``close`` locks and closes it. A door
    opening that starts after the last unlock pulse ended (and was not an exit
    request) is 'door_forced'; any opening longer than ``held_open_seconds`` is
    'door_held_open', once per opening. Both sound the buzzer for ``alarm_seconds``.
    """

    def __init__(self, config: DoorConfig, backend: GpioBackend, now: float) -> None:
        self._config = config
        self._backend = backend
        try:
            # The relay first, so it is locked before anything else can fail.
            self._relay = _Output(backend, config.relay_pin, config.relay_polarity)
            self._led = self._output(config.led_pin, config.led_polarity)
            self._buzzer = self._output(config.buzzer_pin, config.buzzer_polarity)
            self._contact = self._input(
                config.door_contact_pin, config.door_contact_polarity, config.door_contact_pull, now
            )
            self._exit = self._input(
                config.exit_button_pin, config.exit_button_polarity, config.exit_button_pull, now
            )
            self._enrol = self._input(
                config.enrol_button_pin, config.enrol_button_polarity, config.enrol_button_pull, now
            )
        except BaseException:
            backend.close()
            raise
        self._last_now = now
        self._unlocked = False
        self._pulse_end = -math.inf  # door openings starting by then were authorised
        self._buzzer_until: float | None = None
        self._held_reported = False
        self._forced = False  # the opening under way was not authorised
        self._enrol_reported = False
        self._for_good = False

    def _output(self, pin: int, polarity: str) -> _Output | None:
        return _Output(self._backend, pin, polarity) if pin else None

    def _input(self, pin: int, polarity: str, pull: str, now: float) -> _Input | None:
        if not pin:
            return None
        return _Input(self._backend, pin, polarity, pull, self._config.debounce_seconds, now)

    @property
    def unlocked(self) -> bool:
        """True while an unlock pulse is running."""
        return self._unlocked

    @property
    def door_open(self) -> bool | None:
        """The debounced door contact; None when no contact is fitted."""
        return None if self._contact is None else self._contact.active

    @property
    def state(self) -> DoorState:
        """Forced or held open while such an opening lasts, else open, unlocked (a pulse
        runs; the door is shut or has no contact) or locked."""
        if self._contact is not None and self._contact.active:
            if self._forced:
                return DoorState.FORCED
            return DoorState.HELD_OPEN if self._held_reported else DoorState.OPEN
        return DoorState.UNLOCKED if self._unlocked else DoorState.LOCKED

    def grant(self, now: float) -> None:
        """Start an unlock pulse of ``unlock_seconds`` (a running pulse is extended);
        nothing after ``lock_for_good``."""
        self._last_now = now
        if self._for_good:
            return
        self._pulse_end = max(self._pulse_end, now + self._config.unlock_seconds)
        if not self._unlocked:
            self._relay.set(True)
            self._set(self._led, True)
            self._unlocked = True

    def tick(self, now: float) -> list[DoorEvent]:
        """Sample inputs, end a due pulse, silence a due buzzer; return what happened."""
        self._last_now = now
        events: list[DoorEvent] = []
        if self._exit is not None and self._exit.update(now) and self._exit.active:
            self.grant(now)
            events.append(DoorEvent(EventKind.EXIT_REQUEST, now))
        self._check_enrol(now, events)
        self._check_door(now, events)
        if self._unlocked and not now < self._pulse_end:  # a NaN time ends the pulse
            self._lock()
        if self._buzzer_until is not None and now >= self._buzzer_until:
            self._set(self._buzzer, False)
            self._buzzer_until = None
        return events

    def lock_now(self) -> None:
        """Lock at once and end any pulse; for SIGTERM and any error in the loop."""
        self._pulse_end = min(self._pulse_end, self._last_now)
        self._lock()

    def lock_for_good(self) -> None:
        """Lock now and ignore every later grant, exit button included: the service is
        stopping (a signal handler calls this while the loop may be mid-step, or after
        ``close``, which locked already)."""
        self._for_good = True
        if not self._backend.closed:
            self.lock_now()

    def close(self) -> None:
        """Lock, silence, turn the LED off and close the backend. Idempotent."""
        if self._backend.closed:
            return
        try:
            self.lock_now()
            self._set(self._buzzer, False)
        finally:
            self._backend.close()

    def __enter__(self) -> DoorController:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _lock(self) -> None:
        self._relay.set(False)
        self._set(self._led, False)
        self._unlocked = False

    def _check_enrol(self, now: float, events: list[DoorEvent]) -> None:
        if self._enrol is None:
            return
        self._enrol.update(now)
        if not self._enrol.active:
            self._enrol_reported = False
        elif (
            not self._enrol_reported and now - self._enrol.since >= self._config.enrol_hold_seconds
        ):
            self._enrol_reported = True
            events.append(DoorEvent(DoorSignal.ENROL_PRESSED, now))

    def _check_door(self, now: float, events: list[DoorEvent]) -> None:
        if self._contact is None:
            return
        if self._contact.update(now) and self._contact.active:
            self._held_reported = False
            self._forced = not self._contact.since <= self._pulse_end
            if self._forced:
                events.append(DoorEvent(EventKind.DOOR_FORCED, now, "opened while locked"))
                self._alarm(now)
        if (
            self._contact.active
            and not self._held_reported
            and now - self._contact.since >= self._config.held_open_seconds
        ):
            self._held_reported = True
            open_for = now - self._contact.since
            events.append(DoorEvent(EventKind.DOOR_HELD_OPEN, now, f"open for {open_for:.0f} s"))
            self._alarm(now)

    def _alarm(self, now: float) -> None:
        self._set(self._buzzer, True)
        self._buzzer_until = now + self._config.alarm_seconds

    @staticmethod
    def _set(output: _Output | None, active: bool) -> None:
        if output is not None:
            output.set(active)
