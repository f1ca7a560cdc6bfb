"""Sealed person records: what the broker sees, what a forger or a replayer can do."""

from __future__ import annotations

import base64
import json
import os

import pytest

from edge.errors import GalleryKeyError
from edge.gallery.sync import PersonRecord, Template, Tombstone
from edge.mqtt import people
from edge.mqtt.seal import SealError, open_sealed, seal
from edge.mqtt.site_key import (
    SiteKeys,
    import_site_keys,
    key_id,
    new_site_key,
    read_site_keys,
    rotate_site_key,
)

UID = "ab" * 16
TOPIC = f"facegate/hq/people/{UID}"
PERSON = PersonRecord(
    UID,
    4,
    "a",
    "Grace Hopper",
    "admin",
    True,
    1.0,
    None,
    None,
    2.0,
    (Template("sface_2021dec", bytes(range(256)) * 2, 0.75),),
)


@pytest.fixture
def keys() -> SiteKeys:
    return SiteKeys((os.urandom(32),))


def sealed(keys: SiteKeys, item=PERSON, topic: str = TOPIC) -> bytes:
    return seal(keys, topic, item.uid, item.revision, item.origin, people.encode(item))


def test_a_sealed_person_opens_to_the_same_record_and_shows_nothing_of_it(keys):
    payload = sealed(keys)
    assert b"Grace" not in payload and b"admin" not in payload
    header, plain = open_sealed(keys, TOPIC, payload)
    assert (header.uid, header.revision, header.origin, header.key_id) == (
        UID,
        4,
        "a",
        keys.current_id,
    )
    assert people.decode(header, plain) == PERSON
    tomb = Tombstone(UID, 5, "b", 9.0)
    assert people.decode(*open_sealed(keys, TOPIC, sealed(keys, tomb))) == tomb


def test_without_the_site_key_nothing_can_be_forged(keys):
    forger = SiteKeys((os.urandom(32),))
    with pytest.raises(SealError, match="which this terminal does not have"):
        open_sealed(keys, TOPIC, sealed(forger))
    # the forger claims the site's key id: the tag gives them away
    envelope = json.loads(sealed(forger))
    envelope["kid"] = keys.current_id
    with pytest.raises(SealError, match="authentication failed"):
        open_sealed(keys, TOPIC, json.dumps(envelope).encode())


@pytest.mark.parametrize(
    "field, value", [("rev", 99), ("origin", "z"), ("uid", "cd" * 16), ("box", None)]
)
def test_any_change_to_a_sealed_record_is_detected(keys, field, value):
    envelope = json.loads(sealed(keys))
    if field == "box":  # flip one bit of the ciphertext
        box = bytearray(base64.b64decode(envelope["box"]))
        box[3] ^= 1
        value = base64.b64encode(bytes(box)).decode()
    envelope[field] = value
    topic = TOPIC if field != "uid" else f"facegate/hq/people/{value}"
    with pytest.raises(SealError, match="authentication failed"):
        open_sealed(keys, topic, json.dumps(envelope).encode())


def test_a_record_moved_to_another_person_or_site_is_refused(keys):
    with pytest.raises(SealError, match="not this topic"):
        open_sealed(keys, f"facegate/hq/people/{'cd' * 16}", sealed(keys))
    with pytest.raises(SealError, match="authentication failed"):
        open_sealed(keys, f"facegate/other/people/{UID}", sealed(keys))


@pytest.mark.parametrize("payload", [b"", b"{", b"[]", b'{"v": 2}', b"x" * 300_000])
def test_garbage_is_refused_with_a_reason(keys, payload):
    with pytest.raises(SealError):
        open_sealed(keys, TOPIC, payload)


def test_site_key_file_made_rotated_imported_and_guarded(tmp_path):
    path = tmp_path / "site.key"
    first = new_site_key(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(GalleryKeyError, match="already exists"):
        new_site_key(path)
    old_record = sealed(first)
    rotated = rotate_site_key(path)
    assert rotated.keys[1:] == first.keys and rotated.current_id != first.current_id
    # what the old key sealed still opens after the rotation
    assert open_sealed(read_site_keys(path), TOPIC, old_record)[0].key_id == first.current_id
    other = tmp_path / "other.key"
    imported = import_site_keys(other, path.read_text())
    assert imported == rotated and [key_id(k) for k in imported.keys] == [
        rotated.current_id,
        first.current_id,
    ]
    path.chmod(0o644)
    with pytest.raises(GalleryKeyError, match="accessible to group or others"):
        read_site_keys(path)
    bad = tmp_path / "bad.key"
    bad.write_text("not hex\n")
    bad.chmod(0o600)
    with pytest.raises(GalleryKeyError, match=r"bad.key:1: not a 256-bit site key"):
        read_site_keys(bad)
