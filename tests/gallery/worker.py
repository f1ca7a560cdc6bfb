"""Gallery operations in a real process that a test can pause, race or kill; used by
tests/gallery/test_processes.py.

Usage: python tests/gallery/worker.py GALLERY KEY ACTION [ARG]
  rekey          rekey, print 'rekeyed', then wait for a line on stdin (or a kill)
  backup FILE    start a backup; print 'writing' once the partial file is complete
                 but not yet renamed, then wait there for a line on stdin (or a kill)
  enrol NAME     print 'ready', wait for a line on stdin, then enrol the same fixed
                 face as every other worker; print 'enrolled ID' or 'refused: ...'
"""

from __future__ import annotations

import os
import sys

import numpy as np

from edge.errors import RefusedError
from edge.gallery import store as gallery_module
from edge.gallery.enrolment import TemplateSet, enrol
from edge.gallery.matcher import Matcher, MatcherConfig
from edge.gallery.store import Gallery
from edge.types import Embedding

MODEL = "worker-model"


def wait_for_the_test() -> None:
    sys.stdin.readline()


def main() -> None:
    path, key_path, action, *rest = sys.argv[1:]
    with Gallery.open(path, key_path) as gallery:
        if action == "rekey":
            gallery.rekey()
            print("rekeyed", flush=True)
            wait_for_the_test()
        elif action == "backup":
            real_replace = os.replace

            def paused_replace(src, dst):
                if str(src).endswith(".partial"):
                    print("writing", flush=True)
                    wait_for_the_test()
                real_replace(src, dst)

            gallery_module.os.replace = paused_replace
            gallery.backup(rest[0])
        elif action == "enrol":
            vector = np.random.default_rng(7).standard_normal(128).astype(np.float32)
            face = TemplateSet((Embedding(vector / np.linalg.norm(vector), MODEL),), (0.9,), 0)
            matcher = Matcher(gallery, MatcherConfig(), MODEL)
            print("ready", flush=True)
            wait_for_the_test()
            try:
                print(f"enrolled {enrol(gallery, matcher, rest[0], 'user', face)}", flush=True)
            except RefusedError as exc:
                print(f"refused: {exc}", flush=True)


if __name__ == "__main__":
    main()
