"""What an import reports and where its refused rows go.

Why apart from :mod:`node.ingest.pipeline`: these are what callers hold after an import (the
CLI prints an :class:`IngestReport`, follows :class:`Progress`, points the operator at the
rejects file), while the pipeline is how the rows got there.

Invariants:
* A rejects file is written under a ``.partial`` name and appears under its own name only
  when the import ends (:meth:`RejectsFile.publish`); a failed import leaves none.
* Every refused cell that a spreadsheet would run as a formula is written inert, behind an
  apostrophe (:func:`neutralised`), the reasons and the source included.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

from node.ingest import RowError
from node.ingest.cells import formula_problem
from node.records.codelists import CODELISTS_VERSION
from node.records.equivalence import EquivalenceTable
from node.records.icao import NORMALISATION_VERSION
from node.store.records_store import ImportRecord


@dataclass(frozen=True)
class Progress:
    file: str
    rows: int  # rows read so far in this file
    position: int  # bytes read so far (0 when the format does not tell)
    size: int


@dataclass
class FileReport:
    path: str
    format: str
    sha256: str
    bytes: int
    import_id: str
    rows_read: int = 0
    added: int = 0
    unchanged: int = 0
    replaced: int = 0
    rejected: int = 0
    notes: list[str] = field(default_factory=list)

    def import_record(
        self,
        dataset: str,
        started: datetime,
        finished: datetime,
        table: EquivalenceTable | None,
    ) -> ImportRecord:
        """What the store keeps of this file's import (with the rule editions it was read
        under, so a later reader knows which codelists and normalisation made its rows)."""
        return ImportRecord(
            import_id=self.import_id,
            dataset=dataset,
            file_name=self.path,
            file_sha256=self.sha256,
            file_bytes=self.bytes,
            file_format=self.format,
            rows_read=self.rows_read,
            rows_added=self.added,
            rows_unchanged=self.unchanged,
            rows_replaced=self.replaced,
            rows_rejected=self.rejected,
            started_at=started,
            finished_at=finished,
            status="partial" if self.rejected else "complete",
            equivalence_version=f"{table.node}:{table.version}" if table else None,
            codelists_version=CODELISTS_VERSION,
            normalisation_version=NORMALISATION_VERSION,
        )


@dataclass
class IngestReport:
    dataset: str
    dry_run: bool
    skip_invalid: bool
    replace: bool
    files: list[FileReport] = field(default_factory=list)
    committed: bool = False
    rejects_path: str | None = None
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    seconds: float = 0.0

    def total(self, name: str) -> int:
        return sum(int(getattr(f, name)) for f in self.files)

    @property
    def rows_per_second(self) -> float:
        return self.total("rows_read") / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["errors"] = [e.to_dict() for e in self.errors]
        names = ("rows_read", "added", "unchanged", "replaced", "rejected")
        data["totals"] = {n: self.total(n) for n in names}
        data["rows_per_second"] = round(self.rows_per_second, 1)
        return data


class RejectsFile:
    """The rejects file: the dataset's columns, then ``_error``, ``_source`` and ``_raw``.

    A row read whole is written under the dataset's columns, each cell under its own name. A
    misshapen row (a cell too many or too few, bad JSON) cannot be: which cell belongs to which
    column is what is wrong with it. Its dataset columns stay empty and ``_raw`` holds the row
    as read, in the file's order — so no cell is put under another column's name, none is cut
    off, and re-importing the rejects file as it stands refuses the row again.
    """

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.handle: IO[str] = self.partial.open("w", encoding="utf-8", newline="")
        self.writer = csv.writer(self.handle)
        self.writer.writerow([*columns, "_error", "_source", "_raw"])
        self.width = len(columns)

    def write(self, cells: Sequence[str], errors: list[RowError], raw: str | None = None) -> None:
        """Write a refused row: ``cells`` in the dataset's columns (at most as many), or, for a
        misshapen row, ``raw`` (the row as read) and no cells."""
        if raw is not None:
            cells = ()
        assert len(cells) <= self.width, "a row read whole has at most the dataset's columns"
        padded = [neutralised(c) for c in (*cells, *[""] * (self.width - len(cells)))]
        reasons = "; ".join(f"{e.column}: {e.problem} — {e.fix}" for e in errors)
        source = f"{errors[0].file}:{errors[0].row}"  # a file's name is chosen by its sender
        row = [*padded, neutralised(reasons), neutralised(source), neutralised(raw or "")]
        self.writer.writerow(row)

    def publish(self) -> None:
        self.handle.close()
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        self.handle.close()
        self.partial.unlink(missing_ok=True)


def neutralised(cell: str) -> str:
    """A refused cell, made inert for spreadsheets by a leading apostrophe when needed."""
    return "'" + cell if cell and formula_problem(cell) is not None else cell


class RejectSink(Protocol):
    """Where refused rows go: the rejects file, or a part's database (node.ingest.parallel).
    ``raw`` is set for a misshapen row (see :class:`RejectsFile`)."""

    def write(
        self, cells: Sequence[str], errors: list[RowError], raw: str | None = None
    ) -> None: ...
