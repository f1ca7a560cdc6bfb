"""Open-set 1:N identification: the door's question, measured on a folder of identities.

The folder holds one sub-folder of photos per person. The first K photos (in name
order) of each person with more than K are enrolled through the enrolment code
(``capture_from_images``, then ``enrol_photos`` with its minimum of agreeing
captures set to K, into a real encrypted gallery); their other photos are mated
searches. Every photo of a person with K or fewer is a stranger's search.

Each search answers with the best person and their similarity (as the matcher does,
a person counts by their best template). Then, at a threshold t:

* rank-1: mated searches whose best person is the right one, whatever the similarity;
* FPIR(t): strangers' searches whose best similarity is >= t (taken for someone);
* FNIR(t): mated searches not answered by the right person at >= t (refused, or
  taken for someone else; the latter is also counted alone as ``wrong_person``);
* FNIR at FPIR x: at the lowest threshold whose FPIR is at most x.

A search in a photo where no face is found has no answer: a miss when mated, a
correct refusal for a stranger. A person whose captures could not be enrolled (too
few passed the quality gate or agreed) stays out of the gallery and their searches
out of the rates: at a door the administrator sees the refusal and enrols them
again, so it is counted apart, as failures to enrol, not as FNIR.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FacegateError, RefusedError
from ..gallery.enrolment import EnrolmentConfig, ImageVerdict, enrol_photos
from ..gallery.matcher import MatcherConfig, TemplateIndex
from ..gallery.store import Gallery, normalise_name
from ..vision.images import IMAGE_SUFFIXES

STRANGER = -1  # the truth of a stranger's search, and the answer "nobody"
FPIR_POINTS = (1e-2, 1e-3)
GALLERY_SIZES = (100, 1000)
DRAWS = 10  # random sub-galleries per size


@dataclass(frozen=True)
class Person:
    name: str
    photos: tuple[Path, ...]


def read_people(images: Path) -> list[Person]:
    """One Person per sub-folder of ``images`` holding image files, photos in name order."""
    images = Path(images)
    if not images.is_dir():
        raise FacegateError(f"{images}: no such folder")
    people = []
    for folder in sorted(p for p in images.iterdir() if p.is_dir()):
        photos = tuple(sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        if photos:
            people.append(Person(folder.name, photos))
    if not people:
        raise FacegateError(f"{images}: no sub-folders with images (one folder per person)")
    return people


@dataclass(frozen=True)
class Split:
    """Who is enrolled from which photos, and which photos are searched."""

    enrol: dict[str, tuple[Path, ...]]
    mated: tuple[tuple[str, Path], ...]
    strangers: tuple[Path, ...]


def split_people(people: Sequence[Person], k: int) -> Split:
    if k < 1:
        raise FacegateError("--enrol must be at least 1")
    enrol = {p.name: p.photos[:k] for p in people if len(p.photos) > k}
    mated = tuple((p.name, photo) for p in people if len(p.photos) > k for photo in p.photos[k:])
    strangers = tuple(photo for p in people if len(p.photos) <= k for photo in p.photos)
    if not enrol:
        raise FacegateError(f"nobody has more than {k} photos: nobody to enrol")
    if not strangers:
        raise FacegateError(f"nobody has {k} or fewer photos: no strangers to search with")
    return Split(enrol, mated, strangers)


def enrol_people(
    gallery: Gallery,
    split: Split,
    captures: dict[Path, ImageVerdict],
    config: EnrolmentConfig,
) -> tuple[dict[str, int], list[str]]:
    """Enrol everyone in ``split`` from their captures; ({name: person id}, names refused)."""
    k = max(len(paths) for paths in split.enrol.values())
    config = dataclasses.replace(
        config,
        min_templates=k,
        frames=max(config.frames, k),
        max_templates=max(config.max_templates, k),
    )
    for name in split.enrol:
        normalise_name(name)  # a folder name no gallery takes stops the run: no failed enrolment
    ids, refused = {}, []
    for name, paths in split.enrol.items():
        verdicts = [captures[p] for p in paths]
        try:
            # force: the evaluation enrols look-alikes too; refusing them is a policy,
            # not a match
            ids[name], _ = enrol_photos(
                gallery, verdicts, name, "user", config, MatcherConfig(), force=True
            )
        except RefusedError:
            refused.append(name)
    return ids, refused


@dataclass(frozen=True)
class Searches:
    """One row per search: the true person id (STRANGER for strangers), the best person
    (STRANGER when there was no face or no gallery), their similarity and the best
    similarity of anyone else (-1.0 where there is none)."""

    truth: np.ndarray
    best: np.ndarray
    top: np.ndarray
    second: np.ndarray

    @property
    def mated(self) -> np.ndarray:
        return self.truth != STRANGER


def search(
    index: TemplateIndex,
    truth: Sequence[int] | np.ndarray,
    vectors: Sequence[np.ndarray | None],
) -> Searches:
    """Search every vector (None: no face found) in ``index``."""
    rows = [index.search(v) if v is not None else (None, -1.0, -1.0) for v in vectors]
    return Searches(
        truth=np.asarray(truth, dtype=np.int64),
        best=np.array([STRANGER if b is None else b for b, _, _ in rows], dtype=np.int64),
        top=np.array([t for _, t, _ in rows], dtype=np.float64),
        second=np.array([s for _, _, s in rows], dtype=np.float64),
    )


def accepted(searches: Searches, threshold: float) -> np.ndarray:
    """Searches the door would answer with someone: the same rule as the matcher."""
    return (searches.best != STRANGER) & (searches.top >= threshold)


def fpir(searches: Searches, threshold: float) -> float:
    strangers = ~searches.mated
    return (
        float(np.mean(accepted(searches, threshold)[strangers]))
        if strangers.any()
        else float("nan")
    )


def fnir(searches: Searches, threshold: float) -> float:
    mated = searches.mated
    if not mated.any():
        return float("nan")
    hit = accepted(searches, threshold) & (searches.best == searches.truth)
    return float(np.mean(~hit[mated]))


def threshold_at_fpir(searches: Searches, target: float) -> float:
    """The lowest threshold whose FPIR is at most ``target``."""
    scores = np.sort(searches.top[~searches.mated & (searches.best != STRANGER)])[::-1]
    allowed = int(np.floor(target * np.sum(~searches.mated)))
    if allowed >= len(scores):
        return -1.0
    return float(np.nextafter(scores[allowed], np.inf))


def open_set_metrics(searches: Searches, threshold: float) -> dict:
    mated = searches.mated
    strangers = int(np.sum(~mated))
    wrong = accepted(searches, threshold) & (searches.best != searches.truth) & mated
    at_fpir = {}
    for target in FPIR_POINTS:
        t = threshold_at_fpir(searches, target)
        at_fpir[f"{target:g}"] = {
            "threshold": t,
            "fnir": fnir(searches, t),
            "fpir": fpir(searches, t),
            # Too few strangers to see FPIR this small: the threshold admits none of
            # them, so the FNIR is an upper bound.
            "bound": strangers * target < 1,
        }
    return {
        "mated_searches": int(np.sum(mated)),
        "stranger_searches": strangers,
        "threshold": threshold,
        "rank1": float(np.mean((searches.best == searches.truth)[mated]))
        if mated.any()
        else float("nan"),
        "fpir": fpir(searches, threshold),
        "fnir": fnir(searches, threshold),
        "wrong_person": float(np.mean(wrong[mated])) if mated.any() else float("nan"),
        "fnir_at_fpir": at_fpir,
    }


def by_gallery_size(
    person_ids: np.ndarray,
    matrix: np.ndarray,
    truth: Sequence[int],
    vectors: Sequence[np.ndarray | None],
    threshold: float,
    sizes: Sequence[int] = GALLERY_SIZES,
    draws: int = DRAWS,
    seed: int = 0,
) -> dict:
    """FPIR and FNIR at ``threshold`` in random sub-galleries of each size (mean of
    ``draws`` draws), and in the whole gallery; strangers are the same throughout."""
    labels = np.asarray(truth, dtype=np.int64)
    people = np.unique(person_ids)
    rng = np.random.default_rng(seed)
    result = {}
    for size in [s for s in sizes if s < len(people)] + [len(people)]:
        runs = []
        for _ in range(draws if size < len(people) else 1):
            chosen = rng.choice(people, size, replace=False) if size < len(people) else people
            keep = np.isin(person_ids, chosen)
            rows = np.flatnonzero((labels == STRANGER) | np.isin(labels, chosen))
            found = search(
                TemplateIndex(person_ids[keep], matrix[keep]),
                labels[rows],
                [vectors[int(i)] for i in rows],
            )
            runs.append((fpir(found, threshold), fnir(found, threshold)))
        result[str(size)] = {
            "fpir": float(np.mean([r[0] for r in runs])),
            "fnir": float(np.mean([r[1] for r in runs])),
            "draws": len(runs),
        }
    return result


def identify(
    split: Split,
    capture_enrolment: Callable[[Path], ImageVerdict],
    capture_search: Callable[[Path], ImageVerdict | None],
    gallery: Gallery,
    enrolment: EnrolmentConfig,
    threshold: float,
    model_id: str,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """The whole protocol: enrol, search, measure.

    ``capture_enrolment`` turns one enrolment photo into a verdict as enrolment does.
    ``capture_search`` does the same for a searched photo; a verdict without an
    embedding is a search with no answer, and None a photo the quality gate held
    back (the door decides nothing on such a frame: it is left out of the rates).
    """
    enrol_paths = [p for paths in split.enrol.values() for p in paths]
    total = len(enrol_paths) + len(split.mated) + len(split.strangers)
    captures = {}
    for done, path in enumerate(enrol_paths, start=1):
        captures[path] = capture_enrolment(path)
        if progress:
            progress(done, total)
    ids, refused = enrol_people(gallery, split, captures, enrolment)
    searches = [(ids[name], path) for name, path in split.mated if name in ids]
    searches += [(STRANGER, path) for path in split.strangers]
    truth, vectors, gated = [], [], 0
    for done, (person, path) in enumerate(searches, start=total - len(searches) + 1):
        verdict = capture_search(path)
        if verdict is None:
            gated += 1
        else:
            truth.append(person)
            vectors.append(None if verdict.embedding is None else verdict.embedding.vector)
        if progress:
            progress(done, total)
    person_ids, matrix = gallery.templates(model_id)
    found = search(TemplateIndex(person_ids, matrix), truth, vectors)
    return {
        **open_set_metrics(found, threshold),
        "people": len(split.enrol) + len({p.parent for p in split.strangers}),
        "enrolled": len(ids),
        "failed_enrolments": len(refused),
        "searches_of_unenrolled": len(split.mated) + len(split.strangers) - len(searches),
        "templates": int(len(person_ids)),
        "searches_without_face": sum(v is None for v in vectors),
        "searches_gated": gated,
        "by_gallery_size": by_gallery_size(person_ids, matrix, truth, vectors, threshold),
    }
