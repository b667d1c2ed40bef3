"""The CSV file of ``enlace match batch``: read and validated whole before anything is asked.

Why: every element a batch sends is metered against the querier's quota at each peer, so a
file is checked completely first, and every problem of every row is reported at once, in the
importer's format ``file:row:column: problem — fix`` (:class:`node.ingest.RowError`). The
caller then either refuses the file (:class:`BatchFileError`, nothing asked) or, with
``--skip-invalid``, asks the valid rows and writes the refused ones with their reasons to a
rejects file (:class:`node.ingest.report.RejectsFile`, the importer's).

Columns (header line first, UTF-8, comma-separated, each column at most once, in any order):
``id``, ``document_number``, ``issuing_state``, ``surname``, ``given_names``, ``birth_date``.
A row asks about a document (``document_number`` and ``issuing_state``), a person
(``surname`` and ``birth_date``, ``given_names`` optional) or both.

Invariants:
* Problems of the file itself (cannot be read, not UTF-8, header, broken quoting) raise
  :class:`~node.errors.InvalidArgumentError` naming the file: no row can be trusted then.
* A row is valid only if every one of its cells is; a valid row gives exactly the queries
  :func:`node.matching.sources.document_query` / ``person_query`` build from it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from crypto.errors import NormalisationError
from node.errors import EnlaceError, InvalidArgumentError
from node.ingest import RowError
from node.ingest.cells import formula_problem
from node.ingest.report import RejectsFile
from node.matching.sources import Query, document_query, person_query
from node.records.dates import parse_partial_date
from node.records.icao import normalise_country_code, normalise_document_number
from node.records.names import normalise_name

BATCH_COLUMNS: tuple[str, ...] = (
    "id",
    "document_number",
    "issuing_state",
    "surname",
    "given_names",
    "birth_date",
)
_COLUMNS_HINT = "columns: " + ", ".join(BATCH_COLUMNS)
_Problem = Callable[[str, str, str], None]  # (column, problem, fix)
_Check = Callable[[str], object]
_DATE_FORMS = "YYYY-MM-DD, YYYY-MM or YYYY, with 00 for unknown parts"
_CSV_LIMIT = 1 << 20  # one cell; csv's default limit (128 KiB) would end the file in a csv.Error


@dataclass(frozen=True)
class RefusedRow:
    """A row that is not asked: its cells by column (:data:`BATCH_COLUMNS` order, for the
    rejects file), or ``raw`` (the row as read) when it could not be split into columns."""

    cells: tuple[str, ...]
    errors: tuple[RowError, ...]
    raw: str | None = None


@dataclass
class BatchFile:
    """A batch file read whole: the queries of its valid rows, and its refused rows."""

    path: Path
    rows: int = 0
    queries: list[Query] = field(default_factory=list)
    refused: list[RefusedRow] = field(default_factory=list)

    @property
    def errors(self) -> list[RowError]:
        return [e for r in self.refused for e in r.errors]


class BatchFileError(InvalidArgumentError):
    """A batch file refused as a whole because rows are invalid; nothing was asked."""

    def __init__(self, batch: BatchFile) -> None:
        errors = batch.errors
        count = len(errors)
        super().__init__(
            f"{count} problem{'s' if count != 1 else ''} in {len(batch.refused)} of "
            f"{batch.rows} row(s) of {batch.path}; nothing was asked of any peer "
            f"(first: {errors[0]})",
            hint="fix the rows named, or re-run with --skip-invalid --rejects FILE to ask the "
            "valid rows and set the others aside",
        )
        self.batch = batch
        self.errors = errors
        self.error_count = count


def read_batch_file(path: Path) -> BatchFile:
    """Read and validate every row of ``path`` (see the module docstring)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(
            f"cannot read {path}: {exc.strerror or exc}",
            hint="give the path of a CSV file of queries (" + _COLUMNS_HINT + ")",
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidArgumentError(
            f"{path}:{line}: byte 0x{data[exc.start]:02x} is not UTF-8",
            hint="save the file as CSV UTF-8",
        ) from None
    batch = BatchFile(path)
    rows = _records(path, text)
    header = next(rows, None)
    if header is None:
        raise InvalidArgumentError(f"{path} is empty", hint=_COLUMNS_HINT)
    columns = _check_header(path, header[1])
    seen_ids: dict[str, int] = {}
    for line, cells in rows:
        batch.rows += 1
        if len(cells) != len(columns):
            problem = RowError(
                str(path), line, "-",
                f"the row has {len(cells)} cell(s), the header {len(columns)}",
                "quote cells that contain a comma, and give every row the header's columns",
            )  # fmt: skip
            raw = io.StringIO()
            csv.writer(raw, lineterminator="").writerow(cells)
            batch.refused.append(RefusedRow((), (problem,), raw.getvalue()))
            continue
        row = {c: v.strip() for c, v in zip(columns, cells, strict=True)}
        queries, errors = _row(path, line, row, seen_ids)
        if errors:
            ordered = tuple(row.get(c, "") for c in BATCH_COLUMNS)
            batch.refused.append(RefusedRow(ordered, tuple(errors)))
        else:
            batch.queries.extend(queries)
    if not batch.rows:
        raise InvalidArgumentError(f"{path} holds no queries", hint="add rows under the header")
    return batch


def _records(path: Path, text: str) -> Iterator[tuple[int, list[str]]]:
    """(physical line where the record starts, cells) of every non-blank record."""
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_LIMIT))
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        for cells in reader:
            if cells and any(c.strip() for c in cells):
                yield start, cells
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InvalidArgumentError(
            f"{path}:{start}: the CSV is broken from here ({exc})",
            hint='close the quote (a quote inside a quoted cell is written twice: "")',
        ) from None


def _check_header(path: Path, header: list[str]) -> list[str]:
    columns = [c.strip().lower() for c in header]
    unknown = [c for c in columns if c not in BATCH_COLUMNS]
    if unknown:
        raise InvalidArgumentError(
            f"{path}:1: unknown column(s) {', '.join(repr(c) for c in unknown)}",
            hint=_COLUMNS_HINT + " (comma-separated)",
        )
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise InvalidArgumentError(
            f"{path}:1: column(s) {', '.join(twice)} given more than once",
            hint="keep one of each",
        )
    has = set(columns)
    if not ({"document_number", "issuing_state"} <= has or {"surname", "birth_date"} <= has):
        raise InvalidArgumentError(
            f"{path}:1: the header has neither document_number and issuing_state nor surname "
            "and birth_date",
            hint=_COLUMNS_HINT,
        )
    return columns


def _row(
    path: Path, line: int, row: dict[str, str], seen_ids: dict[str, int]
) -> tuple[list[Query], list[RowError]]:
    errors: list[RowError] = []

    def problem(column: str, text: str, fix: str) -> None:
        errors.append(RowError(str(path), line, column, text, fix))

    label = row.get("id", "")
    if label:
        formula = formula_problem(label)
        if formula is not None:
            problem("id", formula.problem, formula.fix)
        elif label in seen_ids:
            problem("id", f"id {label!r} repeats row {seen_ids[label]}", "give each row its own id")
        else:
            seen_ids[label] = line
    number, state = row.get("document_number", ""), row.get("issuing_state", "")
    surname, given = row.get("surname", ""), row.get("given_names", "")
    born = row.get("birth_date", "")
    document = bool(number or state)
    person = bool(surname or given or born)
    if not document and not person:
        problem("-", "neither a document nor a person",
                "fill document_number and issuing_state, or surname and birth_date")  # fmt: skip
    if document:
        _cell(problem, "document_number", number, normalise_document_number,
              "write the number as printed: letters A-Z and digits")  # fmt: skip
        _cell(problem, "issuing_state", state, normalise_country_code,
              "use the ICAO three-letter code of the issuing state (PAN, DEU, D)")  # fmt: skip
    if person:
        _name(problem, "surname", surname, required=True)
        _name(problem, "given_names", given, required=False)
        if not born:
            problem("birth_date", "empty", "give the date of birth: " + _DATE_FORMS)
        else:
            try:
                parse_partial_date(born)
            except InvalidArgumentError as exc:
                problem("birth_date", _bare(exc), exc.hint or _DATE_FORMS)
    if errors:
        return [], errors
    label = label or f"row{line}"
    queries: list[Query] = []
    try:  # every cell passed: these only refuse what no cell rule names (an over-long key)
        if document:
            queries.append(document_query(number, state.upper(), label))
        if person:
            queries.append(person_query(surname, given, born, label))
    except EnlaceError as exc:
        problem("-", _bare(exc), exc.hint or "shorten the names")
        return [], errors
    return queries, errors


def _bare(exc: EnlaceError) -> str:
    """The message of ``exc`` without the ``field: `` prefix (the column is printed)."""
    field_name = getattr(exc, "field", "")
    prefix = f"{field_name}: "
    return exc.message.removeprefix(prefix) if field_name else exc.message


def _cell(problem: _Problem, column: str, value: str, check: _Check, fix: str) -> None:
    if not value:
        problem(column, "empty", f"fill {column} too, or clear the other cell of the document")
        return
    try:
        check(value)
    except NormalisationError as exc:
        problem(column, str(exc), fix)


def _name(problem: _Problem, column: str, value: str, *, required: bool) -> None:
    if not value:
        if required:
            problem(column, "empty", "give the surname(s) as on the document")
        return
    try:
        normalised = normalise_name(value)
    except NormalisationError as exc:
        problem(column, str(exc), "write the name in Latin letters as on the document")
        return
    if not normalised:
        problem(column, f"{value!r} has no letters", "write the name as on the document")


def write_rejects(batch: BatchFile, path: Path) -> None:
    """Write the refused rows of ``batch`` to ``path`` as the importer does: the batch columns,
    then ``_error`` (every problem of the row), ``_source`` (``file:row``) and ``_raw`` (a row
    that could not be split into columns, as read); cells a spreadsheet would run get a ``'``.
    Written next to ``path`` first and moved into place when complete."""
    rejects = RejectsFile(path, BATCH_COLUMNS)
    try:
        for row in batch.refused:
            rejects.write(row.cells, list(row.errors), row.raw)
    except BaseException:
        rejects.discard()
        raise
    rejects.publish()
