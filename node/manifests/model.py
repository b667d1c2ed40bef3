"""Passenger and crew manifests as the node screens them, whatever file they came in.

Why one model: carriers send UN/EDIFACT PAXLST (:mod:`node.manifests.paxlst`), bus operators
send a plain CSV (:mod:`node.manifests.csv_manifest`); screening, storage and reports must not
care which. Both readers collect each traveller's fields as text (:class:`RawTraveller`) and
hand them to :func:`build_traveller`, the one place that applies the project's rules: ICAO
normalisation of document numbers and state codes (:mod:`node.records.icao`), and the century
rule for two-digit years.

Century rule (``docs/manifests.md``): a two-digit birth year is the latest year ending in those
digits such that the date of birth is not after the manifest's reference date (the departure
date, else the arrival date, else the day of import); so nobody is born after the trip and
travellers of 100 or more are read a century too young. A two-digit expiry year lies in the
100-year window starting 50 years before the reference year.

Invariants:
* A :class:`Traveller` always has something to screen: a normalised document (number and
  issuing state) or a surname with a date of birth.
* A field used for matching that cannot be normalised (document number, issuing state, date of
  birth, a name in a script without a transliteration table) rejects the traveller
  (:class:`TravellerError`, naming the field); other fields that cannot be read are dropped with
  a warning. A rejected traveller is listed, never silently screened on partial data.
* Pure: no I/O and no clock; the reference date is passed in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from crypto.errors import NormalisationError
from node.errors import InvalidArgumentError
from node.records.dates import InvalidDateError, PartialDate, parse_partial_date, resolve_century
from node.records.icao import (
    nationality_code,
    normalise_country_code,
    normalise_document_number,
)
from node.records.names import name_variants

Role = Literal["passenger", "crew", "transit_passenger", "transit_crew"]
Severity = Literal["error", "warning"]
SEXES = frozenset({"F", "M", "X", "U"})
_YYMMDD = re.compile(r"^(\d{2})(\d{2}|00)(\d{2}|00)$", re.ASCII)
_CCYYMMDD = re.compile(r"^(\d{4})(\d{2})(\d{2})$", re.ASCII)
_DMY = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$", re.ASCII)


class ManifestError(InvalidArgumentError):
    """The file is structurally broken (not a manifest, truncated, unreadable framing): nothing
    in it is screened. ``position`` says where reading stopped."""

    def __init__(self, message: str, *, position: str = "", hint: str = "") -> None:
        super().__init__(f"{position}: {message}" if position else message, hint=hint)
        self.position = position


class TravellerError(InvalidArgumentError):
    """One traveller cannot be screened; ``field`` names the offending field."""


@dataclass(frozen=True)
class Problem:
    """Something wrong at ``position`` (segment number or CSV line)."""

    position: str
    message: str
    severity: Severity = "warning"
    traveller: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "severity": self.severity,
            "traveller": self.traveller,
            "message": self.message,
        }


@dataclass
class RawTraveller:
    """A traveller's fields as read from the file, before any rule is applied."""

    position: int
    location: str
    role: Role = "passenger"
    surname: str = ""
    given_names: str = ""
    sex: str = ""
    birth_date: str = ""
    nationality: str = ""
    document_type: str = ""
    document_number: str = ""
    issuing_state: str = ""
    expiry_date: str = ""
    embarkation: str = ""
    debarkation: str = ""
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Traveller:
    """A traveller ready to screen (see the module invariants)."""

    position: int
    location: str
    role: Role
    surname: str
    given_names: str
    sex: str = "U"
    birth_date: PartialDate | None = None
    nationality: str = ""
    document_type: str = ""
    document_number: str = ""
    issuing_state: str = ""
    expiry_date: PartialDate | None = None
    embarkation: str = ""
    debarkation: str = ""
    duplicate_of: int | None = None

    @property
    def label(self) -> str:
        return f"T{self.position:04d}"

    @property
    def name(self) -> str:
        return f"{self.surname}, {self.given_names}".strip(", ")

    @property
    def has_document(self) -> bool:
        return bool(self.document_number and self.issuing_state)

    @property
    def has_identity(self) -> bool:
        return bool(self.surname or self.given_names) and self.birth_date is not None

    def identity(self) -> tuple[str, ...]:
        """What makes two rows the same traveller: the document, else the name and birth."""
        if self.has_document:
            return ("doc", self.issuing_state, self.document_number)
        key = name_variants(self.surname, self.given_names)[0] if self.surname else ""
        return ("person", key, self.birth_date.iso() if self.birth_date else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "label": self.label,
            "location": self.location,
            "role": self.role,
            "surname": self.surname,
            "given_names": self.given_names,
            "sex": self.sex,
            "birth_date": self.birth_date.iso() if self.birth_date else "",
            "nationality": self.nationality,
            "document_type": self.document_type,
            "document_number": self.document_number,
            "issuing_state": self.issuing_state,
            "expiry_date": self.expiry_date.iso() if self.expiry_date else "",
            "embarkation": self.embarkation,
            "debarkation": self.debarkation,
            "duplicate_of": self.duplicate_of,
        }


@dataclass(frozen=True)
class Rejected:
    """A traveller that was read but cannot be screened, with every reason."""

    position: int
    location: str
    name: str
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "location": self.location,
            "name": self.name,
            "reasons": list(self.reasons),
        }


@dataclass
class Manifest:
    """One manifest: trip details, travellers to screen, rejected ones and problems."""

    format: str  # "paxlst" or "csv"
    sha256: str
    reference: str = ""
    list_type: str = "passengers"
    sender: str = ""
    carrier: str = ""
    transport: str = ""
    departure_port: str = ""
    departure_at: dt.datetime | None = None
    arrival_port: str = ""
    arrival_at: dt.datetime | None = None
    declared_count: int | None = None
    travellers: list[Traveller] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    index: dict[tuple[str, ...], int] = field(default_factory=dict, repr=False)

    def screened(self) -> list[Traveller]:
        """Travellers that need their own queries (a duplicate reuses its first's results)."""
        return [t for t in self.travellers if t.duplicate_of is None]

    def header(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "sha256": self.sha256,
            "reference": self.reference,
            "list_type": self.list_type,
            "sender": self.sender,
            "carrier": self.carrier,
            "transport": self.transport,
            "departure_port": self.departure_port,
            "departure_at": self.departure_at.isoformat() if self.departure_at else "",
            "arrival_port": self.arrival_port,
            "arrival_at": self.arrival_at.isoformat() if self.arrival_at else "",
            "declared_count": self.declared_count,
            "travellers": len(self.travellers),
            "rejected": len(self.rejected),
        }


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def reference_date(manifest: Manifest, today: dt.date) -> dt.date:
    """The date two-digit years are resolved against (see the module docstring)."""
    when = manifest.departure_at or manifest.arrival_at
    return when.date() if when else today


def resolve_birth_date(text: str, reference: dt.date) -> PartialDate:
    """A date of birth as ``YYMMDD`` (century rule), ``CCYYMMDD``, ISO or ``DD/MM/YYYY``."""
    cleaned = text.strip()
    short = _YYMMDD.match(cleaned)
    if short:
        yy, mm, dd = (int(g) for g in short.groups())
        year = resolve_century(yy, reference.year, "birth")
        born = PartialDate(year, mm or None, (dd or None) if mm else None)
        if born.bounds()[0] > reference:
            born = PartialDate(year - 100, born.month, born.day)
        return born
    return _long_date(cleaned, "birth_date")


def resolve_expiry_date(text: str, reference: dt.date) -> PartialDate:
    cleaned = text.strip()
    short = _YYMMDD.match(cleaned)
    if short:
        yy, mm, dd = (int(g) for g in short.groups())
        year = resolve_century(yy, reference.year, "expiry")
        return PartialDate(year, mm or None, (dd or None) if mm else None)
    return _long_date(cleaned, "expiry_date")


def _long_date(text: str, name: str) -> PartialDate:
    long = _CCYYMMDD.match(text)
    if long:
        text = "-".join(long.groups())
    dmy = _DMY.match(text)
    if dmy:
        day, month, year = dmy.groups()
        text = f"{year}-{int(month):02d}-{int(day):02d}"
    try:
        return parse_partial_date(text)
    except InvalidDateError as exc:
        raise TravellerError(exc.message, field=name) from None


def build_traveller(raw: RawTraveller, reference: dt.date) -> tuple[Traveller, list[str]]:
    """Apply the rules to one traveller: the traveller and the warnings (dropped fields)."""
    errors = list(raw.errors)
    warnings: list[str] = []
    surname, given = " ".join(raw.surname.split()), " ".join(raw.given_names.split())
    if surname or given:
        try:
            name_variants(surname, given)
        except NormalisationError as exc:
            errors.append(f"name: {exc}")
    birth: PartialDate | None = None
    if raw.birth_date.strip():
        try:
            birth = resolve_birth_date(raw.birth_date, reference)
        except (TravellerError, InvalidDateError) as exc:
            errors.append(f"birth_date {raw.birth_date!r}: {exc.message}")
    number = state = ""
    if raw.document_number.strip():
        try:
            number = normalise_document_number(raw.document_number)
        except NormalisationError as exc:
            errors.append(f"document_number: {exc}")
        if not raw.issuing_state.strip():
            errors.append("issuing_state: a document number needs its issuing state")
    if raw.issuing_state.strip():
        try:
            state = normalise_country_code(raw.issuing_state)
        except NormalisationError as exc:
            errors.append(f"issuing_state: {exc}")
    if errors:
        raise TravellerError("; ".join(errors))
    if not number and not ((surname or given) and birth is not None):
        raise TravellerError(
            "neither a travel document nor a name with a date of birth",
            hint="the carrier must resend this traveller with the document data",
        )
    sex = raw.sex.strip().upper()[:1] or "U"
    if sex not in SEXES:
        warnings.append(f"sex {raw.sex!r} is not F, M, X or U; recorded as U")
        sex = "U"
    nationality = ""
    if raw.nationality.strip():
        try:
            nationality = nationality_code(raw.nationality)
        except NormalisationError as exc:
            warnings.append(f"nationality dropped: {exc}")
    expiry: PartialDate | None = None
    if raw.expiry_date.strip():
        try:
            expiry = resolve_expiry_date(raw.expiry_date, reference)
        except (TravellerError, InvalidDateError) as exc:
            warnings.append(f"expiry_date dropped: {exc.message}")
    traveller = Traveller(
        position=raw.position,
        location=raw.location,
        role=raw.role,
        surname=surname,
        given_names=given,
        sex=sex,
        birth_date=birth,
        nationality=nationality,
        document_type=raw.document_type.strip().upper(),
        document_number=number,
        issuing_state=state if number else "",
        expiry_date=expiry,
        embarkation=raw.embarkation.strip().upper(),
        debarkation=raw.debarkation.strip().upper(),
    )
    return traveller, warnings


def add_traveller(manifest: Manifest, raw: RawTraveller, reference: dt.date) -> None:
    """Build ``raw`` into ``manifest``: screened, flagged as a duplicate, or rejected."""
    try:
        traveller, warnings = build_traveller(raw, reference)
    except TravellerError as exc:
        name = f"{raw.surname}, {raw.given_names}".strip(", ")
        manifest.rejected.append(Rejected(raw.position, raw.location, name, (exc.message,)))
        manifest.problems.append(Problem(raw.location, exc.message, "error", raw.position))
        return
    for warning in warnings:
        manifest.problems.append(Problem(raw.location, warning, "warning", raw.position))
    first = manifest.index.setdefault(traveller.identity(), traveller.position)
    if first != traveller.position:
        traveller = Traveller(**{**traveller.__dict__, "duplicate_of": first})
        manifest.problems.append(
            Problem(
                raw.location,
                f"traveller {raw.position} repeats traveller {first}; screened once",
                "warning",
                raw.position,
            )
        )
    manifest.travellers.append(traveller)
