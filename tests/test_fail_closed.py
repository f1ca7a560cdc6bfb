"""NaN, infinity or a missing value must deny: in the config and in every security
comparison (matcher, liveness, quality gate, decision votes, schedules, the door)."""

from __future__ import annotations

import dataclasses
import math
import typing

import numpy as np
import pytest

from edge import cli
from edge.access.decision import DecisionMachine, Observation
from edge.access.door import DoorController
from edge.access.gpio.mock import MockGpio
from edge.clock import FakeClock
from edge.config import config_errors, sections
from edge.errors import ExitCode
from edge.gallery.matcher import Matcher, MatcherConfig
from edge.liveness.policy import LivenessChecker, LivenessConfig
from edge.types import Embedding, Face
from edge.vision.aligner import TEMPLATE_112
from edge.vision.quality import LOW_SCORE, POSE, TOO_SMALL, QualityConfig, QualityGate
from tests.access.test_decision import CONFIG, WALL
from tests.access.test_door import LOCKED, RELAY, WIRED
from tests.liveness.test_policy import STILL, ScriptedRgb, frames, run

NON_FINITE = ("nan", "inf", "-inf")


def _has_float(kind) -> bool:
    return kind is float or any(_has_float(arg) for arg in typing.get_args(kind))


def float_settings() -> list[tuple[str, str, object]]:
    """(section, key, default) of every setting that holds a float, in every section."""
    found = []
    for section, cls in sections().items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if _has_float(hints[f.name]):
                found.append((section, f.name, f.default))
    return found


def with_one_value(default, value: str) -> str:
    """A TOML value: ``value`` alone, or the default list with its first element replaced."""
    if isinstance(default, tuple):
        return "[" + ", ".join([value] + [repr(v) for v in default[1:]]) + "]"
    return value


def test_the_property_test_sees_the_security_thresholds():
    found = {(section, key) for section, key, _ in float_settings()}
    assert {
        ("matcher", "min_similarity"),
        ("liveness", "threshold"),
        ("liveness", "nir_brightness"),
        ("quality", "pitch_range"),
        ("door", "unlock_seconds"),
    } <= found
    assert len(found) > 30


@pytest.mark.parametrize("value", NON_FINITE)
def test_every_float_setting_refuses_non_finite_values_with_key_and_line(tmp_path, capsys, value):
    for section, key, default in float_settings():
        path = tmp_path / f"{section}.{key}.toml"
        path.write_text(f"# facegate\n[{section}]\n{key} = {with_one_value(default, value)}\n")
        config, errors = config_errors(path)
        assert config is None
        assert errors == [f"{path}:3: {section}.{key}: {value} is not a finite number"]
        assert cli.main(["check-config", "--config", str(path)]) == ExitCode.CONFIG == 78
        out, err = capsys.readouterr()
        assert "config OK" not in out and f"{section}.{key}" in err


# --- a NaN score denies ------------------------------------------------------------------

MODEL = "sface-test"


def test_a_nan_embedding_matches_nobody(gallery):
    vector = np.zeros(8, np.float32)
    vector[0] = 1.0
    gallery.add_person("Ada", "user", [Embedding(vector, MODEL)], [1.0])
    matcher = Matcher(gallery, MatcherConfig(min_similarity=0.45), MODEL)
    assert matcher.match(Embedding(vector, MODEL)).known
    match = matcher.match(Embedding(np.full(8, np.nan, np.float32), MODEL))
    assert not match.known and match.person_id is None and math.isnan(match.similarity)


def test_a_nan_liveness_score_is_a_spoof():
    checker = LivenessChecker(LivenessConfig(threshold=0.5), ScriptedRgb([0.9, math.nan, 0.9]))
    verdicts = run(checker, frames(STILL[:3]))
    assert [v.verdict for v in verdicts] == ["live", "spoof", "spoof"]  # the mean is NaN too
    assert verdicts[1].cues == ("rgb",)


def test_nan_measurements_fail_the_quality_gate():
    gate = QualityGate(QualityConfig())
    good = TEMPLATE_112 * 2
    assert gate.check_geometry(Face((0, 0, 1, 1), good, 0.95))[0] == []
    reasons, _ = gate.check_geometry(Face((0, 0, 1, 1), good, math.nan))
    assert reasons == [LOW_SCORE]
    nan_points = np.full((5, 2), np.nan, np.float32)
    reasons, _ = gate.check_geometry(Face((0, 0, 1, 1), nan_points, 0.95))
    assert TOO_SMALL in reasons and POSE in reasons


def test_votes_with_a_nan_similarity_never_grant():
    machine = DecisionMachine(CONFIG, lambda pid, wall: None, require_liveness=True)
    commands = []
    for i in range(5):
        commands += machine.observe(Observation(i * 0.1, 1, "ada", math.nan, "live"), WALL)
    assert commands == []


def test_a_nan_time_is_refused_by_the_decision_machine():
    machine = DecisionMachine(CONFIG, lambda pid, wall: None, require_liveness=True)
    with pytest.raises(ValueError, match="nan"):
        machine.observe(Observation(math.nan, 1, "ada", 0.8, "live"), WALL)


def test_a_nan_wall_time_is_outside_every_schedule(gallery):
    vector = np.ones(8, np.float32) / math.sqrt(8)
    pid = gallery.add_person(
        "Ada", "user", [Embedding(vector, MODEL)], [1.0], valid_from=0.0, valid_until=2 * WALL
    )
    assert gallery.access_status(pid, WALL) is None
    assert gallery.access_status(pid, math.nan) == "not_yet_valid"


def test_a_nan_time_ends_an_unlock_pulse():
    clock = FakeClock(start=100.0)
    gpio = MockGpio(clock)
    door = DoorController(WIRED, gpio, clock.now())
    door.grant(100.0)
    assert gpio.level(RELAY) is not LOCKED
    door.tick(math.nan)
    assert gpio.level(RELAY) is LOCKED and not door.unlocked
