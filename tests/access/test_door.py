"""The door controller on the mock backend with a fake clock: no sleeps."""

from __future__ import annotations

import pytest

from edge.access.door import DoorConfig, DoorController, DoorEvent
from edge.access.gpio.mock import MockGpio
from edge.clock import FakeClock
from edge.errors import ConfigError, GpioError
from edge.schema import build_section

RELAY, CONTACT, EXIT, ENROL, LED, BUZZER = 17, 27, 22, 23, 24, 25

WIRED = DoorConfig(
    relay_pin=RELAY,
    relay_polarity="active_low",  # a common opto relay module: low = energised
    unlock_seconds=5.0,
    door_contact_pin=CONTACT,
    door_contact_polarity="active_high",
    door_contact_pull="down",
    held_open_seconds=30.0,
    exit_button_pin=EXIT,
    exit_button_polarity="active_low",
    exit_button_pull="up",
    enrol_button_pin=ENROL,
    enrol_button_polarity="active_low",
    enrol_button_pull="up",
    enrol_hold_seconds=3.0,
    debounce_seconds=0.05,
    led_pin=LED,
    buzzer_pin=BUZZER,
    alarm_seconds=10.0,
)
LOCKED, UNLOCKED = True, False  # relay levels for active_low
DOOR_CLOSED, DOOR_OPEN = False, True


class Rig:
    """A controller on a mock backend; inputs idle at their pulls: door closed
    (pulled down), buttons released (pulled up)."""

    def __init__(self, config: DoorConfig = WIRED) -> None:
        self.clock = FakeClock(start=100.0)
        self.gpio = MockGpio(self.clock)  # mock inputs idle at their pull
        self.door = DoorController(config, self.gpio, self.clock.now())

    def at(self, t: float) -> list[DoorEvent]:
        """Advance to 100 + t seconds and tick (with the exact time: float steps drift)."""
        now = 100.0 + t
        self.clock.advance(now - self.clock.now())
        return self.door.tick(now)

    def kinds(self, t: float) -> list[str]:
        return [e.kind for e in self.at(t)]

    def relay(self) -> bool:
        return self.gpio.level(RELAY)


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_relay_is_the_first_pin_set_up_and_starts_locked(rig):
    assert rig.gpio.setup_order[0] == RELAY
    assert rig.gpio.changes[0].pin == RELAY and rig.gpio.changes[0].level is LOCKED
    assert rig.gpio.level(LED) is False and rig.gpio.level(BUZZER) is False
    assert not rig.door.unlocked


def test_unlock_pulse_has_exactly_the_configured_length(rig):
    rig.at(1.0)
    rig.door.grant(rig.clock.now())
    assert rig.relay() is UNLOCKED and rig.gpio.level(LED) is True
    rig.at(5.999)
    assert rig.relay() is UNLOCKED
    rig.at(6.0)
    assert rig.relay() is LOCKED and rig.gpio.level(LED) is False
    assert rig.gpio.history(RELAY) == [(100.0, LOCKED), (101.0, UNLOCKED), (106.0, LOCKED)]


def test_grant_during_a_pulse_extends_it_without_relatching(rig):
    rig.door.grant(100.0)
    rig.at(3.0)
    rig.door.grant(103.0)
    rig.at(7.0)
    assert rig.relay() is UNLOCKED
    rig.at(8.0)
    assert rig.gpio.history(RELAY) == [(100.0, LOCKED), (100.0, UNLOCKED), (108.0, LOCKED)]


def test_lock_now_locks_mid_pulse_and_the_pulse_does_not_resume(rig):
    rig.door.grant(100.0)
    rig.at(1.0)
    rig.door.lock_now()
    assert rig.relay() is LOCKED and not rig.door.unlocked
    rig.at(2.0)
    assert rig.relay() is LOCKED


def test_lock_for_good_locks_and_ignores_later_grants_and_the_exit_button(rig):
    rig.door.grant(100.0)
    rig.door.lock_for_good()
    assert rig.relay() is LOCKED and not rig.door.unlocked
    rig.door.grant(100.5)
    rig.gpio.drive(EXIT, False)  # pressed (active low)
    rig.at(1.0)
    assert rig.kinds(1.1) == ["exit_request"]  # still reported, not obeyed
    assert rig.relay() is LOCKED and not rig.door.unlocked
    assert [level for _, level in rig.gpio.history(RELAY)] == [LOCKED, UNLOCKED, LOCKED]


def test_close_locks_and_silences_and_closes_the_backend(rig):
    rig.door.grant(100.0)
    rig.gpio.drive(CONTACT, DOOR_OPEN)
    rig.at(20.0)
    rig.at(20.1)  # forced (pulse ended at 105): buzzer sounding
    assert rig.gpio.level(BUZZER) is True
    rig.door.grant(rig.clock.now())
    rig.door.close()
    assert rig.relay() is LOCKED
    assert rig.gpio.level(BUZZER) is False and rig.gpio.level(LED) is False
    assert rig.gpio.closed
    rig.door.close()  # idempotent
    with pytest.raises(GpioError):
        rig.door.grant(rig.clock.now())


def test_context_manager_locks_on_an_exception(rig):
    with pytest.raises(RuntimeError):
        with rig.door:
            rig.door.grant(100.0)
            raise RuntimeError("loop failed")
    assert rig.relay() is LOCKED and rig.gpio.closed


def test_door_opened_within_the_pulse_is_not_forced(rig):
    rig.door.grant(100.0)
    rig.gpio.drive(CONTACT, DOOR_OPEN)
    # the opening starts at 4.99 s, inside the pulse, and is confirmed after it
    assert rig.kinds(4.99) == []
    assert rig.kinds(5.03) == []
    assert rig.kinds(5.06) == []
    assert rig.door.door_open is True
    assert rig.gpio.level(BUZZER) is False


def test_door_opened_while_locked_is_forced_and_sounds_the_buzzer(rig):
    rig.door.grant(100.0)
    rig.at(5.0)
    rig.gpio.drive(CONTACT, DOOR_OPEN)
    assert rig.kinds(5.01) == []  # not yet debounced
    events = rig.at(5.07)
    assert [e.kind for e in events] == ["door_forced"]
    assert events[0].time == 105.07
    assert rig.gpio.level(BUZZER) is True
    rig.at(15.06)
    assert rig.gpio.level(BUZZER) is True
    rig.at(15.07)
    assert rig.gpio.level(BUZZER) is False


def test_contact_bounce_shorter_than_debounce_is_ignored(rig):
    rig.gpio.drive(CONTACT, DOOR_OPEN)
    rig.at(1.0)
    rig.gpio.drive(CONTACT, DOOR_CLOSED)
    assert rig.kinds(1.04) == []
    rig.gpio.drive(CONTACT, DOOR_OPEN)
    assert rig.kinds(1.08) == []  # a new change: its own debounce starts again
    assert rig.door.door_open is False


def test_held_open_is_reported_once_per_opening(rig):
    rig.door.grant(100.0)
    rig.gpio.drive(CONTACT, DOOR_OPEN)
    rig.at(1.0)
    rig.at(1.06)
    assert rig.kinds(30.9) == []
    events = rig.at(31.0)
    assert [e.kind for e in events] == ["door_held_open"]
    assert rig.gpio.level(BUZZER) is True
    assert rig.kinds(60.0) == [] and rig.kinds(200.0) == []
    # closing and re-opening (authorised) arms it again
    rig.gpio.drive(CONTACT, DOOR_CLOSED)
    rig.at(201.0)
    rig.at(201.1)
    rig.door.grant(rig.clock.now())
    rig.gpio.drive(CONTACT, DOOR_OPEN)
    rig.at(202.0)
    rig.at(202.1)
    assert rig.kinds(231.9) == []
    assert rig.kinds(232.0) == ["door_held_open"]


def test_state_follows_the_pulse_the_contact_and_the_alarms(rig):
    assert rig.door.state == "locked"
    rig.door.grant(100.0)
    assert rig.door.state == "unlocked"
    rig.gpio.drive(CONTACT, DOOR_OPEN)
    rig.at(1.0)
    rig.at(1.06)
    assert rig.door.state == "open"
    rig.at(31.0)
    assert rig.door.state == "held_open"
    rig.gpio.drive(CONTACT, DOOR_CLOSED)
    rig.at(40.0)
    rig.at(40.06)
    assert rig.door.state == "locked"  # the pulse ended at 5 s
    rig.gpio.drive(CONTACT, DOOR_OPEN)  # opened while locked
    rig.at(41.0)
    rig.at(41.06)
    assert rig.door.state == "forced"
    rig.at(80.0)
    assert rig.door.state == "forced"  # held open as well: forced says more
    rig.gpio.drive(CONTACT, DOOR_CLOSED)
    rig.at(81.0)
    rig.at(81.06)
    rig.door.grant(rig.clock.now())
    rig.gpio.drive(CONTACT, DOOR_OPEN)  # the next, authorised, opening is not forced
    rig.at(82.0)
    rig.at(82.06)
    assert rig.door.state == "open"


def test_exit_button_is_debounced_and_unlocks(rig):
    rig.gpio.drive(EXIT, False)  # pressed (active_low)
    assert rig.kinds(1.0) == []
    rig.gpio.drive(EXIT, True)  # bounce
    assert rig.kinds(1.02) == []
    rig.gpio.drive(EXIT, False)
    assert rig.kinds(1.03) == []
    assert rig.kinds(1.07) == []
    assert rig.relay() is LOCKED
    events = rig.at(1.09)
    assert [e.kind for e in events] == ["exit_request"]
    assert rig.relay() is UNLOCKED
    assert rig.kinds(3.0) == []  # held: one request per press
    rig.at(6.08)
    assert rig.relay() is UNLOCKED
    rig.at(6.09)
    assert rig.relay() is LOCKED


def test_door_opened_after_exit_request_is_not_forced(rig):
    rig.gpio.drive(EXIT, False)
    rig.at(1.0)
    rig.at(1.06)
    rig.gpio.drive(EXIT, True)
    rig.gpio.drive(CONTACT, DOOR_OPEN)
    rig.at(2.0)
    assert rig.kinds(2.06) == []
    assert rig.door.door_open is True


def test_enrol_long_press_reports_once(rig):
    rig.gpio.drive(ENROL, False)
    rig.at(1.0)
    rig.at(1.06)  # debounced press, held from 1.0
    assert rig.kinds(3.99) == []
    assert rig.kinds(4.0) == ["enrol_pressed"]
    assert rig.kinds(10.0) == []
    rig.gpio.drive(ENROL, True)
    rig.at(11.0)
    rig.at(11.06)
    rig.gpio.drive(ENROL, False)
    rig.at(12.0)
    assert rig.kinds(14.99) == []
    assert rig.kinds(15.0) == ["enrol_pressed"]


def test_short_enrol_press_reports_nothing(rig):
    rig.gpio.drive(ENROL, False)
    rig.at(1.0)
    rig.at(2.0)
    rig.gpio.drive(ENROL, True)
    assert rig.kinds(2.1) == [] and rig.kinds(10.0) == []


def test_relay_only_install_needs_no_other_pins():
    clock = FakeClock()
    gpio = MockGpio(clock)
    door = DoorController(DoorConfig(relay_pin=RELAY), gpio, clock.now())
    assert gpio.setup_order == [RELAY]
    assert gpio.level(RELAY) is False  # active_high default: low = locked
    door.grant(clock.now())
    assert gpio.level(RELAY) is True
    assert door.door_open is None
    clock.advance(5.0)
    assert door.tick(clock.now()) == []
    assert gpio.level(RELAY) is False


def test_a_failed_setup_leaves_the_relay_locked_and_closes_the_backend():
    clock = FakeClock()
    gpio = MockGpio(clock)
    gpio.setup_input(EXIT, "up")  # someone else holds the exit pin
    with pytest.raises(GpioError, match="already set up"):
        DoorController(DoorConfig(relay_pin=RELAY, exit_button_pin=EXIT), gpio, clock.now())
    assert gpio.level(RELAY) is False and gpio.closed


def test_door_section_bounds_and_pin_clashes():
    assert build_section(DoorConfig, {"relay_pin": 5}, "door").relay_pin == 5
    with pytest.raises(ConfigError, match="door.relay_pin: 0 is below the minimum 1"):
        build_section(DoorConfig, {"relay_pin": 0}, "door")
    with pytest.raises(ConfigError, match="door.led_pin: 28 is above the maximum 27"):
        build_section(DoorConfig, {"led_pin": 28}, "door")
    with pytest.raises(ConfigError, match="door.buzzer_polarity: 'low' is not one of"):
        build_section(DoorConfig, {"buzzer_polarity": "low"}, "door")
    with pytest.raises(
        ConfigError, match="door.exit_button_pin: GPIO17 is already used by door.relay_pin"
    ):
        build_section(DoorConfig, {"exit_button_pin": 17}, "door")
    with pytest.raises(ConfigError, match="door.unlock_seconds: 0.1 is below"):
        build_section(DoorConfig, {"unlock_seconds": 0.1}, "door")
    with pytest.raises(ConfigError, match="door.relay_latch: unknown key"):
        build_section(DoorConfig, {"relay_latch": True}, "door")
