"""Engine creation and migrations for SQLite (default) and PostgreSQL (production).

Why here: both backends must behave the same for the contract tests, so every connection
setting that matters for correctness (WAL, foreign keys, busy timeout on SQLite; UTC on
PostgreSQL) is applied in one place.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from node.errors import StoreError
from node.store.failures import database_error, driver_message, redacted_url

WRITE_OPTION = "enlace_write"
MIGRATIONS = str(Path(__file__).with_name("migrations"))


def default_sqlite_url(home: Path) -> str:
    return f"sqlite+pysqlite:///{home / 'enlace.db'}"


def make_engine(url: str) -> Engine:
    """An engine with the per-backend settings the store relies on."""
    if url.startswith("postgresql") and "+" not in url.split("://", 1)[0]:
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    # A failing statement's parameters (records' names and document numbers, among others)
    # stay out of exception texts and so out of logs and screens.
    kwargs: dict[str, Any] = {"future": True, "hide_parameters": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs.update(pool_size=8, max_overflow=16, pool_pre_ping=True)
    try:
        engine = create_engine(url, **kwargs)
    except (SQLAlchemyError, ImportError) as exc:
        raise StoreError(
            f"cannot use database URL {redacted_url(url)}: {driver_message(exc)}",
            hint="check ENLACE_DATABASE_URL",
        ) from exc
    if engine.dialect.name == "sqlite":
        _require_sqlite_json()

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is DEFERRED).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            # Checkpoint the WAL from a background job, not inside some request's COMMIT.
            cursor.execute("PRAGMA wal_autocheckpoint=10000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            # Writers take the lock up front: a DEFERRED transaction that reads and then
            # writes fails with SQLITE_BUSY when another process wrote in between.
            immediate = connection.get_execution_options().get(WRITE_OPTION)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _require_sqlite_json() -> None:
    """Refuse an SQLite library without the JSON functions: statistics and the view
    ``encounter_codes`` split stored code lists with ``json_each`` (built in since 3.38)."""
    try:
        sqlite3.connect(":memory:").execute("SELECT value FROM json_each('[1]')").fetchall()
    except sqlite3.Error as exc:
        raise StoreError(
            f"this SQLite library ({sqlite3.sqlite_version}) has no JSON functions ({exc})",
            hint="use a Python built with SQLite 3.38 or later, or PostgreSQL",
        ) from exc


def writer(engine: Engine) -> Engine:
    """The same engine, beginning transactions that take the write lock at once on SQLite."""
    return engine.execution_options(**{WRITE_OPTION: True})


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    return config


def head_revision() -> str:
    script = ScriptDirectory.from_config(_alembic_config())
    head = script.get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise StoreError("no migrations are packaged")
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` in one transaction per backend rules."""
    config = _alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except SQLAlchemyError as exc:
        hint = database_error(exc).hint  # the advice for what the database said
        raise StoreError(f"database migration failed: {driver_message(exc)}", hint=hint) from exc
