#!/usr/bin/env python3
"""The evidence behind matcher.min_similarity: remedies, a threshold table, visits.

On LFW View 1's two disjoint sets of people (scripts/lfw_view1_split.py), with the
protocol of `facegate eval identify` (first photo enrolled, other photos searched,
people with one photo are strangers, quality gate on enrolment and searches):

1. each remedy for a single cosine threshold, as FNIR at FPIR 1e-2, 3e-3 and 1e-3,
   on DevTrain (where it would be tuned) and DevTest (which no choice saw): mirrored
   face fusion, the margin rule, cohort score normalisation, several templates per
   person, and the quality gate itself;
2. the threshold for a gallery size and a stranger rate, from the share of
   DevTrain's stranger pairs above each threshold (FMR), assuming a stranger's
   chances against different people are independent: FPIR(N) = 1 - (1 - FMR)^N;
   checked against the FPIR measured on DevTest;
3. visits: NUAA's live webcam sequences cut into runs of 10 frames and fed, frame
   by frame, to the decision machine (3 of 5 frames), with DevTest's people and the
   NUAA subjects enrolled; each subject is a stranger against the gallery without
   them. Gives per-visit rates beside the per-frame ones.

Embeddings take a while (the models on every photo, plain and mirrored); --cache
keeps them in a .npz file between runs.

Usage: python scripts/identification_study.py --split /tmp/v1 --nuaa ../shared/data/nuaa_train \
           [--cache /tmp/study] [--threshold 0.50]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.access.decision import DecisionConfig, DecisionMachine, Observation  # noqa: E402
from edge.config import default_config  # noqa: E402
from edge.errors import RefusedError  # noqa: E402
from edge.evaluation.identification import (  # noqa: E402
    STRANGER,
    Searches,
    fnir,
    fpir,
    read_people,
    threshold_at_fpir,
)
from edge.evaluation.pairs import nearest_centre  # noqa: E402
from edge.gallery.enrolment import EnrolmentConfig, build_templates  # noqa: E402
from edge.types import AlignedFace, Embedding  # noqa: E402
from edge.vision.images import read_image  # noqa: E402
from edge.vision.pipeline import Pipeline  # noqa: E402

FPIRS = (1e-2, 3e-3, 1e-3)
SIZES = (10, 100, 1000, 1680, 10_000)
RATES = (1e-2, 5e-3, 1e-3)
VISIT_FRAMES = 10
FPS = 15.0
MIN_PAIRS_ABOVE = 10  # fewer impostor pairs above a threshold than this: FMR too uncertain


# --- embeddings -----------------------------------------------------------------------


def embed_all(pipeline: Pipeline, paths: list[Path]) -> dict[str, np.ndarray]:
    """Per photo: the centre face's embedding, that of its mirror image, whether a face
    was found and whether it passed the quality gate."""
    plain = np.zeros((len(paths), pipeline.embedder.dim), np.float32)
    mirrored = np.zeros_like(plain)
    found = np.zeros(len(paths), bool)
    passed = np.zeros(len(paths), bool)
    for i, path in enumerate(paths):
        image = read_image(path)
        faces = pipeline.detect(image)
        if not faces:
            continue
        aligned = pipeline.align(image, nearest_centre(faces, image))
        found[i] = True
        passed[i] = pipeline.quality.assess(aligned).passed
        plain[i] = pipeline.embedder.embed(aligned).vector
        flipped = AlignedFace(np.ascontiguousarray(aligned.image[:, ::-1]), aligned.face)
        mirrored[i] = pipeline.embedder.embed(flipped).vector
        if (i + 1) % 500 == 0:
            print(f"  embedded {i + 1}/{len(paths)}", file=sys.stderr)
    return {"plain": plain, "mirrored": mirrored, "found": found, "passed": passed}


def cached(name: str, paths: list[Path], pipeline: Pipeline, cache: Path | None) -> dict:
    file = cache / f"{name}.npz" if cache else None
    if file and file.exists():
        data = dict(np.load(file))
        if list(data["paths"]) == [str(p) for p in paths]:
            return data
    data = embed_all(pipeline, paths)
    data["paths"] = np.array([str(p) for p in paths])
    if file:
        file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(file, **data)
    return data


def unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


# --- the protocol on embeddings ------------------------------------------------------


class Photos:
    """One split's photos with their embeddings, grouped by person (name order)."""

    def __init__(self, folder: Path, pipeline: Pipeline, cache: Path | None):
        people = read_people(folder)
        self.paths = [p for person in people for p in person.photos]
        self.data = cached(folder.name, self.paths, pipeline, cache)
        self.owner = np.array([path.parent.name for path in self.paths])
        self.rows = {person.name: [] for person in people}
        for i, name in enumerate(self.owner):
            self.rows[name].append(i)
        self.usable = self.data["found"] & self.data["passed"]

    def vectors(self, mirror: bool) -> np.ndarray:
        if mirror:
            return unit_rows(self.data["plain"] + self.data["mirrored"])
        return self.data["plain"]


def searches_of(
    photos: Photos,
    vectors: np.ndarray,
    k: int = 1,
    probes_from: int | None = None,
    min_photos: int = 2,
    margin: float | None = None,
    cohort: np.ndarray | None = None,
    cohort_top: int = 50,
    gate: bool = True,
) -> Searches:
    """Enrol the first k photos (all must pass the gate) of people with at least
    ``min_photos`` (and more than k), search with their photos from ``probes_from``
    on and with every photo of people with one photo; with ``gate``, only with photos
    that pass the quality gate, else with every photo where a face was found."""
    start = k if probes_from is None else probes_from
    templates, owners, truth, probe_rows = [], [], [], []
    for person_id, rows in enumerate(photos.rows.values(), start=1):
        if len(rows) == 1:
            truth.append(STRANGER)
            probe_rows.append(rows[0])
        elif len(rows) > k and len(rows) >= min_photos and photos.usable[rows[:k]].all():
            chosen = build_templates(
                [Embedding(vectors[i], "study") for i in rows[:k]],
                [1.0] * k,
                EnrolmentConfig(min_templates=k, max_templates=max(k, 5), frames=max(k, 10)),
            )
            templates += [e.vector for e in chosen.embeddings]
            owners += [person_id] * len(chosen.embeddings)
            truth += [person_id] * len(rows[start:])
            probe_rows += rows[start:]
    keep = (photos.usable if gate else photos.data["found"])[probe_rows]
    truth, probe_rows = np.array(truth)[keep], np.array(probe_rows)[keep]
    return score(
        np.array(templates),
        np.array(owners),
        vectors[probe_rows],
        truth,
        margin,
        cohort,
        cohort_top,
    )


def score(
    templates: np.ndarray,
    owners: np.ndarray,
    probes: np.ndarray,
    truth: np.ndarray,
    margin: float | None = None,
    cohort: np.ndarray | None = None,
    cohort_top: int = 50,
) -> Searches:
    """Best person, their score and the runner-up's for every probe; with a cohort,
    scores are ZT-normalised (minus the mean of the top cohort similarities of the
    probe and of the template); with a margin, a best person less than ``margin``
    ahead of the runner-up answers nobody."""
    sims = probes @ templates.T
    if cohort is not None:

        def top_mean(x):
            return np.sort(x @ cohort.T, axis=1)[:, -cohort_top:].mean(axis=1)

        sims = sims - 0.5 * (top_mean(probes)[:, None] + top_mean(templates)[None, :])
    people = np.unique(owners)
    per_person = np.stack([sims[:, owners == p].max(axis=1) for p in people], axis=1)
    order = np.argsort(-per_person, axis=1)
    rows = np.arange(len(probes))
    best, top = people[order[:, 0]], per_person[rows, order[:, 0]]
    second = per_person[rows, order[:, 1]] if len(people) > 1 else np.full(len(probes), -1.0)
    if margin is not None:
        best = np.where(top - second >= margin, best, STRANGER)
    return Searches(truth, best, top, second)


def fnir_at(found: Searches) -> str:
    cells = []
    for target in FPIRS:
        t = threshold_at_fpir(found, target)
        cells.append(f"{100 * fnir(found, t):5.2f}% (t {t:.3f})")
    return "  ".join(cells)


def remedies(split: dict[str, Photos]) -> None:
    print("\n1. Remedies: FNIR at FPIR 1e-2, 3e-3, 1e-3 (threshold chosen on the same split)")
    for name, photos in split.items():
        other = [p for n, p in split.items() if n != name][0]
        cohort = other.vectors(False)[other.usable]
        plain = photos.vectors(False)
        rows = {
            "plain (quality gate on)": searches_of(photos, plain),
            "mirrored face fused": searches_of(photos, photos.vectors(True)),
            "margin >= 0.05": searches_of(photos, plain, margin=0.05),
            "margin >= 0.08": searches_of(photos, plain, margin=0.08),
            "cohort ZT-norm (top 50)": searches_of(photos, plain, cohort=cohort),
            "1 template, people with 4+ photos": searches_of(photos, plain, 1, 3, 4),
            "3 templates, same people and searches": searches_of(photos, plain, 3, 3, 4),
            "quality gate off for searches": searches_of(photos, plain, gate=False),
        }
        for label, found in rows.items():
            print(
                f"  {name:8} {label:40} {int(found.mated.sum()):5}/{int((~found.mated).sum()):4}"
                f"  {fnir_at(found)}"
            )


# --- threshold for a gallery size ------------------------------------------------------


def impostor_scores(photos: Photos) -> np.ndarray:
    """Similarities of every pair of gate-passing photos of different people, descending."""
    rows = np.flatnonzero(photos.usable)
    vectors, owner = photos.vectors(False)[rows], photos.owner[rows]
    sims = vectors @ vectors.T
    upper = np.triu_indices(len(rows), 1)
    different = (owner[:, None] != owner[None, :])[upper]
    return np.sort(sims[upper][different])[::-1]


def threshold_for(impostors: np.ndarray, size: int, rate: float) -> float | None:
    """Lowest threshold with predicted FPIR <= rate for ``size`` people; None when too
    few impostor pairs lie above it to estimate."""
    fmr = 1.0 - (1.0 - rate) ** (1.0 / size)
    above = int(np.floor(fmr * len(impostors)))
    if above < MIN_PAIRS_ABOVE:
        return None
    return float(np.nextafter(impostors[above], np.inf))


def threshold_table(split: dict[str, Photos], shipped: float) -> None:
    tune, test = split["devtrain"], split["devtest"]
    impostors = impostor_scores(tune)
    found = searches_of(tune, tune.vectors(False))
    print(
        f"\n2. Threshold for a gallery size (DevTrain: {len(impostors)} stranger pairs); "
        "cell = threshold, DevTrain FNIR"
    )
    print("  people   " + "".join(f"FPIR {100 * r:g}%".ljust(22) for r in RATES))
    for size in SIZES:
        cells = []
        for rate in RATES:
            t = threshold_for(impostors, size, rate)
            cells.append(
                "beyond the data".ljust(22)
                if t is None
                else f"{t:.3f} (FNIR {100 * fnir(found, t):.1f}%)".ljust(22)
            )
        print(f"  {size:>6}   " + "".join(cells))
    fmr = float(np.mean(impostors >= shipped))
    held_out = searches_of(test, test.vectors(False))
    size = int(len(np.unique(held_out.truth[held_out.mated])))
    print(
        f"  check on DevTest at {shipped:.2f}: predicted FPIR for its {size} people "
        f"{100 * (1 - (1 - fmr) ** size):.2f}%, measured {100 * fpir(held_out, shipped):.2f}% "
        f"({int((~held_out.mated).sum())} strangers); FNIR {100 * fnir(held_out, shipped):.2f}%"
    )


# --- visits ----------------------------------------------------------------------------


def read_sequences(nuaa: Path) -> list[tuple[str, list[str]]]:
    """(subject, frames in order) of every live sequence in NUAA's sequences.tsv."""
    sequences = []
    for line in (nuaa / "sequences.tsv").read_text().splitlines()[1:]:
        label, subject, *_, frames = line.split("\t")
        if label == "live":
            sequences.append((subject, frames.split()))
    return sequences


def visit_outcome(
    frames: list[tuple[bool, int, float]], person: int, threshold: float, decision: DecisionConfig
) -> tuple[str, int]:
    """Feed one visit (per frame: passed the gate, best person, similarity) to a fresh
    decision machine; ('granted' | 'wrong_person' | 'denied' | 'undecided', frames seen)."""
    machine = DecisionMachine(decision, lambda pid, wall: None, require_liveness=False)
    for i, (usable, best, similarity) in enumerate(frames, start=1):
        if not usable:
            continue  # the door decides nothing on a frame the quality gate held back
        known = best if similarity >= threshold else None
        for command in machine.observe(Observation(i / FPS, known, None, similarity, None), 0.0):
            if command.kind == "granted":
                return ("granted" if command.person_id == person else "wrong_person"), i
            return "denied", i
    return "undecided", len(frames)


def visits(
    split: dict[str, Photos], nuaa: Path, pipeline: Pipeline, cache: Path | None, threshold: float
) -> None:
    sequences = read_sequences(nuaa)
    paths = sorted({nuaa / f for _, frames in sequences for f in frames})
    data = cached("nuaa_live", paths, pipeline, cache)
    row = {str(p): i for i, p in enumerate(paths)}
    usable = data["found"] & data["passed"]
    plain = data["plain"]
    # The door's gallery: DevTest's people from their first photo, each NUAA subject
    # from the first 10 good frames of their first live sequence.
    test = split["devtest"]
    lfw = [rows[0] for rows in test.rows.values() if len(rows) > 1 and test.usable[rows[0]]]
    templates = [test.vectors(False)[i] for i in lfw]
    owners = list(range(1, len(lfw) + 1))
    subjects, visits_of, enrolled_from = {}, {}, {}
    for subject, frames in sequences:
        rows = [row[str(nuaa / f)] for f in frames]
        if subject not in enrolled_from:
            good = [r for r in rows if usable[r]][:10]
            try:
                chosen = build_templates(
                    [Embedding(plain[r], "study") for r in good],
                    [1.0] * len(good),
                    EnrolmentConfig(),
                )
            except RefusedError:
                continue
            subjects[subject] = 100_000 + len(subjects)
            enrolled_from[subject] = rows
            templates += [e.vector for e in chosen.embeddings]
            owners += [subjects[subject]] * len(chosen.embeddings)
            rows = rows[rows.index(good[-1]) + 1 :]  # never search with enrolment frames
        visits_of.setdefault(subject, []).append(rows)
    templates, owners = np.array(templates), np.array(owners)
    decision = DecisionConfig()
    print(
        f"\n3. Visits: NUAA live sequences in runs of {VISIT_FRAMES} frames at {FPS:g} fps, "
        f"decision {decision.votes_required} of {decision.vote_frames}, threshold "
        f"{threshold:.2f}; gallery {len(np.unique(owners))} people"
    )
    for kind in ("mated", "stranger"):
        outcomes, frame_hits, frame_total, seen = {}, 0, 0, []
        for subject, runs in visits_of.items():
            if subject not in subjects:
                continue
            person = subjects[subject]
            keep = owners != person if kind == "stranger" else np.ones(len(owners), bool)
            for r, rows in enumerate(runs):
                if kind == "mated" and r == 0:
                    continue  # the rest of the enrolment sequence: same session, flatters
                for start in range(0, len(rows) - VISIT_FRAMES + 1, VISIT_FRAMES):
                    chunk = rows[start : start + VISIT_FRAMES]
                    truth = np.full(len(chunk), person if kind == "mated" else STRANGER)
                    found = score(templates[keep], owners[keep], plain[chunk], truth)
                    frames = list(zip(usable[chunk], found.best, found.top, strict=True))
                    outcome, n = visit_outcome(frames, person, threshold, decision)
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
                    seen.append(n)
                    good = usable[chunk]
                    accepted = (found.top >= threshold) & good
                    if kind == "mated":
                        frame_hits += int(np.sum(accepted & (found.best == person)))
                    else:
                        frame_hits += int(np.sum(accepted))
                    frame_total += int(np.sum(good))
        total = sum(outcomes.values())
        rate = frame_hits / frame_total if frame_total else float("nan")
        label = "frames recognised" if kind == "mated" else "frames taken for someone"
        print(
            f"  {kind:8} {total} visits: "
            + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
            + f"; {label} {100 * rate:.2f}% of {frame_total}; frames to decision median "
            f"{np.median(seen):.0f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--split", type=Path, required=True, help="folder written by scripts/lfw_view1_split.py"
    )
    parser.add_argument("--nuaa", type=Path, required=True, help="the nuaa_train folder")
    parser.add_argument("--cache", type=Path, help="folder to keep embeddings in between runs")
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="threshold to check and simulate visits at (default: the config's)",
    )
    args = parser.parse_args()

    config = default_config()
    threshold = args.threshold if args.threshold is not None else config.matcher.min_similarity
    pipeline = Pipeline.from_config(config)
    split = {
        name: Photos(args.split / name, pipeline, args.cache) for name in ("devtrain", "devtest")
    }
    remedies(split)
    threshold_table(split, threshold)
    visits(split, args.nuaa, pipeline, args.cache, threshold)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
