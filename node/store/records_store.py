"""Persistence of the local records: batched writes for imports, and the read side they feed.

Why a sub-store: the importer writes millions of rows and must do it inside *one* transaction
(DESIGN §2, non-negotiable 4), at a speed close to the bare driver. SQLAlchemy's per-row
parameter processing costs more than the insert itself at that volume, so
:class:`RecordsWriter` hands positional tuples to the driver; the values arrive already in the
form the column type would bind (:meth:`RecordsWriter.processor`), so what SQLAlchemy reads
back is exactly what it would have written. Per backend, the fastest way the driver offers:

* SQLite: prepared ``INSERT`` through ``sqlite3``'s ``executemany`` on the connection the
  transaction runs on, with the per-row foreign-key probe of ``import_id`` switched off for the
  import's transaction (see the invariants).
* PostgreSQL: ``COPY … FROM STDIN`` (psycopg formats the rows in C), and key lookups as one
  array joined to the table, planned as primary-key probes even while the table's statistics
  still describe it before the import.

Invariants:
* Nothing here commits on its own. :meth:`RecordsStore.transaction` is the only writing
  transaction; a :class:`RecordsWriter` works inside it, so an exception (or a crash of the
  process) before the ``with`` block ends leaves every table as it was.
* The read methods never see an uncommitted import: they use their own connections.
* Every row an import writes carries that import's own ``import_id``, whose ``imports`` row
  :meth:`RecordsWriter.begin_import` inserts first in the same transaction: the foreign key
  holds by construction. SQLite would still probe ``imports`` for every row inserted (about a
  tenth of an import's time), so :meth:`RecordsStore.transaction` runs with
  ``PRAGMA foreign_keys=OFF`` and turns it back on before the connection is used again; the
  constraint stays in the schema, every other writer enforces it, and PostgreSQL checks it
  during ``COPY`` as always.
* The natural key of a dataset is one column (:func:`key_column`); ``existing`` answers for
  rows already committed *and* rows written earlier in the same transaction, and for the keys
  the import found unchanged (:meth:`RecordsWriter.note_unchanged`, a table of the
  transaction), which is how the importer finds a key repeated inside a file without keeping
  every key in memory.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Date, Engine, Index, Table, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeEngine

from node.errors import StoreError
from node.store.records_schema import (
    DATASET_TABLES,
    encounter_codes,
    imports,
    key_column,
)

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
class ExistingRow:
    """What the importer needs to know about a stored row with the same natural key."""

    content_hash: str
    import_id: str
    source_row: int


@dataclass(frozen=True)
class PartRepeat:
    """A row of a part whose key the same import had already seen, written or unchanged (the
    row is refused)."""

    key: str
    source_row: int
    earlier_import: str
    earlier_row: int
    counted: str  # how the part counted it: "added", "replaced" or "unchanged"


@dataclass(frozen=True)
class DatasetSummary:
    dataset: str
    records: int
    as_of: dt.datetime | None  # finish time of the latest import of this dataset


def _table(dataset: str) -> Table:
    try:
        return DATASET_TABLES[dataset]
    except KeyError:
        raise StoreError(
            f"no table for dataset {dataset!r}",
            hint="datasets are: " + ", ".join(DATASET_TABLES),
        ) from None


class RecordsWriter:
    """Batched writes of one dataset inside one open transaction (see the module invariants)."""

    def __init__(
        self,
        conn: Connection,
        dataset: str,
        columns: Sequence[str],
        *,
        stored_schema: str | None = None,
        unchanged_table: str | None = None,
    ) -> None:
        table = _table(dataset)
        unknown = [c for c in columns if c not in table.c]
        missing = [c.name for c in table.c if c.name not in columns]
        if unknown or missing:
            raise StoreError(
                f"the importer's columns for {dataset!r} do not match the table "
                f"(unknown {unknown}, missing {missing})",
                hint="the dataset specification changed without a migration; "
                "add a migration for the new columns",
            )
        self.conn = conn
        self.dataset = dataset
        self.table = table
        self.columns = tuple(columns)
        dialect = conn.dialect
        quote = dialect.identifier_preparer.quote
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self._key = key_column(dataset)
        self._key_index = self.columns.index(self._key)
        names = ", ".join(quote(c) for c in self.columns)
        marks = ", ".join(mark for _ in self.columns)
        self._insert_sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"
        self._delete_sql = f"DELETE FROM {quote(table.name)} WHERE {quote(self._key)} = {mark}"
        self._key_col = table.c[self._key]
        self._bind_date = self._processor(Date())
        self._mark = mark
        # Where a key is looked up, in rising precedence (a key found in several answers as
        # the last): the stored rows of a helper's node (below), the table, and the keys this
        # import found unchanged (which it does not write; see ``note_unchanged``).
        key = quote(self._key)
        row = f"SELECT {key}, content_hash, import_id, source_row, {{rank}} FROM"
        self._sources: list[str] = [f"{row} {quote(table.name)} WHERE {key}"]
        # A part of an import converted in a helper process (node.ingest.parallel) writes into
        # a database of its own and finds stored rows in the node's, attached read-only as
        # ``stored_schema``.
        if stored_schema is not None:
            stored = f"{quote(stored_schema)}.{quote(table.name)}"
            self._sources.insert(0, f"{row} {stored} WHERE {key}")
        self._unchanged = unchanged_table or (
            "temp.import_unchanged" if dialect.name == "sqlite" else "import_unchanged"
        )
        self._sources.append(
            f"SELECT key, content_hash, import_id, source_row, {{rank}} FROM {self._unchanged} "
            "WHERE key"
        )
        self._unchanged_ready = unchanged_table is not None
        self._lookup_sql: dict[tuple[int, int], str] = {}
        # PostgreSQL: rows go in with COPY (psycopg's pipelined executemany spends about a
        # hundred microseconds of Python per row), and keys are looked up as one array joined
        # to the table. A long ``IN`` list is planned from the statistics of the table before
        # the import (autovacuum cannot see an open transaction): a sequential scan of a table
        # that grows with every batch. The join is one primary-key probe per key regardless.
        self._unnest_sql: str | None = None
        self._copy_sql: dict[str, str] = {}
        if dialect.name == "postgresql":
            self._copy_sql = {
                self._insert_sql: f"COPY {quote(table.name)} ({names}) FROM STDIN",
            }
            key = quote(self._key)
            self._unnest_sql = (
                f"SELECT t.{key}, t.content_hash, t.import_id, t.source_row, 0 "
                f"FROM unnest(CAST(%s AS text[])) AS wanted(k) "
                f"JOIN {quote(table.name)} AS t ON t.{key} = wanted.k"
            )
            self._unnest_unchanged_sql = (
                f"{self._unnest_sql} UNION ALL "
                f"SELECT u.key, u.content_hash, u.import_id, u.source_row, 1 "
                f"FROM unnest(CAST(%s AS text[])) AS wanted(k) "
                f"JOIN {self._unchanged} AS u ON u.key = wanted.k"
            )
        self._deferred: list[Index] = []
        self._parts_attached = 0  # part databases attached by copy_part
        # On SQLite, batches go straight to the driver's connection (inside the transaction
        # SQLAlchemy began on it): its per-call bookkeeping is then paid once per import.
        self._sqlite: sqlite3.Connection | None = None
        if dialect.name == "sqlite":
            driver = conn.connection.driver_connection
            assert isinstance(driver, sqlite3.Connection)
            self._sqlite = driver
            # The driver binds int, float and str directly, but sends every other value,
            # None included, through its adapter lookup, which fails by formatting an
            # AttributeError message: about a microsecond per NULL cell. A registered adapter
            # for NoneType is found at once; it returns None, which binds NULL as before.
            sqlite3.register_adapter(type(None), _NULL_ADAPTER)

    def processor(self, column: str) -> Callable[[Any], Any]:
        """The function turning a Python value into what the driver receives for ``column``."""
        return self._processor(self.table.c[column].type)

    def date_value(self, value: dt.date) -> Any:
        """A date as the driver receives it for a ``Date`` column."""
        return self._bind_date(value)

    def _processor(self, column_type: TypeEngine[Any]) -> Callable[[Any], Any]:
        bind = column_type.dialect_impl(self.conn.dialect).bind_processor(self.conn.dialect)
        if bind is None:
            return lambda value: value
        return bind

    def import_file_name(self, import_id: str) -> str:
        """The file an earlier import read (for messages about rows it stored)."""
        name = self.conn.execute(
            select(imports.c.file_name).where(imports.c.import_id == import_id)
        ).scalar_one_or_none()
        return str(name) if name is not None else f"import {import_id}"

    def existing(self, keys: Sequence[str]) -> dict[str, ExistingRow]:
        """Rows already stored, written earlier in this transaction, or found unchanged earlier
        in this import (:meth:`note_unchanged`) under ``keys``; the latter two win."""
        found: dict[str, ExistingRow] = {}
        ranks: dict[str, int] = {}
        if self._unnest_sql is not None and keys:
            if self._unchanged_ready:
                answer = self.conn.exec_driver_sql(self._unnest_unchanged_sql, (list(keys),) * 2)
            else:
                answer = self.conn.exec_driver_sql(self._unnest_sql, (list(keys),))
            rows: Iterable[Sequence[Any]] = answer
        else:
            rows = self._lookup(keys)
        for r in rows:
            key, rank = str(r[0]), int(r[4])
            if rank >= ranks.get(key, -1):
                ranks[key] = rank
                found[key] = ExistingRow(str(r[1]), str(r[2]), int(r[3]))
        return found

    def _lookup(self, keys: Sequence[str]) -> Iterator[Sequence[Any]]:
        """SQLite: the key lookups of :meth:`existing`, each answer row ending in its rank."""
        sources = self._sources if self._unchanged_ready else self._sources[:-1]
        step = LOOKUP_CHUNK // len(sources)
        for start in range(0, len(keys), step):
            chunk = tuple(keys[start : start + step])
            sql = self._lookup_sql.get((len(chunk), len(sources)))
            if sql is None:
                marks = ", ".join(self._mark for _ in chunk)
                sql = " UNION ALL ".join(
                    f"{source.format(rank=rank)} IN ({marks})"
                    for rank, source in enumerate(sources)
                )
                self._lookup_sql[(len(chunk), len(sources))] = sql
            yield from self._run(sql, chunk * len(sources))

    def note_unchanged(self, rows: Sequence[tuple[str, str, str, int]]) -> None:
        """Remember ``(key, content_hash, import_id, source_row)`` of rows found unchanged
        (not written), so that the same key later in the import is found as a repeat."""
        if not rows:
            return
        self.prepare_unchanged()
        if self._sqlite is not None:
            self._sqlite.executemany(f"INSERT INTO {self._unchanged} VALUES (?, ?, ?, ?)", rows)
            return
        driver: Any = self.conn.connection.driver_connection  # a psycopg connection
        statement = f"COPY {self._unchanged} (key, content_hash, import_id, source_row) FROM STDIN"
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    def prepare_unchanged(self) -> None:
        """Create this import's table of unchanged keys (dropped when the import ends)."""
        if self._unchanged_ready:
            return
        columns = "key TEXT PRIMARY KEY, content_hash TEXT, import_id TEXT, source_row INTEGER"
        if self._sqlite is not None:
            self._sqlite.execute(f"DROP TABLE IF EXISTS {self._unchanged}")
            self._sqlite.execute(f"CREATE TEMP TABLE import_unchanged ({columns})")
        else:
            self.conn.exec_driver_sql(
                f"CREATE TEMP TABLE {self._unchanged} ({columns}) ON COMMIT DROP"
            )
        self._unchanged_ready = True

    def defer_indexes(self) -> None:
        """On SQLite, drop the secondary indexes of an *empty* table for a bulk load.

        Building an index once from sorted data is several times cheaper than maintaining it
        row by row. The drop is part of the import's transaction, so a failure or a crash
        brings the indexes back with the rollback; :meth:`restore_indexes` rebuilds them
        before the commit. Other backends, and tables holding rows, keep their indexes.
        """
        if self.conn.dialect.name != "sqlite" or self._deferred:
            return
        if self.conn.execute(select(self._key_col).limit(1)).first() is not None:
            return
        quote = self.conn.dialect.identifier_preparer.quote
        for index in sorted(self.table.indexes, key=lambda i: str(i.name)):
            self.conn.exec_driver_sql(f"DROP INDEX IF EXISTS {quote(str(index.name))}")
            self._deferred.append(index)

    def restore_indexes(self) -> None:
        for index in self._deferred:
            index.create(self.conn)
        self._deferred.clear()

    def _run(self, sql: str, parameters: Sequence[Any]) -> Iterable[Sequence[Any]]:
        """One statement with positional parameters; the rows it returns."""
        if self._sqlite is not None:
            return self._sqlite.execute(sql, parameters).fetchall()
        return self.conn.exec_driver_sql(sql, tuple(parameters)).all()

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self._sqlite is not None:
            self._sqlite.executemany(sql, rows)
        elif sql in self._copy_sql:
            driver: Any = self.conn.connection.driver_connection  # a psycopg connection
            with driver.cursor() as cursor, cursor.copy(self._copy_sql[sql]) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            self.conn.exec_driver_sql(sql, list(rows))

    def insert(self, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self._run_many(self._insert_sql, rows)

    def replace(self, rows: list[tuple[Any, ...]]) -> None:
        """Overwrite stored rows with new content."""
        if not rows:
            return
        keys = [(row[self._key_index],) for row in rows]
        self._run_many(self._delete_sql, keys)
        self.insert(rows)

    def limit_cache(self, kib: int) -> None:
        """On SQLite, set this import's page cache (a negative number is KiB): an import in
        parts runs beside helper processes that keep caches of their own."""
        if self._sqlite is not None:
            self._sqlite.execute(f"PRAGMA cache_size = {int(kib)}")

    def copy_part(
        self, part_path: str, import_ids: Sequence[str]
    ) -> tuple[list[PartRepeat], list[tuple[int, str, str]]]:
        """Copy the rows a helper wrote into ``part_path`` (:mod:`node.ingest.parallel`; SQLite
        only), replacing the stored rows it replaces, and take over its unchanged keys.

        A row of the part whose key this call has already seen — written (``import_ids``) or
        found unchanged — is left out and returned as a repeat, for the caller to refuse; so is
        a key the part found unchanged that this call had seen. The part's refused rows are
        returned as ``(row, cells as JSON, errors as JSON)``, in row order.
        """
        db = self._sqlite
        if db is None:
            raise StoreError("parts of an import are copied on SQLite only")
        self.prepare_unchanged()
        self._parts_attached += 1  # attached until the transaction ends (RecordsStore detaches)
        quote = self.conn.dialect.identifier_preparer.quote
        table, key = quote(self.table.name), quote(self._key)
        part = quote(f"enlace_part_{self._parts_attached}")
        db.execute(f"ATTACH DATABASE ? AS {part}", (part_path,))
        ids = ", ".join("?" for _ in import_ids)
        kind = f"CASE WHEN p.{key} IN (SELECT key FROM {part}.part_replaced) THEN 'replaced' "
        kind += "ELSE 'added' END"
        written, seen = f"main.{table} AS m ON m.{key}", f"{self._unchanged} AS u ON u.key"
        repeats = [
            PartRepeat(str(r[0]), int(r[1]), str(r[2]), int(r[3]), str(r[4]))
            for r in db.execute(
                f"SELECT p.{key}, p.source_row, m.import_id, m.source_row, {kind} "
                f"FROM {part}.{table} AS p JOIN {written} = p.{key} WHERE m.import_id IN ({ids}) "
                f"UNION ALL SELECT p.{key}, p.source_row, u.import_id, u.source_row, {kind} "
                f"FROM {part}.{table} AS p JOIN {seen} = p.{key} "
                f"UNION ALL SELECT q.key, q.source_row, m.import_id, m.source_row, 'unchanged' "
                f"FROM {part}.part_unchanged AS q JOIN {written} = q.key "
                f"WHERE m.import_id IN ({ids}) "
                f"UNION ALL SELECT q.key, q.source_row, u.import_id, u.source_row, 'unchanged' "
                f"FROM {part}.part_unchanged AS q JOIN {seen} = q.key ORDER BY 2",
                (*import_ids, *import_ids),
            )
        ]
        db.execute("DROP TABLE IF EXISTS temp.part_refused")
        db.execute("CREATE TEMP TABLE part_refused (key TEXT PRIMARY KEY)")
        db.executemany("INSERT OR IGNORE INTO temp.part_refused VALUES (?)",
                       [(r.key,) for r in repeats])  # fmt: skip
        refused = "(SELECT key FROM temp.part_refused)"
        db.execute(
            f"DELETE FROM main.{table} WHERE {key} IN (SELECT key FROM {part}.part_replaced) "
            f"AND import_id NOT IN ({ids}) AND {key} NOT IN {refused}",
            tuple(import_ids),
        )
        names = ", ".join(quote(c) for c in self.columns)
        db.execute(
            f"INSERT INTO main.{table} ({names}) SELECT {names} FROM {part}.{table} "
            f"WHERE {key} NOT IN {refused}"
        )
        db.execute(
            f"INSERT INTO {self._unchanged} SELECT key, content_hash, import_id, source_row "
            f"FROM {part}.part_unchanged WHERE key NOT IN {refused}"
        )
        db.execute("DROP TABLE temp.part_refused")
        rejects = db.execute(
            f"SELECT source_row, cells, errors FROM {part}.part_rejects ORDER BY source_row"
        ).fetchall()
        return repeats, [(int(r[0]), str(r[1]), str(r[2])) for r in rejects]

    def begin_import(self, record: ImportRecord) -> None:
        """Register the import first: every row written next refers to it."""
        self.conn.execute(imports.insert().values(**asdict(record)))

    def finish_import(self, record: ImportRecord) -> None:
        values = asdict(record)
        import_id = values.pop("import_id")
        self.conn.execute(imports.update().where(imports.c.import_id == import_id).values(**values))


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
        table = _table(dataset)
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
        table = _table(dataset)
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
