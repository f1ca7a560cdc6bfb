"""``facegate gallery restore FILE``: put a backup back, after checking it, not before.

The backup file itself is never changed. It is copied beside the gallery, opened with
whichever known key opens it (the current key, a key an earlier rekey retired, or a
key file the administrator names), migrated forward, checked, and re-encrypted under
the current key, so that the key file stays what opens the gallery. Only then, with
the gallery held alone (refused while the service runs), the copy replaces it; the
gallery it replaces is kept beside it, renamed, in case the wrong backup was chosen.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlcipher3

from ..errors import GalleryError, GalleryKeyError, NotFoundError, RefusedError
from .backup import fingerprint_path
from .key import fsync_dir, key_fingerprint, key_pragma_value, read_key, write_key
from .lock import GalleryLock, lock_path
from .store import Gallery, GalleryConfig, check_file


@dataclass(frozen=True)
class Restored:
    """What a restore did: the key that opened the backup, what it holds, and where
    the replaced gallery went (None when there was none)."""

    fingerprint: str
    key_source: str
    people: int
    events: int
    replaced: Path | None


def _opens(path: Path, key: bytes) -> bool:
    conn = sqlcipher3.connect(str(path))
    try:
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute(f"PRAGMA key = {key_pragma_value(key)}")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return True
    except sqlcipher3.DatabaseError:
        return False
    finally:
        conn.close()


def _known_keys(
    config: GalleryConfig, current: bytes, key_files: Sequence[Path]
) -> dict[str, tuple[bytes, str]]:
    """Fingerprint -> (key, where it came from) of every key a restore may try."""
    keys = {key_fingerprint(current): (current, "the current key")}
    if Path(config.path).exists():
        try:
            with Gallery.from_config(config) as gallery:
                for fingerprint, key in gallery.retired_keys().items():
                    keys.setdefault(fingerprint, (key, "a key retired by an earlier rekey"))
        except GalleryError:
            pass  # the gallery being restored may well be the broken one
    for path in key_files:
        key = read_key(path)
        keys.setdefault(key_fingerprint(key), (key, f"the key in {path}"))
    return keys


def _remove(work: Path, work_key: Path) -> None:
    for leftover in (work, Path(f"{work}-wal"), Path(f"{work}-shm"), lock_path(work), work_key):
        leftover.unlink(missing_ok=True)


def restore_gallery(
    config: GalleryConfig, backup: str | Path, key_files: Sequence[Path] = ()
) -> Restored:
    """Check ``backup`` and, if sound, make it the gallery (see the module doc).

    Raises NotFoundError for a missing backup, GalleryKeyError when no known key
    opens it (naming the key it needs when its fingerprint file is there),
    GalleryError when it fails its check, RefusedError while the gallery is in use.
    Nothing is replaced unless everything passed.
    """
    backup = Path(backup)
    if not backup.is_file():
        raise NotFoundError(f"no backup file {backup}")
    check_file(backup)
    path = Path(config.path)
    current = read_key(config.key_file)
    keys = _known_keys(config, current, key_files)
    lock = GalleryLock(path)
    work = path.with_name(f".{path.name}.restoring")
    work_key = path.with_name(f".{path.name}.restoring.key")
    try:
        lock.exclusive("restore")
        _remove(work, work_key)
        shutil.copyfile(backup, work)
        found = next(
            ((fp, key, source) for fp, (key, source) in keys.items() if _opens(work, key)), None
        )
        if found is None:
            sidecar = fingerprint_path(backup)
            needed = (
                f"it needs the key {sidecar.read_text().strip()} (from {sidecar.name}); "
                if sidecar.exists()
                else ""
            )
            raise GalleryKeyError(
                f"no known key opens backup {backup}: {needed}tried {', '.join(keys)}; name "
                "the key file that opens it with --key"
            )
        fingerprint, key, source = found
        write_key(work_key, key)
        with _checked(work, work_key, backup) as copy:
            if key != current:
                copy.rekey(new_key=current)
            copy.keep_retired_keys({fp: k for fp, (k, _) in keys.items() if k != current})
            people, events = len(copy.people()), copy.count_events()
            copy.to_single_file()
        replaced = _replace(work, path)
    finally:
        _remove(work, work_key)
        lock.release()
    return Restored(fingerprint, source, people, events, replaced)


def _checked(work: Path, work_key: Path, backup: Path) -> Gallery:
    """The copy, opened (which migrates it forward) and passing every check."""

    def failed(problems: list[str]) -> GalleryError:
        return GalleryError(
            f"backup {backup} fails its check, so nothing was replaced: " + "; ".join(problems)
        )

    def named(exc: GalleryError) -> str:
        return str(exc).replace(str(work), str(backup))

    try:
        copy = Gallery.open(work, work_key)
    except GalleryError as exc:
        raise failed([named(exc)]) from None
    try:
        problems = copy.check()
    except GalleryError as exc:
        problems = [named(exc)]
    if problems:
        copy.close()
        raise failed(problems)
    return copy


def _replace(work: Path, path: Path) -> Path | None:
    """Move the gallery aside (with a write-ahead log a crash may have left) and
    ``work`` into its place; returns where the replaced gallery went."""
    replaced = None
    if path.exists():
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        replaced = path.with_name(f"{path.name}.replaced-{stamp}")
        if replaced.exists():
            raise RefusedError(f"{replaced} already exists; try again in a second")
        os.replace(path, replaced)
        if Path(f"{path}-wal").exists():
            os.replace(f"{path}-wal", f"{replaced}-wal")
        Path(f"{path}-shm").unlink(missing_ok=True)
    os.replace(work, path)
    fsync_dir(path.parent)
    return replaced
