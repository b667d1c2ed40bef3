"""Validated, atomic imports of the local datasets (``enlace ingest``) and what GetInfo says
about them.

Why: DESIGN §2 non-negotiable 4 — bad input never corrupts or loses data. An import is one
database transaction: every row of every file is validated (types, code lists through the
node's equivalence table, dates, ICAO numbers and MRZ check digits, spreadsheet formulas,
sizes, duplicates), and any problem rolls the whole import back, unless the operator asked for
``--skip-invalid``, in which case every refused row lands in a rejects file with its reason.

Layout: :mod:`node.ingest.readers` streams CSV and JSON Lines (:mod:`node.ingest.xlsx`, XLSX);
:mod:`node.ingest.cells` compiles the rule of each column, :mod:`node.ingest.columns` the
whole-column checks of plain text; :mod:`node.ingest.batch` converts a batch of rows column by
column; :mod:`node.ingest.pipeline` runs the transaction, idempotency and rejects (its
:func:`~node.ingest.pipeline.ingest` is the entry point). This module holds the error types and
the GetInfo provider. ``docs/ingest.md`` is the operator's description.

Invariants:
* Every problem is a :class:`RowError`, printed exactly ``file:row:column: problem — fix``;
  ``column`` is ``-`` when the problem is not one cell's (encoding, a broken row).
* :class:`IngestError` means *nothing was written* (or, for a dry run, would be).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.errors import InvalidArgumentError
from node.records.codelists import CODELISTS_VERSION
from node.records.equivalence import EquivalenceTable, load_equivalence

if TYPE_CHECKING:
    from node.home import NodeHome
    from node.ingest.report import IngestReport
    from node.runtime import NodeRuntime

#: The node's equivalence table, looked for in the node home when ``--equivalence`` is not given.
EQUIVALENCE_FILENAME = "equivalence.yaml"


@dataclass(frozen=True)
class RowError:
    """One problem in an input file, located well enough for the operator to fix it."""

    file: str
    row: int
    column: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row}:{self.column}: {self.problem} — {self.fix}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class IngestError(InvalidArgumentError):
    """An import refused as a whole; nothing was written. ``errors`` holds the first problems
    (at most :data:`node.ingest.pipeline.MAX_KEPT_ERRORS`), ``error_count`` all of them."""

    def __init__(
        self,
        errors: list[RowError],
        *,
        error_count: int | None = None,
        report: IngestReport | None = None,
        hint: str = "",
    ) -> None:
        count = len(errors) if error_count is None else error_count
        first = str(errors[0]) if errors else "no detail"
        super().__init__(
            f"{count} problem{'s' if count != 1 else ''}; nothing was imported (first: {first})",
            field="ingest",
            hint=hint
            or "fix the rows named, or re-run with --skip-invalid --rejects FILE to import "
            "the valid rows and set the others aside",
        )
        self.errors = errors
        self.error_count = count
        self.report = report


def node_equivalence(home: NodeHome) -> EquivalenceTable | None:
    """The node's equivalence table (``HOME/equivalence.yaml``), or ``None`` when it has none."""
    path = home.root / EQUIVALENCE_FILENAME
    return load_equivalence(path) if path.exists() else None


class _InfoCache:
    """GetInfo is called often; counts are recomputed only after an import committed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.marker: object = None
        self.summary: list[tuple[str, str]] = []
        self.as_of = ""
        self.table_key: object = None
        self.table_json = ""


def _equivalence_json(path: Path, cache: _InfoCache) -> str:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return ""
    key = (stat.st_mtime_ns, stat.st_size)
    if cache.table_key != key:
        table = load_equivalence(path)
        cache.table_json = json.dumps(table.to_public_dict(), sort_keys=True, ensure_ascii=False)
        cache.table_key = key
    return cache.table_json


def info_provider(runtime: NodeRuntime) -> Callable[[Any], None]:
    """Fill a ``GetInfoResponse`` with the datasets offered (those holding records), the data
    as-of time, the published equivalence table and the code-list edition."""
    from crypto.envelope import format_time

    cache = _InfoCache()
    store = runtime.store
    table_path = runtime.home.root / EQUIVALENCE_FILENAME

    def fill(response: Any) -> None:
        with cache.lock:
            marker = store.records.import_marker()
            if marker != cache.marker:
                cache.summary = [
                    (s.dataset, format_time(s.as_of) if s.as_of else "")
                    for s in store.records.summary()
                    if s.records
                ]
                cache.as_of = format_time(marker[1]) if marker[1] else ""
                cache.marker = marker
            for name, as_of in cache.summary:  # no counts: see DatasetInfo in node.proto
                response.datasets.add(name=name, as_of=as_of)
            response.data_as_of = cache.as_of
            response.equivalence_table_json = _equivalence_json(table_path, cache)
            response.codelists_version = CODELISTS_VERSION

    return fill
