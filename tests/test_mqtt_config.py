"""The [mqtt] section: off by default, and what it needs when on."""

from __future__ import annotations

import pytest

from edge.config import default_config, parse_config
from edge.errors import ConfigError

ON = 'enabled = true\nhost = "broker.lan"\nsite = "hq"\nterminal_id = "door1"\n'


def test_off_by_default_and_valid_when_on():
    assert default_config().mqtt.enabled is False
    config = parse_config(f"[mqtt]\n{ON}").mqtt
    assert (config.port, config.tls, config.site) == (8883, True, "hq")
    assert config.outbox_retention_s == 30 * 86400


@pytest.mark.parametrize(
    "extra, words",
    [
        ('host = ""\n', "mqtt.host: required"),
        ('site = "h/q"\n', "mqtt.site: 'h/q' must be 1 to 64"),
        ('terminal_id = "+"\n', "mqtt.terminal_id: '+' must be"),
        ('tls_cert = "c.pem"\n', "mqtt.tls_key: give tls_cert and tls_key together"),
        ('tls = false\ntls_ca = "ca.pem"\n', "mqtt.tls: certificates are given"),
        ('password_file = "p"\n', "mqtt.username: required with a password_file"),
        ("max_offline_seconds = -1.0\n", "below the minimum"),
        ('discovery_prefix = "a/b"\n', "mqtt.discovery_prefix"),
    ],
)
def test_what_is_wrong_is_named(extra, words):
    lines = {line.split(" = ")[0]: line for line in (ON + extra).splitlines()}
    with pytest.raises(ConfigError, match=words.replace("+", r"\+")):
        parse_config("[mqtt]\n" + "\n".join(lines.values()) + "\n")
