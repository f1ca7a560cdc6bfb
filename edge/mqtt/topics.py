"""The topics a site uses, in one place. ``<site>`` and ``<terminal>`` are one topic
level each (``mqtt_config`` checks them).

    facegate/<site>/people/<uid>            sealed person or deletion, retained, QoS 1
    facegate/<site>/events/<terminal>       each event as JSON, QoS 1, in order
    facegate/<site>/terminal/<terminal>/... state for Home Assistant (retained):
        availability (online/offline, the last will), lock, door, camera, decision,
        and lock/set (commands from Home Assistant)
    facegate/<site>/sync/<terminal>         this terminal's own sync marker (see service)
"""

from __future__ import annotations

ROOT = "facegate"


def people(site: str) -> str:
    return f"{ROOT}/{site}/people/+"


def person(site: str, uid: str) -> str:
    return f"{ROOT}/{site}/people/{uid}"


def events(site: str, terminal: str = "+") -> str:
    return f"{ROOT}/{site}/events/{terminal}"


def sync_marker(site: str, terminal: str) -> str:
    return f"{ROOT}/{site}/sync/{terminal}"


def state(site: str, terminal: str, name: str) -> str:
    return f"{ROOT}/{site}/terminal/{terminal}/{name}"


def last_level(topic: str) -> str:
    return topic.rsplit("/", 1)[-1]
