"""The CSV reader: a whole file, or one byte range of it read by a helper process.

Why apart from :mod:`node.ingest.readers`: CSV is the format of nearly every directorate's
export and the one read in parallel (:mod:`node.ingest.parallel` cuts a large file into byte
ranges at row boundaries), so its reader carries what the others do not: the delimiter taken
from the header, the range's own line numbering, and the recovery from a range whose end fell
inside a quoted cell.

Invariants (beyond those of :mod:`node.ingest.readers`):
* The delimiter is the one of ``,`` ``;`` and tab that the header line holds most of.
* Read in ranges, the rows, their numbers and their problems are those of the whole file read
  at once, in the same order; a range whose end falls inside a quoted cell sets
  :attr:`~node.ingest.readers.Source.misaligned` and yields nothing of that row, so the import
  reads the file again whole.
* A broken header names the cell that opens the quote never closed; a quote left open in the
  body is a problem of that row (nothing after it can be read: the file may be cut short).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import IO, Any

from node.ingest import IngestError
from node.ingest.readers import (
    RowProblem,
    Source,
    SourceBatch,
    SourceRow,
    column_layout,
    file_error,
    match_header,
    source_row,
)

#: Cells longer than this stop the CSV parser; shorter over-long cells get a per-column error.
MAX_FIELD_READ = 1 << 20


class _Bounded(io.RawIOBase):
    """A binary file seen from ``start`` to ``stop`` (end of file when None)."""

    def __init__(self, handle: IO[bytes], start: int, stop: int | None) -> None:
        super().__init__()
        self._handle = handle
        self._left = None if stop is None else stop - start
        handle.seek(start)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._left is not None:
            view = view[: self._left]
        count = self._handle.readinto(view) or 0  # type: ignore[attr-defined]
        if self._left is not None:
            self._left -= count
        return count

    def tell(self) -> int:
        return self._handle.tell()

    def close(self) -> None:
        self._handle.close()
        super().close()


class CsvSource(Source):
    def _layout(self, header: list[str]) -> tuple[list[int], int, bool]:
        """Match the header to the dataset's columns: where each column present is in a row,
        the row width, and whether rows are already in the dataset's order."""
        positions = match_header(self.spec, header, self.facts.path)
        self.extras_present, picks = column_layout(self.spec, positions)
        width = len(header)
        return picks, width, picks == list(range(width))

    def _open(self) -> tuple[io.TextIOWrapper, Any, list[str]]:
        """The text stream, the parser past the header, and the header's cells; the binary
        stream under them is :attr:`handle` (for :attr:`position`)."""
        csv.field_size_limit(MAX_FIELD_READ)
        part = self.part
        binary: IO[bytes] = self.facts.path.open("rb")
        if part is not None and part.start == 0:
            binary = io.BufferedReader(_Bounded(binary, 0, part.stop))
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        first = text.readline()
        delimiter = max((",", ";", "\t"), key=first.count) if first.strip() else ","
        self.delimiter = delimiter
        try:
            header = next(csv.reader([first], delimiter=delimiter, strict=True), [])
        except csv.Error as exc:
            text.close()
            raise self._header_error(first, delimiter, exc) from None
        if part is not None and part.start > 0:  # the header read, the rows come from the part
            text.close()
            binary = io.BufferedReader(_Bounded(self.facts.path.open("rb"), part.start, part.stop))
            text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        self.handle = binary
        return text, reader, [h.strip() for h in header]

    @property
    def _line_base(self) -> int:
        """Lines before the first row the parser reads (the header's, or the part's)."""
        part = self.part
        return 1 if part is None or part.start == 0 else part.first_line - 1

    def _header_error(self, line: str, delimiter: str, exc: csv.Error) -> IngestError:
        """The header line cannot be parsed: name its cell that opens a quote never closed."""
        column = f"column {_unclosed_quote_column(line, delimiter)}"
        if "unexpected end of data" in str(exc):
            problem = "the header row opens a quote that is never closed"
            fix = "close the quote (or remove it: column names need none) and export again"
        else:
            problem = f"the header row is not valid CSV ({exc})"
            fix = "write the column names separated by the delimiter, without quotes"
        return file_error(self.facts.path, 1, column, problem, fix)

    def rows(self) -> Iterator[SourceRow]:
        if self.part is not None:
            raise ValueError("a part of a file is read with batches()")
        text, reader, header = self._open()
        with text:
            picks, width, identity = self._layout(header)
            while True:
                start = reader.line_num + 2  # the header line was read before the reader
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield from self._csv_error(exc, start)
                    return
                if not cells:
                    continue
                if len(cells) != width:
                    yield source_row(start, cells, _shape(len(cells), width))
                    continue
                yield (start, cells if identity else [cells[p] for p in picks], None)

    def batches(self, size: int) -> Iterator[SourceBatch]:
        """:meth:`rows` in batches, with one loop over the parser (the per-row path of an
        import of millions of rows): same rows, same numbers, same problems, same order."""
        text, reader, header = self._open()
        with text:
            picks, width, identity = self._layout(header)
            batch = SourceBatch([], [], [])
            numbers, rows = batch.numbers, batch.cells
            base = self._line_base
            consumed = 0  # lines the parser has read (after ``base`` lines before it)
            try:
                for cells in reader:
                    start, consumed = consumed + base + 1, reader.line_num
                    if len(cells) != width:
                        if cells:
                            batch.misshapen.append(
                                source_row(start, cells, _shape(len(cells), width))
                            )
                        continue
                    rows.append(cells if identity else [cells[p] for p in picks])
                    numbers.append(start)
                    if len(numbers) >= size:
                        yield batch
                        batch = SourceBatch([], [], [])
                        numbers, rows = batch.numbers, batch.cells
            except csv.Error as exc:
                if self.part is not None and self.part.stop is not None and _in_quote(exc):
                    self.misaligned = True  # the part's end fell inside a quoted cell
                else:
                    batch.misshapen.extend(self._csv_error(exc, consumed + base + 1))
            if numbers or batch.misshapen:
                yield batch

    def _csv_error(self, exc: csv.Error, start: int) -> Iterator[SourceRow]:
        message = str(exc)
        if _in_quote(exc):
            yield source_row(
                start,
                [],
                RowProblem(
                    "-",
                    "a quoted cell is never closed",
                    "the file may be cut short; close the quote or export the file again",
                ),
            )
            return
        if "field larger than field limit" in message:
            problem, fix = (
                f"a cell is longer than {MAX_FIELD_READ} characters",
                "the file is not a dataset export, or a quote is never closed",
            )
        else:
            problem, fix = (
                f"the CSV structure is broken ({message})",
                "quote cells that contain the delimiter, and double quotes inside "
                'quoted cells ("")',
            )
        raise file_error(
            self.facts.path, start, "-", problem, fix + "; the rows after this one cannot be read"
        )


def _in_quote(exc: csv.Error) -> bool:
    """The parser met the end of its input inside a quoted cell."""
    message = str(exc)
    return "unexpected end of data" in message or "EOF" in message


def _unclosed_quote_column(line: str, delimiter: str) -> int:
    """1-based number of the cell of ``line`` in which a quoted cell is left open (the last
    cell when none is: the error is then elsewhere in the line)."""
    column, at_start, quoted, opened = 1, True, False, 0
    i = 0
    while i < len(line):
        char = line[i]
        if quoted:
            if char == '"' and line[i + 1 : i + 2] == '"':
                i += 2
                continue
            quoted = char != '"'
        elif char == delimiter:
            column, at_start = column + 1, True
            i += 1
            continue
        elif char == '"' and at_start:
            quoted, opened = True, column
        at_start = False
        i += 1
    return opened if quoted else column


def _shape(count: int, width: int) -> RowProblem:
    return RowProblem(
        "-",
        f"the row has {count} cells; the header has {width}",
        "the file may be cut short, or a cell holds an unquoted delimiter or quote",
    )
