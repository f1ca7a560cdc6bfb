"""Home Assistant MQTT discovery, checked against HA's documented schema, on a real
broker with a real daemon behind the broker client: the lock follows the relay, an
unlock from Home Assistant goes through the daemon's control socket and is logged, and
without remote unlock no unlock control is offered."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.clock import FakeClock
from edge.evaluation import mosquitto
from edge.evaluation.demo_sequence import BACKGROUND_BGR, FRAME_SIZE
from edge.mqtt import topics
from edge.mqtt.service import STATUS_EVERY_S
from tests.mqtt.site import SITE, Site, Watcher, wait_for

pytestmark = pytest.mark.skipif(
    not mosquitto.available(), reason="needs the mosquitto broker (apt install mosquitto)"
)

# https://www.home-assistant.io/integrations/mqtt/ ("Discovery messages"): the topic is
# <discovery_prefix>/<component>/[<node_id>/]<object_id>/config, node and object ids
# of [a-zA-Z0-9_-]; every entity may carry these (availability, device, entity keys).
DISCOVERY_TOPIC = re.compile(
    r"^homeassistant/(lock|sensor|binary_sensor)/([a-zA-Z0-9_-]+/)?[a-zA-Z0-9_-]+/config$"
)
COMMON = {
    "availability",
    "availability_mode",
    "availability_template",
    "availability_topic",
    "payload_available",
    "payload_not_available",
    "device",
    "enabled_by_default",
    "encoding",
    "entity_category",
    "entity_picture",
    "icon",
    "json_attributes_template",
    "json_attributes_topic",
    "name",
    "object_id",
    "default_entity_id",
    "qos",
    "unique_id",
    "platform",
}
DEVICE = {
    "configuration_url",
    "connections",
    "hw_version",
    "identifiers",
    "manufacturer",
    "model",
    "model_id",
    "name",
    "serial_number",
    "suggested_area",
    "sw_version",
    "via_device",
}
ENTITY_CATEGORIES = {"config", "diagnostic"}
# https://www.home-assistant.io/integrations/lock.mqtt/: command_topic is required.
LOCK_REQUIRED = {"command_topic"}
LOCK = COMMON | {
    "code_format",
    "command_template",
    "command_topic",
    "optimistic",
    "payload_lock",
    "payload_open",
    "payload_reset",
    "payload_unlock",
    "retain",
    "state_jammed",
    "state_locked",
    "state_locking",
    "state_open",
    "state_opening",
    "state_topic",
    "state_unlocked",
    "state_unlocking",
    "value_template",
}
# https://www.home-assistant.io/integrations/binary_sensor.mqtt/: state_topic required;
# device classes from https://www.home-assistant.io/integrations/binary_sensor/.
BINARY_SENSOR_REQUIRED = {"state_topic"}
BINARY_SENSOR = COMMON | {
    "device_class",
    "expire_after",
    "force_update",
    "off_delay",
    "payload_off",
    "payload_on",
    "state_topic",
    "value_template",
}
BINARY_SENSOR_CLASSES = {
    "battery",
    "battery_charging",
    "carbon_monoxide",
    "cold",
    "connectivity",
    "door",
    "garage_door",
    "gas",
    "heat",
    "light",
    "lock",
    "moisture",
    "motion",
    "moving",
    "occupancy",
    "opening",
    "plug",
    "power",
    "presence",
    "problem",
    "running",
    "safety",
    "smoke",
    "sound",
    "tamper",
    "update",
    "vibration",
    "window",
}
# https://www.home-assistant.io/integrations/sensor.mqtt/: state_topic required.
SENSOR_REQUIRED = {"state_topic"}
SENSOR = COMMON | {
    "device_class",
    "expire_after",
    "force_update",
    "last_reset_value_template",
    "options",
    "state_class",
    "state_topic",
    "suggested_display_precision",
    "unit_of_measurement",
    "value_template",
}
SCHEMAS = {
    "lock": (LOCK_REQUIRED, LOCK),
    "binary_sensor": (BINARY_SENSOR_REQUIRED, BINARY_SENSOR),
    "sensor": (SENSOR_REQUIRED, SENSOR),
}


def check_discovery(topic: str, config: dict) -> str:
    """The component, once ``config`` passed the documented schema for it."""
    match = DISCOVERY_TOPIC.match(topic)
    assert match, f"{topic} is not a discovery topic"
    component = match.group(1)
    required, allowed = SCHEMAS[component]
    assert required <= set(config), f"{topic} lacks {required - set(config)}"
    assert set(config) <= allowed, f"{topic} has undocumented {set(config) - allowed}"
    assert set(config["device"]) <= DEVICE and config["device"]["identifiers"]
    assert config.get("entity_category", "diagnostic") in ENTITY_CATEGORIES
    if component == "binary_sensor":
        assert config["device_class"] in BINARY_SENSOR_CLASSES
    assert config["qos"] in (0, 1, 2)
    for key in ("state_topic", "command_topic", "availability_topic", "json_attributes_topic"):
        if key in config:
            assert "+" not in config[key] and "#" not in config[key]
    return component


@pytest.fixture
def short_dir():
    # a unix socket's path has at most 107 bytes; pytest's tmp_path can be longer
    with tempfile.TemporaryDirectory(prefix="fg") as folder:
        yield Path(folder)


@pytest.fixture(scope="module")
def empty(tmp_path_factory) -> Path:
    """A replay of a door nobody walks up to."""
    folder = tmp_path_factory.mktemp("empty")
    blank = np.empty((FRAME_SIZE[1], FRAME_SIZE[0], 3), np.uint8)
    blank[:] = BACKGROUND_BGR
    for i in range(3):
        cv2.imwrite(str(folder / f"frame_{i:04d}.jpg"), blank)
    return folder


@pytest.fixture
def site(tmp_path):
    site = Site(tmp_path)
    site.broker.start()
    yield site
    site.close()


def test_discovery_lock_and_remote_unlock_through_the_daemon(
    site, empty, short_dir, pipeline, rigs
):
    config = site.terminal_config(
        "a",
        empty,
        camera={"loop": True},
        control={"socket": str(short_dir / "c.sock"), "allow_remote_unlock": True},
        mqtt={"allow_remote_unlock": True},
    )
    watcher = Watcher(site.broker, ["homeassistant/#", f"facegate/{SITE}/terminal/#"], False)
    clock = FakeClock()
    rig = rigs(config, pipeline, clock=clock)
    site.run(config, clock=clock)
    state = topics.state(SITE, "a", "lock")

    def last(topic: str) -> bytes | None:
        found = watcher.received(topic)
        return found[-1][1] if found else None

    wait_for(lambda: len(watcher.received("homeassistant/")) == 4, "four discovery configs")
    components = sorted(
        check_discovery(t, json.loads(p)) for t, p, _ in watcher.received("homeassistant/")
    )
    assert components == ["binary_sensor", "binary_sensor", "lock", "sensor"]
    late = Watcher(site.broker, ["homeassistant/#"], persistent=False)  # as HA after a restart
    wait_for(lambda: len(late.received()) == 4, "the configs, retained")
    assert all(retained for _, _, retained in late.received())
    late.close()
    wait_for(lambda: last(topics.state(SITE, "a", "availability")) == b"online", "online")
    wait_for(lambda: last(state) == b"LOCKED", "the lock's state")
    assert last(topics.state(SITE, "a", "door")) == b"OFF"

    lock_config = json.loads(last("homeassistant/lock/") or b"{}")
    watcher.client.publish(lock_config["command_topic"], lock_config["payload_unlock"], qos=1)

    def unlocked() -> bool:
        rig.step()  # the loop takes the command at its next pass
        return bool(rig.events("remote_unlock"))

    wait_for(unlocked, "the daemon's remote_unlock")
    assert rig.events("remote_unlock")[0].reason == "asked by Home Assistant (mqtt): lock entity"
    assert rig.daemon.door.unlocked
    clock.advance(STATUS_EVERY_S)  # the broker client looks at the daemon; the loop holds still
    wait_for(lambda: last(state) == b"UNLOCKED", "the lock shows unlocked")
    wait_for(lambda: (rig.step(), last(state) == b"LOCKED")[1], "and locked after the pulse")
    wait_for(lambda: last(topics.state(SITE, "a", "decision")), "the last decision")
    decision = json.loads(last(topics.state(SITE, "a", "decision")) or b"{}")
    assert decision["kind"] == "remote_unlock" and decision["person"] is None
    watcher.close()


def test_without_remote_unlock_the_lock_is_a_sensor_and_commands_do_nothing(
    site, empty, short_dir, pipeline, rigs
):
    config = site.terminal_config(
        "a",
        empty,
        camera={"loop": True},
        control={"socket": str(short_dir / "c.sock"), "allow_remote_unlock": True},
    )
    watcher = Watcher(site.broker, ["homeassistant/#"], False)
    clock = FakeClock()
    rig = rigs(config, pipeline, clock=clock)
    service = site.run(config, clock=clock)
    wait_for(lambda: len(watcher.received("homeassistant/")) == 4, "four discovery configs")
    topics_seen = {t for t, _, _ in watcher.received()}
    assert "homeassistant/binary_sensor/facegate_hq_a/lock/config" in topics_seen
    assert not any("/lock/" in t and t.startswith("homeassistant/lock") for t in topics_seen)
    for topic, payload, _ in watcher.received():
        config_json = json.loads(payload)
        check_discovery(topic, config_json)
        assert "command_topic" not in config_json
    watcher.client.publish(topics.state(SITE, "a", "lock/set"), "UNLOCK", qos=1)
    wait_for(service.synced, "the client is in step")  # it had every chance to act
    rig.steps(5)
    assert rig.events("remote_unlock") == [] and not rig.daemon.door.unlocked
    watcher.close()
