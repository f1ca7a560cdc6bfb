"""The ``facegate`` command: one module per command group, each with ``register``.

Library code raises FacegateError subclasses; this is the only place that turns
them into a one-line message on stderr and an exit code (see errors.ExitCode).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import ConfigError, ExitCode, FacegateError
from .common import config_from_args
from .privileges import become_key_owner

# Each module defines register(subparsers); a command sets func=callable(args) -> int.
COMMAND_MODULES = (
    "edge.cli.vision",
    "edge.cli.gallery",
    "edge.cli.events",
    "edge.cli.enrol",
    "edge.cli.liveness",
    "edge.cli.run",
    "edge.cli.ops",
    "edge.cli.web",
    "edge.cli.mqtt",
)
# Commands that read the gallery key: as root they run as its owner (privileges.py).
KEY_OWNER_COMMANDS = frozenset(
    {
        "init",
        "people",
        "gallery",
        "enrol",
        "enroll",
        "events",
        "attendance",
        "run",
        "doctor",
        "liveness",
        "admin",
        "web",
        "mqtt",
        "site-key",
    }
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facegate", description="Offline face-access terminal.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def _become_key_owner(args: argparse.Namespace) -> None:
    try:
        config = config_from_args(args)
    except ConfigError:
        return  # the command reports a bad config its own way (doctor lists every error)
    become_key_owner(config.gallery.key_file)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command in KEY_OWNER_COMMANDS:
            _become_key_owner(args)
        return int(args.func(args) or ExitCode.OK)
    except FacegateError as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return int(ExitCode.FAILURE)
