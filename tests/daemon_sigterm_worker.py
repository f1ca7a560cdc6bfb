"""Runs the real daemon (threaded, system clock, mock door) until SIGTERM; used by
tests/test_daemon.py.

Usage: python daemon_sigterm_worker.py CONFIG HISTORY_JSON
Prints 'granted' when a grant is decided; at exit writes the relay's history, a
list of [monotonic time, level] pairs, to HISTORY_JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edge.cli.run import _install_signal_handlers
from edge.clock import SystemClock
from edge.config import load_config
from edge.daemon import Decision, build_daemon
from edge.gpio.mock import MockGpio


def report(decision: Decision) -> None:
    if decision.kind == "granted":
        print("granted", flush=True)


def main() -> int:
    config_path, history_path = sys.argv[1], Path(sys.argv[2])
    config = load_config(config_path)
    clock = SystemClock()
    gpio = MockGpio(clock)
    try:
        daemon = build_daemon(config, clock, threaded=True, report=report, gpio_backend=gpio)
        _install_signal_handlers(daemon)
        daemon.run()
    finally:
        history = gpio.history(config.door.relay_pin)
        history_path.write_text(json.dumps([[t, level] for t, level in history]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
