"""Count the cells of a statistics query in the database (before any disclosure control).

Why SQL: the node holds millions of encounters; cells are computed with one ``GROUP BY`` in
the database, never by loading records into Python. The query is the same on SQLite and
PostgreSQL (integer arithmetic on ``EXTRACT`` for the time dimensions).

Invariants:
* ``persons`` counts each local ``person_id`` once per cell; ``events`` counts records.
* Cell-key perturbation needs to know *who* is in each cell (:func:`cell_members`); the
  identifiers stay inside the node and only the derived noise affects the answer.
* Nothing here knows about peers or agreements: protection is applied afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, cast, extract, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from node.stats.query import CODE_DIMENSIONS, StatsQuery
from node.store.records_schema import encounter_codes, encounters

CellKey = tuple[str, ...]


@dataclass(frozen=True)
class RawTable:
    dimensions: tuple[str, ...]
    cells: dict[CellKey, int]
    records_considered: int


def _year() -> ColumnElement[int]:
    return cast(extract("year", encounters.c.event_date), Integer)


def _month() -> ColumnElement[int]:
    return cast(extract("month", encounters.c.event_date), Integer)


def _dimension_expr(name: str) -> ColumnElement[Any]:
    if name == "year":
        return _year()
    if name == "month":
        return _year() * 100 + _month()
    if name == "quarter":
        return _year() * 10 + (_month() - 1) // 3 + 1
    if name == "border_post":
        return encounters.c.border_post_regional
    if name in CODE_DIMENSIONS:
        return encounter_codes.c.code
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
        return [int(v) for v in values if v.isdigit()]
    if name == "month":
        return [int(v.replace("-", "")) for v in values if v.replace("-", "").isdigit()]
    if name == "quarter":
        out: list[Any] = []
        for v in values:
            year, _, q = v.upper().replace("-", "").partition("Q")
            if year.isdigit() and q.isdigit():
                out.append(int(year) * 10 + int(q))
        return out
    return sorted(values)


def _source_and_where(query: StatsQuery) -> tuple[FromClause, ColumnElement[bool]]:
    conditions = [
        encounters.c.event_date >= query.period.start,
        encounters.c.event_date < query.period.end,
    ]
    code_dim = query.code_dimension
    source: FromClause = encounters
    if code_dim is not None or any(f in CODE_DIMENSIONS for f in query.filters):
        listed = code_dim or next(f for f in query.filters if f in CODE_DIMENSIONS)
        source = encounters.join(
            encounter_codes,
            and_(
                encounter_codes.c.record_id == encounters.c.record_id,
                encounter_codes.c.codelist == CODE_DIMENSIONS[listed],
            ),
        )
    for name, values in query.filters.items():
        conditions.append(_dimension_expr(name).in_(_filter_values(name, values)))
    return source, and_(*conditions)


def count_cells(engine: Engine, query: StatsQuery) -> RawTable:
    """Run the query's ``GROUP BY`` and return the raw (unprotected) cells."""
    exprs = [_dimension_expr(d).label(f"d{i}") for i, d in enumerate(query.dimensions)]
    source, where = _source_and_where(query)
    if query.measure == "events":
        statement = (
            select(*exprs, func.count().label("n"))
            .select_from(source)
            .where(where)
            .group_by(*[e.name for e in exprs])
        )
    else:
        inner = (
            select(*exprs, encounters.c.person_id)
            .select_from(source)
            .where(where)
            .group_by(*[e.name for e in exprs], encounters.c.person_id)
            .subquery()
        )
        keys = [inner.c[f"d{i}"] for i in range(len(exprs))]
        statement = select(*keys, func.count().label("n")).group_by(*keys)
    considered = select(func.count()).select_from(source).where(where)
    cells: dict[CellKey, int] = {}
    with engine.connect() as conn:
        for row in conn.execute(statement):
            fields = tuple(row)
            key = tuple(_label(d, fields[i]) for i, d in enumerate(query.dimensions))
            cells[key] = int(fields[-1])
        total = int(conn.execute(considered).scalar_one())
    return RawTable(query.dimensions, cells, total)


def cell_members(engine: Engine, query: StatsQuery) -> dict[CellKey, list[str]]:
    """The identifiers counted in each cell (record ids for events, person ids for persons).

    Needed only by cell-key perturbation, which derives the noise from who is in the cell;
    the identifiers stay inside the node.
    """
    exprs = [_dimension_expr(d).label(f"d{i}") for i, d in enumerate(query.dimensions)]
    ident = encounters.c.record_id if query.measure == "events" else encounters.c.person_id
    source, where = _source_and_where(query)
    statement = select(*exprs, ident).select_from(source).where(where)
    if query.measure == "persons":
        statement = statement.distinct()
    members: dict[CellKey, list[str]] = {}
    with engine.connect() as conn:
        for row in conn.execute(statement):
            fields = tuple(row)
            key = tuple(_label(d, fields[i]) for i, d in enumerate(query.dimensions))
            members.setdefault(key, []).append(str(fields[-1]))
    return members
