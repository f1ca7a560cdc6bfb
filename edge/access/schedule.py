"""Weekly access schedules: when in the week a person may enter.

A schedule is a list of windows, each some weekdays and a span of the terminal's local
time, written the way a facilities manager says it::

    mon-fri 08:00-18:00        Monday to Friday, eight to six
    sat,sun 10:00-14:00        weekends, ten to two
    fri 22:00-06:00            a night shift: Friday 22:00 to Saturday 06:00
    mon 00:00-24:00            all of Monday

A window whose end is not after its start runs past midnight into the next day and
belongs to the day it starts on. No schedule (None) means any time. Local time is the
device's (``/etc/localtime``), so a window follows daylight-saving changes.

Fail closed: a time that cannot be placed in the week (NaN, out of range) is outside
every window.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
MAX_WINDOWS = 28  # four a day is plenty; a bound keeps a stored schedule small

_WINDOW = re.compile(
    r"^\s*(?P<days>[a-z,\-]+)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$"
)


@dataclass(frozen=True)
class Window:
    """Some weekdays (0 = Monday) and a span in minutes after local midnight."""

    days: frozenset[int]
    start: int
    end: int  # not after start: the window runs past midnight into the next day

    def covers(self, weekday: int, minute: int) -> bool:
        if self.start < self.end:
            return weekday in self.days and self.start <= minute < self.end
        started_today = weekday in self.days and minute >= self.start
        started_yesterday = (weekday - 1) % 7 in self.days and minute < self.end
        return started_today or started_yesterday

    def __str__(self) -> str:
        return f"{_format_days(self.days)} {_format_minute(self.start)}-{_format_minute(self.end)}"


@dataclass(frozen=True)
class Schedule:
    """The windows in which a person may enter (see the module doc for the notation)."""

    windows: tuple[Window, ...]

    @classmethod
    def parse(cls, texts: Sequence[str]) -> Schedule:
        """Windows as people write them; ValueError names the one that is wrong."""
        if not texts:
            raise ValueError("a schedule needs at least one window, e.g. 'mon-fri 08:00-18:00'")
        if len(texts) > MAX_WINDOWS:
            raise ValueError(f"a schedule has at most {MAX_WINDOWS} windows, got {len(texts)}")
        return cls(tuple(_parse_window(text) for text in texts))

    def allows(self, wall_time: float) -> bool:
        """True when ``wall_time`` (unix seconds) falls in a window, in local time."""
        if not math.isfinite(wall_time):
            return False
        try:
            local = time.localtime(wall_time)
        except (OverflowError, OSError, ValueError):
            return False
        minute = local.tm_hour * 60 + local.tm_min
        return any(window.covers(local.tm_wday, minute) for window in self.windows)

    def __str__(self) -> str:
        return ", ".join(str(window) for window in self.windows)

    def to_json(self) -> str:
        return json.dumps([str(window) for window in self.windows])

    @classmethod
    def from_json(cls, text: str) -> Schedule:
        return cls.parse(json.loads(text))


def _parse_window(text: str) -> Window:
    if not isinstance(text, str):
        raise ValueError(f"a schedule window is text like 'mon-fri 08:00-18:00', got {text!r}")
    match = _WINDOW.match(text.lower())
    if match is None:
        raise ValueError(
            f"schedule window {text!r} is not like 'mon-fri 08:00-18:00' "
            "(days: mon..sun, ranges with '-', lists with ',')"
        )
    start = _parse_minute(match["start"], text, allow_24=False)
    end = _parse_minute(match["end"], text, allow_24=True)
    if start == end:
        raise ValueError(f"schedule window {text!r} is empty (start and end are the same)")
    return Window(_parse_days(match["days"], text), start, end)


def _parse_days(spec: str, text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise ValueError(
                f"schedule window {text!r}: unknown day in {part!r} "
                f"(days are {', '.join(WEEKDAYS)})"
            )
        a = WEEKDAYS.index(first)
        b = WEEKDAYS.index(last) if last else a
        if b < a:
            raise ValueError(
                f"schedule window {text!r}: {part!r} runs backwards; "
                "write sat,sun-mon as sat-sun,mon"
            )
        days.update(range(a, b + 1))
    return frozenset(days)


def _parse_minute(hhmm: str, text: str, allow_24: bool) -> int:
    hours, minutes = (int(x) for x in hhmm.split(":"))
    value = hours * 60 + minutes
    if minutes >= 60 or value > MINUTES_PER_DAY or (value == MINUTES_PER_DAY and not allow_24):
        raise ValueError(f"schedule window {text!r}: {hhmm} is not a time of day")
    return value


def _format_minute(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _format_days(days: frozenset[int]) -> str:
    """Consecutive days as ranges: {0,1,2,3,4,6} -> 'mon-fri,sun'."""
    parts, ordered = [], sorted(days)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        first, last = WEEKDAYS[ordered[i]], WEEKDAYS[ordered[j]]
        parts.append(first if i == j else f"{first}-{last}")
        i = j + 1
    return ",".join(parts)
