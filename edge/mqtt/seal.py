"""Sealing a person's record for the broker: AES-256-GCM under the site key.

The broker and anyone subscribed learn nothing from a sealed record but its topic,
its version and which key sealed it, and can forge nothing: the authenticated data
binds the ciphertext to its topic, the person's uid, the revision, the terminal that
made it and the key id, so a record cannot be moved to another person, replayed as a
newer revision or passed off as another terminal's. The nonce is 96 random bits
(NIST SP 800-38D's random construction; a site seals far fewer than 2^32 records per
key). Replays of an authentic record are the sync's to refuse (an older revision).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import FacegateError
from .json_fields import json_object, required
from .site_key import SiteKeys

FORMAT = 1
NONCE_BYTES = 12
MAX_ENVELOPE_BYTES = 256 * 1024


class SealError(FacegateError, ValueError):
    """A sealed record that cannot be opened: forged, altered, or under an unknown key."""


@dataclass(frozen=True)
class Header:
    """What a sealed record says of itself in the clear (authenticated, not secret)."""

    uid: str
    revision: int
    origin: str
    key_id: str


def _associated(topic: str, header: Header) -> bytes:
    return json.dumps(
        [FORMAT, topic, header.uid, header.revision, header.origin, header.key_id],
        separators=(",", ":"),
    ).encode()


def seal(keys: SiteKeys, topic: str, uid: str, revision: int, origin: str, plain: bytes) -> bytes:
    header = Header(uid, revision, origin, keys.current_id)
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(keys.current).encrypt(nonce, plain, _associated(topic, header))
    envelope = {
        "v": FORMAT,
        "uid": uid,
        "rev": revision,
        "origin": origin,
        "kid": header.key_id,
        "nonce": base64.b64encode(nonce).decode(),
        "box": base64.b64encode(sealed).decode(),
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def open_sealed(keys: SiteKeys, topic: str, payload: bytes) -> tuple[Header, bytes]:
    """(header, plaintext) of a sealed record on ``topic``; SealError says why not."""
    if len(payload) > MAX_ENVELOPE_BYTES:
        raise SealError(f"{topic}: a sealed record of {len(payload)} bytes is too large")
    try:
        envelope = json_object(payload)
        if envelope.get("v") != FORMAT:
            raise ValueError(f"not a format-{FORMAT} envelope")
        header = Header(
            required(envelope, "uid", str),
            required(envelope, "rev", int),
            required(envelope, "origin", str),
            required(envelope, "kid", str),
        )
        nonce = base64.b64decode(required(envelope, "nonce", str), validate=True)
        box = base64.b64decode(required(envelope, "box", str), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise SealError(f"{topic}: not a sealed record ({exc})") from None
    if not topic.endswith("/" + header.uid):
        raise SealError(f"{topic}: the record is sealed for person {header.uid!r}, not this topic")
    key = keys.by_id(header.key_id)
    if key is None:
        raise SealError(
            f"{topic}: sealed with key {header.key_id}, which this terminal does not have "
            "(forged, or the site key was rotated and not imported here)"
        )
    if len(nonce) != NONCE_BYTES:
        raise SealError(f"{topic}: the nonce is {len(nonce)} bytes, not {NONCE_BYTES}")
    try:
        plain = AESGCM(key).decrypt(nonce, box, _associated(topic, header))
    except InvalidTag:
        raise SealError(
            f"{topic}: authentication failed (forged or altered; revision {header.revision} "
            f"claimed from {header.origin!r})"
        ) from None
    return header, plain
