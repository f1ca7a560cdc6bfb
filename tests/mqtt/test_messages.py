"""Messages from the broker with a field missing or of the wrong type: each is refused with
an error that names the field and the message (the person, the topic), whichever of the
three readers (sealed envelope, person record, event) met it."""

from __future__ import annotations

import json
import re

import pytest

from edge.mqtt import people
from edge.mqtt.people import RecordError
from edge.mqtt.seal import Header, SealError, open_sealed
from edge.mqtt.service import parse_event
from edge.mqtt.site_key import SiteKeys
from tests.mqtt.test_seal import PERSON, TOPIC, UID, sealed

KEYS = SiteKeys((bytes(range(32)),))
HEADER = Header(UID, 4, "a", KEYS.current_id)


@pytest.mark.parametrize(
    "field, value, said",
    [
        ("rev", True, "'rev' is not an integer"),
        ("uid", 7, "'uid' is not a string"),
        ("nonce", None, "'nonce' is not a string"),
    ],
)
def test_an_envelope_field_of_the_wrong_type_is_named_with_the_topic(field, value, said):
    envelope = json.loads(sealed(KEYS))
    envelope[field] = value
    with pytest.raises(SealError, match=re.escape(f"{TOPIC}: not a sealed record ({said})")):
        open_sealed(KEYS, TOPIC, json.dumps(envelope).encode())


@pytest.mark.parametrize(
    "field, value, said",
    [
        ("enabled", 1, "'enabled' is not true or false"),
        ("name", True, "'name' is not a string"),
        ("created", float("nan"), "'created' is not a finite number"),
        ("valid_until", "soon", "'valid_until' is not a finite number"),
        ("role", None, "'role' is not a string"),
    ],
)
def test_a_person_field_of_the_wrong_type_is_named_with_the_person(field, value, said):
    assert people.decode(HEADER, people.encode(PERSON)) == PERSON  # readable as it was
    body = json.loads(people.encode(PERSON))
    body[field] = value
    with pytest.raises(RecordError, match=re.escape(f"person {UID}: unreadable record ({said})")):
        people.decode(HEADER, json.dumps(body).encode())


def test_a_template_field_of_the_wrong_type_is_named():
    body = json.loads(people.encode(PERSON))
    body["templates"][0]["quality"] = "high"
    with pytest.raises(RecordError, match="'quality' is not a finite number"):
        people.decode(HEADER, json.dumps(body).encode())


EVENT = {"seq": 3, "time": 100.5, "kind": "granted", "person": UID, "score": 0.8}


@pytest.mark.parametrize(
    "changes, said",
    [
        ({"seq": True}, "'seq' is not an integer"),
        ({"seq": 0}, "'seq' is not a positive integer"),
        ({"time": None}, "'time' is not a finite number"),
        ({"time": float("nan")}, "'time' is not a finite number"),
        ({"time": float("inf")}, "'time' is not a finite number"),
        ({"kind": "opened"}, "unknown event kind 'opened'"),
    ],
)
def test_an_event_with_a_required_field_wrong_is_refused_naming_it(changes, said):
    with pytest.raises(ValueError, match=re.escape(said)):
        parse_event(json.dumps({**EVENT, **changes}).encode())


def test_an_event_keeps_its_optional_fields_only_when_they_are_of_their_type():
    event = parse_event(json.dumps(EVENT).encode())
    assert (event.seq, event.time, event.kind, event.person_uid, event.score) == (
        3,
        100.5,
        "granted",
        UID,
        0.8,
    )
    odd = parse_event(json.dumps({**EVENT, "person": 5, "score": True, "name": None}).encode())
    assert (odd.person_uid, odd.score, odd.name) == (None, None, None)
    with pytest.raises(ValueError, match="not a JSON object"):
        parse_event(b"[1, 2]")
