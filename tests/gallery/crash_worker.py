"""Enrols people (and deletes some) in a loop until killed; used by the SIGKILL test.

Usage: python tests/gallery/crash_worker.py GALLERY KEY FIRST_INDEX
Prints 'ready' once the gallery is open, then one line per committed enrolment.
"""

from __future__ import annotations

import sys

import numpy as np

from edge.gallery.store import Gallery
from edge.types import Embedding


def main() -> None:
    path, key_path, first = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(first)
    with Gallery.open(path, key_path) as gallery:
        print("ready", flush=True)
        for i in range(first, first + 10_000):
            vectors = rng.standard_normal((5, 128)).astype(np.float32)
            templates = [Embedding(v / np.linalg.norm(v), "crash-model") for v in vectors]
            person_id = gallery.add_person(f"worker {i}x", "user", templates, [0.5] * 5)
            gallery.log_event("granted", float(i), person_id=person_id)
            if i % 7 == 0:
                gallery.delete_person(person_id)
            print(i, flush=True)


if __name__ == "__main__":
    main()
