"""The few statements whose SQL differs between SQLite and PostgreSQL, in one place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Engine, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import Executable


def insert_ignore(engine: Engine, table: Table, rows: Sequence[Mapping[str, object]]) -> Executable:
    """``INSERT … ON CONFLICT DO NOTHING``."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table).values(list(rows)).on_conflict_do_nothing()
    return sqlite.insert(table).values(list(rows)).on_conflict_do_nothing()


def insert_if_new(engine: Engine, table: Table, row: Mapping[str, object]) -> Executable:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING`` the key: a row comes back iff it was new.

    Why not ``rowcount``: psycopg 3 reports -1 for a multi-values insert, so only the
    returned row says on both backends whether anything was inserted.
    """
    key = list(table.primary_key.columns)
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table).values(dict(row)).on_conflict_do_nothing().returning(*key)
    return sqlite.insert(table).values(dict(row)).on_conflict_do_nothing().returning(*key)


def upsert(
    engine: Engine, table: Table, row: Mapping[str, object], *, key_columns: Sequence[str]
) -> Executable:
    """``INSERT … ON CONFLICT (key) DO UPDATE SET`` every other column."""
    others = {k: v for k, v in row.items() if k not in key_columns}
    if engine.dialect.name == "postgresql":
        pg = postgresql.insert(table).values(dict(row))
        return pg.on_conflict_do_update(index_elements=list(key_columns), set_=others)
    lite = sqlite.insert(table).values(dict(row))
    return lite.on_conflict_do_update(index_elements=list(key_columns), set_=others)
