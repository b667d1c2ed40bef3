"""Upgrades from every released schema version keep the data and end at the models' schema.

For each revision in the chain: an empty database is upgraded to that revision, one
representative row is written into every table that exists then (values derived from the
column types, foreign keys pointing at the rows of the referenced tables), the database is
upgraded to head, every row must read back unchanged, and Alembic's ``compare_metadata``
must find no difference between the migrated schema and the SQLAlchemy models.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    select,
)

import node.store.store  # noqa: F401 - registers every sub-store's tables on the metadata
from node.store import Store, database
from node.store.schema import metadata as models

MOMENT = dt.datetime(2026, 11, 28, 12, 34, 56, 789000, tzinfo=dt.UTC)
# Tables whose layout a library owns (APScheduler's SQLAlchemyJobStore for the Secretariat's
# schedule): created by a migration, described by the library, not by our models.
LIBRARY_TABLES = frozenset({"st_schedule_jobs"})
# Tables a later revision replaced by a view of the rows they duplicated (0008): their rows are
# then derived, and must be exactly what the view derives from the seeded encounter.
NOW_VIEWS = frozenset({"encounter_codes"})


def revisions() -> list[str]:
    config = Config()
    config.set_main_option("script_location", database.MIGRATIONS)
    script = ScriptDirectory.from_config(config)
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_the_chain_is_linear_and_numbered() -> None:
    chain = revisions()
    assert chain[0] == "0001"
    assert chain == sorted(chain)
    assert chain[-1] == database.head_revision()


def _value(table: str, column: Any, index: int, backend: str) -> Any:
    kind = column.type
    if isinstance(kind, Boolean):
        return True
    if isinstance(kind, Integer):
        return 40 + index
    if isinstance(kind, (Float, Numeric)):
        return 1.5
    if isinstance(kind, DateTime):
        return MOMENT.replace(tzinfo=None) if backend == "sqlite" else MOMENT
    if isinstance(kind, Date):
        return MOMENT.date()
    if isinstance(kind, LargeBinary):
        return bytes([index, 1, 2, 255])
    if isinstance(kind, (String, Text)):
        text = f"{table[:6]}-{column.name}"
        length = getattr(kind, "length", None)
        return text[:length] if length else text
    raise AssertionError(f"no representative value for {table}.{column.name}: {kind!r}")


def seed(engine: Engine) -> dict[str, dict[str, Any]]:
    """One row per table, foreign keys resolved to the referenced rows."""
    reflected = MetaData()
    reflected.reflect(engine)
    rows: dict[str, dict[str, Any]] = {}
    with engine.begin() as conn:
        for table in reflected.sorted_tables:
            if table.name == "alembic_version":
                continue
            row: dict[str, Any] = {}
            for index, column in enumerate(table.columns):
                row[column.name] = _value(table.name, column, index, engine.dialect.name)
                for fk in column.foreign_keys:
                    row[column.name] = rows[fk.column.table.name][fk.column.name]
            conn.execute(table.insert().values(**row))
            rows[table.name] = row
    return rows


def _normal(value: Any) -> Any:
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def read_back(engine: Engine, table_name: str, row: dict[str, Any]) -> dict[str, Any]:
    table = Table(table_name, MetaData(), autoload_with=engine)
    present = [c for c in row if c in table.c]
    with engine.connect() as conn:
        found = conn.execute(select(*(table.c[c] for c in present))).mappings().all()
    assert len(found) == 1, f"{table_name}: {len(found)} rows after the upgrade"
    return {c: _normal(found[0][c]) for c in present}


def _ours(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
    table = obj if kind == "table" else getattr(obj, "table", None)
    return getattr(table, "name", name) not in LIBRARY_TABLES


def schema_diff(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": _ours}
        )
        return list(compare_metadata(context, models))


@pytest.mark.parametrize("revision", revisions())
def test_upgrade_from_each_revision_keeps_rows_and_matches_models(
    revision: str, database_url_factory: Callable[[], str]
) -> None:
    engine = database.make_engine(database_url_factory())
    try:
        database.upgrade(engine, revision)
        assert database.current_revision(engine) == revision
        rows = seed(engine)
        assert rows, f"revision {revision} created no tables"
        database.upgrade(engine)
        assert database.current_revision(engine) == database.head_revision()
        for table_name, row in rows.items():
            if table_name in NOW_VIEWS:
                continue
            got = read_back(engine, table_name, row)
            assert got == {c: _normal(row[c]) for c in got}, table_name
        if "encounters" in rows:
            assert encounter_codes_of(engine, rows["encounters"]) == {
                ("care", rows["encounters"]["care_provided"]),
                ("vulnerability", rows["encounters"]["vulnerabilities"]),
            }
        assert schema_diff(engine) == []
    finally:
        engine.dispose()


def encounter_codes_of(engine: Engine, encounter: dict[str, Any]) -> set[tuple[str, str]]:
    view = Table("encounter_codes", MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        found = conn.execute(
            select(view.c.codelist, view.c.code).where(view.c.record_id == encounter["record_id"])
        ).all()
    return {(str(c), str(v)) for c, v in found}


def test_a_fresh_database_at_head_matches_the_models(database_url: str) -> None:
    engine = database.make_engine(database_url)
    try:
        database.upgrade(engine)
        assert schema_diff(engine) == []
    finally:
        engine.dispose()


def test_0011_keeps_each_revocation_and_makes_room_for_more(database_url: str) -> None:
    """Revocations stored under 0010 (one per agreement, no key recorded) survive with their
    document hash; afterwards a second revocation of the same agreement is kept beside it."""
    engine = database.make_engine(database_url)
    try:
        database.upgrade(engine, "0010")
        old = Table("revocations", MetaData(), autoload_with=engine)
        with engine.begin() as conn:
            conn.execute(
                old.insert().values(
                    agreement_hash="a" * 64,
                    agreement_id="PAN-CRI",
                    document="by: PAN\n",
                    installed_at=MOMENT,
                )
            )
        database.upgrade(engine)
        store = Store(engine)
        (kept,) = store.policies.revocations()
        assert (kept.document, kept.key_id, kept.public_key) == ("by: PAN\n", None, None)
        assert kept.installed_at == MOMENT
        new = Table("revocations", MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            digest = conn.execute(select(new.c.document_hash)).scalar_one()
        assert digest == hashlib.sha256(b"by: PAN\n").hexdigest()
        assert store.policies.save_revocation(
            "PAN-CRI",
            "a" * 64,
            "by: CRI\n",
            MOMENT,
            key_id="k",
            public_key=b"k" * 32,
            directory_hash="d" * 64,
        )
        assert len(store.policies.revocations("a" * 64)) == 2
        store.close()
    finally:
        engine.dispose()
