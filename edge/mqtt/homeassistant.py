"""Home Assistant MQTT discovery: each terminal appears as one device with

* a ``lock`` entity, its state from the relay, when Home Assistant may unlock the door
  (``allow_remote_unlock``); otherwise a ``binary_sensor`` of device class ``lock``, so
  that no unlock button is offered that would only be refused;
* a ``sensor`` with the last decision (its kind; person and time as attributes);
* ``binary_sensor`` entities for the door contact (class ``door``) and camera health
  (class ``problem``);

all marked unavailable by the broker's last will when the terminal goes away.
Discovery configs and states are retained, so Home Assistant sees them after its own
restart. Schemas: https://www.home-assistant.io/integrations/mqtt/ (discovery) and the
lock.mqtt, sensor.mqtt and binary_sensor.mqtt pages.
"""

from __future__ import annotations

from typing import Any

from ..types import DoorState
from . import topics

ONLINE, OFFLINE = "online", "offline"
LOCKED, UNLOCKED = "LOCKED", "UNLOCKED"
UNLOCK_COMMAND = "UNLOCK"
ON, OFF = "ON", "OFF"
_OPEN_DOOR = {DoorState.OPEN, DoorState.HELD_OPEN, DoorState.FORCED}


def discovery(
    prefix: str, site: str, terminal: str, remote_unlock: bool, version: str
) -> dict[str, dict[str, Any]]:
    """Discovery topic -> config payload for each entity of this terminal."""
    node = f"facegate_{site}_{terminal}"
    common = {
        "availability_topic": topics.state(site, terminal, "availability"),
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "device": {
            "identifiers": [node],
            "name": f"facegate {terminal}",
            "manufacturer": "facegate",
            "model": "face-access terminal",
            "sw_version": version,
            "suggested_area": site,
        },
    }
    lock_state = topics.state(site, terminal, "lock")
    entities: dict[str, dict[str, Any]] = {}
    if remote_unlock:
        entities[f"{prefix}/lock/{node}/lock/config"] = {
            "name": "Door lock",
            "unique_id": f"{node}_lock",
            "state_topic": lock_state,
            "command_topic": topics.state(site, terminal, "lock/set"),
            "payload_unlock": UNLOCK_COMMAND,
            # The relay locks itself after its pulse; a lock command changes nothing.
            "payload_lock": "LOCK",
            "state_locked": LOCKED,
            "state_unlocked": UNLOCKED,
            "optimistic": False,
            "qos": 1,
        }
    else:
        entities[f"{prefix}/binary_sensor/{node}/lock/config"] = {
            "name": "Door lock",
            "unique_id": f"{node}_lock",
            "device_class": "lock",  # on means unlocked
            "state_topic": lock_state,
            "payload_on": UNLOCKED,
            "payload_off": LOCKED,
            "qos": 1,
        }
    entities[f"{prefix}/sensor/{node}/decision/config"] = {
        "name": "Last decision",
        "unique_id": f"{node}_decision",
        "state_topic": topics.state(site, terminal, "decision"),
        "value_template": "{{ value_json.kind }}",
        "json_attributes_topic": topics.state(site, terminal, "decision"),
        "icon": "mdi:face-recognition",
        "qos": 1,
    }
    entities[f"{prefix}/binary_sensor/{node}/door/config"] = {
        "name": "Door",
        "unique_id": f"{node}_door",
        "device_class": "door",  # on means open
        "state_topic": topics.state(site, terminal, "door"),
        "payload_on": ON,
        "payload_off": OFF,
        "qos": 1,
    }
    entities[f"{prefix}/binary_sensor/{node}/camera/config"] = {
        "name": "Camera problem",
        "unique_id": f"{node}_camera",
        "device_class": "problem",  # on means a problem
        "entity_category": "diagnostic",
        "state_topic": topics.state(site, terminal, "camera"),
        "payload_on": ON,
        "payload_off": OFF,
        "qos": 1,
    }
    return {topic: {**config, **common} for topic, config in entities.items()}


def states(status: dict[str, Any]) -> dict[str, str]:
    """State topic name -> payload, from the daemon's status (control socket)."""
    door = status.get("door")
    return {
        "lock": UNLOCKED if door == DoorState.UNLOCKED else LOCKED,
        "door": ON if door in _OPEN_DOOR else OFF,
        "camera": OFF if status.get("camera") == "ok" else ON,
    }
