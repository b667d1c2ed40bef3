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
without any data row raises :class:`ManifestError`; a bad row is a rejected traveller or a
warning with its line number, never the end of the file. Pure apart from decoding the bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
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
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header:
        raise ManifestError("the file is empty", position="line 1")
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
    for row in reader:
        line = reader.line_num
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
        if len(row) != len(names):
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
