"""Export a protected statistics answer as CSV, XLSX, SDMX-CSV 2.0 or JSON.

Why: the members' statisticians work in spreadsheets, the Secretariat and international
partners load SDMX. Every file carries the disclosure flags beside the values, and the SDMX
file conforms to the data structure published in ``docs/sdmx.md`` / ``docs/sdmx/dsd.xml``
(:func:`node.stats.sdmx_structure.structure_message` writes the latter from the code lists).

Invariants:
* A suppressed cell is exported **empty**, never as 0, in every format; before writing, every
  cell is checked against its flags (no value ⇔ ``OBS_STATUS=Q`` and ``CONF_STATUS`` A or D;
  a value ⇔ ``CONF_STATUS=F`` and ``OBS_STATUS`` A or E) and an inconsistent answer is refused.
* Text written to CSV or XLSX never begins with a character a spreadsheet would read as a
  formula (``= + - @``, tab, CR): such text is prefixed with an apostrophe. Answers from peers
  are untrusted input.
* SDMX-CSV contains only codes of the published code lists (plus ``_T``/``_Z``); anything else
  is refused rather than written. It has no byte-order mark; the human CSV has one (Excel).
* The output depends only on the arguments (no clock), except the XLSX container's timestamps.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence

from node.errors import InvalidArgumentError
from node.records.codelists import CODELISTS_VERSION, REGIONAL_MEMBERS, codelist
from node.stats.answer import AnsweredCell, StatsAnswer
from node.stats.matrices import MATRICES, MATRICES_VERSION
from node.stats.matrices import matrix as matrix_definition
from node.stats.query import CODE_DIMENSIONS, TIME_DIMENSIONS, TOTAL, parse_period

FORMATS = ("csv", "xlsx", "sdmx", "json")
AGENCY = "CRM"
STRUCTURE_VERSION = "1.0"
DATAFLOW_ID = "DF_EXTRA_REGIONAL"
DSD_ID = "DSD_EXTRA_REGIONAL"
CONCEPT_SCHEME_ID = "CS_ENLACE"
DATAFLOW_REF = f"{AGENCY}:{DATAFLOW_ID}({STRUCTURE_VERSION})"
REGIONAL_AREA = "CRM"
NOT_APPLICABLE = "_Z"
SDMX_ACTION = "I"
STRUCTURE_RELEASED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CONFIDENTIAL_NOTE = (
    "Las celdas sin valor son confidenciales (suprimidas), no cero. "
    "Empty cells are confidential (suppressed), not zero."
)
UNITS = {"persons": "PERSONS", "events": "EVENTS"}

#: SDMX dimensions in DSD order: (id, query dimension, project code list or None).
SDMX_DIMENSIONS: tuple[tuple[str, str, str | None], ...] = (
    ("REF_AREA", "", None),
    ("EVENT_TYPE", "event_type", "event_type"),
    ("NATIONALITY", "nationality", "nationality"),
    ("NATIONALITY_BASIS", "nationality_basis", "nationality_basis"),
    ("SEX", "sex", "sex"),
    ("AGE_GROUP", "age_group", "age_group"),
    ("BORDER_POST", "border_post", None),
    ("CARE_PROVIDED", "care_provided", CODE_DIMENSIONS["care_provided"]),
    ("VULNERABILITY", "vulnerability", CODE_DIMENSIONS["vulnerability"]),
    ("TIME_PERIOD", "", None),
)
SDMX_ATTRIBUTES = ("OBS_STATUS", "CONF_STATUS", "UNIT_MEASURE", "TABLE_ID")
SDMX_COLUMNS = ("STRUCTURE", "STRUCTURE_ID", "ACTION", *(d[0] for d in SDMX_DIMENSIONS))
SDMX_COLUMNS += ("OBS_VALUE", *SDMX_ATTRIBUTES)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_TIME_CODE = re.compile(r"^\d{4}(-Q[1-4]|-(0[1-9]|1[0-2]))?$", re.ASCII)
_BORDER_POST = re.compile(r"^[A-Z]{3}-[A-Z0-9]{3}$")
_HOLDER = re.compile(r"^[A-Z]{3}$")
_SUPPRESSED_FLAGS = {("Q", "A"), ("Q", "D")}
_PUBLISHED_FLAGS = {("A", "F"), ("E", "F")}
_VALUE_COLUMNS = ("value", "obs_status", "conf_status", "perturbed")
_FLAG_HINT = "no value: Q with A or D; a value: A or E with F (docs/disclosure-control.md)"

NContrib = Mapping[tuple[str, ...], int]
_Value = str | int | bool | None
_Items = list[tuple[str, str | int]]
#: Coverage counts written beside a table: about the protection only. The exact number of
#: records read is an unprotected grand total and is never exported.
_COUNTS = ("suppressed_primary", "suppressed_secondary", "perturbed")


def _refuse(message: str, field: str, hint: str = "") -> InvalidArgumentError:
    return InvalidArgumentError(message, field=field, hint=hint)


def spreadsheet_safe(text: str) -> str:
    """``text`` unchanged, or prefixed with ``'`` when a spreadsheet would run it as a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_answer(
    answer: StatsAnswer, n_contrib: NContrib | None = None, *, regional: bool = False
) -> str:
    """Refuse an answer whose values contradict its flags (raise; never repair); return its
    SDMX unit of measure."""
    if answer.measure not in UNITS:
        raise _refuse(f"unknown measure {answer.measure!r}", "measure", "persons or events")
    if n_contrib and not regional:
        raise _refuse("N_CONTRIB is only for regional tables", "n_contrib", "pass regional=True")
    seen: set[tuple[str, ...]] = set()
    for cell in answer.cells:
        where, flags = f"cell {'/'.join(cell.key)}", (cell.obs_status, cell.conf_status)
        if len(cell.key) != len(answer.dimensions) or cell.key in seen:
            raise _refuse(f"{where} is repeated or has the wrong number of codes", "cells")
        if not all(map(str.isprintable, cell.key)):
            raise _refuse(f"{where!r} contains a control character", "cells")
        seen.add(cell.key)
        if flags not in (_SUPPRESSED_FLAGS if cell.value is None else _PUBLISHED_FLAGS):
            raise _refuse(f"{where}: value {cell.value!r} with flags {flags}", "cells", _FLAG_HINT)
        if cell.value is not None and not _is_count(cell.value):
            raise _refuse(f"{where} value {cell.value!r} is not a count", "cells")
    for key, count in (n_contrib or {}).items():
        if key not in seen or not _is_count(count):
            raise _refuse(f"{count!r} for {'/'.join(key)}: not a cell or not a count", "n_contrib")
    return UNITS[answer.measure]


def _table_id(matrix: str) -> str:
    return matrix_definition(matrix).id if matrix else ""


def coverage_items(
    answer: StatsAnswer,
    *,
    holder: str,
    matrix: str = "",
    agreement: str = "",
    notes: Sequence[str] = (),
) -> _Items:
    """The coverage metadata written beside every table (XLSX sheet, JSON object)."""
    table = _table_id(matrix)
    title = f"{MATRICES[table].title_es} / {MATRICES[table].title_en}" if table else ""
    items: _Items = [
        ("holder", holder),
        ("matrix", table),
        ("matrix_title", title),
        ("matrices_version", MATRICES_VERSION if table else ""),
        ("codelists_version", CODELISTS_VERSION),
        ("measure", answer.measure),
        ("period", answer.period),
        ("as_of", answer.as_of.isoformat() if answer.as_of else ""),
        ("cells", len(answer.cells)),
        *[(name, getattr(answer, name)) for name in _COUNTS],
        ("agreement", agreement),
        ("disclosure_profile", answer.profile),
        ("method", answer.method),
        ("epsilon_spent", answer.epsilon_spent),
        ("sdmx_structure", DATAFLOW_REF),
        ("confidentiality", CONFIDENTIAL_NOTE),
    ]
    items += [("note", note) for note in notes]
    return items


def _human_header(answer: StatsAnswer, regional: bool) -> list[str]:
    extra = ["n_contrib"] if regional else []
    return [*map(spreadsheet_safe, answer.dimensions), *_VALUE_COLUMNS, *extra]


def _human_rows(answer: StatsAnswer, regional: bool, n_contrib: NContrib) -> list[list[_Value]]:
    """One row per cell: safe codes, value (None when suppressed), flags[, n_contrib]."""
    rows = []
    for cell in answer.cells:
        row: list[_Value] = [spreadsheet_safe(code) for code in cell.key]
        row += [cell.value, cell.obs_status, cell.conf_status, cell.perturbed]
        rows.append([*row, n_contrib.get(cell.key)] if regional else row)
    return rows


def _csv(answer: StatsAnswer, regional: bool, n_contrib: NContrib) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(_human_header(answer, regional))
    for row in _human_rows(answer, regional, n_contrib):  # csv writes None as ""
        writer.writerow([str(v).lower() if isinstance(v, bool) else v for v in row])
    return out.getvalue().encode("utf-8-sig")


def _xlsx(answer: StatsAnswer, regional: bool, n_contrib: NContrib, coverage: _Items) -> bytes:
    openpyxl = importlib.import_module("openpyxl")  # untyped; as in node.ingest.readers
    styles = importlib.import_module("openpyxl.styles")
    comments = importlib.import_module("openpyxl.comments")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "table"
    sheet.append(_human_header(answer, regional))
    hidden = styles.PatternFill("solid", fgColor="D9D9D9")
    for number, (cell, row) in enumerate(
        zip(answer.cells, _human_rows(answer, regional, n_contrib), strict=True), start=2
    ):
        sheet.append(row)
        if cell.value is None:
            target = sheet.cell(row=number, column=len(answer.dimensions) + 1)
            target.fill = hidden
            kind = "primaria / primary" if cell.conf_status == "A" else "secundaria / secondary"
            target.comment = comments.Comment(f"Confidencial ({kind}): no es cero / not zero", "")
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    info = book.create_sheet("coverage")
    info.append(["field", "value"])
    for name, value in coverage:
        info.append([name, spreadsheet_safe(value) if isinstance(value, str) else value])
    info.append(["legend", "grey empty value = confidential (Q with A primary, D secondary)"])
    for header_cell in (*sheet[1], *info[1]):
        header_cell.font = styles.Font(bold=True)
    info.column_dimensions["A"].width, info.column_dimensions["B"].width = 22, 90
    if answer.as_of is not None:
        book.properties.created = answer.as_of.astimezone(dt.UTC).replace(tzinfo=None)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _json(answer: StatsAnswer, regional: bool, n_contrib: NContrib, coverage: _Items) -> bytes:
    names = _human_header(answer, regional)[len(answer.dimensions) :]
    cells = [
        {"key": list(cell.key), **dict(zip(names, row[len(cell.key) :], strict=True))}
        for cell, row in zip(answer.cells, _human_rows(answer, regional, n_contrib), strict=True)
    ]
    document = {
        "format": "enlace-stats-table/1",
        "dimensions": list(answer.dimensions),
        "unit_measure": UNITS[answer.measure],
        "cells": cells,
        "coverage": {k: v for k, v in coverage if k != "note"},
        "notes": [v for k, v in coverage if k == "note"],
    }
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def sdmx_time_period(text: str) -> str:
    """An answer's period as SDMX: a year, quarter or month as a reporting period (``2023``,
    ``2023-Q3``, ``2023-07``), any other span as an ISO 8601 range ``start/PnM``."""
    start, end = (period := parse_period(text)).start, period.end
    months = (end.year - start.year) * 12 + end.month - start.month
    if months == 12 and start.month == 1:
        return f"{start.year}"
    if months == 3 and start.month % 3 == 1:
        return f"{start.year}-Q{start.month // 3 + 1}"
    if months == 1:
        return f"{start.year}-{start.month:02d}"
    return f"{start.isoformat()}/P{months}M"


def _dimension_code(sdmx_id: str, list_name: str | None, code: str) -> str:
    if list_name is not None and code not in (TOTAL, NOT_APPLICABLE):
        return codelist(list_name).validate(code)
    if list_name is not None or code in (TOTAL, NOT_APPLICABLE) or _BORDER_POST.match(code):
        return code
    raise _refuse(f"{code!r} is not a {sdmx_id} code", sdmx_id, "see docs/sdmx.md")


def _area(holder: str) -> str:
    if holder not in (*REGIONAL_MEMBERS, REGIONAL_AREA):
        raise _refuse(f"{holder!r} is not in CL_AREA", "holder", "a member, or CRM (the region)")
    return holder


def export_answer_rows(
    answer: StatsAnswer,
    *,
    holder: str,
    matrix: str = "",
    regional: bool = False,
    n_contrib: NContrib | None = None,
) -> list[dict[str, str]]:
    """The SDMX-CSV rows of ``answer`` (column -> text): the Secretariat joins the rows of
    several members and of its regional table (``holder="CRM"``, ``regional=True``) in one file
    with :func:`write_sdmx_csv`."""
    contrib = n_contrib or {}
    unit = check_answer(answer, contrib, regional=regional)
    area, table, whole = _area(holder), _table_id(matrix), sdmx_time_period(answer.period)
    time_dims = [d for d in answer.dimensions if d in TIME_DIMENSIONS]
    if len(time_dims) > 1:
        raise _refuse(f"{time_dims} all map to TIME_PERIOD", "dimensions", "ask for one of them")
    if unknown := set(answer.dimensions) - {d[1] for d in SDMX_DIMENSIONS} - set(time_dims):
        raise _refuse(f"{sorted(unknown)} have no SDMX concept", "dimensions")
    position = {name: i for i, name in enumerate(answer.dimensions)}
    times = [c.key[position[time_dims[0]]] if time_dims else TOTAL for c in answer.cells]
    cells = list(answer.cells)
    if NOT_APPLICABLE in times:
        cells, times = _without_empty_time(cells, times, whole)
    repeated = whole in times  # one period: its time totals would repeat the cells' SDMX keys
    rows = []
    for cell, time in zip(cells, times, strict=True):
        if repeated and time == TOTAL:
            continue
        row = {"STRUCTURE": "dataflow", "STRUCTURE_ID": DATAFLOW_REF, "ACTION": SDMX_ACTION}
        for sdmx_id, name, list_name in SDMX_DIMENSIONS:
            code = cell.key[position[name]] if name in position else TOTAL
            row[sdmx_id] = _dimension_code(sdmx_id, list_name, code)
        row.update(REF_AREA=area, TIME_PERIOD=whole)
        if time not in (TOTAL, whole):
            if not _TIME_CODE.match(time):
                raise _refuse(f"{time!r} is not a {time_dims[0]} code", "TIME_PERIOD")
            row["TIME_PERIOD"] = time
        row["OBS_VALUE"] = "" if cell.value is None else str(cell.value)
        row.update(OBS_STATUS=cell.obs_status, CONF_STATUS=cell.conf_status)
        row.update(UNIT_MEASURE=unit, TABLE_ID=table)
        if regional:
            row["N_CONTRIB"] = str(contrib[cell.key]) if cell.key in contrib else ""
        rows.append(row)
    return rows


def _without_empty_time(
    cells: list[AnsweredCell], times: list[str], whole: str
) -> tuple[list[AnsweredCell], list[str]]:
    """Cells and time codes with "_Z" (not applicable: no record, so no period) resolved.

    A table with no record at all has "_Z" as its only time code: its cells are the whole
    period's, as its totals are. A regional table also holds the "_Z" cells of a member that
    had no record beside the real quarters of the others: those are zeros of no period, left
    out (kept, two observations would share an SDMX key, the total and a contradicting 0). A
    "_Z" period with a count in a table that has real periods is refused, as any other code
    that is not a period."""
    if all(t in (NOT_APPLICABLE, TOTAL) for t in times):
        return cells, [whole if t == NOT_APPLICABLE else t for t in times]
    kept = [
        (cell, time)
        for cell, time in zip(cells, times, strict=True)
        if not (time == NOT_APPLICABLE and cell.value == 0)
    ]
    return [c for c, _ in kept], [t for _, t in kept]


def write_sdmx_csv(rows: Iterable[Mapping[str, str]], *, regional: bool = False) -> bytes:
    """SDMX-CSV 2.0 (UTF-8 without BOM, comma, CRLF) with the columns of the published DSD."""
    columns = [*SDMX_COLUMNS, *(["N_CONTRIB"] if regional else [])]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([spreadsheet_safe(row.get(column, "")) for column in columns])
    return out.getvalue().encode("utf-8")


def export_table(
    answer: StatsAnswer,
    fmt: str,
    *,
    holder: str,
    matrix: str = "",
    regional: bool = False,
    n_contrib: NContrib | None = None,
    agreement: str = "",
    notes: Sequence[str] = (),
) -> bytes:
    """``answer`` as ``csv``, ``xlsx``, ``sdmx`` (SDMX-CSV 2.0) or ``json`` bytes."""
    if fmt not in FORMATS:
        raise _refuse(f"unknown format {fmt!r}", "format", f"one of {', '.join(FORMATS)}")
    if not _HOLDER.match(holder):
        raise _refuse(f"{holder!r} is not an upper-case ISO alpha-3 code", "holder")
    contrib = n_contrib or {}
    check_answer(answer, contrib, regional=regional)
    if fmt == "sdmx":
        rows = export_answer_rows(answer, holder=holder, matrix=matrix, regional=regional,
                                  n_contrib=contrib)  # fmt: skip
        return write_sdmx_csv(rows, regional=regional)
    if fmt == "csv":
        return _csv(answer, regional, contrib)
    items = coverage_items(answer, holder=holder, matrix=matrix, agreement=agreement, notes=notes)
    writer = _xlsx if fmt == "xlsx" else _json
    return writer(answer, regional, contrib, items)


# --- The data structure definition as an SDMX-ML 3.0 structure message -------------------
