"""The broker client's loop (``facegate mqtt``): one process beside the door daemon.

Two threads: paho's network thread only queues what arrives (connections, messages,
acknowledgements); this loop owns the gallery connection and does everything else,
in order:

* **events upward**: the outbox's undelivered events, oldest first, QoS 1, at most
  ``WINDOW`` unacknowledged; each is marked delivered when the broker acknowledges
  it. After a reconnection it starts again from the first undelivered one, so a
  subscriber may see an event twice (the same id), never one missing or out of order
  once duplicates are dropped.
* **people**: every version this terminal has not published under the current site
  key is sealed and published, retained; every person message from the site is
  opened and applied by revision (``gallery.sync``); refusals are logged as events.
  This terminal's own deletions are cleared from the broker once the retention has
  passed.
* **the last sync**: after each (re)subscription it publishes a marker to its own
  topic; the broker sends the retained people of a subscription before anything
  published after it, so when the marker comes back every person has been applied,
  and the time is recorded in the gallery for ``max_offline_seconds``. It repeats
  while connected.
* **Home Assistant**: discovery, states from the daemon's status (control socket),
  the last decision, and unlock commands passed to the daemon when both
  ``[mqtt]`` and ``[control]`` allow them.
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ..clock import Clock
from ..config import Config
from ..control import ControlClient, ControlError
from ..errors import ConfigError, GalleryUnavailableError
from ..gallery import outbox, sync
from ..gallery.events import event_kind
from ..gallery.key import read_private
from ..gallery.outbox import OutboxEvent
from ..gallery.store import Gallery
from ..gallery.sync import PersonRecord, Tombstone
from ..mqtt_config import MqttConfig
from ..types import EventKind, SyncOutcome
from . import homeassistant, people, topics
from .json_fields import is_a, json_object, number, required
from .people import RecordError
from .seal import SealError, open_sealed, seal
from .site_key import read_site_keys

log = logging.getLogger(__name__)

WINDOW = 100  # events published and not yet acknowledged
POLL_S = 0.2  # how long the loop waits for the network before it looks at the gallery
MARKER_EVERY_S = 30.0  # the last sync is refreshed this often while connected
CLEAR_EVERY_S = 60.0
STATUS_EVERY_S = 0.5
KEYS_EVERY_S = 5.0
DECISIONS = frozenset(
    {
        EventKind.GRANTED,
        EventKind.DENIED_UNRECORDED,
        EventKind.DENIED_UNKNOWN,
        EventKind.DENIED_SPOOF,
        EventKind.DENIED_SCHEDULE,
        EventKind.DENIED_DISABLED,
        EventKind.DENIED_LOCKOUT,
        EventKind.DENIED_OFFLINE,
        EventKind.REMOTE_UNLOCK,
    }
)


def facegate_version() -> str:
    try:
        return package_version("facegate")
    except PackageNotFoundError:
        return "unknown"


def make_client(config: MqttConfig, reconnect_max_s: int = 30) -> mqtt.Client:
    """A paho client for this terminal: persistent session (the broker keeps QoS 1
    messages for it while it is away), TLS and credentials as configured, and the
    last will that marks it offline."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"facegate-{config.site}-{config.terminal_id}",
        clean_session=False,
        protocol=mqtt.MQTTv311,
    )
    for key in ("tls_ca", "tls_cert", "tls_key", "password_file"):
        path = getattr(config, key)
        if path and not Path(path).is_file():
            raise ConfigError(f"mqtt.{key}: {path} is not a file")
    if config.tls:
        client.tls_set(
            ca_certs=config.tls_ca or None,
            certfile=config.tls_cert or None,
            keyfile=config.tls_key or None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    if config.username:
        password = None
        if config.password_file:
            remedy = "write this terminal's broker password there (mode 0600)"
            text = read_private(Path(config.password_file), "broker password file", remedy)
            password = text.strip()
        client.username_pw_set(config.username, password)
    availability = topics.state(config.site, config.terminal_id, "availability")
    client.will_set(availability, homeassistant.OFFLINE, qos=1, retain=True)
    client.max_inflight_messages_set(WINDOW)
    client.reconnect_delay_set(min_delay=1, max_delay=reconnect_max_s)
    return client


@dataclass(frozen=True)
class _Sent:
    """What an unacknowledged publication was, to act on its acknowledgement."""

    what: str  # "event", "record", "clear"
    item: Any


class MqttService:
    """The loop; :meth:`run` until ``stop`` is set. ``gallery`` is used from the thread
    that calls run, and only there."""

    def __init__(
        self,
        config: MqttConfig,
        gallery: Gallery,
        model_id: str,
        clock: Clock,
        *,
        control_socket: str = "",
        client: mqtt.Client | None = None,
    ) -> None:
        self.config = config
        self.gallery = gallery
        self.model_id = model_id
        self.clock = clock
        self.control_socket = control_socket
        self.client = client if client is not None else make_client(config)
        self.keys = read_site_keys(config.site_key_file)
        self._keys_stamp = self._key_file_stamp()
        self._inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._connected = False
        self._sent: dict[int, _Sent] = {}
        self._sent_seq = 0  # the newest event seq published on this connection
        self._subscription: int | None = None
        self._marker: str | None = None
        self._next_marker = 0.0
        self._next_clear = 0.0
        self._next_status = 0.0
        self._next_keys = 0.0
        self._states: dict[str, str] = {}
        self._received: list[sync.Received] = []
        self._published: dict[str, list[PersonRecord | Tombstone]] = {}  # by key id
        self._people_seen: tuple[int, str] | None = None  # (revision, key id) last listed
        # versions published by this run, whose copies the broker sends back to us
        self._echoes: set[tuple[str, int, str]] = set()
        self._control: ControlClient | None = None
        self.synced = threading.Event()  # set each time the marker came back
        sync.configure(gallery, config.terminal_id, config.outbox_retention_s)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe

    # --- paho's thread: queue and return ---------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        self._inbox.put(("connect", reason, bool(flags.session_present)))

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        self._inbox.put(("disconnect", reason))

    def _on_message(self, client, userdata, message) -> None:
        self._inbox.put(("message", message.topic, bytes(message.payload)))

    def _on_publish(self, client, userdata, mid, reason, properties) -> None:
        self._inbox.put(("ack", mid))

    def _on_subscribe(self, client, userdata, mid, reasons, properties) -> None:
        self._inbox.put(("subscribed", mid))

    # --- the loop ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self.client.connect_async(self.config.host, self.config.port, self.config.keepalive_seconds)
        self.client.loop_start()
        try:
            while not stop.is_set():
                try:
                    self.step()
                except GalleryUnavailableError as exc:
                    self._people_seen = None  # marks may be lost: list people again
                    self._marker = None  # and a marker that came back unrecorded: another
                    # Busy (an enrolment, a long command) or a full disk: what was not
                    # written is sent or applied again later; the door is not waiting.
                    log.warning("%s; trying again", exc)
        finally:
            self._leave()

    def step(self) -> None:
        """Take what the network brought (waiting up to POLL_S for it), then publish."""
        delivered: list[int] = []
        try:
            item = self._inbox.get(timeout=POLL_S)
            while True:
                self._handle(item, delivered)
                item = self._inbox.get_nowait()
        except queue.Empty:
            pass
        self._apply_received()
        if delivered:
            with self.gallery.writing() as conn:
                outbox.mark_delivered(conn, delivered)
        published, self._published = self._published, {}
        for key_id, items in published.items():
            sync.mark_published(self.gallery, items, key_id)
        now = self.clock.now()
        if now >= self._next_keys:
            self._next_keys = now + KEYS_EVERY_S
            self._reload_keys()
        if self.control_socket and now >= self._next_status:
            self._next_status = now + STATUS_EVERY_S
            self._poll_daemon()
        if self._connected:
            self._publish_events()
            self._publish_people()
            if self._marker is None and self._subscription is None and now >= self._next_marker:
                self._send_marker()
            if now >= self._next_clear:
                self._next_clear = now + CLEAR_EVERY_S
                self._clear_tombstones()

    def _handle(self, item: tuple[Any, ...], delivered: list[int]) -> None:
        kind = item[0]
        if kind == "connect":
            reason, session_present = item[1], item[2]
            if reason.is_failure:
                log.warning("the broker refused the connection: %s", reason)
                return
            self._connected_now()
            if not session_present:
                # A broker that lost our session (new, or restarted without its
                # persistence) may have lost the retained people too: publish again
                # every version this terminal made.
                sync.republish_own(self.gallery)
        elif kind == "disconnect":
            if self._connected:
                log.warning("lost the broker (%s); events wait in the outbox", item[1])
            self._connected = False
            self._sent.clear()
            self._sent_seq = 0
            self._subscription = self._marker = None
            self.synced.clear()
        elif kind == "subscribed":
            if item[1] == self._subscription:
                self._subscription = None
                self._send_marker()
        elif kind == "ack":
            sent = self._sent.pop(item[1], None)
            if sent is None:
                return  # from before a reconnection: sent again since
            if sent.what == "event":
                delivered.append(sent.item)
            elif sent.what == "record":
                self._published.setdefault(sent.item[1], []).append(sent.item[0])
            elif sent.what == "clear":
                sync.mark_cleared(self.gallery, sent.item)
        elif kind == "message":
            self._message(item[1], item[2])

    def _connected_now(self) -> None:
        config, site, me = self.config, self.config.site, self.config.terminal_id
        log.info("connected to the broker %s:%d", config.host, config.port)
        self._connected = True
        self._people_seen = None  # what was in flight when the connection went: again
        self._sent.clear()
        self._sent_seq = 0
        wanted = [(topics.people(site), 1), (topics.sync_marker(site, me), 1)]
        if config.collect_events:
            wanted.append((topics.events(site), 1))
        if config.allow_remote_unlock:
            wanted.append((topics.state(site, me, "lock/set"), 1))
        _, self._subscription = self.client.subscribe(wanted)
        self._marker = None
        self._publish(topics.state(site, me, "availability"), homeassistant.ONLINE, retain=True)
        if config.homeassistant:
            for topic, payload in homeassistant.discovery(
                config.discovery_prefix, site, me, config.allow_remote_unlock, facegate_version()
            ).items():
                self._publish(topic, json.dumps(payload), retain=True)
        for name, value in self._states.items():
            self._publish(topics.state(site, me, name), value, retain=True)

    def _publish(self, topic: str, payload: bytes | str, retain: bool = False) -> int:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        return int(info.mid)

    # --- people ---------------------------------------------------------------------------

    def _message(self, topic: str, payload: bytes) -> None:
        site, me = self.config.site, self.config.terminal_id
        if topic == topics.sync_marker(site, me):
            self._apply_received()  # what came before the marker, first
            if self._marker is not None and payload.decode(errors="replace") == self._marker:
                sync.record_sync(self.gallery, self.clock.wall())
                self._marker = None
                self._next_marker = self.clock.now() + self._marker_interval()
                self.synced.set()
            return
        if topic.startswith(topics.people(site)[:-1]):
            self._person_message(topic, payload)
        elif topic.startswith(topics.events(site)[:-1]):
            self._event_message(topics.last_level(topic), payload)
        elif topic == topics.state(site, me, "lock/set"):
            self._unlock_request(payload)

    def _marker_interval(self) -> float:
        limit = self.config.max_offline_seconds
        return min(MARKER_EVERY_S, limit / 3) if limit else MARKER_EVERY_S

    def _send_marker(self) -> None:
        self._marker = secrets.token_hex(8)
        self._publish(topics.sync_marker(self.config.site, self.config.terminal_id), self._marker)

    def _person_message(self, topic: str, payload: bytes) -> None:
        if not payload:
            return  # a deletion cleared from the broker after its retention
        try:
            header, plain = open_sealed(self.keys, topic, payload)
            item = people.decode(header, plain)
        except (SealError, RecordError) as exc:
            log.warning("refused a person message: %s", exc)
            self._apply_received()  # the log keeps the order things came in
            sync.refuse(self.gallery, self.clock.wall(), str(exc))
            return
        if (item.uid, item.revision, header.origin) in self._echoes:
            self._echoes.discard((item.uid, item.revision, header.origin))
            return  # our own publication coming back: we hold it, or a newer one
        self._received.append((item, header.key_id))

    def _apply_received(self) -> None:
        """Apply the people that came since the last time, in one transaction."""
        received = self._received
        outcomes = sync.apply(self.gallery, received, self.model_id, self.clock.wall())
        self._received = []  # only once applied: a busy gallery keeps them for the next try
        for (item, _), outcome in zip(received, outcomes, strict=True):
            if outcome is SyncOutcome.REFUSED:
                log.warning("refused %s revision %d from %s", item.uid, item.revision, item.origin)
            elif outcome is not SyncOutcome.CURRENT:
                log.info(
                    "%s person %s (revision %d from %s)",
                    outcome,
                    item.uid,
                    item.revision,
                    item.origin,
                )

    def _publish_people(self) -> None:
        if any(s.what == "record" for s in self._sent.values()):
            return  # one round at a time: what is in flight would be listed again
        site, keys = self.config.site, self.keys
        # Listing what to publish reads everyone: only when people or the key changed
        # since the last round (the gallery's revision moves with every change to people).
        seen = (self.gallery.revision(), keys.current_id)
        if seen == self._people_seen:
            return
        self._people_seen = seen
        for item in sync.to_publish(self.gallery, keys.current_id):
            topic = topics.person(site, item.uid)
            sealed = seal(keys, topic, item.uid, item.revision, item.origin, people.encode(item))
            self._sent[self._publish(topic, sealed, retain=True)] = _Sent(
                "record", (item, keys.current_id)
            )
            self._echoes.add((item.uid, item.revision, item.origin))

    def _clear_tombstones(self) -> None:
        before = self.clock.wall() - self.config.tombstone_retention_s
        for uid in sync.tombstones_to_clear(self.gallery, before):
            topic = topics.person(self.config.site, uid)
            self._sent[self._publish(topic, b"", retain=True)] = _Sent("clear", uid)

    def _reload_keys(self) -> None:
        stamp = self._key_file_stamp()
        if stamp != self._keys_stamp:
            self.keys = read_site_keys(self.config.site_key_file)
            self._keys_stamp = stamp
            log.info("site key file changed: sealing with key %s", self.keys.current_id)
            if self._connected:
                # Subscribing again makes the broker send every retained person again
                # (MQTT 3.1.1, 3.8.4): those refused for a key this terminal lacked.
                _, self._subscription = self.client.subscribe(
                    [(topics.people(self.config.site), 1)]
                )
                self._marker = None

    def _key_file_stamp(self) -> tuple[int, int]:
        info = Path(self.config.site_key_file).stat()
        return info.st_mtime_ns, info.st_ino

    # --- events -----------------------------------------------------------------------------

    def _publish_events(self) -> None:
        in_flight = sum(1 for s in self._sent.values() if s.what == "event")
        if in_flight >= WINDOW:
            return
        with self.gallery.reading() as conn:
            waiting = outbox.pending(conn, self._sent_seq, WINDOW - in_flight)
        site, me = self.config.site, self.config.terminal_id
        for event in waiting:
            body = event_payload(me, event, self.config.publish_names)
            mid = self._publish(topics.events(site, me), json.dumps(body, separators=(",", ":")))
            self._sent[mid] = _Sent("event", event.seq)
            self._sent_seq = event.seq
            if event.kind in DECISIONS and self.config.homeassistant:
                decision = {k: body[k] for k in ("kind", "time", "person", "reason") if k in body}
                self._publish(topics.state(site, me, "decision"), json.dumps(decision), True)

    def _event_message(self, terminal: str, payload: bytes) -> None:
        if terminal == self.config.terminal_id:
            return  # our own: the gallery has it
        try:
            event = parse_event(payload)
        except ValueError as exc:
            log.warning("ignored an unreadable event from %s: %s", terminal, exc)
            return
        sync.collect_event(self.gallery, terminal, event)

    # --- the daemon: status and remote unlock ---------------------------------------------------

    def _daemon(self) -> ControlClient:
        if self._control is None:
            self._control = ControlClient(self.control_socket, timeout=2.0)
        return self._control

    def _ask_daemon(self, call: Callable[[ControlClient], dict[str, Any]]) -> dict[str, Any] | None:
        try:
            return call(self._daemon())
        except (ControlError, OSError, ValueError) as exc:
            if self._control is not None:
                self._control.close()
                self._control = None
            log.debug("the daemon did not answer: %s", exc)
            return None

    def _poll_daemon(self) -> None:
        status = self._ask_daemon(lambda c: c.request("status"))
        states = homeassistant.states(status or {"camera": "unknown"})
        site, me = self.config.site, self.config.terminal_id
        for name, value in states.items():
            if self._states.get(name) != value:
                self._states[name] = value
                if self._connected:
                    self._publish(topics.state(site, me, name), value, retain=True)

    def _unlock_request(self, payload: bytes) -> None:
        if payload.decode(errors="replace") != homeassistant.UNLOCK_COMMAND:
            return  # the relay locks by itself; nothing else is asked of it
        if not (self.config.allow_remote_unlock and self.control_socket):
            log.warning("refused an unlock from Home Assistant: remote unlock is off")
            return
        reply = self._ask_daemon(
            lambda c: c.request("unlock", by="Home Assistant (mqtt)", reason="lock entity")
        )
        if reply is None:
            log.warning("the daemon refused or missed an unlock from Home Assistant")

    # --- leaving --------------------------------------------------------------------------------

    def _leave(self) -> None:
        """Say offline (the last will covers a crash), then disconnect."""
        try:
            if self._connected:
                info = self.client.publish(
                    topics.state(self.config.site, self.config.terminal_id, "availability"),
                    homeassistant.OFFLINE,
                    qos=1,
                    retain=True,
                )
                info.wait_for_publish(timeout=2.0)
            self.client.disconnect()
        finally:
            self.client.loop_stop()
            if self._control is not None:
                self._control.close()


def event_payload(terminal: str, event: OutboxEvent, names: bool) -> dict[str, Any]:
    """An event as published: ``id`` (``<terminal>/<seq>``) is unique in the site."""
    body: dict[str, Any] = {
        "id": f"{terminal}/{event.seq}",
        "terminal": terminal,
        "seq": event.seq,
        "time": event.time,
        "kind": event.kind,
        "person": event.person_uid,
        "score": event.score,
        "liveness": event.liveness,
        "reason": event.reason,
    }
    if names:
        body["name"] = event.name
    return body


def parse_event(payload: bytes) -> OutboxEvent:
    """An event another terminal published; ValueError says what is wrong with it. The
    optional fields are dropped (None) when they are not of their type."""
    body = json_object(payload)
    seq = required(body, "seq", int)
    if seq < 1:
        raise ValueError("'seq' is not a positive integer")
    when = number(body, "time")
    kind = event_kind(str(body.get("kind")))

    def optional(key: str, kind: type | tuple[type, ...]) -> Any:
        value = body.get(key)
        return value if is_a(value, kind) else None

    return OutboxEvent(
        seq,
        when,
        kind.value,
        optional("person", str),
        optional("name", str),
        optional("score", (int, float)),
        optional("liveness", (int, float)),
        optional("reason", str),
    )


def run_service(config: Config, clock: Clock, stop: threading.Event) -> None:
    """Open the gallery and run the broker client until ``stop``: 'facegate mqtt'."""
    if not config.mqtt.enabled:
        raise ConfigError("mqtt.enabled: the broker client is off; set [mqtt] enabled = true")
    with Gallery.from_config(config.gallery, clock=clock) as gallery:
        service = MqttService(
            config.mqtt,
            gallery,
            config.embedder.model,
            clock,
            control_socket=config.control.socket,
        )
        service.run(stop)
