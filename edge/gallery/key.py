"""The gallery key: 256 random bits, hex-encoded in a file only its owner can read,
and its lifecycle: created, read, replaced by a rekey, named by its fingerprint.

The key never appears in the config file, in logs or in error messages. It is given
to SQLCipher in raw form (``x'...'``), so opening the gallery costs no key
derivation. Files are replaced atomically (temp file, fsync, rename, fsync of the
directory) so a crash leaves either the old or the new key, never half of one.

A rekey writes the new key beside the old one (the pending key, ``<key>.new``)
before the database switches to it, and renames it over the key file after; opening
the gallery (:func:`open_with_key_file`) finishes or rolls back a rekey a crash
interrupted, whichever the database says happened.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..errors import GalleryKeyError

KEY_BYTES = 32
Connection = TypeVar("Connection")


def generate_key() -> bytes:
    """A fresh random 256-bit key."""
    return secrets.token_bytes(KEY_BYTES)


def read_key(path: str | Path) -> bytes:
    """Read a key file, refusing one that group or others could read or alter."""
    path = Path(path)
    text = read_private(path, "gallery key file", "create it with 'facegate init'")
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise GalleryKeyError(
            f"gallery key file {path} does not hold a {KEY_BYTES * 8}-bit key in hex"
        )
    return key


def read_private(path: Path, what: str, remedy: str) -> str:
    """The text of a secret file (a key), refusing one that group or others could read
    or alter, or that another user owns; GalleryKeyError names ``what`` and, when the
    file is missing, the ``remedy``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise GalleryKeyError(f"{what} {path} not found; {remedy}") from None
    except OSError as exc:
        raise GalleryKeyError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise GalleryKeyError(f"{what} {path} is not a regular file")
        if info.st_mode & 0o077:
            raise GalleryKeyError(
                f"{what} {path} is accessible to group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run 'chmod 600 {path}'"
            )
        if info.st_uid != os.geteuid():
            raise GalleryKeyError(
                f"{what} {path} belongs to uid {info.st_uid}, "
                f"not to the user running facegate (uid {os.geteuid()})"
            )
        return os.read(fd, 64 * 1024).decode("ascii", errors="replace")
    finally:
        os.close(fd)


def write_key(path: str | Path, key: bytes, *, replace: bool = False) -> None:
    """Write ``key`` to ``path`` with mode 0600, atomically.

    Without ``replace`` an existing file is an error: overwriting a key orphans the
    gallery it opens.
    """
    path = Path(path)
    if len(key) != KEY_BYTES:
        raise ValueError(f"a gallery key has {KEY_BYTES} bytes, got {len(key)}")
    if not replace and path.exists():
        raise GalleryKeyError(f"gallery key file {path} already exists; refusing to overwrite it")
    write_private(path, key.hex() + "\n")


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, mode 0600, atomically (temp file, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)  # left over from a crash; it never held a key in use
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, text.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def key_fingerprint(key: bytes) -> str:
    """A short name for a key that reveals nothing of it, to tell keys (and the backups
    they open) apart: 'sha256:' and 16 hex digits of a hash of the key."""
    return "sha256:" + hashlib.sha256(b"facegate gallery key\0" + key).hexdigest()[:16]


def key_pragma_value(key: bytes) -> str:
    """The raw-key literal for ``PRAGMA key`` / ``rekey`` (no KDF at open)."""
    return f"\"x'{key.hex()}'\""


def pending_key_path(key_path: Path) -> Path:
    """Where a rekey keeps the new key until the database has switched to it."""
    return key_path.with_name(key_path.name + ".new")


def stage_key(key_path: Path, new_key: bytes) -> None:
    """Make ``new_key`` durable as the pending key, before the database switches."""
    write_key(pending_key_path(key_path), new_key, replace=True)


def promote_pending_key(key_path: Path) -> None:
    """The database switched: the pending key becomes the key file."""
    os.replace(pending_key_path(key_path), key_path)
    fsync_dir(key_path.parent)


def open_with_key_file(
    key_path: Path,
    connect: Callable[[bytes, Path, bool], Connection],
    create: bool,
) -> tuple[Connection, str]:
    """``connect(key, where_the_key_came_from, create)`` with the key file, finishing a
    rekey that a crash interrupted; returns the connection and what was found of such
    a rekey ('' when nothing). ``connect`` raises GalleryKeyError for a wrong key.

    If the key file does not open the database but the pending key does, the switch
    committed: promote the pending key. If the key file opens it, the switch never
    happened: drop the pending key.
    """
    pending = pending_key_path(key_path)
    try:
        conn = connect(read_key(key_path), key_path, create)
    except GalleryKeyError:
        if not pending.exists():
            raise
        conn = connect(read_key(pending), pending, False)
        promote_pending_key(key_path)
        return conn, (
            f"finished an interrupted rekey: the new key from {pending.name} "
            f"opens the gallery and is now {key_path}"
        )
    if pending.exists():
        pending.unlink()
        return conn, (
            f"rolled back an interrupted rekey: the gallery never switched to the "
            f"key in {pending.name}, which was removed; {key_path} still opens it"
        )
    return conn, ""
