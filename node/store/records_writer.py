"""Batched writes of one dataset's rows inside the import's one transaction.

Why: the importer writes millions of rows inside *one* transaction (DESIGN §2, non-negotiable
4), at a speed close to the bare driver. SQLAlchemy's per-row parameter processing costs more
than the insert itself at that volume, so :class:`RecordsWriter` hands positional tuples to the
driver; the values arrive already in the form the column type would bind
(:meth:`RecordsWriter.processor`), so what SQLAlchemy reads back is exactly what it would have
written. Per backend, the fastest way the driver offers:

* SQLite: prepared ``INSERT`` through ``sqlite3``'s ``executemany`` on the connection the
  transaction runs on (:meth:`node.store.records_store.RecordsStore.transaction`, which also
  says why the per-row foreign-key probe of ``import_id`` is off for it).
* PostgreSQL: ``COPY … FROM STDIN`` (psycopg formats the rows in C), and key lookups as one
  array joined to the table, planned as primary-key probes even while the table's statistics
  still describe it before the import.

Invariants:
* Nothing here commits: the writer works inside the transaction it is given.
* :meth:`RecordsWriter.begin_import` inserts the import's ``imports`` row before any of its
  rows, so their foreign key holds by construction.
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
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Date, Index, select
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeEngine

from node.errors import StoreError
from node.store.records_schema import dataset_table, imports, key_column

if TYPE_CHECKING:
    from node.store.records_store import ImportRecord

_ENCOUNTERS = "encounters"
#: ``None`` for any value, called from C (a dict's ``get`` misses): the NoneType adapter.
_NULL_ADAPTER: Callable[[Any], Any] = {}.get
#: Keys per lookup query: below the 999 bound parameters of SQLite builds older than 3.32.
LOOKUP_CHUNK = 900


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
        table = dataset_table(dataset)
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
