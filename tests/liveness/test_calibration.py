"""Site calibration: the split, the head, when it applies, and where it is stored."""

import json

import numpy as np
import pytest

from edge.errors import FacegateError, ModelError
from edge.gallery.events import EventFilter
from edge.gallery.store import Gallery, GalleryConfig, create_gallery
from edge.liveness.calibration import Head, Presentation, active_head, calibrate, split
from edge.liveness.metrics import threshold_for_bpcer
from edge.liveness.rgb import ModelOutputs, fused_probability
from tests.helpers import add_person_first_schema

MODELS = ("net_a", "net_b")
HASHES = ("a" * 64, "b" * 64)


def outputs(rng, centre) -> tuple[ModelOutputs, ...]:
    """Two networks' outputs around ``centre`` logits, with 128 noise features each."""
    return tuple(
        ModelOutputs(np.asarray(centre, float) + rng.normal(0, 0.4, 3), rng.normal(0, 1, 128), 1)
        for _ in MODELS
    )


def captures(rng, live_centre, attacks: dict, per_kind=8, frames=6) -> list[Presentation]:
    """``per_kind`` presentations of live faces and of each attack type."""
    kinds = [("live", "none", live_centre)] + [("spoof", a, c) for a, c in attacks.items()]
    return [
        Presentation(label, attack, tuple(outputs(rng, centre) for _ in range(frames)))
        for label, attack, centre in kinds
        for _ in range(per_kind)
    ]


# At this door the networks are unsure of live faces (their live logit is only a
# little above the others), but attacks look different again: a linear head on the
# logits separates what the default fusion at 0.5 cannot.
SHIFTED_LIVE = (0.0, 1.0, 1.2)
ATTACKS = {"print": (0.0, -1.0, 3.0), "replay": (2.5, -0.5, 0.0)}


def test_the_split_keeps_presentations_whole_and_holds_back_every_kind():
    rng = np.random.default_rng(0)
    presentations = captures(rng, SHIFTED_LIVE, ATTACKS, per_kind=10)
    fit, back = split(presentations, 0.3, np.random.default_rng(1))
    assert len(fit) + len(back) == len(presentations)
    assert {id(p) for p in fit}.isdisjoint({id(p) for p in back})
    for kind in ("none", "print", "replay"):
        assert sum(p.attack == kind for p in back) == 3
    # A kind with two presentations gives one to each side; with one, it is only fitted.
    few = captures(rng, SHIFTED_LIVE, {"print": ATTACKS["print"]}, per_kind=2)[:3]
    fit, back = split(few, 0.3, np.random.default_rng(0))
    assert [p.attack for p in back] == ["none"]
    assert sorted(p.attack for p in fit) == ["none", "print"]


def test_a_head_that_beats_the_default_on_held_back_captures_is_applied():
    rng = np.random.default_rng(2)
    presentations = captures(rng, SHIFTED_LIVE, ATTACKS)
    head, report = calibrate(presentations, MODELS, HASHES, 0.5, held_back=0.3, bpcer=0.02)
    assert report["applied"]
    calibrated, uncalibrated = report["calibrated"], report["uncalibrated"]
    assert calibrated["acer"] < uncalibrated["acer"]
    assert uncalibrated["bpcer"] > 0.5  # the default refuses most live faces here
    assert calibrated["bpcer"] <= 0.02
    assert report["held_back"]["live"] == {"presentations": 2, "frames": 12}
    assert report["fitted_on"]["print"] == {"presentations": 6, "frames": 36}
    assert report["inputs"] in ("logits", "logits+features")
    # The threshold is the one for the stated BPCER on the held-back live frames.
    fit, back = split(presentations, 0.3, np.random.default_rng(0))
    live = [head.score(f) for p in back if p.label == "live" for f in p.frames]
    assert head.threshold == pytest.approx(threshold_for_bpcer(np.array(live), 0.02))


def test_a_head_that_cannot_beat_a_perfect_default_is_not_applied():
    rng = np.random.default_rng(3)
    presentations = captures(rng, (-2.0, 4.0, -2.0), ATTACKS)
    assert (
        min(fused_probability(f) for p in presentations if p.label == "live" for f in p.frames)
        > 0.5
    )
    _, report = calibrate(presentations, MODELS, HASHES, 0.5)
    assert report["uncalibrated"]["acer"] == 0.0
    assert not report["applied"]


def test_calibration_refuses_too_few_presentations():
    rng = np.random.default_rng(4)
    presentations = captures(rng, SHIFTED_LIVE, {"print": ATTACKS["print"]}, per_kind=1)
    with pytest.raises(FacegateError, match="at least 2 live and 2 attack presentations"):
        calibrate(presentations, MODELS, HASHES, 0.5)


def test_calibration_refuses_captures_without_every_required_attack_type():
    rng = np.random.default_rng(8)
    prints_only = captures(rng, SHIFTED_LIVE, {"print": ATTACKS["print"]})
    with pytest.raises(FacegateError, match="too few of: replay"):
        calibrate(prints_only, MODELS, HASHES, 0.5)
    _, report = calibrate(prints_only, MODELS, HASHES, 0.5, required_attacks=("print",))
    assert report["required_attacks"] == ["print"]


def test_a_head_fails_closed_on_nan_and_refuses_other_models():
    rng = np.random.default_rng(5)
    head, _ = calibrate(captures(rng, SHIFTED_LIVE, ATTACKS), MODELS, HASHES, 0.5)
    frame = outputs(rng, SHIFTED_LIVE)
    broken = (ModelOutputs(np.full(3, np.nan), frame[0].features, 1), frame[1])
    assert not head.score(broken) >= head.threshold
    head.check_models(MODELS, HASHES)
    with pytest.raises(
        ModelError, match="calibrate again, or 'facegate liveness calibrate --revert'"
    ):
        head.check_models(MODELS, ("a" * 64, "c" * 64))  # same name, other weights
    with pytest.raises(ModelError, match="fitted on net_a, net_b"):
        head.check_models(("net_a",), HASHES[:1])


def test_a_head_survives_json_and_a_damaged_one_is_refused():
    rng = np.random.default_rng(6)
    head, _ = calibrate(captures(rng, SHIFTED_LIVE, ATTACKS), MODELS, HASHES, 0.5)
    again = Head.from_json(head.to_json())
    frame = outputs(rng, SHIFTED_LIVE)
    assert again.score(frame) == head.score(frame) and again.threshold == head.threshold
    stored = json.loads(head.to_json())
    for damage in (
        {"threshold": 1.5},
        {"bias": float("nan")},
        {"scale": [0.0] * len(stored["scale"])},
        {"weights": stored["weights"][:-1]},
        {"inputs": "pixels"},
    ):
        with pytest.raises(FacegateError, match="stored liveness calibration"):
            Head.from_json(json.dumps({**stored, **damage}))
    with pytest.raises(FacegateError, match="unreadable"):
        Head.from_json("{}")


@pytest.fixture
def gallery_paths(tmp_path):
    config = GalleryConfig(path=str(tmp_path / "g.db"), key_file=str(tmp_path / "g.key"))
    create_gallery(config)
    return config


def test_the_gallery_keeps_every_attempt_and_one_active_head(gallery_paths):
    rng = np.random.default_rng(7)
    head, report = calibrate(captures(rng, SHIFTED_LIVE, ATTACKS), MODELS, HASHES, 0.5)
    with Gallery.from_config(gallery_paths) as g:
        assert active_head(g) is None
        first = g.add_liveness_calibration(head.to_json(), json.dumps(report), True, now=100.0)
        second = g.add_liveness_calibration(head.to_json(), "{}", False, now=200.0)
        third = g.add_liveness_calibration(head.to_json(), "{}", True, now=300.0)
        assert [(c.id, c.active) for c in g.liveness_calibrations()] == [
            (third, True),
            (second, False),
            (first, False),
        ]
        assert active_head(g).calibration_id == third
        assert [e.reason for e in g.events(EventFilter(kind="liveness_calibrated"))] == [
            f"calibration #{first}",
            f"calibration #{third}",
        ]
    with Gallery.from_config(gallery_paths) as g:  # it is in the file, not the connection
        assert g.active_liveness_calibration().id == third
        assert g.revert_liveness_calibration(now=400.0) == third
        assert g.revert_liveness_calibration(now=500.0) is None
        assert active_head(g) is None
        assert [e.reason for e in g.events(EventFilter(kind="liveness_reverted"))] == [
            f"calibration #{third}"
        ]
        assert len(g.liveness_calibrations()) == 3


def test_a_gallery_from_before_calibration_migrates_and_keeps_its_people(tmp_path, monkeypatch):
    from edge.gallery import store as gallery_module

    config = GalleryConfig(path=str(tmp_path / "old.db"), key_file=str(tmp_path / "old.key"))
    monkeypatch.setattr(gallery_module, "MIGRATIONS", gallery_module.MIGRATIONS[:1])
    monkeypatch.setattr(gallery_module, "SCHEMA_VERSION", 1)
    create_gallery(config)
    with Gallery.from_config(config) as g:
        add_person_first_schema(g, "Ada", np.ones(128, np.float32) / np.sqrt(128))
        assert "liveness_calibrations" not in g._table_names()
    monkeypatch.undo()
    with Gallery.from_config(config) as g:
        assert [p.name for p in g.people()] == ["Ada"]
        assert g.liveness_calibrations() == []
        assert g.check() == []
