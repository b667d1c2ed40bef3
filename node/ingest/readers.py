"""Streaming readers for dataset files: CSV, JSON Lines and XLSX.

What every reader shares is here (file inspection, header matching, the :class:`Source` rows
and batches); each format's reader is in its own module: :mod:`node.ingest.csv_source`,
:mod:`node.ingest.jsonl`, :mod:`node.ingest.xlsx`.

Why streaming: a directorate's yearly export has millions of rows; reading it whole would make
memory grow with the file. Every reader here yields one row at a time with its line number,
and keeps nothing but the current row.

Invariants:
* Text files must be UTF-8 (a UTF-8 BOM is skipped). :func:`inspect_file` reads the file once
  for its SHA-256 and proves the encoding before any row is parsed, so an encoding problem is
  reported with its line and a conversion command, never half-way through an import.
* Rows come out as :data:`SourceRow` tuples: cells in the order of the spec's columns followed
  by the accepted extras present, as text exactly as in the file. Problems of a row's
  *shape* (cell count, unclosed quote, bad JSON) travel in ``problem``; problems that make
  the rest of the file unreadable raise :class:`~node.ingest.IngestError` right away.
* A misshapen row cannot be mapped to columns: its cells are every cell it has, in the
  file's order (the JSON line, for JSON Lines), and :meth:`Source.raw_text` gives them back
  as one text for the rejects file. Nothing of such a row is dropped or moved.
* Row numbers are physical: the line where a CSV record starts (header = 1), the JSON line,
  the spreadsheet row.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any, NamedTuple

from node.ingest import IngestError, RowError
from node.records.codelists import suggest_codes
from node.records.datasets import DatasetSpec

#: A JSON line longer than this is refused without being parsed.
MAX_LINE_BYTES = 1 << 20
FORMATS = {".csv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".xlsx": "xlsx"}
#: Optional columns the importer accepts beyond the spec: an MRZ to cross-check the row.
EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {"travel_documents": ("mrz",)}

READ_CHUNK = 1 << 20
_CONVERT = (
    "convert it to UTF-8, e.g. `iconv -f WINDOWS-1252 -t UTF-8 {name} > utf8-{name}`, or in "
    "Excel use Save As › 'CSV UTF-8 (delimitado por comas)'"
)


class RowProblem(NamedTuple):
    column: str
    problem: str
    fix: str


#: ``(row number, cells, problem of the row's shape or None)``; a plain tuple on the hot path.
#: With a problem, the cells are the row as read, in the file's order (module invariants).
SourceRow = tuple[int, list[str], RowProblem | None]


class SourceBatch(NamedTuple):
    """Up to ``size`` well-shaped rows (their numbers and cells) and, in file order, the
    rows read among them whose shape is wrong (never in ``cells``)."""

    numbers: list[int]
    cells: list[list[str]]
    misshapen: list[SourceRow]


@dataclass(frozen=True)
class ByteRange:
    """A part of a CSV file read on its own (:mod:`node.ingest.parallel`): the rows that
    start in ``[start, stop)``. ``start`` 0 means the first row after the header; otherwise
    it is the first byte of a row, which starts on line ``first_line``. ``stop`` None means
    the end of the file."""

    start: int
    stop: int | None
    first_line: int = 2


def source_row(number: int, cells: list[str], problem: RowProblem | None = None) -> SourceRow:
    return (number, cells, problem)


@dataclass(frozen=True)
class FileFacts:
    path: Path
    format: str
    sha256: str
    size: int


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise file_error(
            path,
            0,
            "-",
            "the old binary Excel format (.xls) is not read",
            "open it in Excel and save it as .xlsx or as 'CSV UTF-8'",
        )
    try:
        return FORMATS[suffix]
    except KeyError:
        raise file_error(
            path, 0, "-", f"unknown file type {suffix!r}", "use .csv (UTF-8), .jsonl or .xlsx"
        ) from None


def file_error(path: Path | str, row: int, column: str, problem: str, fix: str) -> IngestError:
    return IngestError(
        [RowError(str(path), row, column, problem, fix)],
        hint="the problem concerns the whole file, so no row of it can be imported",
    )


def inspect_file(path: Path) -> FileFacts:
    """Hash the file and, for text formats, prove it is UTF-8 (see the module invariants)."""
    fmt = detect_format(path)
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    size = lines = 0
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise file_error(path, 0, "-", f"cannot be read: {exc.strerror}", "check the path") from exc
    with handle:
        while chunk := handle.read(READ_CHUNK):
            if size == 0 and fmt != "xlsx":
                _check_start(path, chunk)
            digest.update(chunk)
            if fmt != "xlsx":
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    _encoding_error(path, chunk, exc, lines)
                lines += chunk.count(b"\n")
            size += len(chunk)
    if fmt != "xlsx":
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise file_error(
                path,
                lines + 1,
                "-",
                "the file ends in the middle of a UTF-8 character",
                "the file is truncated; export it again",
            ) from exc
    if size == 0:
        raise file_error(path, 0, "-", "the file is empty", "export the data again")
    return FileFacts(path, fmt, digest.hexdigest(), size)


def _check_start(path: Path, chunk: bytes) -> None:
    if chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise file_error(
            path,
            1,
            "-",
            "the file is UTF-16 (Excel 'Unicode text'), not UTF-8",
            _CONVERT.format(name=path.name).replace("WINDOWS-1252", "UTF-16"),
        )


def _encoding_error(path: Path, chunk: bytes, exc: UnicodeDecodeError, lines: int) -> None:
    line = lines + chunk.count(b"\n", 0, exc.start) + 1
    bad = chunk[exc.start : exc.start + 1].hex().upper()
    try:
        chunk.decode("cp1252")
        guess = " (it looks like Latin-1 / Windows-1252)"
    except UnicodeDecodeError:
        guess = ""
    raise file_error(
        path, line, "-", f"byte 0x{bad} is not UTF-8{guess}", _CONVERT.format(name=path.name)
    ) from None


def match_header(spec: DatasetSpec, header: Sequence[str], path: Path) -> list[int | None]:
    """Positions of :func:`source_columns` in ``header``; raises naming every header problem.

    Extras (:data:`EXTRA_COLUMNS`) may be absent, in which case their position is ``None``.
    """
    extras = EXTRA_COLUMNS.get(spec.name, ())
    problems: list[RowError] = []
    expected = f"the header of {spec.filename} is: {','.join(spec.columns)}"
    seen: set[str] = set()
    for name in header:
        if name in seen:
            problems.append(RowError(str(path), 1, name, "column appears twice", "keep one"))
        seen.add(name)
        if name not in spec.columns and name not in extras:
            close = suggest_codes(name, spec.columns)
            fix = f"did you mean {close[0]!r}? " if close else ""
            problems.append(
                RowError(str(path), 1, name or "(empty)", "unknown column", fix + expected)
            )
    for name in spec.columns:
        if name not in seen:
            problems.append(RowError(str(path), 1, name, "required column is missing", expected))
    if problems:
        raise IngestError(problems, hint="fix the header row; no row was read")
    return [header.index(c) if c in seen else None for c in (*spec.columns, *extras)]


def source_columns(spec: DatasetSpec) -> tuple[str, ...]:
    return (*spec.columns, *EXTRA_COLUMNS.get(spec.name, ()))


@dataclass
class Source:
    """An open dataset file; iterate :meth:`rows` once."""

    facts: FileFacts
    spec: DatasetSpec
    notes: list[str] = field(default_factory=list)
    extras_present: tuple[str, ...] = ()
    handle: IO[bytes] | None = None  # the open file while rows are read, for :attr:`position`
    part: ByteRange | None = None  # CSV only: read the rows of this range of the file alone
    #: Set when a part ended inside a quoted cell: its end was not a row boundary.
    misaligned: bool = False
    delimiter: str = ","  # CSV: the file's, taken from its header line

    def raw_text(self, cells: Sequence[str]) -> str:
        """A misshapen row's cells (in the file's order) as one line of this file, quoted
        where a cell needs it, so the row can be corrected and put back as it was."""
        out = io.StringIO()
        csv.writer(out, delimiter=self.delimiter, lineterminator="").writerow(cells)
        return out.getvalue()

    @property
    def position(self) -> int:
        """Bytes consumed so far (0 when the format does not tell)."""
        handle = self.handle
        return handle.tell() if handle is not None and not handle.closed else 0

    def rows(self) -> Iterator[SourceRow]:  # pragma: no cover - overridden
        raise NotImplementedError

    def batches(self, size: int) -> Iterator[SourceBatch]:
        """The rows of :meth:`rows`, grouped: a batch ends after ``size`` well-shaped rows,
        the last one at the end of the file (readers with a tighter loop override this)."""
        batch = SourceBatch([], [], [])
        for row in self.rows():
            if row[2] is not None:
                batch.misshapen.append(row)
                continue
            batch.numbers.append(row[0])
            batch.cells.append(row[1])
            if len(batch.numbers) >= size:
                yield batch
                batch = SourceBatch([], [], [])
        if batch.numbers or batch.misshapen:
            yield batch

    @property
    def name(self) -> str:
        return str(self.facts.path)


def column_layout(
    spec: DatasetSpec, positions: list[int | None]
) -> tuple[tuple[str, ...], list[int]]:
    """The extras present and, for each source column present, its position in the file row."""
    count = len(spec.columns)
    extras = EXTRA_COLUMNS.get(spec.name, ())
    present = tuple(e for e, p in zip(extras, positions[count:], strict=True) if p is not None)
    picks = [p for p in positions if p is not None]
    return present, picks


def cell_text(value: Any) -> str | None:
    """A JSON or spreadsheet value as the text a CSV would hold; ``None`` if it has none."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    return None


def open_source(path: Path, spec: DatasetSpec) -> Source:
    """Inspect ``path`` (hash, encoding) and return the reader for its format."""
    facts = inspect_file(path)
    if facts.format == "xlsx":
        from node.ingest.xlsx import XlsxSource

        return XlsxSource(facts, spec)
    if facts.format == "jsonl":
        from node.ingest.jsonl import JsonLinesSource

        return JsonLinesSource(facts, spec)
    from node.ingest.csv_source import CsvSource

    return CsvSource(facts, spec)
