"""What a protected CRM matrix costs: ``answer()`` against a naive ``GROUP BY`` of the same cells.

Why: the Secretariat pulls the quarterly matrices M01-M08 from every member, on a schedule and
after emergency updates, and an analyst asks for them interactively. The targets of the issue
are at most 1 s per matrix at 1,000,000 encounters on SQLite and on PostgreSQL, and at most 3 s
at 10,000,000 on PostgreSQL. In one run, on the same database, for each matrix and one quarter:

* ``answer``  :func:`node.stats.answer.answer` with the default disclosure profile (threshold
  rule, secondary suppression) and margins, as the Secretariat asks for them: the ``GROUP BY``
  of :func:`node.stats.compute.count_cells`, protection, and the data as-of time: what a peer
  waits for (``--no-margins``: the interior cells only, the default of ``AggregateRequest``);
* ``count``   :func:`~node.stats.compute.count_cells` alone;
* ``naive``   the same cells written by hand as one SQL statement over the raw table
  (``COUNT(DISTINCT person_id)`` for persons, ``COUNT(*)`` for events), with the same period,
  filters and labels, on a connection with the node's default settings (on SQLite, without
  the memory map that ``count_cells`` asks for); the run stops if its cells differ from
  ``count``'s.

The data are ``node.records.generate`` files for PAN (``--rows`` encounters, ``--seed``),
imported with ``node.ingest`` and the border posts of ``docs/examples/equivalence-pan.yaml``.
Files and databases are cached under ``--cache`` (default ``$TMPDIR/enlace-bench-stats``):
the SQLite database as a file, the PostgreSQL one as a database ``bench_stats_<rows>_<seed>``
on the server of ``--postgres-url`` (default ``$ENLACE_TEST_POSTGRES_URL``, e.g. from
``scripts/start_postgres.sh``), vacuumed and analysed after the import as autovacuum would.

    python bench/bench_stats.py [--rows N] [--backend sqlite|postgres|both] [--period 2023Q3]
                                [--repeat R] [--budget S] [--json] [--cache DIR]

Figures only: nothing is asserted about time; a mismatch between ``naive`` and ``count``
cells stops the run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _util import REPO_ROOT, machine, print_json
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Engine

from enlace.v1 import stats_pb2
from node.records.equivalence import EquivalenceTable, load_equivalence
from node.runtime import NodeRuntime
from node.stats.answer import answer
from node.stats.compute import count_cells
from node.stats.matrices import MATRICES, MatrixDefinition
from node.stats.query import CODE_DIMENSIONS, StatsQuery
from node.stats.service import query_from_request
from node.store import Store, open_store

TARGETS = {"seconds_per_matrix_1m": 1.0, "seconds_per_matrix_10m_postgres": 3.0}
EQUIVALENCE_EXAMPLE = REPO_ROOT / "docs" / "examples" / "equivalence-pan.yaml"
NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)


def log(message: str) -> None:
    sys.stderr.write(f"bench_stats: {message}\n")
    sys.stderr.flush()


@dataclass
class _Runtime:
    """The part of a :class:`NodeRuntime` that ``answer`` uses with the default profile."""

    store: Store


def border_posts_only() -> EquivalenceTable:
    """PAN's border posts from the example table; codes stay regional (the generator's)."""
    example = load_equivalence(EQUIVALENCE_EXAMPLE)
    return EquivalenceTable(
        node=example.node, version="bench", mappings={}, border_posts=example.border_posts
    )


def ensure_files(cache: Path, rows: int, seed: int) -> Path:
    """Generated files for ``rows`` encounters, made once (a marker names a finished set)."""
    from node.records.generate import generate

    folder = cache / f"data-{rows}-{seed}"
    marker = folder / ".complete"
    if not marker.exists():
        log(f"generating {rows:,} encounters for PAN into {folder}")
        started = time.perf_counter()
        generate("PAN", rows, seed, folder)
        marker.write_text("ok\n", encoding="utf-8")
        log(f"generated in {time.perf_counter() - started:.0f} s")
    return folder / "encounters.csv"


def _import(url: str, source: Path, rows: int) -> None:
    """Import ``source`` unless the store already holds it (an import is all-or-nothing)."""
    from node.ingest.pipeline import ingest

    store = open_store(url)
    try:
        if store.records.counts()["encounters"] == rows:
            return
        log(f"importing {source} into {make_url(url).render_as_string(hide_password=True)}")
        started = time.perf_counter()
        report = ingest(store, "encounters", [source], now=NOW, equivalence=border_posts_only())
        seconds = time.perf_counter() - started
        log(f"imported {report.total('added'):,} rows in {seconds:.0f} s")
    finally:
        store.close()


def ensure_sqlite(cache: Path, rows: int, seed: int, source: Path) -> str:
    database = cache / f"pan-{rows}-{seed}.db"
    partial = database.with_name(database.name + ".partial")
    if not database.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{partial}{suffix}").unlink(missing_ok=True)
        _import(f"sqlite+pysqlite:///{partial}", source, rows)
        partial.rename(database)  # closing the store checkpointed and removed the WAL
    return f"sqlite+pysqlite:///{database}"


def ensure_postgres(server: str, rows: int, seed: int, source: Path) -> str:
    name = f"bench_stats_{rows}_{seed}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if found is None:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    _import(url, source, rows)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:  # what autovacuum does after a bulk insert
            conn.exec_driver_sql("VACUUM (ANALYZE) encounters")
    finally:
        engine.dispose()
    return url


def _time_expr(name: str, dialect: str) -> str:
    if dialect == "sqlite":
        year = "CAST(strftime('%Y', e.event_date) AS INTEGER)"
        month = "CAST(strftime('%m', e.event_date) AS INTEGER)"
    else:
        year = "CAST(EXTRACT(YEAR FROM e.event_date) AS INTEGER)"
        month = "CAST(EXTRACT(MONTH FROM e.event_date) AS INTEGER)"
    return {
        "year": year,
        "month": f"{year} * 100 + {month}",
        "quarter": f"{year} * 10 + ({month} + 2) / 3",
    }[name]


def naive_sql(definition: MatrixDefinition, dialect: str) -> tuple[str, dict[str, Any]]:
    """The matrix as one hand-written ``GROUP BY`` over the raw tables."""
    params: dict[str, Any] = {}
    select: list[str] = []
    joins = ""
    for name in definition.dimensions:
        if name in ("year", "month", "quarter"):
            select.append(_time_expr(name, dialect))
        elif name == "border_post":
            select.append("e.border_post_regional")
        elif name in CODE_DIMENSIONS:
            select.append("c.code")
            joins = (
                " JOIN encounter_codes AS c ON c.record_id = e.record_id"
                f" AND c.codelist = '{CODE_DIMENSIONS[name]}'"
            )
        else:
            select.append(f"e.{name}")
    where = ["e.event_date >= :start", "e.event_date < :end"]
    for name, values in definition.filters.items():
        marks = []
        for i, value in enumerate(values):
            params[f"{name}{i}"] = value
            marks.append(f":{name}{i}")
        where.append(f"e.{name} IN ({', '.join(marks)})")
    measure = "COUNT(DISTINCT e.person_id)" if definition.measure == "persons" else "COUNT(*)"
    groups = ", ".join(str(i + 1) for i in range(len(select)))
    sql = (
        f"SELECT {', '.join(select)}, {measure} FROM encounters AS e{joins}"
        f" WHERE {' AND '.join(where)} GROUP BY {groups}"
    )
    return sql, params


def _label(name: str, value: Any) -> str:
    if value is None:
        return "_Z"
    if name == "quarter":
        return f"{int(value) // 10}-Q{int(value) % 10}"
    if name == "month":
        return f"{int(value) // 100}-{int(value) % 100:02d}"
    return str(value)


def run_naive(
    engine: Engine, definition: MatrixDefinition, query: StatsQuery
) -> dict[tuple[str, ...], int]:
    sql, params = naive_sql(definition, engine.dialect.name)
    start: Any = query.period.start
    end: Any = query.period.end
    if engine.dialect.name == "sqlite":  # dates are ISO text there
        start, end = start.isoformat(), end.isoformat()
    with engine.connect() as conn:
        rows = conn.execute(text(sql), {**params, "start": start, "end": end}).all()
    dims = definition.dimensions
    return {tuple(_label(d, r[i]) for i, d in enumerate(dims)): int(r[-1]) for r in rows}


def timed(call: Callable[[], Any], repeat: int, budget: float) -> tuple[float, Any]:
    """Median seconds of up to ``repeat`` calls within ``budget`` seconds (one call at least),
    after one warm-up call; and the last result."""
    result = call()
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < repeat and (not times or time.perf_counter() < deadline):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def run_backend(
    url: str, period: str, margins: bool, repeat: int, budget: float
) -> list[dict[str, Any]]:
    from node.store.database import make_engine

    store = open_store(url)
    plain = make_engine(url)  # the naive statement's own connections
    runtime = cast(NodeRuntime, _Runtime(store))
    results: list[dict[str, Any]] = []
    try:
        for matrix_id, definition in MATRICES.items():
            request = stats_pb2.AggregateRequest(matrix=matrix_id, period=period, margins=margins)
            query = query_from_request(request)
            naive = partial(run_naive, plain, definition, query)
            naive_s, naive_cells = timed(naive, repeat, budget)
            count_s, raw = timed(partial(count_cells, store.engine, query), repeat, budget)
            if raw.cells != naive_cells:
                raise SystemExit(f"{matrix_id}: count_cells and the naive GROUP BY disagree")
            protected = partial(answer, runtime, query, None, now=NOW)
            answer_s, answered = timed(protected, repeat, budget)
            results.append(
                {
                    "matrix": matrix_id,
                    "measure": definition.measure,
                    "dimensions": list(definition.dimensions),
                    "records_considered": raw.records_considered,
                    "cells": len(answered.cells),
                    "suppressed": answered.suppressed_primary + answered.suppressed_secondary,
                    "naive_s": round(naive_s, 4),
                    "count_s": round(count_s, 4),
                    "answer_s": round(answer_s, 4),
                    "count_ratio": round(count_s / naive_s, 2),
                    "answer_ratio": round(answer_s / naive_s, 2),
                }
            )
            log(f"{matrix_id}: answer {answer_s:.3f} s, naive {naive_s:.3f} s")
    finally:
        plain.dispose()
        store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--period", default="2023Q3", help="the quarter of every matrix")
    parser.add_argument("--margins", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per figure (median)")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds per figure at most")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "enlace-bench-stats"
    )
    parser.add_argument("--postgres-url", default=os.environ.get("ENLACE_TEST_POSTGRES_URL", ""))
    args = parser.parse_args()
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    if "postgres" in backends and not args.postgres_url:
        parser.error('PostgreSQL needs --postgres-url or eval "$(scripts/start_postgres.sh)"')
    args.cache.mkdir(parents=True, exist_ok=True)
    source = ensure_files(args.cache, args.rows, args.seed)
    report: dict[str, Any] = {
        "benchmark": "stats",
        "rows": args.rows,
        "period": args.period,
        "margins": args.margins,
        "repeat": args.repeat,
        "targets": TARGETS,
        "machine": machine(),
        "backends": {},
    }
    for backend in backends:
        if backend == "sqlite":
            url = ensure_sqlite(args.cache, args.rows, args.seed, source)
        else:
            url = ensure_postgres(args.postgres_url, args.rows, args.seed, source)
        report["backends"][backend] = run_backend(
            url, args.period, args.margins, args.repeat, args.budget
        )
    if args.json:
        print_json(report)
        return
    print(f"{args.rows:,} encounters (PAN, seed {args.seed}), period {args.period}, "
          f"{'with' if args.margins else 'without'} margins, median of {args.repeat}")  # fmt: skip
    for backend, rows in report["backends"].items():
        print(f"\n{backend}")
        print(f"  {'matrix':6} {'records':>9} {'cells':>6} {'answer s':>9} {'count s':>8} "
              f"{'naive s':>8} {'answer/naive':>13}")  # fmt: skip
        for r in rows:
            print(f"  {r['matrix']:6} {r['records_considered']:>9,} {r['cells']:>6} "
                  f"{r['answer_s']:>9.3f} {r['count_s']:>8.3f} {r['naive_s']:>8.3f} "
                  f"{r['answer_ratio']:>12.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
