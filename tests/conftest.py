"""Shared fixtures. Real face data lives in ../shared/data beside the checkout."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("FACEGATE_SHARED_DATA", REPO.parent / "shared" / "data"))
FIXTURES = REPO / "tests" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data; tests that need it are skipped where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def gallery(tmp_path):
    """A fresh, empty encrypted gallery in tmp_path, open."""
    from edge.gallery import Gallery, GalleryConfig, create_gallery

    config = GalleryConfig(path=str(tmp_path / "g.db"), key_file=str(tmp_path / "g.key"))
    create_gallery(config)
    with Gallery.open(config.path, config.key_file) as g:
        yield g


@pytest.fixture
def systemd(tmp_path):
    """A datagram socket standing in for systemd's notify socket: (path, socket)."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    yield str(path), sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    """Every datagram waiting on ``sock``, decoded."""
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages
