"""``facegate check-config`` and ``facegate doctor``: is this terminal ready for a door?"""

from __future__ import annotations

import argparse
import sys

from ..config import config_errors
from ..doctor import FAIL, OK, Check, config_warnings, run_checks
from ..errors import ExitCode
from .common import add_config_argument


def register(subparsers) -> None:
    check = subparsers.add_parser(
        "check-config", help="validate the config file; report every error with its line"
    )
    add_config_argument(check)
    check.set_defaults(func=cmd_check_config)

    doctor = subparsers.add_parser(
        "doctor",
        help="check config, models, gallery, camera, GPIO, clock and disk; say what to fix",
    )
    add_config_argument(doctor)
    doctor.set_defaults(func=cmd_doctor)


def cmd_check_config(args: argparse.Namespace) -> int:
    config, errors = config_errors(args.config)
    for error in errors:
        print(f"facegate: {error}", file=sys.stderr)
    if config is None:
        return ExitCode.CONFIG
    for warning in config_warnings(config):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"config OK: {args.config}")
    return ExitCode.OK


def cmd_doctor(args: argparse.Namespace) -> int:
    config, errors = config_errors(args.config)
    if config is None:
        checks = [Check("config", FAIL, error) for error in errors]
    else:
        checks = [Check("config", OK, f"{args.config} is valid")] + run_checks(config)
    for check in checks:
        print(check.line())
    return ExitCode.FAILURE if any(c.status == FAIL for c in checks) else ExitCode.OK
