"""``facegate mqtt`` (the broker client, a service of its own) and ``facegate site-key``
(the key that seals people's records for the site)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from ..clock import SystemClock
from ..errors import ExitCode
from ..mqtt.service import run_service
from ..mqtt.site_key import (
    SiteKeys,
    import_site_keys,
    key_id,
    new_site_key,
    read_site_keys,
    rotate_site_key,
)
from .common import add_config_argument, config_from_args
from .run import configure_logging


def register(subparsers) -> None:
    run = subparsers.add_parser(
        "mqtt", help="run the broker client: events upward, people in sync, Home Assistant"
    )
    add_config_argument(run)
    run.set_defaults(func=cmd_mqtt)

    keys = subparsers.add_parser("site-key", help="the site key that seals people's records")
    actions = keys.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    for name, helptext in (
        ("new", "make the site's key (on the site's first terminal)"),
        ("show", "the key ids this terminal holds, current first"),
        ("rotate", "a new current key; the old ones stay for reading"),
        ("import", "take another terminal's keys (its key file's lines) from a file or stdin"),
    ):
        action = actions.add_parser(name, help=helptext)
        if name == "import":
            action.add_argument("source", help="file with the keys, or - for stdin")
        # on each action, so that --config may follow it (site-key new --config FILE)
        add_config_argument(action)
        action.set_defaults(func=cmd_site_key)


def cmd_mqtt(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    configure_logging()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run_service(config, SystemClock(), stop)
    return ExitCode.OK


def _describe(keys: SiteKeys) -> None:
    for number, key in enumerate(keys.keys):
        role = "current (seals)" if number == 0 else "kept (reads)"
        print(f"{key_id(key)}  {role}")


def cmd_site_key(args: argparse.Namespace) -> int:
    path = Path(config_from_args(args).mqtt.site_key_file)
    if args.action == "new":
        keys = new_site_key(path)
        print(f"made the site key in {path}; copy that file to every terminal of the site")
    elif args.action == "show":
        keys = read_site_keys(path)
    elif args.action == "rotate":
        keys = rotate_site_key(path)
        print(f"rotated: import {path} on every terminal of the site")
    else:
        text = sys.stdin.read() if args.source == "-" else Path(args.source).read_text()
        keys = import_site_keys(path, text)
    _describe(keys)
    return ExitCode.OK
