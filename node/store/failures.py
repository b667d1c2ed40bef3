"""What an operator is told when the database itself fails: one line, and what to do.

Why: a damaged SQLite file, a PostgreSQL server that is down, a full disk or a lock held too
long used to reach the operator as a driver's traceback from deep inside SQLAlchemy. The
operator needs to know which database, what the database said, and the next step (restore
the latest backup, start PostgreSQL, free disk space), as for every other error of the node.

Invariants:

* The message carries the driver's own words (``exc.orig``) and never the SQL statement or
  its parameters: SQLAlchemy's ``str(exc)`` includes both, and the parameters of a matching or
  import statement are the very values the node must not print (document numbers, names).
* A URL is shown without its password.
* Pure: classifies an exception; the caller decides whether to log or raise the result.
* Imports SQLAlchemy only when it is loaded already: the command line imports this module for
  every command, most of which never open a database.
"""

from __future__ import annotations

import logging
import sqlite3
import sys

from node.errors import StoreError

#: (words in the driver's message, lower case) -> what the operator should do.
_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("malformed", "not a database", "corrupt"),
        "the database file is damaged: stop the node, restore the latest backup into a new "
        "home (`enlace restore ARCHIVE --home NEW_HOME`) and run `enlace audit verify` there",
    ),
    (
        ("database is locked", "database table is locked"),
        "another process held the database's write lock too long: retry; if it persists, "
        "find it (`fuser` on the database file) and stop it",
    ),
    (
        ("disk is full", "no space left", "disk full"),
        "the disk is full: free space on the node's volume, then retry",
    ),
    (
        ("readonly", "read-only", "permission denied", "unable to open"),
        "the node's user cannot open or write the database: check the home's ownership and "
        "permissions, and that its volume is mounted read-write",
    ),
    (
        ("connection refused", "could not connect", "connection failed", "server closed"),
        "PostgreSQL is unreachable: check that it runs and that ENLACE_DATABASE_URL names it",
    ),
    (
        ("password authentication failed", "authentication failed", "role"),
        "PostgreSQL refused the node's credentials: check the user and password in "
        "ENLACE_DATABASE_URL",
    ),
    (
        ("no such table", "no such column", "does not exist"),
        "the database is not at the schema this version expects: run `enlace doctor`, and "
        "restore the backup taken before the last upgrade if it reports a failed migration",
    ),
)
log = logging.getLogger(__name__)

_DEFAULT_HINT = (
    "the node's log has the details; retry, and restore the latest backup if it persists"
)


def redacted_url(url: str) -> str:
    """``url`` without its password (or a placeholder when it does not even parse)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "the configured database URL"


def driver_message(exc: BaseException) -> str:
    """The database's own words for ``exc``: the DBAPI error's first line, no SQL attached."""
    original = getattr(exc, "orig", None) if _is_sqlalchemy(exc) else exc
    text = str(original if original is not None else type(exc).__name__).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:300]


def database_error(exc: BaseException, database: str = "") -> StoreError:
    """A :class:`StoreError` for a driver or SQLAlchemy failure, naming ``database`` (a path or
    a redacted URL) when the caller knows it."""
    said = driver_message(exc)
    lowered = said.lower()
    hint = next((h for words, h in _HINTS if any(w in lowered for w in words)), _DEFAULT_HINT)
    where = f" {database}" if database else ""
    return StoreError(f"the node's database{where} cannot be used: {said}", hint=hint)


def reported_failure(exc: BaseException) -> StoreError | None:
    """For a command line: ``exc`` as a :class:`StoreError` if it is a database failure (its
    traceback logged at DEBUG), else None."""
    if not (isinstance(exc, sqlite3.Error) or _is_sqlalchemy(exc)):
        return None
    log.debug("database failure", exc_info=exc)
    return database_error(exc)


def _is_sqlalchemy(exc: BaseException) -> bool:
    if "sqlalchemy" not in sys.modules:  # then nothing raised one of its errors
        return False
    from sqlalchemy.exc import SQLAlchemyError

    return isinstance(exc, SQLAlchemyError)
