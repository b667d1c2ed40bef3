"""Count the cells of a statistics query in the database (before any disclosure control).

Why SQL: the node holds millions of encounters; cells are computed with one ``GROUP BY`` in
the database, never by loading records into Python. The query is the same on SQLite and
PostgreSQL but for the time dimensions: integer arithmetic on ``EXTRACT`` on PostgreSQL, on
the digits of the stored ``YYYY-MM-DD`` text on SQLite (its ``strftime`` parses the whole date
for every row, which was most of a quarterly matrix's time there).

Invariants:
* ``persons`` counts each local ``person_id`` once per cell; ``events`` counts records.
* ``records_considered`` is the number of rows (encounters, or encounter × code rows for a
  code dimension) the period and filters select (under differential privacy, those left after
  the per-person cap), counted by the same ``GROUP BY`` as the
  cells, so the rows are read once. It stays at the holder (never sent nor exported).
* A code dimension counts each encounter once per code of its list. A code *filter* selects
  encounters (``EXISTS`` a matching code in that list, :func:`_has_code`): it never
  multiplies rows, and it applies to its own list whatever the breakdown. The codes are split
  out of the encounter's own ``;``-joined column (:data:`CODE_COLUMNS`) rather than read from
  the view ``encounter_codes`` (which splits the same column): the rows of the period are
  split where they are read, without a join on ``record_id``.
* Under differential privacy, :func:`count_cells` caps each person's contribution
  (``per_person_cap``) so that the noise's sensitivity holds.
* Cell-key perturbation needs to know *who* is in each cell (:func:`cell_members`); the
  identifiers stay inside the node and only the derived noise affects the answer.
* Nothing here knows about peers or agreements: protection is applied afterwards.
* Counting runs on a connection tuned for it. On SQLite the connection maps the database
  file into memory (:data:`SQLITE_MMAP_BYTES`; it stays so when the pool hands it out again,
  which changes no result): a matrix reads one row per record of the period, scattered over
  the table, and a read through the page cache costs a system call and a copy each. On
  PostgreSQL its read transaction (``SET LOCAL``) gives sorts and hashes
  :data:`POSTGRES_WORK_MEM` instead of spilling to disk, and turns off JIT compilation, which
  costs more than it saves on statements of a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, cast, distinct, exists, extract, func, literal, select, true
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from node.stats.query import CODE_DIMENSIONS, StatsQuery
from node.store.records_schema import encounters

CellKey = tuple[str, ...]
#: The encounters column that holds, ``;``-joined, the codes of each code dimension (the same
#: codes as the dimension's rows of the view ``encounter_codes``, which splits this column).
CODE_COLUMNS = {"care_provided": "care_provided", "vulnerability": "vulnerabilities"}
#: ``PRAGMA mmap_size`` of SQLite connections that count cells (SQLite caps it at its build's
#: limit, 2 GiB by default; beyond it the file is read through the page cache as before).
SQLITE_MMAP_BYTES = 1 << 31
#: ``work_mem`` of a PostgreSQL counting transaction (per sort or hash, per worker).
POSTGRES_WORK_MEM = "256MB"


@dataclass(frozen=True)
class RawTable:
    dimensions: tuple[str, ...]
    cells: dict[CellKey, int]
    records_considered: int


def _year(dialect: str) -> ColumnElement[int]:
    if dialect == "sqlite":  # dates are stored as YYYY-MM-DD text
        return cast(func.substr(encounters.c.event_date, 1, 4), Integer)
    return cast(extract("year", encounters.c.event_date), Integer)


def _month(dialect: str) -> ColumnElement[int]:
    if dialect == "sqlite":
        return cast(func.substr(encounters.c.event_date, 6, 2), Integer)
    return cast(extract("month", encounters.c.event_date), Integer)


def _dimension_expr(
    name: str, dialect: str, code: ColumnElement[Any] | None = None
) -> ColumnElement[Any]:
    if name == "year":
        return _year(dialect)
    if name == "month":
        return _year(dialect) * 100 + _month(dialect)
    if name == "quarter":
        return _year(dialect) * 10 + (_month(dialect) - 1) // 3 + 1
    if name == "border_post":
        return encounters.c.border_post_regional
    if name in CODE_DIMENSIONS:
        if code is None:
            raise ValueError(f"code dimension {name!r} without its split codes")
        return code
    return encounters.c[name]


def _label(name: str, value: object) -> str:
    if value is None:
        return "_Z"  # SDMX: not applicable (e.g. no regional border post recorded)
    if name == "month":
        number = int(str(value))
        return f"{number // 100}-{number % 100:02d}"
    if name == "quarter":
        number = int(str(value))
        return f"{number // 10}-Q{number % 10}"
    return str(value)


def _filter_values(name: str, values: frozenset[str]) -> list[Any]:
    if name == "year":
        return [int(v) for v in values if v.isascii() and v.isdigit()]
    if name == "month":
        digits = (v.replace("-", "") for v in values)
        return [int(d) for d in digits if d.isascii() and d.isdigit()]
    if name == "quarter":
        out: list[Any] = []
        for v in values:
            year, _, q = v.upper().replace("-", "").partition("Q")
            if year.isascii() and year.isdigit() and q.isascii() and q.isdigit():
                out.append(int(year) * 10 + int(q))
        return out
    return sorted(values)


def _codes_of_rows(listed: str, dialect: str) -> tuple[FromClause, ColumnElement[Any]]:
    """Encounters joined to their codes of list ``listed``, split out of the row's ``;``-joined
    column (SQLite's JSON functions are required by the store, ``node.store.database``)."""
    column = encounters.c[CODE_COLUMNS[listed]]
    if dialect == "postgresql":
        codes = func.unnest(func.string_to_array(column, ";")).table_valued("code")
        split = codes.render_derived().lateral("c")
        return encounters.join(split, true()), split.c.code
    array = literal('["') + func.replace(column, ";", '","') + literal('"]')
    items = func.json_each(array).table_valued("value").alias("c")
    return encounters.join(items, true()), items.c.value


def _source_and_where(
    query: StatsQuery, dialect: str
) -> tuple[FromClause, ColumnElement[bool], ColumnElement[Any] | None]:
    """The rows a query counts, its conditions, and the code column of a code dimension."""
    conditions = [
        encounters.c.event_date >= query.period.start,
        encounters.c.event_date < query.period.end,
    ]
    code_dim = query.code_dimension
    source: FromClause = encounters
    code: ColumnElement[Any] | None = None
    if code_dim is not None:
        source, code = _codes_of_rows(code_dim, dialect)
    for name, values in query.filters.items():
        wanted = _filter_values(name, values)
        if name in CODE_DIMENSIONS:
            # Selects encounters; on the breakdown's own list it also keeps only those cells.
            conditions.append(_has_code(name, wanted, dialect))
            if name != code_dim:
                continue
        conditions.append(_dimension_expr(name, dialect, code).in_(wanted))
    return source, and_(*conditions), code


def _has_code(listed: str, wanted: list[Any], dialect: str) -> ColumnElement[bool]:
    """The encounter holds one of ``wanted`` in its list ``listed`` (an ``EXISTS``: one row
    per encounter, whatever the number of codes that match)."""
    column = encounters.c[CODE_COLUMNS[listed]]
    if dialect == "postgresql":
        codes = func.unnest(func.string_to_array(column, ";")).table_valued("code")
        split = codes.render_derived().alias(f"has_{listed}")
        return exists(select(literal(1)).select_from(split).where(split.c.code.in_(wanted)))
    array = literal('["') + func.replace(column, ";", '","') + literal('"]')
    items = func.json_each(array).table_valued("value").alias(f"has_{listed}")
    return exists(select(literal(1)).select_from(items).where(items.c.value.in_(wanted)))


@contextmanager
def _reading(engine: Engine) -> Iterator[Connection]:
    """A connection for counting (memory-mapped reads on SQLite, see the module docstring)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(f"PRAGMA mmap_size = {SQLITE_MMAP_BYTES}")
            yield conn
            return
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SET LOCAL work_mem = '{POSTGRES_WORK_MEM}'")
                conn.exec_driver_sql("SET LOCAL jit = off")
            yield conn


def _capped_statement(query: StatsQuery, dialect: str, cap: int) -> Select[Any]:
    """Cells in which each person contributes at most ``cap`` (see :func:`count_cells`).

    ``persons``: the person's distinct cells, earliest first (by the person's first event in
    the cell, then by the cell), the first ``cap`` kept. ``events``: the person's rows, earliest
    first (date, record id, code), the first ``cap`` kept. Window functions, the same SQL on
    SQLite (3.25+) and PostgreSQL.
    """
    source, where, code = _source_and_where(query, dialect)
    exprs = [
        _dimension_expr(d, dialect, code).label(f"d{i}") for i, d in enumerate(query.dimensions)
    ]
    names = [e.name for e in exprs]
    person = encounters.c.person_id
    if query.measure == "persons":
        per_cell = (
            select(*exprs, person.label("person"), func.min(encounters.c.event_date).label("first"))
            .select_from(source)
            .where(where)
            .group_by(*names, person)
            .subquery("per_cell")
        )
        order: list[ColumnElement[Any]] = [per_cell.c.first, *(per_cell.c[n] for n in names)]
        rank = func.row_number().over(partition_by=per_cell.c.person, order_by=order)
        rows = select(*(per_cell.c[n] for n in names), rank.label("rank"))
    else:
        order = [encounters.c.event_date, encounters.c.record_id]
        if code is not None:
            order.append(code)
        rank = func.row_number().over(partition_by=person, order_by=order)
        rows = select(*exprs, rank.label("rank")).select_from(source).where(where)
    ranked = rows.subquery("ranked")
    columns = [ranked.c[n] for n in names]
    statement = (
        select(*columns, func.count(), func.count()).where(ranked.c.rank <= cap).group_by(*columns)
    )
    return statement


def count_cells(
    engine: Engine, query: StatsQuery, *, per_person_cap: int | None = None
) -> RawTable:
    """Run the query's ``GROUP BY`` and return the raw (unprotected) cells.

    With ``per_person_cap``, each person adds at most that much to the whole table (differential
    privacy needs this bound: one person's events, months or codes would otherwise move many
    cells): a ``persons`` table keeps each person in at most ``cap`` cells, an ``events`` table
    at most ``cap`` of the person's rows, the earliest.
    """
    dialect = engine.dialect.name
    if per_person_cap is not None:
        if per_person_cap < 1:
            raise ValueError(f"a contribution cap must be at least 1, not {per_person_cap}")
        return _run(engine, query, _capped_statement(query, dialect, per_person_cap))
    source, where, code = _source_and_where(query, dialect)
    exprs = [
        _dimension_expr(d, dialect, code).label(f"d{i}") for i, d in enumerate(query.dimensions)
    ]
    # Persons: the distinct person ids of the cell (never NULL); events: its rows. Either way
    # the rows of every cell add up to the records considered.
    persons = query.measure == "persons"
    measure = func.count(distinct(encounters.c.person_id)) if persons else func.count()
    statement = (
        select(*exprs, measure, func.count())
        .select_from(source)
        .where(where)
        .group_by(*[e.name for e in exprs])
    )
    return _run(engine, query, statement)


def _run(engine: Engine, query: StatsQuery, statement: Select[Any]) -> RawTable:
    """Execute a counting statement (dimension columns, the measure, the rows) into cells."""
    cells: dict[CellKey, int] = {}
    total = 0
    width = len(query.dimensions)
    with _reading(engine) as conn:
        for row in conn.execute(statement):
            fields = tuple(row)
            key = tuple(_label(d, fields[i]) for i, d in enumerate(query.dimensions))
            cells[key] = int(fields[width])
            total += int(fields[width + 1])
    return RawTable(query.dimensions, cells, total)


def cell_members(engine: Engine, query: StatsQuery) -> dict[CellKey, list[str]]:
    """The identifiers counted in each cell (record ids for events, person ids for persons).

    Needed only by cell-key perturbation, which derives the noise from who is in the cell;
    the identifiers stay inside the node.
    """
    dialect = engine.dialect.name
    source, where, code = _source_and_where(query, dialect)
    exprs = [
        _dimension_expr(d, dialect, code).label(f"d{i}") for i, d in enumerate(query.dimensions)
    ]
    ident = encounters.c.record_id if query.measure == "events" else encounters.c.person_id
    statement = select(*exprs, ident).select_from(source).where(where)
    if query.measure == "persons":
        statement = statement.distinct()
    members: dict[CellKey, list[str]] = {}
    with _reading(engine) as conn:
        for row in conn.execute(statement):
            fields = tuple(row)
            key = tuple(_label(d, fields[i]) for i, d in enumerate(query.dimensions))
            members.setdefault(key, []).append(str(fields[-1]))
    return members
