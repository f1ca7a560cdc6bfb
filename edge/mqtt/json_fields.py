"""The fields of a JSON message from the broker: present and of the right type, or a
ValueError naming the field. Each caller names the message in its own error (the person,
the topic, the terminal), so that a refusal says which field of which message.

JSON's true and false are not numbers here, though Python's bool is an int; numbers
are finite (Python's json reads NaN and Infinity).
"""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

T = TypeVar("T")
_NAMES = {str: "a string", int: "an integer", bool: "true or false"}


def json_object(payload: bytes) -> dict[str, Any]:
    """The payload's JSON object; ValueError when it is not JSON or not an object."""
    body = json.loads(payload)
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    return body


def is_a(value: object, kind: type | tuple[type, ...]) -> bool:
    """``isinstance``, except that a boolean is only ever a bool."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))


def required(body: dict[str, Any], key: str, kind: type[T]) -> T:
    value: Any = body.get(key)  # checked next
    if not is_a(value, kind):
        raise ValueError(f"{key!r} is not {_NAMES.get(kind, kind.__name__)}")
    return value


def number(body: dict[str, Any], key: str) -> float:
    value: Any = body.get(key)  # checked next
    if not is_a(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{key!r} is not a finite number")
    return float(value)


def optional_number(body: dict[str, Any], key: str) -> float | None:
    """None when absent or null, else as :func:`number`."""
    return None if body.get(key) is None else number(body, key)
