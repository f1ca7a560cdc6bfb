"""Backups of the gallery: the partial files a killed backup leaves, and restoring one.

A backup is written to ``.NAME.partial`` beside its target and renamed into place
when complete. While it is written, the backup holds an ``flock`` on that partial file
and its path is listed in ``<gallery>.partials``; any later opening of the gallery
(any command, the daemon) removes listed partial files nobody holds: their writer was
killed.

Each backup is accompanied by ``NAME.fingerprint``, the fingerprint of the key it is
encrypted with (never the key), so that a restore can say which key it needs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import GalleryError


def partials_path(gallery_path: Path) -> Path:
    return gallery_path.with_name(gallery_path.name + ".partials")


def fingerprint_path(backup: Path) -> Path:
    return backup.with_name(backup.name + ".fingerprint")


def partial_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.partial")


@contextlib.contextmanager
def _registry(gallery_path: Path) -> Iterator[list[str]]:
    """The listed partial paths, to read and change; written back on exit, under a lock."""
    path = partials_path(gallery_path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise GalleryError(f"cannot open {path}: {exc.strerror}") from None
    with os.fdopen(fd, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        listed = [line for line in f.read().splitlines() if line]
        yield listed
        f.seek(0)
        f.truncate()
        f.write("".join(f"{p}\n" for p in listed))
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def writing_partial(gallery_path: Path, target: Path) -> Iterator[Path]:
    """The partial file to write ``target``'s backup into, held and listed meanwhile;
    removed and unlisted afterwards unless it was renamed into place."""
    partial = partial_path(target).absolute()
    partial.unlink(missing_ok=True)  # a leftover of a killed backup to this same target
    try:
        fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise GalleryError(f"cannot write backup {target}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with _registry(gallery_path) as listed:
            listed.append(str(partial))
        yield partial
    finally:
        partial.unlink(missing_ok=True)
        with _registry(gallery_path) as listed:
            listed[:] = [p for p in listed if p != str(partial)]
        os.close(fd)


def remove_stale_partials(gallery_path: Path) -> list[Path]:
    """Delete listed partial files whose writer is gone; returns what was deleted."""
    if not partials_path(gallery_path).exists():
        return []
    removed = []
    with _registry(gallery_path) as listed:
        for name in list(listed):
            partial = Path(name)
            try:
                fd = os.open(partial, os.O_RDONLY | os.O_NOFOLLOW)
            except FileNotFoundError:
                listed.remove(name)
                continue
            except OSError:
                continue  # not ours to judge now; a later run tries again
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # a backup is writing it right now
            partial.unlink(missing_ok=True)
            os.close(fd)
            listed.remove(name)
            removed.append(partial)
    return removed
