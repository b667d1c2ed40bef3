"""The XLSX reader: the first sheet that holds the dataset's columns, one row at a time.

Why a module of its own: spreadsheets need ``openpyxl`` (imported only when an XLSX file is
read) and their own rules: which sheet to read, cells that hold formulas or other objects,
values beyond the header. The row contract is :mod:`node.ingest.readers`' (physical row
numbers, cells as the text a CSV would hold).

Invariants:
* The sheet read is the first whose first row holds every column of the dataset, else the
  one named like the dataset (its header is then checked and reported); every other sheet is
  listed in the notes as ignored.
* A cell that is not text, a number or a date refuses its row, as does a value in a column
  without a header; empty rows are skipped. A refused row keeps every cell, in the sheet's
  order (the rejects file shows it as read).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from typing import Any

from node.ingest.readers import (
    RowProblem,
    Source,
    SourceRow,
    cell_text,
    column_layout,
    file_error,
    match_header,
    source_row,
)


class XlsxSource(Source):
    def rows(self) -> Iterator[SourceRow]:
        try:
            openpyxl = importlib.import_module("openpyxl")
        except ImportError:
            raise file_error(
                self.facts.path,
                0,
                "-",
                "reading .xlsx needs the openpyxl package",
                "install openpyxl, or save the sheet as 'CSV UTF-8'",
            ) from None
        try:
            book = openpyxl.load_workbook(self.facts.path, read_only=True, data_only=False)
        except Exception as exc:
            raise file_error(
                self.facts.path,
                0,
                "-",
                f"not a readable .xlsx workbook ({exc})",
                "open and save it again in Excel, or export 'CSV UTF-8'",
            ) from None
        try:
            yield from self._sheet_rows(book)
        finally:
            book.close()

    def _sheet_rows(self, book: Any) -> Iterator[SourceRow]:
        sheet, header = self._choose_sheet(book)
        positions = match_header(self.spec, header, self.facts.path)
        self.extras_present, picks = column_layout(self.spec, positions)
        width = len(header)
        for number, values in enumerate(sheet.iter_rows(min_row=2, values_only=True), start=2):
            texts = [cell_text(v) for v in values]
            if all(t == "" for t in texts):
                continue
            if any(t is None for t in texts):
                yield source_row(
                    number,
                    _as_read(values, texts),
                    RowProblem(
                        "-",
                        "a cell holds a value that is not text, a number or a date",
                        "type the value as text",
                    ),
                )
                continue
            cells = [str(t) for t in texts]
            if any(cells[width:]):
                yield source_row(
                    number,
                    _as_read(values, texts),
                    RowProblem(
                        "-", "a value sits in a column without a header", "move or delete it"
                    ),
                )
                continue
            cells = (cells + [""] * width)[:width]
            yield source_row(number, [cells[p] for p in picks])

    def _choose_sheet(self, book: Any) -> tuple[Any, list[str]]:
        wanted = set(self.spec.columns)
        chosen: tuple[Any, list[str]] | None = None
        named: tuple[Any, list[str]] | None = None
        for sheet in book.worksheets:
            first = next(sheet.iter_rows(min_row=1, max_row=1, values_only=True), ())
            header = [str(v).strip() if v is not None else "" for v in first]
            while header and not header[-1]:
                header.pop()
            if chosen is None and wanted <= set(header):
                chosen = (sheet, header)
            elif named is None and _folded(sheet.title) == _folded(self.spec.name):
                named = (sheet, header)
        pick = chosen or named
        if pick is None:
            raise file_error(
                self.facts.path,
                1,
                "-",
                f"no sheet has the header of {self.spec.name} "
                f"(sheets: {', '.join(book.sheetnames)})",
                f"put the data on a sheet whose first row is: {','.join(self.spec.columns)}",
            )
        self.notes.extend(
            f"sheet {title!r} ignored" for title in book.sheetnames if title != pick[0].title
        )
        return pick


def _as_read(values: Sequence[Any], texts: Sequence[str | None]) -> list[str]:
    """A refused row's cells in the sheet's order, none dropped (trailing empty ones aside);
    a value that is not text shows as Python writes it."""
    cells = [t if t is not None else str(v) for v, t in zip(values, texts, strict=True)]
    while cells and not cells[-1]:
        cells.pop()
    return cells


def _folded(text: str) -> str:
    return "".join(c for c in text.casefold() if c.isalnum())
