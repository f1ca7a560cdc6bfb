"""``facegate events`` (the audit log) and ``facegate attendance`` (per person per day)."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import re
import sys
import time

from ..errors import ExitCode
from ..gallery.attendance import attendance, day_bounds
from ..gallery.sync import site_events
from ..types import EventKind
from .common import add_config_argument
from .gallery import format_time, open_gallery

_RELATIVE = re.compile(r"^(\d+)\s*([smhd])$")
# A spreadsheet runs a cell that starts with one of these as a formula ('=cmd|...').
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_when(text: str, now: float | None = None) -> float:
    """Wall seconds from '30m' / '2h' / '7d' (ago) or an ISO date or date-time (local
    unless it names its zone)."""
    match = _RELATIVE.match(text.strip())
    if match:
        now = time.time() if now is None else now
        return now - int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration like 30m, 2h, 7d nor an ISO date like 2024-05-01"
        ) from None
    try:
        return (moment if moment.tzinfo else moment.astimezone()).timestamp()
    except (ValueError, OverflowError, OSError):
        raise _out_of_range(text) from None


def parse_day(text: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day like 2024-05-01") from None
    try:
        day_bounds(day, day)
    except (ValueError, OverflowError, OSError):
        raise _out_of_range(text) from None
    return day


def _out_of_range(text: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(
        f"{text!r} is out of range: give a date between 1970 and 9999"
    )


def register(subparsers) -> None:
    events = subparsers.add_parser("events", help="show the event log")
    events.add_argument("--since", type=parse_when, help="30m, 2h, 7d, or an ISO date/time")
    events.add_argument("--until", type=parse_when, help="same forms as --since")
    events.add_argument("--kind", choices=sorted(k.value for k in EventKind), help="only this kind")
    events.add_argument("--csv", action="store_true", help="CSV on stdout")
    add_config_argument(events)
    events.set_defaults(func=cmd_events)

    report = subparsers.add_parser(
        "attendance", help="first and last pass and count per person per day"
    )
    report.add_argument("--from", dest="first", type=parse_day, required=True, metavar="DAY")
    report.add_argument("--to", dest="last", type=parse_day, required=True, metavar="DAY")
    report.add_argument("--csv", action="store_true", help="CSV on stdout")
    report.add_argument(
        "--site",
        action="store_true",
        help="every terminal of the site: this one's events and those it collected "
        "([mqtt] collect_events)",
    )
    add_config_argument(report)
    report.set_defaults(func=cmd_attendance)


def csv_cell(value):
    """``value`` as a CSV cell no spreadsheet will run: text that starts like a formula
    gets a leading apostrophe, which spreadsheets show as text. Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def _print_rows(header: list[str], rows: list[list], as_csv: bool) -> None:
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([[csv_cell(value) for value in row] for row in rows])
        return
    text = [[("" if v is None else str(v)) for v in row] for row in [header] + rows]
    widths = [max(len(row[i]) for row in text) for i in range(len(header))]
    for row in text:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def cmd_events(args: argparse.Namespace) -> int:
    with open_gallery(args) as gallery:
        events = gallery.events(since=args.since, until=args.until, kind=args.kind)
    rows = [
        [
            format_time(e.time),
            e.kind,
            e.person_id,
            e.name,
            None if e.score is None else f"{e.score:.3f}",
            None if e.liveness is None else f"{e.liveness:.3f}",
            e.reason,
        ]
        for e in events
    ]
    _print_rows(
        ["time", "kind", "person_id", "name", "score", "liveness", "reason"], rows, args.csv
    )
    return ExitCode.OK


def _clock_time(wall: float) -> str:
    return dt.datetime.fromtimestamp(wall).strftime("%H:%M:%S")


def cmd_attendance(args: argparse.Namespace) -> int:
    if args.last < args.first:
        print(f"facegate: --to {args.last} is before --from {args.first}", file=sys.stderr)
        return ExitCode.USAGE
    since, until = day_bounds(args.first, args.last)
    with open_gallery(args) as gallery:
        if args.site:
            events = site_events(gallery, since, until)
        else:
            events = gallery.events(since=since, until=until, kind="granted")
    rows = [
        [
            r.day.isoformat(),
            r.person_id,
            r.name,
            _clock_time(r.first_in),
            _clock_time(r.last_out),
            r.passes,
        ]
        for r in attendance(events)
    ]
    _print_rows(["day", "person_id", "name", "first_in", "last_out", "passes"], rows, args.csv)
    return ExitCode.OK
