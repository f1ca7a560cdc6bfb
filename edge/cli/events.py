"""``facegate events`` (the audit log) and ``facegate attendance`` (per person per day)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..errors import ExitCode
from ..gallery.attendance import attendance, day_bounds
from ..gallery.events import EventFilter
from ..gallery.reports import (
    ATTENDANCE_HEADER,
    EVENT_HEADER,
    attendance_rows,
    event_rows,
    parse_day,
    parse_when,
    write_csv,
)
from ..gallery.sync import site_events
from ..types import EventKind
from .common import add_config_argument
from .gallery import open_gallery

T = TypeVar("T")


def _argument(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse type from a parser that raises ValueError."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _when(text: str) -> float:
    return parse_when(text, time.time())


def register(subparsers) -> None:
    events = subparsers.add_parser("events", help="show the event log")
    events.add_argument("--since", type=_argument(_when), help="30m, 2h, 7d, or an ISO date/time")
    events.add_argument("--until", type=_argument(_when), help="same forms as --since")
    events.add_argument("--kind", choices=sorted(k.value for k in EventKind), help="only this kind")
    events.add_argument("--csv", action="store_true", help="CSV on stdout")
    add_config_argument(events)
    events.set_defaults(func=cmd_events)

    report = subparsers.add_parser(
        "attendance", help="first and last pass and count per person per day"
    )
    for flag, dest in (("--from", "first"), ("--to", "last")):
        report.add_argument(
            flag, dest=dest, type=_argument(parse_day), required=True, metavar="DAY"
        )
    report.add_argument("--csv", action="store_true", help="CSV on stdout")
    report.add_argument(
        "--site",
        action="store_true",
        help="every terminal of the site: this one's events and those it collected "
        "([mqtt] collect_events)",
    )
    add_config_argument(report)
    report.set_defaults(func=cmd_attendance)


def _print_rows(header: Sequence[str], rows: list[list[Any]], as_csv: bool) -> None:
    if as_csv:
        write_csv(sys.stdout, header, rows)
        return
    text = [[("" if v is None else str(v)) for v in row] for row in [list(header)] + rows]
    widths = [max(len(row[i]) for row in text) for i in range(len(header))]
    for row in text:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def cmd_events(args: argparse.Namespace) -> int:
    with open_gallery(args) as gallery:
        events = gallery.events(EventFilter(args.since, args.until, args.kind))
    _print_rows(EVENT_HEADER, event_rows(events), args.csv)
    return ExitCode.OK


def cmd_attendance(args: argparse.Namespace) -> int:
    if args.last < args.first:
        print(f"facegate: --to {args.last} is before --from {args.first}", file=sys.stderr)
        return ExitCode.USAGE
    since, until = day_bounds(args.first, args.last)
    with open_gallery(args) as gallery:
        if args.site:
            events = site_events(gallery, since, until, EventKind.GRANTED)
        else:
            events = gallery.events(EventFilter(since, until, EventKind.GRANTED))
    _print_rows(ATTENDANCE_HEADER, attendance_rows(attendance(events)), args.csv)
    return ExitCode.OK
