"""Pieces every command shares: the --config option and terminal progress."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..config import DEFAULT_PATH, default_config, load_config


def add_config_argument(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """--config FILE; its default is $FACEGATE_CONFIG or /etc/facegate/config.toml.

    Commands that work without a config (evaluation, benchmarks) pass
    required=False and use the built-in defaults when no file is named.
    """
    default = os.environ.get("FACEGATE_CONFIG") or (str(DEFAULT_PATH) if required else None)
    parser.add_argument(
        "--config",
        default=default,
        metavar="FILE",
        help=f"config file (default: $FACEGATE_CONFIG or {DEFAULT_PATH})"
        if required
        else "config file (default: $FACEGATE_CONFIG or built-in defaults)",
    )


def config_from_args(args: argparse.Namespace) -> Any:
    return load_config(args.config) if args.config else default_config()


def progress(label: str):
    """A callback(done, total) that redraws one line on a terminal, silent otherwise."""
    if not sys.stderr.isatty():
        return None

    def report(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        print(f"\r{label} {done}/{total}", end=end, file=sys.stderr, flush=True)

    return report


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))
