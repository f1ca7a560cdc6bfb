"""Who may use the web app: administrators' passwords (argon2id), their sessions, login
throttling, and API tokens.

Sessions live in this process's memory (a restart signs everyone out): a random id in an
HttpOnly, Secure, SameSite=Strict cookie, a new one at every login (so an id planted
before the login is worth nothing), a CSRF token of its own that every form posts back,
and an idle timeout on the injected clock. Failed logins are counted per name and per
address; too many in a row refuse further logins for a while, without even checking the
password. API tokens are random secrets shown once; the gallery keeps their SHA-256
(plenty for a 256-bit secret, which no one can guess or search for).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..clock import Clock
from ..errors import RefusedError

MIN_PASSWORD = 10
MAX_COUNTED = 10_000  # failed-login counters kept; the locks themselves are always kept
MAX_PASSWORD = 256
TOKEN_PREFIX = "fg_"
SCOPES = {
    "events:read": "read the status, the event log and attendance",
    "people:write": "list, enrol, change and delete people",
    "door:unlock": "ask the door for one unlock pulse",
}


class Passwords:
    """argon2id hashing; ``hasher`` is injected so that tests can use cheap parameters."""

    def __init__(self, hasher: PasswordHasher | None = None):
        self._hasher = hasher or PasswordHasher()  # argon2id, RFC 9106's low-memory profile
        # Verified against when the name is unknown, so that both cost the same time.
        self._decoy = self._hasher.hash(secrets.token_hex(16))

    def hash(self, password: str) -> str:
        """A new password's hash; RefusedError unless its length is within bounds (the
        one place it is checked, for the web app and the command line)."""
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise RefusedError(
                f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters, got {len(password)}"
            )
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True only for the right password; False for anything else (no hash, a damaged
        hash, a wrong password)."""
        try:
            matched = self._hasher.verify(password_hash or self._decoy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return matched is True and password_hash is not None


# --- sessions ---------------------------------------------------------------------------


@dataclass
class Session:
    id: str
    admin: str
    credential: str  # the password hash it signed in with: a change or removal ends it
    csrf: str
    last_seen: float
    messages: list[str] = field(default_factory=list)  # shown once on the next page

    def csrf_ok(self, token: object) -> bool:
        return isinstance(token, str) and hmac.compare_digest(token, self.csrf)


class Sessions:
    """The signed-in sessions of this process, each ending after ``idle_s`` unused."""

    def __init__(self, clock: Clock, idle_s: float):
        self._clock = clock
        self._idle_s = idle_s
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, admin: str, credential: str) -> Session:
        """A new session with fresh random ids (never one the browser brought)."""
        session = Session(
            secrets.token_urlsafe(32),
            admin,
            credential,
            secrets.token_urlsafe(32),
            self._clock.now(),
        )
        with self._lock:
            for stale in [s.id for s in self._sessions.values() if not self._alive(s)]:
                del self._sessions[stale]
            self._sessions[session.id] = session
        return session

    def _alive(self, session: Session) -> bool:
        return self._clock.now() - session.last_seen < self._idle_s

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, its idle time restarted; None otherwise."""
        if not session_id:
            return None
        now = self._clock.now()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if not self._alive(session):
                del self._sessions[session_id]
                return None
            session.last_seen = now
            return session

    def end(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def end_all(self, admin: str, keep: str | None = None) -> None:
        """End every session of ``admin`` (a password change, a removal) but ``keep``."""
        with self._lock:
            for sid in [s.id for s in self._sessions.values() if s.admin == admin]:
                if sid != keep:
                    del self._sessions[sid]


# --- login throttling ---------------------------------------------------------------------


class LoginThrottle:
    """Counts failed logins per key (a name, an address); ``attempts`` failures in a row
    lock the key for ``lockout_s``."""

    def __init__(self, clock: Clock, attempts: int, lockout_s: float):
        self._clock = clock
        self._attempts = attempts
        self._lockout_s = lockout_s
        self._failures: dict[str, int] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def locked(self, keys: Sequence[str]) -> bool:
        now = self._clock.now()
        with self._lock:
            return any(now < self._locked_until.get(key, float("-inf")) for key in keys)

    def failed(self, keys: Sequence[str]) -> list[str]:
        """Count a failure for each key; returns the keys it locked just now."""
        now = self._clock.now()
        locked = []
        with self._lock:
            if len(self._failures) > MAX_COUNTED:  # names made up by the thousand
                self._failures.clear()
            for key in [k for k, until in self._locked_until.items() if not now < until]:
                del self._locked_until[key]
            for key in keys:
                self._failures[key] = self._failures.get(key, 0) + 1
                if self._failures[key] >= self._attempts:
                    self._failures[key] = 0
                    self._locked_until[key] = now + self._lockout_s
                    locked.append(key)
        return locked

    def succeeded(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


# --- API tokens ---------------------------------------------------------------------------


def new_token() -> tuple[str, str]:
    """(secret to show once, digest to keep)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return secret, token_digest(secret)


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise RefusedError(f"choose scopes among {', '.join(SCOPES)}; got {list(scopes)}")
    return tuple(s for s in SCOPES if s in scopes)
