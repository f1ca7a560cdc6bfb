"""Shared fixtures. Real face data lives in ../shared/data beside the checkout; what
test files import lives in helpers.py."""

from __future__ import annotations

import socket
from pathlib import Path

import cv2
import pytest

from edge.gallery.store import Gallery, GalleryConfig, create_gallery
from edge.types import Embedding
from edge.vision.pipeline import Pipeline

from .helpers import FACES, FIXTURES, SHARED_DATA, Rig, build_rig
from .helpers import pipeline as loaded_pipeline


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


@pytest.fixture(scope="session")
def pipeline() -> Pipeline:
    """The default pipeline, loaded once."""
    return loaded_pipeline()


@pytest.fixture(scope="session")
def obama_template(pipeline) -> Embedding:
    """obama_1's face, as the daemon tests enrol it."""
    image = cv2.imread(str(FACES / "obama_1.jpg"))
    faces = pipeline.detect(image)
    assert len(faces) == 1
    return pipeline.embed(image, faces[0])


@pytest.fixture
def rigs():
    """Builds daemon rigs (helpers.build_rig) and closes each at the end of the test."""
    built: list[Rig] = []

    def build(*args, **kwargs) -> Rig:
        built.append(build_rig(*args, **kwargs))
        return built[-1]

    yield build
    for rig in built:
        rig.daemon.close()
