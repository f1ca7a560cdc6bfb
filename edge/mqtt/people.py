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
from typing import Any

from ..errors import FacegateError
from ..gallery.sync import PersonRecord, Template, Tombstone
from .json_fields import json_object, number, optional_number, required
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
        body = json_object(plain)
        if "deleted" in body:
            return Tombstone(header.uid, header.revision, header.origin, number(body, "deleted"))
        templates = body.get("templates")
        if not isinstance(templates, list) or len(templates) > MAX_TEMPLATES:
            raise ValueError(f"'templates' is not a list of at most {MAX_TEMPLATES}")
        return PersonRecord(
            uid=header.uid,
            revision=header.revision,
            origin=header.origin,
            name=required(body, "name", str),
            role=required(body, "role", str),
            enabled=required(body, "enabled", bool),
            valid_from=optional_number(body, "valid_from"),
            valid_until=optional_number(body, "valid_until"),
            schedule=None if body.get("schedule") is None else required(body, "schedule", str),
            created=number(body, "created"),
            templates=tuple(_template(t) for t in templates),
        )
    except (ValueError, binascii.Error) as exc:
        raise RecordError(f"person {header.uid}: unreadable record ({exc})") from None


def _template(value: object) -> Template:
    if not isinstance(value, dict):
        raise ValueError("a template is not an object")
    vector = base64.b64decode(required(value, "vector", str), validate=True)
    return Template(required(value, "model", str), vector, number(value, "quality"))
