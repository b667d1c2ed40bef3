"""Persistence of the local records: the import's transaction and the read side it feeds.

Why a sub-store: the importer writes millions of rows and must do it inside *one* transaction
(DESIGN §2, non-negotiable 4); the writes themselves are :mod:`node.store.records_writer`'s.

Invariants:
* Nothing commits on its own. :meth:`RecordsStore.transaction` is the only writing
  transaction; a :class:`~node.store.records_writer.RecordsWriter` works inside it, so an
  exception (or a crash of the process) before the ``with`` block ends leaves every table as
  it was.
* The read methods never see an uncommitted import: they use their own connections.
* Every row an import writes carries that import's own ``import_id``, whose ``imports`` row
  the writer inserts first in the same transaction: the foreign key holds by construction.
  SQLite would still probe ``imports`` for every row inserted (about a tenth of an import's
  time), so :meth:`RecordsStore.transaction` runs with ``PRAGMA foreign_keys=OFF`` and turns
  it back on before the connection is used again; the constraint stays in the schema, every
  other writer enforces it, and PostgreSQL checks it during ``COPY`` as always.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection

from node.store.records_schema import (
    DATASET_TABLES,
    dataset_table,
    encounter_codes,
    imports,
    key_column,
)
from node.store.records_writer import RecordsWriter

IMPORT_STATUSES = ("complete", "partial")
_ENCOUNTERS = "encounters"
#: ``None`` for any value, called from C (a dict's ``get`` misses): the NoneType adapter.
_NULL_ADAPTER: Callable[[Any], Any] = {}.get
#: Keys per lookup query: below the 999 bound parameters of SQLite builds older than 3.32.
LOOKUP_CHUNK = 900
#: SQLite page cache during an import, in KiB (negative: the PRAGMA's "KiB" form).
IMPORT_CACHE_KIB = -65536


@dataclass(frozen=True)
class ImportRecord:
    """One committed file import: provenance and counts (a row of ``imports``)."""

    import_id: str
    dataset: str
    file_name: str
    file_sha256: str
    file_bytes: int
    file_format: str
    rows_read: int
    rows_added: int
    rows_unchanged: int
    rows_replaced: int
    rows_rejected: int
    started_at: dt.datetime
    finished_at: dt.datetime
    status: str
    equivalence_version: str | None
    codelists_version: str
    normalisation_version: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat()
        return data


@dataclass(frozen=True)
class DatasetSummary:
    dataset: str
    records: int
    as_of: dt.datetime | None  # finish time of the latest import of this dataset


def _detach_all(driver: sqlite3.Connection) -> None:
    """Detach the part databases an import attached (possible only once it has ended), so
    the pooled connection goes back as it was opened."""
    names = [row[1] for row in driver.execute("PRAGMA database_list")]
    for name in names:
        if name not in ("main", "temp"):
            driver.execute(f'DETACH DATABASE "{name}"')


class RecordsStore:
    """The records part of a node's :class:`~node.store.Store`."""

    def __init__(self, engine: Engine, writer: Engine) -> None:
        self._read = engine
        self._write = writer

    @property
    def backend(self) -> str:
        return self._read.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """The one writing transaction of an import: commits when the block ends normally.

        On SQLite the connection gets a larger page cache for the duration (index pages of a
        big table stay in memory) and no per-row foreign-key probe (the module's invariants
        say why that holds), and both its defaults back afterwards, committed or not.
        """
        with self._write.connect() as conn:
            driver: sqlite3.Connection | None = None
            if conn.dialect.name == "sqlite":
                found = conn.connection.driver_connection
                assert isinstance(found, sqlite3.Connection)
                driver = found
                driver.execute("PRAGMA foreign_keys=OFF")  # outside a transaction, or a no-op
            try:
                with conn.begin():
                    if driver is None:
                        yield conn
                        return
                    default = driver.execute("PRAGMA cache_size").fetchone()[0]
                    driver.execute(f"PRAGMA cache_size = {IMPORT_CACHE_KIB}")
                    try:
                        yield conn
                    finally:
                        driver.execute(f"PRAGMA cache_size = {int(default or -2000)}")
            finally:
                if driver is not None:
                    driver.execute("PRAGMA foreign_keys=ON")
                    driver.execute("DROP TABLE IF EXISTS temp.import_unchanged")
                    _detach_all(driver)

    def settle(self, dataset: str) -> None:
        """After a large committed import on PostgreSQL: ``VACUUM (ANALYZE)`` the table, so the
        planner knows its new size and the pages are marked all-visible, which is what lets
        statistics read the covering index alone (migration 0009) now rather than after
        autovacuum's next round. SQLite needs nothing: its query plans do not use statistics
        it was not given, and its indexes hold no visibility information."""
        if self._write.dialect.name != "postgresql":
            return
        table = dataset_table(dataset)
        quote = self._write.dialect.identifier_preparer.quote
        with self._write.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {quote(table.name)}")

    def writer(self, conn: Connection, dataset: str, columns: Sequence[str]) -> RecordsWriter:
        return RecordsWriter(conn, dataset, columns)

    # -- read side -------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Stored records per dataset (every dataset, zero included)."""
        with self._read.connect() as conn:
            return {
                name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in DATASET_TABLES.items()
            }

    def summary(self) -> list[DatasetSummary]:
        """Records and data as-of per dataset, in the order of the dataset specifications."""
        counts = self.counts()
        with self._read.connect() as conn:
            rows = conn.execute(
                select(imports.c.dataset, func.max(imports.c.finished_at)).group_by(
                    imports.c.dataset
                )
            ).all()
        latest = {str(r[0]): _aware(r[1]) for r in rows}
        return [DatasetSummary(name, counts[name], latest.get(name)) for name in counts]

    def data_as_of(self) -> dt.datetime | None:
        """When the latest import finished; ``None`` before the first one."""
        with self._read.connect() as conn:
            value = conn.execute(select(func.max(imports.c.finished_at))).scalar_one()
        return _aware(value)

    def import_marker(self) -> tuple[int, dt.datetime | None]:
        """(number of imports, latest finish): changes whenever an import commits."""
        with self._read.connect() as conn:
            row = conn.execute(select(func.count(), func.max(imports.c.finished_at))).one()
        return int(row[0]), _aware(row[1])

    def imports(self, dataset: str | None = None, limit: int | None = None) -> list[ImportRecord]:
        """Committed imports, newest first."""
        query = select(imports).order_by(imports.c.finished_at.desc(), imports.c.import_id.desc())
        if dataset is not None:
            query = query.where(imports.c.dataset == dataset)
        if limit is not None:
            query = query.limit(limit)
        with self._read.connect() as conn:
            rows = conn.execute(query).all()
        return [ImportRecord(**dict(r._mapping)) for r in rows]

    def iter_rows(self, dataset: str, batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Every stored row of ``dataset`` in key order, read in batches (constant memory)."""
        table = dataset_table(dataset)
        key = table.c[key_column(dataset)]
        after: str | None = None
        while True:
            query = select(table).order_by(key).limit(batch)
            if after is not None:
                query = query.where(key > after)
            with self._read.connect() as conn:
                rows = conn.execute(query).all()
            for row in rows:
                yield dict(row._mapping)
            if len(rows) < batch:
                return
            after = str(rows[-1]._mapping[key.name])

    def encounter_codes(self, record_id: str) -> dict[str, list[str]]:
        """The care and vulnerability codes of one encounter, by code list, sorted."""
        with self._read.connect() as conn:
            rows = conn.execute(
                select(encounter_codes.c.codelist, encounter_codes.c.code)
                .where(encounter_codes.c.record_id == record_id)
                .order_by(encounter_codes.c.codelist, encounter_codes.c.code)
            ).all()
        found: dict[str, list[str]] = {}
        for codelist, code in rows:
            found.setdefault(str(codelist), []).append(str(code))
        return found


def _aware(value: Any) -> dt.datetime | None:
    """Aggregates bypass the column type on SQLite (naive text); bring them back to UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    moment: dt.datetime = value
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
