"""The vocabularies: str enums that compare, hash, print and serialise as their words."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from edge.types import EventKind, Liveness, Verdict


def test_a_word_is_its_string_in_comparisons_dict_keys_formatting_and_json():
    kind = EventKind.GRANTED
    assert kind == "granted" and EventKind("granted") is kind
    counts: Counter[str] = Counter()
    counts["granted"] += 1
    counts[kind] += 1
    assert counts == {"granted": 2}
    assert f"{kind:9}|{kind}" == "granted  |granted"
    assert json.dumps({"kind": kind}) == '{"kind": "granted"}'


def test_a_liveness_verdict_must_be_one_of_the_words():
    assert Liveness(0.9, "live").verdict is Verdict.LIVE
    with pytest.raises(ValueError, match="'alive' is not a valid Verdict"):
        Liveness(0.9, "alive")
