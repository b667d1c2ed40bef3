"""Column-wise conversion of a batch of rows into table rows.

Why column-wise: a Python loop over every cell of a million-row file costs more than the
database insert. Converting a batch one *column* at a time lets the common case run at the
speed of ``map`` over a cache (most values — codes, dates, names — repeat), and leaves the
Python-level loop to the few cells the cache has not seen or that are wrong.

Invariants:
* :meth:`RowPlan.convert` gives, for the rows without problems, exactly the table rows that
  converting each cell on its own would give, in the input order; every problem of the other
  rows is reported (not only the first), keyed by the row's index in the batch.
* The table row layout is :func:`columns_for`: ``natural_key`` (composite keys only), the
  database columns of each spec field in spec order, then :data:`PROVENANCE`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from itertools import repeat
from typing import Any

from crypto.errors import NormalisationError
from node.ingest.cells import (
    FORMULA_START,
    CellError,
    ColumnRule,
    compile_field,
    field_columns,
    formula_problem,
)
from node.records.datasets import DatasetSpec
from node.records.equivalence import EquivalenceTable
from node.records.icao import nationality_code, parse_mrz
from node.store.records_schema import COMPOSITE_KEY_DATASETS
from node.store.records_writer import RecordsWriter

PROVENANCE = ("content_hash", "import_id", "source_row", "imported_at")

Problem = tuple[str, str, str]  # column, problem, fix


def columns_for(spec: DatasetSpec) -> tuple[str, ...]:
    head = ("natural_key",) if spec.name in COMPOSITE_KEY_DATASETS else ()
    body = tuple(c for f in spec.fields for c in field_columns(f))
    return (*head, *body, *PROVENANCE)


def content_hash(cells: Sequence[str]) -> str:
    """The fingerprint of a row as read: equal cells, equal hash; compared on re-import."""
    return hashlib.sha256("\x1f".join(cells).encode("utf-8")).hexdigest()


_JOIN_CELLS = "\x1f".join
_HEXDIGEST = type(hashlib.sha256()).hexdigest


def content_hashes(rows: Sequence[Sequence[str]]) -> list[str]:
    """:func:`content_hash` of every row, as a chain of ``map`` over C functions (no Python
    frame per row: at a million rows the per-call overhead is most of the cost)."""
    encoded = map(str.encode, map(_JOIN_CELLS, rows))
    return list(map(_HEXDIGEST, map(hashlib.sha256, encoded)))


class RowPlan:
    """How one dataset's rows become table rows (compiled once per import)."""

    def __init__(
        self,
        spec: DatasetSpec,
        writer: RecordsWriter,
        table: EquivalenceTable | None,
        now: datetime,
    ) -> None:
        self.spec = spec
        self.width = len(spec.columns)
        self.composite = spec.name in COMPOSITE_KEY_DATASETS
        self.rules: list[ColumnRule] = [
            compile_field(f, table, now, writer.date_value) for f in spec.fields
        ]
        self.columns = columns_for(spec)
        body = self.columns[(1 if self.composite else 0) : -len(PROVENANCE)]
        self.at = {c: i for i, c in enumerate(body)}
        self.key_positions = [self.at[field_columns(spec.field(k))[0]] for k in spec.key_fields]
        self.reference_year = now.year
        self.mrz = spec.name == "travel_documents"

    @property
    def key_column(self) -> str:
        """The column an error about a row's key names ("-" for a key of several fields)."""
        return self.spec.key_fields[0] if not self.composite else "-"

    def describe_key(self, key: str) -> str:
        """A key as an operator reads it in an error: the field and its value."""
        if self.composite:
            return f"the key ({', '.join(self.spec.key_fields)}) = {key}"
        return f"{self.spec.key_fields[0]} {key!r}"

    def convert(
        self, cells: list[list[str]], import_id: str, numbers: list[int], imported_at: Any
    ) -> tuple[list[tuple[Any, ...]], list[str], dict[int, list[Problem]]]:
        """Table rows and natural keys of the valid rows, and the problems of the others."""
        problems: dict[int, list[Problem]] = {}
        source = list(zip(*cells, strict=True))
        out: list[list[Any]] = []
        for rule, column in zip(self.rules, source, strict=False):  # extras (mrz) follow
            out.extend(_convert_column(rule, column, problems))
        if self.mrz and len(source) > self.width:
            self._check_mrz(source[self.width], out, cells, problems)
        spec_cells = cells if len(source) == self.width else [c[: self.width] for c in cells]
        hashes = content_hashes(spec_cells)
        if self.composite:
            parts = zip(*(out[p] for p in self.key_positions), strict=True)
            keys = [self._natural_key(p) for p in parts]
            head: list[list[Any]] = [keys]
        else:
            keys = out[self.key_positions[0]]
            head = []
        rows = list(zip(*head, *out, hashes, repeat(import_id), numbers, repeat(imported_at)))
        if problems:
            keep = [i for i in range(len(rows)) if i not in problems]
            rows = [rows[i] for i in keep]
            keys = [keys[i] for i in keep]
        return rows, keys, problems

    @staticmethod
    def _natural_key(parts: tuple[Any, ...]) -> str:
        values = ["" if p is None else p for p in parts]
        return json.dumps(values, ensure_ascii=False, separators=(",", ":"))

    def _check_mrz(
        self,
        mrz_column: tuple[str, ...],
        out: list[list[Any]],
        cells: list[list[str]],
        problems: dict[int, list[Problem]],
    ) -> None:
        expiry_at = self.spec.columns.index("expiry_date")
        for index, mrz in enumerate(mrz_column):
            if not mrz or index in problems:
                continue
            values = {c: out[i][index] for c, i in self.at.items()}
            mismatch = self.check_mrz(mrz, values, cells[index][expiry_at])
            if mismatch is not None:
                problems[index] = [("mrz", *mismatch)]

    def check_mrz(self, mrz: str, values: dict[str, Any], expiry: str) -> tuple[str, str] | None:
        """Cross-check a travel document row with its MRZ; (problem, fix) when they differ."""
        if mrz[0] in FORMULA_START and (problem := formula_problem(mrz)) is not None:
            return problem.problem, problem.fix
        try:
            record = parse_mrz(mrz, reference_year=self.reference_year)
            nationality = nationality_code(record.nationality)
        except NormalisationError as exc:
            return str(exc), "re-read the MRZ from the document; check every character"
        checks = (
            ("document number", record.document_number, values["document_number_norm"]),
            ("issuing state", record.issuing_state, values["issuing_state"]),
            ("nationality", nationality, values["nationality"]),
            ("birth date", record.birth_date.iso(), values["birth_date"]),
            ("expiry date", record.expiry_date.iso() if record.expiry_date else "", expiry),
        )
        for label, in_mrz, in_row in checks:
            if in_mrz != (in_row or ""):
                return (
                    f"the MRZ {label} {in_mrz!r} differs from the row's {in_row!r}",
                    "correct the row or the MRZ so they describe the same document",
                )
        sex = values["sex"]
        if record.sex != sex and not (record.sex == "X" and sex == "U"):
            return f"the MRZ sex {record.sex!r} differs from the row's {sex!r}", "correct one"
        return None


def _convert_column(
    rule: ColumnRule, column: tuple[str, ...], problems: dict[int, list[Problem]]
) -> list[list[Any]]:
    """One file column of a batch through its rule: its database columns. A bad cell
    becomes empty values and a problem of its row."""
    if rule.fast is not None:
        whole = rule.fast(column)
        if whole is not None:
            return whole
    convert = rule.convert
    if rule.repeats:
        try:  # every value seen before: one lookup per cell and database column
            return [list(map(seen.__getitem__, column)) for seen in rule.columns]
        except KeyError:
            pass
        results: list[Any] = list(map(rule.cache.get, column))
        misses = [i for i, r in enumerate(results) if r is None]
    else:
        try:
            results = list(map(convert, column))
            misses = []
        except CellError:
            results = [None] * len(column)
            misses = list(range(len(column)))
    empty = (None,) * rule.width
    for index in misses:
        try:
            results[index] = convert(column[index])
        except CellError as exc:
            problems.setdefault(index, []).append((rule.name, exc.problem, exc.fix))
            results[index] = empty
    if rule.width == 1:
        return [[r[0] for r in results]]
    return [[r[j] for r in results] for j in range(rule.width)]
