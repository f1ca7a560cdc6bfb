"""The [camera] config section and the registry of source kinds."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from edge.camera import SOURCE_KINDS, CameraConfig, create_source
from edge.camera.opencv import OpenCVSource
from edge.camera.replay import ReplaySource
from edge.clock import FakeClock
from edge.errors import ConfigError
from edge.schema import build_section
from tests.helpers import FACES

REPO = Path(__file__).resolve().parents[2]


def build(values: dict) -> CameraConfig:
    return build_section(CameraConfig, values, "camera")


def test_defaults_and_overrides():
    config = build(
        {
            "source": "opencv",
            "device": "/dev/video2",
            "main_size": [640, 480],
            "lores_size": [320, 240],
            "fps": 30,
        }
    )
    assert config.source == "opencv"
    assert config.device == "/dev/video2"
    assert config.main_size == (640, 480)
    assert config.fps == 30.0
    assert build({}).backoff_initial == 0.5


@pytest.mark.parametrize(
    "values, key",
    [
        ({"source": "webcam"}, "camera.source"),
        ({"fps": 0}, "camera.fps"),
        ({"ir_camera": -2}, "camera.ir_camera"),
        ({"backoff_initial": 5.0, "backoff_max": 1.0}, "camera.backoff_max"),
        ({"lores_size": [1920, 1080]}, "camera.lores_size"),
        ({"pipeline": "v4l2src ! videoconvert"}, "camera.pipeline"),
        ({"source": "replay"}, "camera.replay_path"),
        ({"ir_camera": 0}, "camera.ir_camera"),
        ({"resolution": [1, 2]}, "camera.resolution"),
    ],
)
def test_bad_values_name_their_key(values, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build(values)


def test_unknown_source_lists_valid_kinds():
    with pytest.raises(ConfigError) as info:
        build({"source": "webcam"})
    for kind in SOURCE_KINDS:
        assert kind in str(info.value)
    config = dataclasses.replace(CameraConfig(), source="webcam")  # bypassing the schema
    with pytest.raises(ConfigError, match="opencv, picamera2, replay"):
        create_source(config, FakeClock())


def test_create_source_builds_the_named_kind_without_opening():
    clock = FakeClock()
    replay = create_source(build({"source": "replay", "replay_path": str(FACES)}), clock)
    assert isinstance(replay, ReplaySource)
    with pytest.raises(Exception, match="not open"):
        replay.read()
    opencv = create_source(build({"source": "opencv", "device": 7}), clock)
    assert isinstance(opencv, OpenCVSource)
    assert opencv.name == "V4L2 device 7"


def test_picamera2_is_imported_only_when_chosen():
    code = (
        "import sys\n"
        "from edge.camera import create_source, CameraConfig\n"
        "from edge.clock import FakeClock\n"
        "create_source(CameraConfig(source='opencv'), FakeClock())\n"
        "assert 'picamera2' not in sys.modules and 'edge.camera.picamera2' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
