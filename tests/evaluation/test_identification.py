import json

import numpy as np
import pytest

from edge.cli import main
from edge.errors import FacegateError
from edge.evaluation.identification import (
    STRANGER,
    Searches,
    by_gallery_size,
    fnir,
    fpir,
    identify,
    open_set_metrics,
    read_people,
    split_people,
    threshold_at_fpir,
)
from edge.gallery.enrolment import EnrolmentConfig, ImageVerdict
from edge.types import Embedding

MODEL = "test-model"


def people_folder(root, counts):
    """A folder of identities: {name: number of photos} as empty .jpg files."""
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            (root / name / f"{name}_{i:04d}.jpg").touch()
    return root


def test_first_k_photos_are_enrolled_and_people_with_k_or_fewer_are_strangers(tmp_path):
    root = people_folder(tmp_path / "ids", {"Ann": 3, "Bob": 2, "Cy": 1})
    (tmp_path / "ids" / "Ann" / "notes.txt").touch()
    split = split_people(read_people(root), 2)
    assert list(split.enrol) == ["Ann"]
    assert [p.name for p in split.enrol["Ann"]] == ["Ann_0000.jpg", "Ann_0001.jpg"]
    assert [(n, p.name) for n, p in split.mated] == [("Ann", "Ann_0002.jpg")]
    assert sorted(p.name for p in split.strangers) == [
        "Bob_0000.jpg",
        "Bob_0001.jpg",
        "Cy_0000.jpg",
    ]


@pytest.mark.parametrize(
    "counts, k, message",
    [
        ({"Ann": 2, "Cy": 1}, 0, "at least 1"),
        ({"Ann": 1, "Cy": 1}, 1, "nobody to enrol"),
        ({"Ann": 2, "Bob": 3}, 1, "no strangers"),
    ],
)
def test_a_split_that_cannot_measure_is_refused(tmp_path, counts, k, message):
    people = read_people(people_folder(tmp_path / "ids", counts))
    with pytest.raises(FacegateError, match=message):
        split_people(people, k)


def test_a_folder_without_people_is_refused(tmp_path):
    (tmp_path / "loose.jpg").touch()
    with pytest.raises(FacegateError, match="one folder per person"):
        read_people(tmp_path)
    with pytest.raises(FacegateError, match="no such folder"):
        read_people(tmp_path / "missing")


def searches(rows):
    """Searches from (truth, best, top) rows; second is unused by these metrics."""
    truth, best, top = (np.array(column) for column in zip(*rows, strict=True))
    return Searches(truth, best, top.astype(float), np.full(len(rows), -1.0))


def test_rates_count_strangers_accepted_and_mated_searches_missed():
    found = searches(
        [
            (1, 1, 0.80),  # found
            (1, 1, 0.40),  # right person, below the threshold: a miss
            (2, 1, 0.60),  # taken for someone else: a miss, and the wrong person
            (2, STRANGER, -1.0),  # no face: a miss
            (STRANGER, 1, 0.55),  # stranger accepted
            (STRANGER, 2, 0.30),
            (STRANGER, STRANGER, -1.0),  # no face: a correct refusal
            (STRANGER, 1, 0.10),
        ]
    )
    metrics = open_set_metrics(found, 0.5)
    assert metrics["rank1"] == pytest.approx(2 / 4)
    assert metrics["fpir"] == pytest.approx(1 / 4)
    assert metrics["fnir"] == pytest.approx(3 / 4)
    assert metrics["wrong_person"] == pytest.approx(1 / 4)
    assert metrics["mated_searches"] == 4 and metrics["stranger_searches"] == 4


def test_threshold_at_fpir_admits_at_most_the_target_share_of_strangers():
    rng = np.random.default_rng(1)
    stranger_scores = rng.uniform(0.0, 0.6, 300)
    found = searches([(STRANGER, 7, s) for s in stranger_scores] + [(7, 7, 0.5)])
    t = threshold_at_fpir(found, 1e-2)
    assert fpir(found, t) <= 1e-2
    # Any lower threshold lets a fourth stranger in.
    assert fpir(found, np.nextafter(t, -np.inf)) > 1e-2
    assert t == pytest.approx(np.sort(stranger_scores)[-4])
    assert fnir(found, t) == (0.0 if 0.5 >= t else 1.0)


def test_fnir_at_an_fpir_too_small_to_see_is_marked_as_a_bound():
    found = searches([(STRANGER, 1, 0.3)] * 50 + [(1, 1, 0.9)])
    points = open_set_metrics(found, 0.5)["fnir_at_fpir"]
    assert points["0.01"]["bound"] and points["0.001"]["bound"]
    assert points["0.01"]["threshold"] > 0.3  # admits none of the 50 strangers


def test_fpir_grows_with_the_gallery():
    rng = np.random.default_rng(0)
    dim, people = 16, 200
    matrix = rng.standard_normal((people, dim)).astype(np.float32)
    strangers = list(rng.standard_normal((400, dim)).astype(np.float32))
    strangers = [v / np.linalg.norm(v) for v in strangers]
    sizes = by_gallery_size(
        np.arange(1, people + 1),
        matrix,
        [STRANGER] * len(strangers),
        strangers,
        threshold=0.5,
        sizes=(10,),
        draws=5,
    )
    assert list(sizes) == ["10", "200"] and sizes["10"]["draws"] == 5
    assert sizes["10"]["fpir"] < sizes["200"]["fpir"]


def unit(seed, dim=8):
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_protocol_enrols_in_a_real_gallery_and_leaves_gated_photos_out(tmp_path, gallery):
    root = people_folder(tmp_path / "ids", {"Ann": 3, "Bob": 2, "Cy": 2, "Dee": 1, "Eve": 1})
    faces = {"Ann": unit(1), "Bob": unit(2), "Cy": unit(3), "Dee": unit(4), "Eve": unit(5)}

    def verdict(path):
        name = path.parent.name
        if path.name == "Cy_0000.jpg":  # Cy's only enrolment photo shows no face
            return ImageVerdict(path, "no face")
        return ImageVerdict(path, "ok", Embedding(faces[name], MODEL), 0.9)

    def search_verdict(path):
        return None if path.name == "Eve_0000.jpg" else verdict(path)  # held back by the gate

    split = split_people(read_people(root), 1)
    result = identify(split, verdict, search_verdict, gallery, EnrolmentConfig(), 0.5, MODEL)
    assert result["enrolled"] == 2 and result["failed_enrolments"] == 1
    assert [p.name for p in gallery.people()] == ["Ann", "Bob"]
    assert result["searches_gated"] == 1 and result["stranger_searches"] == 1
    # Cy could not be enrolled: an administrator would see it, so Cy's search is
    # counted apart, not as a miss. Ann's two searches and Bob's one are found.
    assert result["searches_of_unenrolled"] == 1
    assert result["mated_searches"] == 3 and result["fnir"] == 0.0 and result["rank1"] == 1.0
    assert result["fpir"] == 0.0


def test_eval_identify_on_real_photos(shared_data, capsys):
    images = shared_data / "face_recognition_examples" / "examples" / "knn_examples" / "train"
    assert main(["eval", "identify", "--images", str(images), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # Biden, Kit Harington, Obama and Rose Leslie have two photos each; Alex Lacamoire one.
    assert result["enrolled"] == 4 and result["failed_enrolments"] == 0
    assert result["mated_searches"] == 4 and result["stranger_searches"] == 1
    assert result["rank1"] == 1.0
    assert result["fnir"] == 0.0 and result["fpir"] == 0.0
    assert result["by_gallery_size"]["4"]["fpir"] == 0.0


def test_eval_identify_names_a_missing_folder(tmp_path, capsys):
    assert main(["eval", "identify", "--images", str(tmp_path / "nope")]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_enrolment_photos_with_several_faces_need_a_chooser(shared_data):
    from edge.config import default_config
    from edge.gallery.enrolment import capture_from_images
    from edge.vision.pipeline import Pipeline

    photo = shared_data / "face_recognition_examples" / "examples" / "two_people.jpg"
    pipeline = Pipeline.from_config(default_config())
    (refused,) = capture_from_images(pipeline, [photo])
    assert refused.verdict == "2 faces" and not refused.ok

    def leftmost(faces, image):
        return min(faces, key=lambda f: f.center[0])

    def rightmost(faces, image):
        return max(faces, key=lambda f: f.center[0])

    (left,) = capture_from_images(pipeline, [photo], choose=leftmost)
    (right,) = capture_from_images(pipeline, [photo], choose=rightmost)
    assert left.ok and right.ok
    assert left.embedding.similarity(right.embedding) < 0.3  # two different people
