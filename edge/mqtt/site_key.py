"""The site key: 256 random bits shared by every terminal of a site, sealing people's
records on the broker (``seal.py``).

The key file holds one key per line in hex, the current one first; keys after it
were replaced by a rotation and are kept to read what is still sealed with them.
It is made, guarded and copied like the gallery key (mode 0600, the service user's,
never in the config or a log); a key is named by its id, a fingerprint that reveals
nothing of it. To give a terminal the site's keys, copy the file (or its lines, to
'facegate site-key import') over a channel you trust, as you would the gallery key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GalleryKeyError
from ..gallery.key import KEY_BYTES, generate_key, read_private, write_private

# Keys a file keeps: the current one and the last few it replaced.
MAX_KEYS = 8


def key_id(key: bytes) -> str:
    """A short name for a site key: 16 hex digits of a hash of it."""
    return hashlib.sha256(b"facegate site key\0" + key).hexdigest()[:16]


@dataclass(frozen=True)
class SiteKeys:
    """The current key (sealing) and every key kept for reading, by id."""

    keys: tuple[bytes, ...]
    # the keys' ids, hashed once: they are asked for on every record and every publish
    _ids: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.keys or any(len(k) != KEY_BYTES for k in self.keys):
            raise ValueError(f"site keys are {KEY_BYTES} bytes each, and there is at least one")
        object.__setattr__(self, "_ids", tuple(key_id(k) for k in self.keys))

    @property
    def current(self) -> bytes:
        return self.keys[0]

    @property
    def current_id(self) -> str:
        return self._ids[0]

    def by_id(self, wanted: str) -> bytes | None:
        return next((k for k, i in zip(self.keys, self._ids, strict=True) if i == wanted), None)

    def text(self) -> str:
        return "".join(k.hex() + "\n" for k in self.keys)


def parse(text: str, source: str) -> SiteKeys:
    """Keys from the file format (one hex key a line; blank lines and '#' comments skipped)."""
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key = bytes.fromhex(line)
        except ValueError:
            key = b""
        if len(key) != KEY_BYTES:
            raise GalleryKeyError(f"{source}:{number}: not a {KEY_BYTES * 8}-bit site key in hex")
        keys.append(key)
    if not keys:
        raise GalleryKeyError(f"{source}: holds no site key")
    return SiteKeys(tuple(dict.fromkeys(keys))[:MAX_KEYS])


def read_site_keys(path: str | Path) -> SiteKeys:
    path = Path(path)
    remedy = "make one with 'facegate site-key new' on one terminal and import it on the others"
    return parse(read_private(path, "site key file", remedy), str(path))


def new_site_key(path: str | Path) -> SiteKeys:
    """A fresh site key, for the first terminal of a site; an existing file is kept."""
    path = Path(path)
    if path.exists():
        raise GalleryKeyError(f"site key file {path} already exists; refusing to overwrite it")
    keys = SiteKeys((generate_key(),))
    write_private(path, keys.text())
    return keys


def rotate_site_key(path: str | Path) -> SiteKeys:
    """A new current key; the old ones stay, for reading."""
    path = Path(path)
    old = read_site_keys(path)
    keys = SiteKeys((generate_key(), *old.keys)[:MAX_KEYS])
    write_private(path, keys.text())
    return keys


def import_site_keys(path: str | Path, text: str) -> SiteKeys:
    """Take another terminal's keys (its file's text): its current key becomes this
    one's; keys this file held are kept after them, for reading."""
    path = Path(path)
    given = parse(text, "the imported keys")
    held = read_site_keys(path).keys if path.exists() else ()
    keys = SiteKeys(tuple(dict.fromkeys((*given.keys, *held)))[:MAX_KEYS])
    write_private(path, keys.text())
    return keys
