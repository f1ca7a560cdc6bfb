"""What the gallery knows of its site: this terminal's name, the Lamport clock that
orders changes to people across terminals, and when the site was last heard.

A change to a person made here takes the next tick of the clock as its revision and
this terminal's name as its origin; a change from elsewhere moves the clock past its
revision. Of two versions of a person the higher (revision, origin) wins, on every
terminal alike, whatever order they arrive in. Functions here run inside the caller's
transaction (``Gallery`` owns the connection).
"""

from __future__ import annotations

import secrets

import sqlcipher3

UID_BYTES = 16
# (revision, origin): a version of a person or of their deletion, compared as a tuple.
Version = tuple[int, str]


def new_uid() -> str:
    """A person's site-wide id: random, so that two terminals never choose the same."""
    return secrets.token_hex(UID_BYTES)


def get(conn: sqlcipher3.Connection, key: str, default: object = None) -> object:
    row = conn.execute("SELECT value FROM site_state WHERE key = ?", [key]).fetchone()
    return default if row is None else row[0]


def put(conn: sqlcipher3.Connection, key: str, value: object) -> None:
    conn.execute("INSERT OR REPLACE INTO site_state (key, value) VALUES (?, ?)", [key, value])


def terminal(conn: sqlcipher3.Connection) -> str:
    """This terminal's name in its site ('' until the broker client or daemon sets it)."""
    return str(get(conn, "terminal", ""))


def next_revision(conn: sqlcipher3.Connection) -> int:
    revision = int(get(conn, "clock", 0)) + 1  # type: ignore[call-overload]
    put(conn, "clock", revision)
    return revision


def witness(conn: sqlcipher3.Connection, revision: int) -> None:
    """A revision made elsewhere was seen: local changes from now on come after it."""
    if revision > int(get(conn, "clock", 0)):  # type: ignore[call-overload]
        put(conn, "clock", revision)


def touch(conn: sqlcipher3.Connection, person_id: int) -> None:
    """A person changed here: a new revision, to be published."""
    conn.execute(
        "UPDATE people SET revision = ?, origin = ?, published = NULL WHERE id = ?",
        [next_revision(conn), terminal(conn), person_id],
    )


def bury(conn: sqlcipher3.Connection, uid: str, now: float) -> None:
    """A person was deleted here: a tombstone with a new revision, to be published."""
    conn.execute(
        "INSERT OR REPLACE INTO tombstones (uid, revision, origin, deleted) VALUES (?, ?, ?, ?)",
        [uid, next_revision(conn), terminal(conn), now],
    )
