from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edge.clock import FakeClock
from edge.errors import ModelMismatchError, RefusedError
from edge.gallery.enrolment import (
    EnrolmentConfig,
    EnrolmentSession,
    TemplateSet,
    build_templates,
    capture_from_images,
    enrol,
    enrol_photos,
    guidance,
    templates_from_json,
    templates_to_json,
)
from edge.gallery.events import EventFilter
from edge.gallery.matcher import Matcher, MatcherConfig
from edge.gallery.store import Person
from edge.types import Embedding, EnrolmentState, Face, FaceAnalysis, Liveness, Quality

MODEL = "sface-test"
DIM = 32


def around(centre: np.ndarray, noise: float, seed: int) -> Embedding:
    v = centre + noise * np.random.default_rng(seed).standard_normal(DIM)
    return Embedding((v / np.linalg.norm(v)).astype(np.float32), MODEL)


# Orthonormal identities, so that "another person" is unambiguous.
ADA, BOB, CY, DEE = np.linalg.qr(np.random.default_rng(0).standard_normal((DIM, 4)))[0].T


def face(score: float = 0.9) -> Face:
    return Face((10, 10, 110, 110), np.zeros((5, 2), np.float32), score)


def good_frame(seed: int) -> list[FaceAnalysis]:
    return [FaceAnalysis(face(), Quality(True), around(ADA, 0.05, seed))]


def admin(enabled: bool = True, role: str = "admin") -> Person:
    return Person(1, "Root", role, enabled, None, None, 0.0, 2)


# --- build_templates ---------------------------------------------------------------


def test_outliers_are_dropped_and_templates_are_diverse():
    config = EnrolmentConfig(min_templates=3, max_templates=3, outlier_min_similarity=0.5)
    own = [around(ADA, 0.1, s) for s in range(6)]
    strangers = [around(BOB, 0.1, 100 + s) for s in range(2)]  # 2 of 8: a minority
    qualities = [0.7, 0.95, 0.8, 0.8, 0.8, 0.8, 0.99, 0.99]
    result = build_templates(own + strangers, qualities, config)
    assert result.rejected == 2
    assert len(result.embeddings) == 3
    assert result.embeddings[0] is own[1]  # best quality among the agreeing captures
    assert all(e in own for e in result.embeddings)
    assert result.qualities[0] == 0.95


def test_too_few_agreeing_captures_is_refused():
    config = EnrolmentConfig(min_templates=3, outlier_min_similarity=0.5)
    mixed = [
        around(ADA, 0.1, 1),
        around(ADA, 0.1, 2),
        around(BOB, 0.1, 3),
        around(CY, 0.1, 4),
        around(DEE, 0.1, 5),
    ]
    with pytest.raises(RefusedError, match="only 2 of 5"):
        build_templates(mixed, [1.0] * 5, config)
    with pytest.raises(RefusedError):
        build_templates([], [], config)


def test_templates_of_two_models_are_refused():
    other = Embedding(around(ADA, 0.1, 2).vector, "other")
    with pytest.raises(ModelMismatchError):
        build_templates([around(ADA, 0.1, 1), other], [1.0, 1.0], EnrolmentConfig(min_templates=1))


# --- on-device session ---------------------------------------------------------------


def test_button_needs_recent_admin_recognition():
    clock = FakeClock()
    session = EnrolmentSession(EnrolmentConfig(admin_window_s=10.0), clock, require_liveness=False)
    with pytest.raises(RefusedError, match="administrator recognised within 10 s"):
        session.button_pressed()
    session.authorise(admin())
    clock.advance(10.5)
    with pytest.raises(RefusedError, match="within 10 s"):
        session.button_pressed()
    assert session.state == EnrolmentState.IDLE
    session.authorise(admin())
    clock.advance(9.9)
    session.button_pressed()
    assert session.state == EnrolmentState.COLLECTING and session.authorised_by == 1


def test_one_authorisation_starts_one_enrolment_and_only_admins_authorise():
    clock = FakeClock()
    session = EnrolmentSession(EnrolmentConfig(), clock, require_liveness=False)
    with pytest.raises(RefusedError, match="not an enabled administrator"):
        session.authorise(admin(role="user"))
    with pytest.raises(RefusedError):
        session.authorise(admin(enabled=False))
    session.authorise(admin())
    session.button_pressed()
    with pytest.raises(RefusedError, match="already collecting"):
        session.button_pressed()


def test_collects_only_good_single_live_faces_until_complete():
    clock = FakeClock()
    config = EnrolmentConfig(frames=3, min_templates=2, max_templates=2)
    session = EnrolmentSession(config, clock, require_liveness=True)
    live = Liveness(0.9, "live")
    assert session.offer(good_frame(0), live) == EnrolmentState.IDLE  # not started
    session.authorise(admin())
    session.button_pressed()
    blurred = [FaceAnalysis(face(), Quality(False, ("blurred",)))]
    assert session.offer([], live) == "no_face"
    assert session.offer(good_frame(1) + good_frame(2), live) == "several_faces"
    assert session.offer(blurred, live) == "quality:blurred"
    assert session.offer(good_frame(3), Liveness(0.1, "spoof")) == "not_live"
    assert session.offer(good_frame(3), None) == "not_live"
    with pytest.raises(RefusedError, match="not complete"):
        session.templates()
    for seed in range(3):
        assert session.offer(good_frame(seed), live) == "accepted"
    assert session.state == EnrolmentState.COMPLETE
    assert session.offer(good_frame(9), live) == EnrolmentState.COMPLETE
    assert len(session.templates().embeddings) == 2


def test_a_web_app_administrator_starts_a_session_without_face_or_button():
    clock = FakeClock()
    session = EnrolmentSession(EnrolmentConfig(frames=2, min_templates=1), clock, False)
    session.start()
    assert session.state == EnrolmentState.COLLECTING and session.authorised_by is None
    with pytest.raises(RefusedError, match="already collecting"):
        session.start()
    with pytest.raises(RefusedError, match="already collecting"):
        session.button_pressed()
    assert session.offer(good_frame(0)) == "accepted" and session.collected == 1


def test_session_times_out():
    clock = FakeClock()
    session = EnrolmentSession(EnrolmentConfig(timeout_s=30.0), clock, require_liveness=False)
    session.authorise(admin())
    session.button_pressed()
    assert session.offer(good_frame(0)) == "accepted"
    clock.advance(30.5)
    assert session.state == EnrolmentState.TIMED_OUT
    assert session.offer(good_frame(1)) == EnrolmentState.TIMED_OUT


# --- photos and storing -----------------------------------------------------------------


class FakePipeline:
    """Reads the scene from the first pixel: blue = number of faces, green = blur flag,
    red = which identity."""

    model_id = MODEL

    def detect(self, image):
        return [face(0.8) for _ in range(int(image[0, 0, 0]))]

    def check_quality(self, image, detected):
        return Quality(False, ("too_small", "blurred")) if image[0, 0, 1] else Quality(True)

    def embed(self, image, detected):
        return around({1: ADA, 2: BOB}[int(image[0, 0, 2])], 0.05, int(image[1, 1, 0]))


def photo(tmp_path, name, faces=1, blurred=0, who=1, seed=0):
    image = np.zeros((8, 8, 3), np.uint8)
    image[0, 0] = (faces, blurred, who)
    image[1, 1, 0] = seed
    path = tmp_path / f"{name}.png"
    cv2.imwrite(str(path), image)
    return path


def test_capture_from_images_gives_one_verdict_per_file(tmp_path):
    paths = [
        photo(tmp_path, "ok", seed=1),
        photo(tmp_path, "none", faces=0),
        photo(tmp_path, "crowd", faces=3),
        photo(tmp_path, "bad", blurred=1),
        tmp_path / "missing.jpg",
    ]
    verdicts = capture_from_images(FakePipeline(), paths)
    assert [v.verdict for v in verdicts[:4]] == ["ok", "no face", "3 faces", "too small, blurred"]
    assert verdicts[4].verdict.startswith("unreadable")
    assert [v.ok for v in verdicts] == [True, False, False, False, False]
    assert verdicts[0].quality == 0.8


def test_enrol_photos_stores_the_agreeing_usable_photos_or_refuses_and_stores_nothing(
    gallery, tmp_path
):
    config = EnrolmentConfig(min_templates=3, max_templates=5)
    matcher = MatcherConfig(min_similarity=0.4)
    ada = [photo(tmp_path, f"ada{s}", seed=s) for s in range(3)]
    bad = [photo(tmp_path, "blurred", blurred=1), photo(tmp_path, "bob", who=2, seed=9)]
    verdicts = capture_from_images(FakePipeline(), ada[:2] + bad)
    with pytest.raises(RefusedError, match="only 2 of 3 face captures agree"):
        enrol_photos(gallery, verdicts, "Ada", "user", config, matcher)
    assert gallery.people() == []
    verdicts = capture_from_images(FakePipeline(), ada + bad)
    person_id, templates = enrol_photos(gallery, verdicts, "Ada", "admin", config, matcher)
    assert (templates.rejected, len(templates.embeddings)) == (1, 3)  # Bob's photo dropped
    assert (gallery.person(person_id).role, gallery.person(person_id).templates) == ("admin", 3)
    again = capture_from_images(FakePipeline(), ada)
    with pytest.raises(RefusedError, match="already matches Ada"):
        enrol_photos(gallery, again, "Ada twin", "user", config, matcher)
    enrol_photos(gallery, again, "Ada twin", "user", config, matcher, force=True, actor="root")
    assert gallery.events(EventFilter(kind="enrolled"))[-1].actor == "root"


def test_enrol_refuses_a_face_already_enrolled_unless_forced(gallery):
    config = EnrolmentConfig(min_templates=2, max_templates=3)
    matcher = Matcher(gallery, MatcherConfig(min_similarity=0.4), MODEL)
    ada = build_templates([around(ADA, 0.05, s) for s in range(4)], [1.0] * 4, config)
    ada_id = enrol(gallery, matcher, "Ada", "user", ada)
    assert gallery.person(ada_id).templates == 3
    again = build_templates([around(ADA, 0.05, 10 + s) for s in range(4)], [1.0] * 4, config)
    with pytest.raises(RefusedError, match=r"already matches Ada \(#\d+\) with similarity 0\.9"):
        enrol(gallery, matcher, "Ada twin", "user", again)
    assert [p.name for p in gallery.people()] == ["Ada"]
    enrol(gallery, matcher, "Ada twin", "user", again, force=True)
    bob = build_templates([around(BOB, 0.05, 20 + s) for s in range(4)], [1.0] * 4, config)
    enrol(gallery, matcher, "Bob", "admin", bob)
    assert [p.name for p in gallery.people()] == ["Ada", "Ada twin", "Bob"]
    assert [e.kind for e in gallery.events()] == ["enrolled"] * 3


# --- a capture at the door for the web app --------------------------------------------


@pytest.mark.parametrize(
    "verdict,said",
    [
        ("accepted", "good: keep looking at the camera"),
        ("no_face", "step in front of the camera"),
        ("several_faces", "one person at a time, please"),
        ("quality:too_small", "come closer"),
        ("quality:too_dark,pose,low_score", "too dark: light the face; look at the camera"),
        ("quality:something_new", "something new"),
    ],
)
def test_guidance_tells_the_person_at_the_door_what_to_do(verdict, said):
    assert guidance(verdict) == said


def test_templates_survive_the_trip_to_the_web_app_and_nothing_else_passes():
    vector = np.linspace(-1.0, 1.0, 128).astype(np.float32)
    given = TemplateSet((Embedding(vector, "m"),), (0.9,), 2)
    back = templates_from_json(json.loads(json.dumps(templates_to_json(given))))
    assert back.rejected == 2 and back.qualities == (0.9,)
    assert back.embeddings[0].model_id == "m"
    np.testing.assert_allclose(back.embeddings[0].vector, vector)
    for bad in (
        {},
        {"templates": [], "rejected": 0},
        {"templates": [{"model_id": "m", "vector": [float("nan")], "quality": 1}], "rejected": 0},
        {"templates": [{"model_id": "m", "vector": "abc", "quality": 1}], "rejected": 0},
        [1, 2],
    ):
        with pytest.raises(RefusedError):
            templates_from_json(bad)
