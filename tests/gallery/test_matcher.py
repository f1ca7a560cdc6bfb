from __future__ import annotations

import numpy as np
import pytest

from edge.errors import ModelMismatchError
from edge.gallery.matcher import Matcher, MatcherConfig, TemplateIndex, matching_benchmark
from edge.types import Embedding

MODEL = "sface-test"


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def emb(v, model=MODEL) -> Embedding:
    return Embedding(unit(v), model)


def axis(i: int, dim: int = 8) -> np.ndarray:
    v = np.zeros(dim, np.float32)
    v[i] = 1.0
    return v


def test_empty_gallery_is_unknown(gallery):
    match = Matcher(gallery, MatcherConfig(), MODEL).match(emb(axis(0)))
    assert (match.person_id, match.name, match.similarity, match.runner_up) == (
        None,
        None,
        -1.0,
        -1.0,
    )
    assert not match.known


def test_other_model_is_refused(gallery):
    gallery.add_person("Ada", "user", [emb(axis(0))], [1.0])
    matcher = Matcher(gallery, MatcherConfig(), MODEL)
    with pytest.raises(ModelMismatchError, match="other-model"):
        matcher.match(emb(axis(0), model="other-model"))
    with pytest.raises(ModelMismatchError, match="dims"):
        matcher.match(emb(np.ones(16)))


def test_templates_of_other_models_are_not_loaded(gallery):
    gallery.add_person("Old", "user", [emb(axis(0), model="old-model")], [1.0])
    matcher = Matcher(gallery, MatcherConfig(), MODEL)
    assert not matcher.match(emb(axis(0))).known
    assert len(matcher) == 0


def test_top1_uses_best_template_and_runner_up_is_another_person(gallery):
    # Ada has two templates; the probe is close to her second one only.
    ada = gallery.add_person("Ada", "user", [emb(axis(0)), emb(axis(1))], [1.0, 1.0])
    bob = gallery.add_person("Bob", "user", [emb(axis(2))], [1.0])
    probe = emb(0.9 * axis(1) + 0.3 * axis(2) + 0.1 * axis(0))
    match = Matcher(gallery, MatcherConfig(min_similarity=0.5), MODEL).match(probe)
    assert (match.person_id, match.name) == (ada, "Ada")
    assert match.similarity == pytest.approx(float(probe.vector[1]), abs=1e-6)
    assert match.runner_up == pytest.approx(
        float(probe.vector[2]), abs=1e-6
    )  # Bob, not Ada's other
    assert match.margin == pytest.approx(match.similarity - match.runner_up)
    assert bob != ada


def test_below_threshold_is_unknown_but_reports_scores(gallery):
    gallery.add_person("Ada", "user", [emb(axis(0))], [1.0])
    probe = emb(axis(0) + 2 * axis(3))  # cosine 1/sqrt(5) = 0.447
    assert Matcher(gallery, MatcherConfig(min_similarity=0.40), MODEL).match(probe).known
    strict = Matcher(gallery, MatcherConfig(min_similarity=0.50), MODEL).match(probe)
    assert not strict.known and strict.name is None
    assert strict.similarity == pytest.approx(1 / np.sqrt(5), abs=1e-6)


def test_reloads_when_gallery_changes(gallery):
    matcher = Matcher(gallery, MatcherConfig(), MODEL)
    assert not matcher.match(emb(axis(4))).known
    assert not matcher.refresh()  # nothing changed, no reload
    pid = gallery.add_person("Cy", "user", [emb(axis(4))], [1.0])
    assert matcher.match(emb(axis(4))).person_id == pid
    gallery.rename(pid, "Cyrus")
    assert matcher.match(emb(axis(4))).name == "Cyrus"
    gallery.delete_person(pid)
    assert not matcher.match(emb(axis(4))).known


def test_index_groups_unsorted_rows_by_person():
    ids = np.array([7, 3, 7, 3, 9])
    rows = np.stack([axis(0), axis(1), axis(2), axis(3), axis(4)])
    index = TemplateIndex(ids, rows)
    assert index.people.tolist() == [3, 7, 9]
    assert index.search(axis(2)) == (7, 1.0, 0.0)
    assert index.search(axis(3))[0] == 3


def test_matching_benchmark_reports_each_size():
    result = matching_benchmark(sizes=(50, 500), dim=16, repeats=5)
    assert set(result) == {50, 500}
    for timing in result.values():
        assert 0 < timing["median_ms"] <= timing["p90_ms"]
