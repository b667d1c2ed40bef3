"""The simple CSV manifest for bus operators (and anyone without an EDIFACT system).

Why: most land carriers in the region keep their passenger lists in a spreadsheet. One row per
traveller, UTF-8 (a BOM is accepted), comma-separated, with a header; column names are the ones
below (case and spaces ignored, ``;`` accepted as separator when the header uses it)::

    surname, given_names, sex, birth_date, nationality, document_type, document_number,
    issuing_state, expiry_date, embarkation, debarkation, role

plus optional trip columns, read from the first row that has them: ``operator``, ``trip``,
``departure_port``, ``departure_date`` (``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM``),
``arrival_port``. Dates are ``YYYY-MM-DD``, ``DD/MM/YYYY`` or ``YYMMDD`` (century rule of
:mod:`node.manifests.model`). ``role`` is ``passenger`` (default) or ``crew``.

Invariants: a file without the identity columns (``surname`` and ``document_number``) or
without any data row raises :class:`ManifestError`, and so does a line too long for any row
(over :data:`MAX_LINE` characters: a pasted blob, not a traveller); a bad row is a rejected
traveller or a warning with its line number, never the end of the file. A record is one
physical line: each line is parsed on its own, so a stray or unclosed quote rejects its own row
instead of merging the rows after it into one traveller (the CSV dialect would let a quoted
field run on for the rest of the file). Pure apart from decoding the bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from typing import cast

from node.manifests.model import (
    Manifest,
    ManifestError,
    Problem,
    RawTraveller,
    Role,
    add_traveller,
    digest,
    reference_date,
)

COLUMNS = (
    "surname", "given_names", "sex", "birth_date", "nationality", "document_type",
    "document_number", "issuing_state", "expiry_date", "embarkation", "debarkation", "role",
)  # fmt: skip
TRIP_COLUMNS = ("operator", "trip", "departure_port", "departure_date", "arrival_port")
REQUIRED = ("surname", "document_number")
ROLES: dict[str, Role] = {"": "passenger", "passenger": "passenger", "crew": "crew",
                          "pasajero": "passenger", "tripulante": "crew"}  # fmt: skip
#: Longest line read (the csv module's field limit): no traveller row comes near it.
MAX_LINE = 131_072
_EOL = re.compile(r"\r\n|\r|\n")


def _lines(text: str, delimiter: str) -> Iterator[tuple[int, list[str], str]]:
    """Each non-blank physical line: its number, its fields, and why they are wrong ("" if not).

    Why one line at a time: a manifest row never spans lines, and parsing the file as one
    stream lets a single stray quote swallow every later row into one field.
    """
    for number, line in enumerate(_EOL.split(text), start=1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE:
            raise ManifestError(
                f"the line is {len(line):,} characters long, more than any traveller row "
                f"({MAX_LINE:,})",
                position=f"line {number}",
                hint="remove the pasted text from that row and export the CSV again",
            )
        try:
            fields = next(csv.reader([line], delimiter=delimiter, strict=True))
        except csv.Error as exc:
            fields = [f.strip().strip('"') for f in line.split(delimiter)]
            reason = (
                "a quoted field starts on this line and is not closed on it (a record must fit "
                "on one line: check the quotes)"
                if "end of data" in str(exc)
                else f"misplaced quote: {exc}"
            )
            yield number, fields, reason
            continue
        stray = [n for n, f in enumerate(fields, start=1) if '"' in f]
        # No manifest value holds a quote: one left in a field is half of a broken pair.
        reason = f'a stray quote (") in field {stray[0]}: check the quotes' if stray else ""
        yield number, fields, reason


def _key(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


def _departure(text: str, line: int, manifest: Manifest) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        manifest.problems.append(Problem(f"line {line}", f"departure_date {text!r} ignored"))
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def read_csv_manifest(data: bytes, *, today: dt.date) -> Manifest:
    """Read a bus manifest (see the module docstring)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})",
            position=f"byte {exc.start + 1}",
            hint="save the spreadsheet as CSV UTF-8",
        ) from None
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    lines = _lines(text, delimiter)
    line, header, broken = next(lines, (1, [], ""))
    if not header:
        raise ManifestError("the file is empty", position="line 1")
    if broken:
        raise ManifestError(f"header: {broken}", position=f"line {line}")
    names = [_key(h) for h in header]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise ManifestError(
            f"missing column(s) {', '.join(missing)}",
            position="line 1",
            hint="columns: " + ", ".join(COLUMNS),
        )
    unknown = [h for h in names if h and h not in COLUMNS and h not in TRIP_COLUMNS]
    manifest = Manifest(format="csv", sha256=digest(data), list_type="passengers")
    if unknown:
        manifest.problems.append(Problem("line 1", f"unknown column(s) ignored: {unknown}"))
    raws: list[RawTraveller] = []
    for line, row, broken in lines:
        if not any(cell.strip() for cell in row):
            continue
        values = dict(zip(names, (cell.strip() for cell in row), strict=False))
        _trip(manifest, values, line)
        role = ROLES.get(values.get("role", "").lower())
        raw = RawTraveller(
            position=len(raws) + 1, location=f"line {line}", role=role or "passenger"
        )
        for column in COLUMNS:
            if column != "role":
                setattr(raw, column, values.get(column, ""))
        if role is None:
            raw.errors.append(f"role {values.get('role')!r} is not passenger or crew")
        if broken:
            raw.errors.append(f"line {line}: {broken}")
        elif len(row) != len(names):
            raw.errors.append(f"{len(row)} fields where the header has {len(names)}")
        raws.append(raw)
    if not raws:
        raise ManifestError("no traveller rows", position="line 2")
    reference = reference_date(manifest, today)
    for raw in raws:
        add_traveller(manifest, raw, reference)
    if all(t.role == "crew" for t in manifest.travellers) and manifest.travellers:
        manifest.list_type = "crew"
    return manifest


def _trip(manifest: Manifest, values: dict[str, str], line: int) -> None:
    if values.get("operator") and not manifest.carrier:
        manifest.carrier = manifest.sender = values["operator"]
    if values.get("trip") and not manifest.transport:
        manifest.transport = manifest.reference = values["trip"]
    if values.get("departure_port") and not manifest.departure_port:
        manifest.departure_port = values["departure_port"].upper()
    if values.get("arrival_port") and not manifest.arrival_port:
        manifest.arrival_port = values["arrival_port"].upper()
    if values.get("departure_date") and manifest.departure_at is None:
        manifest.departure_at = _departure(values["departure_date"], line, manifest)


def write_csv_manifest(manifest: Manifest) -> str:
    """The bus CSV of ``manifest`` (four-digit years; trip columns on every row)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((*COLUMNS, *TRIP_COLUMNS))
    departure = manifest.departure_at.strftime("%Y-%m-%dT%H:%M") if manifest.departure_at else ""
    for t in manifest.travellers:
        values = cast(dict[str, object], t.to_dict())
        row = [str(values.get(c, "") or "") for c in COLUMNS]
        writer.writerow((*row, manifest.carrier, manifest.transport, manifest.departure_port,
                         departure, manifest.arrival_port))  # fmt: skip
    return out.getvalue()
