"""1:N matching: who in the gallery is this embedding, and how sure is it?

All templates of one model are held as one L2-normalised float32 matrix, rows
grouped by person. A search is one matrix-vector product (cosine similarities)
followed by a per-person maximum (``np.maximum.reduceat`` over the groups), so a
person with several templates counts once, by their best template. The matcher
polls ``Gallery.revision()`` before each match and reloads when it moved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import ModelMismatchError
from ..schema import setting
from ..types import NO_SIMILARITY, Embedding, Match
from .store import Person


@dataclass(frozen=True)
class MatcherConfig:
    """1:N decision threshold, as a cosine similarity (bigger = stricter)."""

    # Chosen with `facegate eval identify` on LFW View 1 DevTrain's people (README,
    # Identification): the lowest threshold at which strangers are taken for someone in
    # at most 0.5% of frames in a gallery of 1,680, the whole-LFW gallery; a stranger
    # meets more look-alikes in a bigger gallery, so FPIR grows with its size.
    min_similarity: float = setting(
        0.50,
        "cosine similarity a face must reach with a person's best template to be "
        "recognised (bigger = stricter)",
        min=-1.0,
        max=1.0,
    )


class TemplateIndex:
    """An immutable search structure over templates sorted by person."""

    def __init__(self, person_ids: np.ndarray, matrix: np.ndarray):
        person_ids = np.asarray(person_ids, dtype=np.int64)
        if len(person_ids) != len(matrix):
            raise ValueError("one person id per template row")
        order = np.argsort(person_ids, kind="stable")
        self.matrix = np.ascontiguousarray(matrix[order], dtype=np.float32)
        norms = np.linalg.norm(self.matrix, axis=1, keepdims=True)
        self.matrix /= np.where(norms > 0, norms, 1.0)
        sorted_ids = person_ids[order]
        # Start row of each person's block, for reduceat.
        self.starts = np.flatnonzero(np.diff(sorted_ids, prepend=sorted_ids[:1] - 1))
        self.people = sorted_ids[self.starts]

    def __len__(self) -> int:
        return len(self.matrix)

    def search(self, vector: np.ndarray) -> tuple[int | None, float, float]:
        """(best person id, their similarity, best similarity of any other person).

        Similarities are NO_SIMILARITY where there is no such person.
        """
        if len(self.people) == 0:
            return None, NO_SIMILARITY, NO_SIMILARITY
        # einsum, not ``@``: BLAS would hand a gemv this size to worker threads, and
        # waking them costs milliseconds on a loaded 2-4 core device; numpy's own
        # single-threaded loop takes well under 1 ms for 10k templates.
        similarities = np.einsum("ij,j->i", self.matrix, vector)
        per_person = np.maximum.reduceat(similarities, self.starts)
        best = int(np.argmax(per_person))
        top = float(per_person[best])
        if len(per_person) == 1:
            return int(self.people[best]), top, NO_SIMILARITY
        per_person[best] = -np.inf
        return int(self.people[best]), top, float(per_person.max())


class TemplateSource(Protocol):
    """What the matcher needs from the gallery (``edge.gallery.Gallery`` fits)."""

    def revision(self) -> int: ...

    def templates(self, model_id: str) -> tuple[np.ndarray, np.ndarray]: ...

    def people(self) -> list: ...


class Matcher:
    """Identifies embeddings of one model against the gallery's templates of that model."""

    def __init__(self, gallery: TemplateSource, config: MatcherConfig, model_id: str):
        self.gallery = gallery
        self.config = config
        self.model_id = model_id
        self._revision: int | None = None
        self._index = TemplateIndex(np.zeros(0, np.int64), np.zeros((0, 0), np.float32))
        self._people: dict[int, Person] = {}

    def refresh(self) -> bool:
        """Reload the templates if the gallery changed; True if it reloaded."""
        revision = self.gallery.revision()
        if revision == self._revision:
            return False
        person_ids, matrix = self.gallery.templates(self.model_id)
        self._index = TemplateIndex(person_ids, matrix)
        self._people = {p.id: p for p in self.gallery.people()}
        self._revision = revision
        return True

    def __len__(self) -> int:
        """How many templates are loaded."""
        return len(self._index)

    def match(self, embedding: Embedding) -> Match:
        """Top-1 person if they reach ``min_similarity``, always with the runner-up.

        An empty gallery answers Match(None, None, NO_SIMILARITY). An embedding from another
        model raises ModelMismatchError.
        """
        if embedding.model_id != self.model_id:
            raise ModelMismatchError(self.model_id, embedding.model_id)
        self.refresh()
        vector = np.asarray(embedding.vector, dtype=np.float32)
        if len(self._index) and vector.shape != (self._index.matrix.shape[1],):
            raise ModelMismatchError(
                f"{self.model_id} ({self._index.matrix.shape[1]} dims)",
                f"{embedding.model_id} ({vector.size} dims)",
            )
        person_id, similarity, runner_up = self._index.search(vector)
        # Written to fail closed: a NaN similarity (a broken embedding) is no match.
        if person_id is None or not similarity >= self.config.min_similarity:
            return Match(None, None, similarity, runner_up)
        person = self._people.get(person_id)
        return Match(person_id, person.name if person else None, similarity, runner_up)

    def person(self, person_id: int) -> Person | None:
        """The enrolled person as of the last reload (role, enabled, validity)."""
        return self._people.get(person_id)


def matching_benchmark(
    sizes: tuple[int, ...] = (1000, 10_000, 100_000),
    dim: int = 128,
    repeats: int = 200,
    templates_per_person: int = 5,
    seed: int = 0,
) -> dict[int, dict[str, float]]:
    """Time one 1:N search over random unit templates: {size: {median_ms, p90_ms}}."""
    rng = np.random.default_rng(seed)
    results = {}
    for size in sizes:
        matrix = rng.standard_normal((size, dim)).astype(np.float32)
        person_ids = np.arange(size) // templates_per_person
        index = TemplateIndex(person_ids, matrix)
        probes = rng.standard_normal((repeats, dim)).astype(np.float32)
        probes /= np.linalg.norm(probes, axis=1, keepdims=True)
        index.search(probes[0])  # warm caches
        times = np.empty(repeats)
        for i, probe in enumerate(probes):
            start = time.perf_counter()
            index.search(probe)
            times[i] = time.perf_counter() - start
        results[size] = {
            "median_ms": float(np.median(times) * 1e3),
            "p90_ms": float(np.percentile(times, 90) * 1e3),
        }
    return results
