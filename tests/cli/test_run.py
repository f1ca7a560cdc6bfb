"""``facegate run``'s logging: one line per message, with its priority for the journal."""

from __future__ import annotations

import logging
import os

import pytest

from edge.cli.run import configure_logging


@pytest.fixture
def logs(tmp_path):
    """configure_logging on a file standing for stderr; (the file, JOURNAL_STREAM of it)."""
    path = tmp_path / "stderr"
    handlers: list[logging.Handler] = []
    root = logging.getLogger()
    level = root.level

    def attach(journal: bool) -> None:
        stream = open(path, "w")  # closed with the handler
        info = os.fstat(stream.fileno())
        environ = {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"} if journal else {}
        handlers.append(configure_logging(stream, environ))

    yield path, attach
    for handler in handlers:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


def emit() -> None:
    log = logging.getLogger("edge.camera.supervisor")
    log.warning("camera down: %s", "no camera on /dev/video0")
    log.debug("not shown")
    try:
        raise RuntimeError("bad driver")
    except RuntimeError:
        log.error("camera thread failed", exc_info=True)


def test_on_a_terminal_each_message_is_one_line_led_by_its_level(logs):
    path, attach = logs
    attach(journal=False)
    emit()
    lines = path.read_text().splitlines()
    assert lines[0] == "WARNING edge.camera.supervisor: camera down: no camera on /dev/video0"
    assert len(lines) == 2 and lines[1].startswith("ERROR edge.camera.supervisor: camera thread")
    assert "Traceback" in lines[1] and lines[1].endswith("RuntimeError: bad driver")


def test_to_the_journal_each_line_carries_its_syslog_priority(logs):
    path, attach = logs
    attach(journal=True)
    emit()
    lines = path.read_text().splitlines()
    assert lines[0] == "<4>edge.camera.supervisor: camera down: no camera on /dev/video0"
    assert len(lines) == 2 and lines[1].startswith("<3>edge.camera.supervisor: camera thread")


def test_an_inherited_journal_stream_that_is_not_stderr_is_ignored(logs, tmp_path):
    path, attach = logs
    other = os.stat(tmp_path)
    stream = open(path, "w")
    handler = configure_logging(stream, {"JOURNAL_STREAM": f"{other.st_dev}:{other.st_ino}"})
    try:
        logging.getLogger("edge").warning("hello")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert path.read_text() == "WARNING edge: hello\n"
