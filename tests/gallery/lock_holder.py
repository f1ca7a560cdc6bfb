"""Holds the gallery's write lock, as a long enrolment or a VACUUM would; used by the
daemon's locked-gallery tests.

Usage: python tests/gallery/lock_holder.py GALLERY KEY
Prints 'locked' once it holds the lock and releases it when a line arrives on stdin
(or stdin closes).
"""

from __future__ import annotations

import sys

from edge.gallery.store import Gallery


def main() -> None:
    path, key_path = sys.argv[1], sys.argv[2]
    with Gallery.open(path, key_path) as gallery:
        gallery._conn.execute("BEGIN IMMEDIATE")
        print("locked", flush=True)
        sys.stdin.readline()
        gallery._conn.execute("ROLLBACK")


if __name__ == "__main__":
    main()
