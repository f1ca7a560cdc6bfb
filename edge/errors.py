"""One exception hierarchy and one table of process exit codes.

Library code raises these; only ``cli.py`` turns them into messages and exit codes.
Each exception class with a second, built-in base can still be caught by callers
that only know the standard library (``except ValueError``).
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit codes of the ``facegate`` command (documented in README).

    The systemd unit lists HARDWARE, CONFIG, MODEL and GALLERY_KEY in
    RestartPreventExitStatus: restarting cannot fix them, a person must.
    """

    OK = 0
    FAILURE = 1  # an unexpected error; systemd restarts the service
    USAGE = 2  # wrong command-line arguments
    NOT_FOUND = 3  # a named person, file or event does not exist
    REFUSED = 4  # the request was understood but refused (duplicate face, bad photo)
    CAMERA = 69  # camera unavailable (EX_UNAVAILABLE)
    GALLERY = 65  # gallery corrupt or unreadable (EX_DATAERR)
    HARDWARE = 71  # GPIO or camera library missing or cannot start, device not permitted (EX_OSERR)
    GALLERY_BUSY = 75  # gallery locked by another process, or its disk full (EX_TEMPFAIL)
    GALLERY_KEY = 77  # missing or wrong gallery key (EX_NOPERM)
    CONFIG = 78  # invalid configuration (EX_CONFIG)
    MODEL = 79  # model file missing or altered


class FacegateError(Exception):
    """Base of every error facegate raises on purpose."""

    exit_code = ExitCode.FAILURE


class ConfigError(FacegateError, ValueError):
    """Invalid configuration; the message names the key and, when known, the line."""

    exit_code = ExitCode.CONFIG


class ModelError(FacegateError, RuntimeError):
    """A model file is missing, altered or fails to run."""

    exit_code = ExitCode.MODEL


class ModelMismatchError(FacegateError, ValueError):
    """Two embeddings (or an embedding and a gallery) come from different models."""

    exit_code = ExitCode.FAILURE

    def __init__(self, expected: str, got: str):
        super().__init__(
            f"embedding model mismatch: expected {expected!r}, got {got!r}; "
            "re-enrol or migrate the gallery after a model change"
        )
        self.expected = expected
        self.got = got


class ImageError(FacegateError, ValueError):
    """An image file cannot be read or decoded."""

    exit_code = ExitCode.REFUSED


class GalleryError(FacegateError, RuntimeError):
    """The gallery database is corrupt, unreadable or inconsistent."""

    exit_code = ExitCode.GALLERY


class GalleryUnavailableError(GalleryError):
    """The gallery cannot be written now: another process holds its lock, or the disk
    it is on is full. Trying again later may work; nothing is corrupt."""

    exit_code = ExitCode.GALLERY_BUSY


class GalleryKeyError(GalleryError, PermissionError):
    """The gallery key is missing, unreadable or wrong."""

    exit_code = ExitCode.GALLERY_KEY


class NotFoundError(FacegateError, LookupError):
    """A named person, file or record does not exist."""

    exit_code = ExitCode.NOT_FOUND


class RefusedError(FacegateError, ValueError):
    """A request that was understood and refused (duplicate face, unusable photo)."""

    exit_code = ExitCode.REFUSED


class CameraError(FacegateError, IOError):
    """The camera cannot be opened or stopped delivering frames."""

    exit_code = ExitCode.CAMERA


class GpioError(FacegateError, RuntimeError):
    """The GPIO backend was misused or failed while driving a pin."""

    exit_code = ExitCode.FAILURE


class HardwareError(FacegateError, RuntimeError):
    """A GPIO or camera library is missing or cannot start, or the service user may not
    open a device: installing a package or fixing a permission is a person's job."""

    exit_code = ExitCode.HARDWARE
