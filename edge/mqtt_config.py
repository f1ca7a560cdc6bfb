"""The ``[mqtt]`` section: the broker a site's terminals share, and what they share.

It sits low in the layers, beside ``control``, because the door daemon reads two of its
settings (the outbox's retention and ``max_offline_seconds``) while the broker client
itself (``edge.mqtt``) sits at the top.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConfigError
from .schema import setting

# A site or terminal name is one MQTT topic level: no wildcards, no separators.
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
DAY_S = 86400.0


@dataclass(frozen=True)
class MqttConfig:
    """The broker client (``facegate mqtt``): events upward, people synced, Home Assistant."""

    enabled: bool = setting(
        False, "run the broker client and keep an outbox of events for it (off by default)"
    )
    host: str = setting("", "broker host name or address (required when enabled)")
    port: int = setting(8883, "broker TCP port (8883 is MQTT over TLS)", min=1, max=65535)
    tls: bool = setting(True, "connect with TLS; false only on a broker that is on this device")
    tls_ca: str = setting("", "CA certificate file that signed the broker's; empty = the system's")
    tls_cert: str = setting("", "this terminal's client certificate file; empty = none")
    tls_key: str = setting("", "the client certificate's private key file")
    username: str = setting("", "this terminal's user name on the broker; empty = none")
    password_file: str = setting("", "file holding that user's password (mode 0600)")
    site: str = setting("", "site name, shared by every terminal of the building (topic level)")
    terminal_id: str = setting("", "this terminal's name, unique within the site (topic level)")
    site_key_file: str = setting(
        "/etc/facegate/key/site.key",
        "file holding the site key that seals people's records ('facegate site-key')",
    )
    publish_names: bool = setting(
        False, "put people's names in published events; by default only their site-wide id"
    )
    collect_events: bool = setting(
        False, "keep every terminal's events in this gallery, for 'facegate attendance --site'"
    )
    outbox_retention_days: float = setting(
        30.0,
        "days an event waits for the broker before it is dropped (with an 'outbox_dropped' event)",
        min=0.01,
        max=3650.0,
    )
    tombstone_retention_days: float = setting(
        30.0,
        "days a deletion stays on the broker for terminals that were away; then it is cleared",
        min=0.01,
        max=3650.0,
    )
    max_offline_seconds: float = setting(
        0.0,
        "deny everyone when the last sync with the site is older than this; 0 = never",
        min=0.0,
        max=365 * DAY_S,
    )
    allow_remote_unlock: bool = setting(
        False,
        "let Home Assistant unlock the door (needs [control] allow_remote_unlock too); "
        "each unlock is logged",
    )
    homeassistant: bool = setting(True, "announce this terminal to Home Assistant (discovery)")
    discovery_prefix: str = setting("homeassistant", "Home Assistant's discovery topic prefix")
    keepalive_seconds: int = setting(
        30,
        "seconds between keepalives; the broker declares the terminal gone after 1.5x",
        min=5,
        max=3600,
    )

    def validate(self) -> None:
        if not self.enabled:
            return
        if not self.host:
            raise ConfigError("mqtt.host: required when mqtt.enabled = true")
        for key in ("site", "terminal_id"):
            value = getattr(self, key)
            if not _TOPIC_NAME.match(value):
                raise ConfigError(
                    f"mqtt.{key}: {value!r} must be 1 to 64 letters, digits, '-' or '_' "
                    "(it is a topic level), starting with a letter or digit"
                )
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("mqtt.tls_key: give tls_cert and tls_key together, or neither")
        if (self.tls_ca or self.tls_cert) and not self.tls:
            raise ConfigError("mqtt.tls: certificates are given but tls = false")
        if self.password_file and not self.username:
            raise ConfigError("mqtt.username: required with a password_file")
        if not _TOPIC_NAME.match(self.discovery_prefix):
            raise ConfigError(
                f"mqtt.discovery_prefix: {self.discovery_prefix!r} must be one topic level"
            )

    @property
    def outbox_retention_s(self) -> float:
        return self.outbox_retention_days * DAY_S

    @property
    def tombstone_retention_s(self) -> float:
        return self.tombstone_retention_days * DAY_S
