"""SIGKILL at random moments while enrolling: the gallery must stay whole.

Each run is a real subprocess (tests/gallery/crash_worker.py) killed after a random
delay once it has the gallery open; afterwards the gallery must pass every check in
``Gallery.check`` (SQLite and SQLCipher integrity, foreign keys, no person without
templates or without an 'enrolled' event).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from edge.gallery.store import Gallery, GalleryConfig, create_gallery

WORKER = Path(__file__).with_name("crash_worker.py")
REPO = WORKER.parent.parent
RUNS = 30


def test_sigkill_during_enrolment_never_leaves_half_a_person(tmp_path):
    config = GalleryConfig(path=str(tmp_path / "g.db"), key_file=str(tmp_path / "g.key"))
    create_gallery(config)
    rng = random.Random(1234)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    committed = 0
    for run in range(RUNS):
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), config.path, config.key_file, str(run * 10_000)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout.readline().strip() == "ready"
        try:
            proc.wait(timeout=rng.uniform(0.0, 0.15))  # the worker never ends on its own
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        committed += len(proc.stdout.read().split())
        proc.stdout.close()
        with Gallery.open(config.path, config.key_file) as gallery:
            assert gallery.check() == [], f"run {run}"
            for person in gallery.people():
                assert person.templates == 5, person
    assert committed > RUNS  # the kills did land in the middle of real work
