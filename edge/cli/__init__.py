"""The ``facegate`` command: one module per command group, each with ``register``.

Library code raises FacegateError subclasses; this is the only place that turns
them into a one-line message on stderr and an exit code (see errors.ExitCode).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import ExitCode, FacegateError

# Each module defines register(subparsers); a command sets func=callable(args) -> int.
COMMAND_MODULES = (
    "edge.cli.vision",
    "edge.cli.gallery",
    "edge.cli.events",
    "edge.cli.enroll",
    "edge.cli.liveness",
    "edge.cli.run",
    "edge.cli.ops",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facegate", description="Offline face-access terminal."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or ExitCode.OK)
    except FacegateError as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return int(ExitCode.FAILURE)
