"""Weekly schedules: parsing what people write, and which local times they allow."""

from __future__ import annotations

import time

import pytest

from edge.access.schedule import Schedule


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Local time is the device's; pin it so the weekdays below are certain."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


MONDAY = 1_700_438_400.0  # 2023-11-20 00:00 UTC, a Monday
HOUR, DAY = 3600.0, 86400.0


def at(day: int, hour: float) -> float:
    return MONDAY + day * DAY + hour * HOUR


def test_office_hours_on_weekdays_only():
    office = Schedule.parse(["mon-fri 08:00-18:00"])
    assert office.allows(at(0, 8))
    assert office.allows(at(4, 17.99))
    assert not office.allows(at(0, 7.99))
    assert not office.allows(at(2, 18))  # the end is exclusive
    assert not office.allows(at(5, 12))  # Saturday


def test_a_window_past_midnight_belongs_to_the_day_it_starts():
    night = Schedule.parse(["fri 22:00-06:00"])
    assert night.allows(at(4, 23))  # Friday night
    assert night.allows(at(5, 5.5))  # Saturday early morning, same shift
    assert not night.allows(at(0, 5.5))  # Monday early: Sunday had no shift
    assert not night.allows(at(4, 5.5))  # Friday early: Thursday had no shift


def test_whole_days_lists_and_several_windows():
    schedule = Schedule.parse(["sat,sun 00:00-24:00", "wed 12:00-13:00"])
    assert schedule.allows(at(5, 0)) and schedule.allows(at(6, 23.99))
    assert schedule.allows(at(2, 12.5))
    assert not schedule.allows(at(2, 13)) and not schedule.allows(at(0, 12.5))


@pytest.mark.parametrize("wall", [float("nan"), float("inf"), -float("inf"), 1e300])
def test_a_time_that_cannot_be_placed_is_outside(wall):
    assert not Schedule.parse(["mon-sun 00:00-24:00"]).allows(wall)


def test_text_and_json_round_trip_in_canonical_form():
    schedule = Schedule.parse(["Mon,Tue,Wed,Thu,Fri,Sun 8:00-18:30", "sat 22:00-02:00"])
    assert str(schedule) == "mon-fri,sun 08:00-18:30, sat 22:00-02:00"
    assert Schedule.from_json(schedule.to_json()) == schedule


@pytest.mark.parametrize(
    "windows, message",
    [
        ([], "at least one window"),
        (["weekdays 08:00-18:00"], "unknown day"),
        (["mon-fri 8-18"], "not like"),
        (["fri-mon 08:00-18:00"], "runs backwards"),
        (["mon 25:00-26:00"], "not a time of day"),
        (["mon 08:60-09:00"], "not a time of day"),
        (["mon 24:00-02:00"], "not a time of day"),
        (["mon 08:00-08:00"], "is empty"),
        ([7], "is text"),
        (["mon 08:00-09:00"] * 29, "at most 28"),
    ],
)
def test_bad_windows_are_refused_by_name(windows, message):
    with pytest.raises(ValueError, match=message):
        Schedule.parse(windows)
