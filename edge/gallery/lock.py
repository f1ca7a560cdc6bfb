"""Who has the gallery open: a lock file beside it, ``<gallery>.lock``.

Every process holds a shared lock on it for as long as it has the gallery open (the
daemon, each command). Re-encrypting or replacing the file (``gallery rekey``,
``gallery restore``) needs the lock alone, so it is refused while the service or any
other command has the gallery open: a rekey under a running daemon would leave it
reading pages it can no longer decrypt. The locks are ``flock`` locks: they belong to
the open file, so they vanish with the process however it ends.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import GalleryError, GalleryUnavailableError, RefusedError


def lock_path(gallery_path: Path) -> Path:
    return gallery_path.with_name(gallery_path.name + ".lock")


class GalleryLock:
    """A shared hold on the gallery from construction until ``release``."""

    def __init__(self, gallery_path: Path):
        self.gallery_path = gallery_path
        path = lock_path(gallery_path)
        try:
            self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise GalleryError(
                f"cannot open the gallery's lock file {path}: {exc.strerror}"
            ) from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            raise GalleryUnavailableError(
                f"gallery {gallery_path} is being re-keyed or restored by another command; "
                "try again when it is done"
            ) from None

    def exclusive(self, action: str) -> None:
        """Hold the gallery alone, to ``action`` it; RefusedError while anyone else
        has it open."""
        try:
            fcntl.flock(self._held(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RefusedError(
                f"cannot {action} gallery {self.gallery_path} while another process has it "
                "open: stop the service first ('systemctl stop facegate') and let other "
                "facegate commands finish"
            ) from None

    def shared(self) -> None:
        """Let others open the gallery again."""
        fcntl.flock(self._held(), fcntl.LOCK_SH)

    def _held(self) -> int:
        if self._fd is None:
            raise GalleryError(f"the lock on gallery {self.gallery_path} was released")
        return self._fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
