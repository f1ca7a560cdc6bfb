"""A site for the MQTT tests: a real broker (edge/evaluation/mosquitto.py) with TLS and
one user per terminal, the site key, and terminals, each a gallery with its broker
client running in a thread of this process (its own gallery connection, as the
separate process has) and, where a test wants one, a daemon rig on a replay camera.

Everything that waits, waits for a condition with a deadline (``wait_for``); nothing
sleeps for a fixed time.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.clock import Clock, FakeClock
from edge.config import Config
from edge.evaluation.mosquitto import HOST, Mosquitto
from edge.gallery.store import Gallery, create_gallery
from edge.mqtt.service import MqttService, make_client
from edge.mqtt.site_key import new_site_key
from tests.helpers import make_config

SITE = "hq"
DEADLINE_S = 60.0


def wait_for(condition: Callable[[], object], what: str, deadline_s: float = DEADLINE_S) -> float:
    """Seconds until ``condition()`` held; AssertionError naming ``what`` past the deadline.
    Between checks it yields the processor for a moment (the condition is in other
    threads and processes), never for a fixed time the test depends on."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > deadline_s:
            raise AssertionError(f"{what}: not within {deadline_s:g} s")
        time.sleep(0.02)
    return time.monotonic() - start


@dataclass
class Service:
    """One broker client running in a thread, on its own gallery connection."""

    config: Config
    clock: Clock
    stop: threading.Event = field(default_factory=threading.Event)
    ready: threading.Event = field(default_factory=threading.Event)
    service: MqttService | None = None
    error: BaseException | None = None
    thread: threading.Thread | None = None

    def start(self) -> Service:
        def main() -> None:
            try:
                with Gallery.from_config(self.config.gallery, clock=self.clock) as gallery:
                    client = make_client(self.config.mqtt, reconnect_max_s=1)
                    self.service = MqttService(
                        self.config.mqtt,
                        gallery,
                        self.config.embedder.model,
                        self.clock,
                        control_socket=self.config.control.socket,
                        client=client,
                    )
                    self.ready.set()
                    self.service.run(self.stop)
            except BaseException as exc:  # the test sees it in halt()
                self.error = exc
                self.ready.set()

        self.thread = threading.Thread(target=main, name="mqtt", daemon=True)
        self.thread.start()
        assert self.ready.wait(DEADLINE_S)
        if self.error is not None:
            raise self.error
        return self

    def synced(self) -> bool:
        return self.service is not None and self.service.synced.is_set()

    def halt(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(DEADLINE_S)
            assert not self.thread.is_alive(), "the broker client did not stop"
        if self.error is not None:
            raise self.error


class Site:
    """A broker and the site key; terminals are made with :meth:`terminal`."""

    def __init__(self, folder: Path, terminals: tuple[str, ...] = ("a", "b", "c")) -> None:
        self.folder = folder
        self.broker = Mosquitto(
            folder / "broker", {**{t: f"secret-{t}" for t in terminals}, "watcher": "w"}
        )
        self.key_file = folder / "site.key"
        new_site_key(self.key_file)
        self.services: list[Service] = []

    def mqtt_section(self, name: str, **settings: object) -> dict:
        password = self.folder / f"{name}.password"
        return {**self.broker.mqtt_section(name, password, SITE, self.key_file), **settings}

    def terminal_config(self, name: str, replay: Path, **sections: dict) -> Config:
        folder = self.folder / name
        folder.mkdir(exist_ok=True)
        mqtt_settings = sections.pop("mqtt", {})
        config = make_config(
            folder, replay, mqtt=self.mqtt_section(name, **mqtt_settings), **sections
        )
        if not Path(config.gallery.path).exists():
            create_gallery(config.gallery)
        return config

    def run(self, config: Config, clock: Clock | None = None) -> Service:
        service = Service(config, clock if clock is not None else FakeClock()).start()
        self.services.append(service)
        return service

    def close(self) -> None:
        for service in self.services:
            if service.thread is not None and service.thread.is_alive():
                service.halt()
        if self.broker.process is not None:
            self.broker.stop()


class Watcher:
    """A plain MQTT client of the site (as Home Assistant or an integrator's consumer
    would be): it records every message on the topics it subscribes to."""

    def __init__(self, broker: Mosquitto, subscriptions: list[str], persistent: bool = True):
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"watcher-{id(self)}",
            clean_session=not persistent,
        )
        self.client.tls_set(ca_certs=str(broker.cert))
        self.client.username_pw_set("watcher", broker.users["watcher"])
        self.client.reconnect_delay_set(1, 1)
        self.subscribed = threading.Event()

        def on_connect(client, userdata, flags, reason, properties):
            client.subscribe([(topic, 1) for topic in subscriptions])

        def on_subscribe(client, userdata, mid, reasons, properties):
            self.subscribed.set()

        def on_message(client, userdata, message):
            with self._lock:
                self.messages.append((message.topic, bytes(message.payload), message.retain))

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect_async(HOST, broker.port, 30)
        self.client.loop_start()
        wait_for(self.subscribed.is_set, "the watcher subscribed")

    def received(self, prefix: str = "") -> list[tuple[str, bytes, bool]]:
        with self._lock:
            return [m for m in self.messages if m[0].startswith(prefix)]

    def events(self) -> list[dict]:
        return [json.loads(p) for t, p, _ in self.received(f"facegate/{SITE}/events/")]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
