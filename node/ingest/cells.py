"""Per-column validation and normalisation, compiled once per import from the dataset spec.

Why compiled: :func:`node.records.datasets.validate_row` is the reference for what a valid row
is, but it rebuilds code sets and re-parses every value on every call, which caps an import at
a few thousand rows a second. Here each :class:`~node.records.datasets.Field` becomes one
converter closed over its limits, and every value whose outcome depends only on the text
(codes, dates, names, states, border posts — the values that repeat) is cached, failures
included. ``tests/integration/test_ingest_bad_input.py`` checks that both agree. Plain text
columns (identifiers, document numbers) are first checked whole (:mod:`node.ingest.columns`);
the per-cell rule runs only on a column where that check does not pass.

Invariants:
* A rule's converter returns the database values of its field's columns (:func:`field_columns`) or
  raises :class:`CellError` with a problem and how to fix it; it never fixes a value silently.
* Rules beyond the spec, all documented in ``docs/ingest.md``: the spreadsheet-formula rule
  (:func:`formula_problem`), a length cap on every cell (:data:`MAX_CELL_CHARS`), and dates
  after ``now`` refused except in columns that hold a future date (expiry).
* Codes pass through the node's equivalence table for the lists the table covers (mappings
  or passthrough); other lists take regional codes. Caches are bounded.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, NamedTuple

from crypto.errors import NormalisationError
from node.ingest.columns import ColumnCheck, document_number_check, text_column_check
from node.records.codelists import UnknownCodeError, codelist, suggest_codes
from node.records.datasets import Field
from node.records.dates import InvalidDateError, parse_partial_date
from node.records.equivalence import EquivalenceTable
from node.records.icao import (
    MAX_DOCUMENT_NUMBER_LENGTH,
    normalise_country_code,
    normalise_document_number,
)
from node.records.names import normalise_name

#: Cap for cells whose field sets no ``max_length`` (a 128-float template is 684 characters).
MAX_CELL_CHARS = 4096
#: Fields that may hold a date after the import's ``now``.
FUTURE_DATE_FIELDS = frozenset({"expiry_date"})
#: A cell starting with one of these is a spreadsheet formula unless it is a number.
FORMULA_START = frozenset("=+-@\t\r")
_NUMBER_RE = re.compile(r"[+-]?[0-9][0-9 ]*(?:[.,][0-9]+)?")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INT_RE = re.compile(r"-?[0-9]+")
_CACHE_LIMIT = 200_000

Converter = Callable[[str], tuple[Any, ...]]


class CellError(Exception):
    """One bad cell: what is wrong and how to fix it (cheap to raise on the hot path)."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


def formula_problem(value: str) -> CellError | None:
    """The formula-injection rule: a cell starting with ``= + - @`` TAB or CR is refused
    unless it is a number (sign, digits, spaces between digit groups, one decimal part)."""
    if value and value[0] in FORMULA_START and not _NUMBER_RE.fullmatch(value):
        return CellError(
            f"{value[:40]!r} starts with {value[0]!r}, which spreadsheets run as a formula",
            "remove the leading character (or the formula) so the cell holds plain text",
        )
    return None


def field_columns(field: Field) -> tuple[str, ...]:
    """The database columns a file column becomes (see ``node/store/records_schema.py``)."""
    if field.type == "partial_date":
        prefix = field.name.removesuffix("_date")
        return (field.name, f"{prefix}_year", f"{prefix}_month", f"{prefix}_day")
    if field.check in ("document_number", "name"):
        return (field.name, f"{field.name}_norm")
    if field.name == "border_post":
        return (field.name, "border_post_regional")
    return (field.name,)


class ColumnRule(NamedTuple):
    """A compiled file column. Look a cell up in ``cache`` first, else call ``convert``,
    which raises :class:`CellError` (and fills ``cache`` when the field's values repeat).

    ``columns`` holds the same results split by database column (``columns[j][value] ==
    cache[value][j]``), so a batch whose values were all seen before is converted by one
    dictionary lookup per cell and database column, without building tuples.
    """

    name: str
    required: bool
    cache: dict[str, tuple[Any, ...]]
    convert: Converter
    width: int  # database columns this file column becomes
    repeats: bool  # outcome depends on the text only, so results are cached
    fast: ColumnCheck | None = None
    columns: tuple[dict[str, Any], ...] = ()


def _memoised(
    convert: Converter, cache: dict[str, tuple[Any, ...]], columns: tuple[dict[str, Any], ...]
) -> Converter:
    """``convert`` that records its results in ``cache`` (and ``columns``) and its failures
    in its own map."""
    failures: dict[str, CellError] = {}

    def remember(value: str) -> tuple[Any, ...]:
        known = cache.get(value)  # a value repeated within one batch is converted once
        if known is not None:
            return known
        failure = failures.get(value)
        if failure is not None:
            raise failure
        try:
            result = convert(value)
        except CellError as exc:
            if len(failures) < _CACHE_LIMIT:
                failures[value] = exc
            raise
        if len(cache) < _CACHE_LIMIT:
            cache[value] = result
            for column, part in zip(columns, result, strict=True):
                column[value] = part
        return result

    return remember


def code_translator(field: Field, table: EquivalenceTable | None) -> Callable[[str], str]:
    """Local or regional code → regional code for one code column, raising :class:`CellError`."""
    list_name = field.codelist
    if list_name is None:
        choices = field.choices

        def choose(value: str) -> str:
            if value in choices:
                return value
            close = suggest_codes(value, choices)
            fix = f"did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise CellError(
                f"{value!r} is not one of the allowed values",
                fix or "use one of: " + ", ".join(choices),
            )

        return choose
    covered = table is not None and (list_name in table.mappings or list_name in table.passthrough)
    regional = codelist(list_name)

    def translate(value: str) -> str:
        try:
            if covered:
                assert table is not None
                return table.translate(list_name, value)
            return regional.validate(value)
        except UnknownCodeError as exc:
            where = exc.list_name
            fix = exc.hint
            if covered:
                fix += " (or add the local code to the equivalence table)"
            raise CellError(f"{value!r} is not a code of {where}", fix) from None

    return translate


def _plain_converter(
    field: Field,
    table: EquivalenceTable | None,
    now: datetime,
    date_value: Callable[[date], Any],
) -> tuple[Converter, bool]:
    """The type-specific converter, and whether its outcome depends only on the text."""
    kind = field.type
    if kind == "str":
        return _text_converter(field, table)
    if kind == "code":
        translate = code_translator(field, table)
        return (lambda v: (translate(v),)), True
    if kind == "codes":
        return _codes_converter(field, table), True
    if kind == "date":
        return _date_converter(field, now, date_value), True
    if kind == "partial_date":
        return _partial_date_converter(field, now), True
    if kind == "int":
        return _int_converter(field), False
    if kind == "bool":
        return _bool_converter, True
    if kind == "datetime":
        return _datetime_converter, False
    if kind == "float_vector":
        return _vector_converter(field), False
    raise ValueError(f"field {field.name}: unsupported type {kind!r}")  # pragma: no cover


def compile_field(
    field: Field,
    table: EquivalenceTable | None,
    now: datetime,
    date_value: Callable[[date], Any],
) -> ColumnRule:
    """The rule for the cells of ``field``: required, formula rule, length cap, pattern, type.

    ``date_value`` turns a validated :class:`date` into what the database column receives.
    """
    inner, repeats = _plain_converter(field, table, now, date_value)
    limit = field.max_length or MAX_CELL_CHARS
    pattern = re.compile(field.pattern) if field.pattern else None
    formulas = field.type != "float_vector"  # base64 has no character a formula needs

    empty = (None,) * len(field_columns(field))
    required = field.required
    missing = CellError("required but empty", _fill_hint(field))

    def convert(value: str) -> tuple[Any, ...]:
        if not value:
            if required:
                raise missing
            return empty
        if formulas and value[0] in FORMULA_START:
            problem = formula_problem(value)
            if problem is not None:
                raise problem
        if len(value) > limit:
            raise CellError(
                f"{len(value)} characters; at most {limit} are allowed",
                "shorten the value, or check the column was not shifted by a stray delimiter",
            )
        if pattern is not None and not pattern.fullmatch(value):
            raise CellError(
                f"{value!r} does not have the expected form",
                f"write it like {field.example!r}" if field.example else "check the value",
            )
        return inner(value)

    cache: dict[str, tuple[Any, ...]] = {} if required else {"": empty}
    columns: tuple[dict[str, Any], ...] = ()
    if repeats:
        columns = tuple(({} if required else {"": None}) for _ in empty)
    converter = _memoised(convert, cache, columns) if repeats else convert
    fast: ColumnCheck | None = None
    if field.type == "str" and inner is _identity:
        fast = text_column_check(field.pattern, limit, required, FORMULA_START)
    elif inner is _document_number and not field.pattern:
        canonical = min(limit, MAX_DOCUMENT_NUMBER_LENGTH)
        fast = document_number_check(canonical, required)
        converter = _canonical_numbers_first(convert, canonical)
    return ColumnRule(field.name, required, cache, converter, len(empty), repeats, fast, columns)


def _canonical_numbers_first(convert: Converter, limit: int) -> Converter:
    """``convert`` for document numbers, with the common case decided first: a number of ASCII
    letters and digits within ``limit`` passes every check and normalises to its upper case
    (a column of loosely typed numbers takes this path, cell by cell)."""

    def number(value: str) -> tuple[Any, ...]:
        if value and len(value) <= limit and value.isascii() and value.isalnum():
            return (value, value.upper())
        return convert(value)

    return number


def _fill_hint(field: Field) -> str:
    example = f" (e.g. {field.example!r})" if field.example else ""
    return f"fill in {field.description_en.rstrip('.').lower() or field.name}{example}"


def _text_converter(field: Field, table: EquivalenceTable | None) -> tuple[Converter, bool]:
    if field.check == "document_number":
        return _document_number, False
    if field.check == "name":
        return _name, True
    if field.check == "state":
        return _state, True
    if field.name == "border_post" and table is not None and table.border_posts:

        def post(value: str) -> tuple[Any, ...]:
            try:
                return (value, table.translate_border_post(value))
            except UnknownCodeError as exc:
                raise CellError(
                    f"border post {value!r} is not in the equivalence table {table.version}",
                    f"{exc.hint} (or add the post under border_posts)",
                ) from None

        return post, True
    if field.name == "border_post":
        return (lambda v: (v, None)), True
    return _identity, False


def _identity(value: str) -> tuple[Any, ...]:
    return (value,)


def _document_number(value: str) -> tuple[Any, ...]:
    if len(value) <= MAX_DOCUMENT_NUMBER_LENGTH and value.isascii() and value.isalnum():
        return (value, value.upper())  # what normalise_document_number gives for such text
    try:
        return (value, normalise_document_number(value))
    except NormalisationError as exc:
        raise CellError(
            str(exc),
            "write the number as printed: letters A-Z and digits (spaces, hyphens and '<' "
            "are removed)",
        ) from None


def _name(value: str) -> tuple[Any, ...]:
    try:
        normalised = normalise_name(value)
    except NormalisationError as exc:
        raise CellError(str(exc), "write the name in Latin letters as on the document") from None
    if not normalised:
        raise CellError(f"{value!r} has no letters", "write the name, or leave the cell empty")
    return (value, normalised)


def _state(value: str) -> tuple[Any, ...]:
    try:
        return (normalise_country_code(value),)
    except NormalisationError as exc:
        raise CellError(str(exc), "use the ICAO three-letter code of the state") from None


def _codes_converter(field: Field, table: EquivalenceTable | None) -> Converter:
    translate = code_translator(field, table)

    def codes(value: str) -> tuple[Any, ...]:
        parts = value.split(";")
        if len(set(parts)) != len(parts):
            raise CellError(f"a code is repeated in {value!r}", "write each code once")
        regional = list(dict.fromkeys(translate(p) for p in parts))
        if "none" in regional and len(regional) > 1:
            raise CellError(
                f"'none' is combined with other codes in {value!r}",
                "write either 'none' or the codes that apply",
            )
        return (";".join(regional),)

    return codes


def _date_converter(field: Field, now: datetime, date_value: Callable[[date], Any]) -> Converter:
    today = now.date()
    future_ok = field.name in FUTURE_DATE_FIELDS

    def convert(value: str) -> tuple[Any, ...]:
        if not _DATE_RE.fullmatch(value):
            raise CellError(
                f"{value!r} is not a date YYYY-MM-DD", f"write it like {field.example!r}"
            )
        try:
            day = date.fromisoformat(value)
        except ValueError as exc:
            raise CellError(
                f"{value} does not exist ({exc})", "check the day and the month"
            ) from None
        if day > today and not future_ok:
            raise CellError(
                f"{value} is after the import date {today.isoformat()}",
                "check the year; a past event cannot have a future date",
            )
        return (date_value(day),)

    return convert


def _partial_date_converter(field: Field, now: datetime) -> Converter:
    def convert(value: str) -> tuple[Any, ...]:
        if not value.isascii():  # the parser would read other scripts' digits as 0-9
            raise CellError(
                f"{value!r} is not a date YYYY, YYYY-MM or YYYY-MM-DD",
                f"write it with the digits 0-9, like {field.example!r}",
            )
        try:
            partial = parse_partial_date(value)
        except InvalidDateError as exc:
            raise CellError(exc.message.removeprefix("date: "), exc.hint) from None
        if partial.bounds()[0] > now.date():
            raise CellError(
                f"{value} is after the import date {now.date().isoformat()}",
                "check the year of birth",
            )
        return (partial.iso(), partial.year, partial.month, partial.day)

    return convert


def _int_converter(field: Field) -> Converter:
    minimum = field.minimum

    def convert(value: str) -> tuple[Any, ...]:
        if not _INT_RE.fullmatch(value):
            raise CellError(f"{value!r} is not a whole number", "write the digits 0-9, e.g. 137")
        number = int(value)
        if minimum is not None and number < minimum:
            raise CellError(f"{number} is below {minimum}", f"the smallest value is {minimum}")
        return (number,)

    return convert


def _bool_converter(value: str) -> tuple[Any, ...]:
    if value not in ("true", "false"):
        raise CellError(f"{value!r} is not 'true' or 'false'", "write true or false")
    return (value == "true",)


def _datetime_converter(value: str) -> tuple[Any, ...]:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CellError(
            f"{value!r} is not an ISO 8601 date-time", "e.g. 2023-09-14T08:30Z"
        ) from None
    if moment.tzinfo is None:
        raise CellError(f"{value!r} has no time zone", "add Z or an offset such as -05:00")
    return (moment,)


def _vector_converter(field: Field) -> Converter:
    dimension = field.dimension or 0
    layout = struct.Struct(f"<{dimension}f")

    def convert(value: str) -> tuple[Any, ...]:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise CellError("not valid base64", "export the vector as standard base64") from None
        if len(raw) != layout.size:
            raise CellError(
                f"{len(raw)} bytes; expected {layout.size} ({dimension} float32)",
                f"export {dimension} little-endian float32 values",
            )
        if not all(math.isfinite(x) for x in layout.unpack(raw)):
            raise CellError("contains NaN or infinite values", "re-extract the template")
        return (raw,)

    return convert
