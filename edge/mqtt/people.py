"""A person's record as plaintext for the broker, and back: what the seal protects.

The uid, revision and origin travel in the sealed envelope's header (authenticated),
the rest here: name, role, enabled, validity, schedule, when they were enrolled, and
their templates with the model id that made each. A deletion's plaintext says only
when it happened. Parsing checks every field's type; the sync checks their meaning.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

from ..errors import FacegateError
from ..gallery.sync import PersonRecord, Template, Tombstone
from .seal import Header

MAX_TEMPLATES = 50


class RecordError(FacegateError, ValueError):
    """An authentic record whose content is not a person or a deletion."""


def encode(item: PersonRecord | Tombstone) -> bytes:
    body: dict[str, Any]
    if isinstance(item, Tombstone):
        body = {"deleted": item.deleted}
    else:
        body = {
            "name": item.name,
            "role": item.role,
            "enabled": item.enabled,
            "valid_from": item.valid_from,
            "valid_until": item.valid_until,
            "schedule": item.schedule,
            "created": item.created,
            "templates": [
                {
                    "model": t.model_id,
                    "vector": base64.b64encode(t.vector).decode(),
                    "quality": t.quality,
                }
                for t in item.templates
            ],
        }
    return json.dumps(body, separators=(",", ":")).encode()


def decode(header: Header, plain: bytes) -> PersonRecord | Tombstone:
    try:
        body = json.loads(plain)
        if not isinstance(body, dict):
            raise ValueError("not an object")
        if "deleted" in body:
            return Tombstone(header.uid, header.revision, header.origin, _number(body, "deleted"))
        templates = body.get("templates")
        if not isinstance(templates, list) or len(templates) > MAX_TEMPLATES:
            raise ValueError(f"'templates' is not a list of at most {MAX_TEMPLATES}")
        return PersonRecord(
            uid=header.uid,
            revision=header.revision,
            origin=header.origin,
            name=_typed(body, "name", str),
            role=_typed(body, "role", str),
            enabled=_typed(body, "enabled", bool),
            valid_from=_optional_number(body, "valid_from"),
            valid_until=_optional_number(body, "valid_until"),
            schedule=None if body.get("schedule") is None else _typed(body, "schedule", str),
            created=_number(body, "created"),
            templates=tuple(_template(t) for t in templates),
        )
    except (ValueError, binascii.Error) as exc:
        raise RecordError(f"person {header.uid}: unreadable record ({exc})") from None


def _template(value: object) -> Template:
    if not isinstance(value, dict):
        raise ValueError("a template is not an object")
    vector = base64.b64decode(_typed(value, "vector", str), validate=True)
    return Template(_typed(value, "model", str), vector, _number(value, "quality"))


def _typed(body: dict[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ValueError(f"{key!r} is not a {kind.__name__}")
    return value


def _number(body: dict[str, Any], key: str) -> float:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{key!r} is not a finite number")
    return float(value)


def _optional_number(body: dict[str, Any], key: str) -> float | None:
    return None if body.get(key) is None else _number(body, key)
