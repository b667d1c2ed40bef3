"""Field specifications of the local datasets: the machine form of the "instructivo de llenado".

Why: every member fills the same seven CSV layouts (encounters, travel documents, document
alerts, persons of interest, biometric templates, aggregate matrices, consular directory). The
importer validates rows against these specs, the synthetic generator writes them, and
``docs/data-dictionary.md`` is generated from them (``scripts/gen_data_dictionary.py``), so the
three can never disagree.

Invariants:
* Specs are immutable; ``spec.columns`` is the exact CSV header order.
* ``spec.key_fields`` is the natural key used for idempotent re-import: importing a file twice
  replaces rows with the same key instead of duplicating them.
* :func:`validate_row` returns every problem found (an empty list means valid);
  :func:`check_row` raises :class:`~node.errors.InvalidArgumentError` naming the first bad
  column. Neither changes the row; normalisation (ICAO numbers, names) is the importer's job.
* Empty text means "not recorded". In ``codes`` columns the code ``none`` ("ninguna") is an
  explicit answer and may not be combined with other codes.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, Literal

from crypto.errors import NormalisationError
from node.errors import InvalidArgumentError
from node.records.codelists import codelist
from node.records.dates import InvalidDateError, parse_partial_date
from node.records.icao import normalise_country_code, normalise_document_number
from node.records.names import normalise_name

FieldType = Literal[
    "str", "int", "date", "partial_date", "datetime", "code", "codes", "float_vector", "bool"
]
Check = Literal["document_number", "state", "name"]

TEMPLATE_DIMENSION = 128
PROCEDURES = (
    "passport_issue", "travel_document", "identity_confirmation", "repatriation_support",
    "civil_registry", "visa",
)  # fmt: skip
ALERT_SOURCES = ("inspection", "issuing_state", "holder_report", "interpol_sltd", "partner_country")
POI_REASONS = (
    "migrant_smuggling", "trafficking_in_persons", "document_fraud", "facilitation",
    "transport_of_migrants",
)  # fmt: skip

_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INT_RE = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class Field:
    """One CSV column. ``codelist`` names a regional code list; ``choices`` is a closed set for
    code columns that have no regional list; ``check`` applies a normalisation rule."""

    name: str
    type: FieldType
    required: bool
    codelist: str | None = None
    max_length: int | None = None
    description_es: str = ""
    description_en: str = ""
    example: str = ""
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    check: Check | None = None
    dimension: int | None = None
    minimum: int | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its CSV file, columns in header order, and natural key."""

    name: str
    title_es: str
    title_en: str
    description_es: str
    description_en: str
    fields: tuple[Field, ...]
    key_fields: tuple[str, ...]

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names) or not set(self.key_fields) <= set(names):
            raise ValueError(f"dataset {self.name}: duplicate columns or unknown key fields")

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def filename(self) -> str:
        return f"{self.name}.csv"

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


def _f(
    name: str, type_: FieldType, required: bool, es: str, en: str, example: str, **kw: Any
) -> Field:
    return Field(name, type_, required, description_es=es, description_en=en, example=example,
                 **kw)  # fmt: skip


_RECORD_ID = _f("record_id", "str", True, "Identificador único del registro en el sistema "
                "nacional; no cambia entre cargas.", "Unique identifier of the record in the "
                "national system; stable across loads.", "PANE000000123", max_length=40,
                pattern=r"^[A-Za-z0-9._:/-]+$")  # fmt: skip
_PERSON_ID = _f("person_id", "str", True, "Identificador local de la persona (enlaza eventos, "
                "documentos y plantillas); nunca sale del nodo.", "Local person identifier "
                "(links events, documents and templates); never leaves the node.",
                "PANP00000042", max_length=40, pattern=r"^[A-Za-z0-9._:/-]+$")  # fmt: skip
_SURNAME = _f("surname", "str", True, "Apellido(s) tal como constan en el registro o documento.",
              "Surname(s) as written in the record or document.", "Jean-Baptiste",
              max_length=80, check="name")  # fmt: skip
_GIVEN = _f("given_names", "str", False, "Nombre(s). Vacío si la persona tiene un solo nombre.",
            "Given name(s). Empty for persons with a single name.", "Marie Nadège",
            max_length=80, check="name")  # fmt: skip
_BIRTH = _f("birth_date", "partial_date", False, "Fecha de nacimiento AAAA-MM-DD; AAAA-MM o AAAA "
            "(o 00 en las partes desconocidas) si solo se conoce en parte.", "Date of birth "
            "YYYY-MM-DD; YYYY-MM or YYYY (or 00 for unknown parts) when partly known.",
            "1994-07")  # fmt: skip
_NAT = _f("nationality", "code", True, "Nacionalidad registrada (ISO 3166 alfa-3; XXX si es "
          "desconocida).", "Recorded nationality (ISO 3166 alpha-3; XXX when unknown).", "HTI",
          codelist="nationality")  # fmt: skip
_SEX = _f("sex", "code", True, "Sexo: F, M, X (no especificado) o U (no registrado).",
          "Sex: F, M, X (unspecified) or U (not recorded).", "F", codelist="sex")  # fmt: skip
_DOC_NUMBER = _f("document_number", "str", True, "Número del documento; se normaliza según OACI "
                 "9303 (mayúsculas, sin espacios ni guiones) al importar.", "Document number; "
                 "normalised by ICAO 9303 rules (upper case, no spaces or hyphens) on import.",
                 "AB1234567", max_length=30, check="document_number")  # fmt: skip
_STATE = _f("issuing_state", "str", True, "Estado emisor del documento (código OACI de tres "
            "letras).", "Issuing state of the document (ICAO three-letter code).", "HTI",
            max_length=3, check="state")  # fmt: skip


def _optional(field: Field, **changes: Any) -> Field:
    return replace(field, required=False, **changes)


ENCOUNTERS = DatasetSpec(
    "encounters", "Eventos migratorios", "Migration events",
    "Un registro por evento (ingreso irregular, aseguramiento, detención, deportación, retorno "
    "asistido, varado, solicitud y resolución de asilo) de una persona extrarregional.",
    "One row per event (irregular entry, encounter, detention, deportation, assisted return, "
    "stranded, asylum application and decision) of an extra-regional migrant.",
    (
        _RECORD_ID, _PERSON_ID,
        _f("event_type", "code", True, "Tipo de evento.", "Event type.", "irregular_entry",
           codelist="event_type"),
        _f("event_date", "date", True, "Fecha del evento (AAAA-MM-DD).",
           "Date of the event (YYYY-MM-DD).", "2023-09-14"),
        _f("border_post", "str", False, "Código local del puesto fronterizo, estación o "
           "aeropuerto (se traduce con el cuadro de equivalencias).", "Local code of the border "
           "post, station or airport (translated by the equivalence table).", "ERM-LB",
           max_length=32),
        _NAT,
        _f("nationality_basis", "code", True, "Fundamento de la nacionalidad registrada.",
           "Basis of the recorded nationality.", "declared", codelist="nationality_basis"),
        _SEX, _BIRTH,
        _f("age_group", "code", True, "Grupo de edad a la fecha del evento (_U si se desconoce).",
           "Age group on the event date (_U when unknown).", "Y25T34", codelist="age_group"),
        _f("care_provided", "codes", False, "Atención brindada, códigos separados por ';'.",
           "Care provided, codes separated by ';'.", "food;health", codelist="care"),
        _f("vulnerabilities", "codes", False, "Condiciones de vulnerabilidad, separadas por ';'.",
           "Vulnerability flags, separated by ';'.", "pregnant", codelist="vulnerability"),
        _optional(_DOC_NUMBER, description_es="Número del documento presentado, tal como se "
                  "registró; vacío si no presentó documento.", description_en="Number of the "
                  "document shown, as recorded; empty when none was shown."),
        _f("document_country", "str", False, "Estado emisor del documento presentado.",
           "Issuing state of the document shown.", "HTI", max_length=3, check="state"),
        _SURNAME, _GIVEN,
    ),
    ("record_id",),
)  # fmt: skip

TRAVEL_DOCUMENTS = DatasetSpec(
    "travel_documents", "Documentos de viaje", "Travel documents",
    "Documentos de viaje o de identidad vistos por la autoridad, con los datos de la zona de "
    "lectura mecánica (nombres en mayúsculas sin tildes).",
    "Travel or identity documents seen by the authority, with the data of the machine-readable "
    "zone (names in upper case without accents).",
    (
        _RECORD_ID, _PERSON_ID,
        _f("document_type", "code", True, "Tipo de documento: P pasaporte, I documento de "
           "identidad, V visa, O otro.", "Document type: P passport, I identity card, V visa, "
           "O other.", "P", codelist="document_type"),
        _DOC_NUMBER, _STATE, _NAT, _SURNAME, _GIVEN,
        replace(_BIRTH, required=True),
        _f("sex", "code", True, "Sexo según el documento.", "Sex as on the document.", "M",
           codelist="sex"),
        _f("expiry_date", "date", False, "Fecha de vencimiento.", "Expiry date.", "2031-02-28"),
        _f("first_seen_date", "date", True, "Fecha en que el documento fue visto por primera vez "
           "en el país.", "Date the document was first seen in the country.", "2023-09-14"),
    ),
    ("record_id",),
)  # fmt: skip

DOCUMENT_ALERTS = DatasetSpec(
    "document_alerts", "Alertas sobre documentos", "Document alerts",
    "Documentos extraviados, robados, falsos, alterados u obtenidos fraudulentamente.",
    "Documents lost, stolen, counterfeit, forged or fraudulently obtained.",
    (
        _RECORD_ID,
        _f("alert_type", "code", True, "Tipo de alerta.", "Alert type.", "counterfeit",
           codelist="alert_type"),
        _DOC_NUMBER, _STATE,
        _f("reported_date", "date", True, "Fecha de la alerta.", "Date of the alert.",
           "2022-11-03"),
        _f("source", "code", True, "Origen de la alerta: inspection (control migratorio), "
           "issuing_state (Estado emisor), holder_report (denuncia del titular), interpol_sltd, "
           "partner_country (otro país miembro).", "Source: inspection, issuing_state, "
           "holder_report, interpol_sltd, partner_country.", "inspection",
           choices=ALERT_SOURCES),
    ),
    ("record_id",),
)  # fmt: skip

PERSONS_OF_INTEREST = DatasetSpec(
    "persons_of_interest", "Personas de interés", "Persons of interest",
    "Personas investigadas o procesadas por tráfico ilícito de migrantes y delitos conexos.",
    "Persons investigated or prosecuted for migrant smuggling and related offences.",
    (
        _RECORD_ID, _SURNAME, _GIVEN, _BIRTH, _optional(_NAT),
        _optional(_DOC_NUMBER), _optional(_STATE),
        _f("reason", "code", True, "Motivo: migrant_smuggling (tráfico ilícito de migrantes), "
           "trafficking_in_persons (trata), document_fraud (fraude documental), facilitation "
           "(facilitación), transport_of_migrants (transporte).", "Reason: migrant smuggling, "
           "trafficking in persons, document fraud, facilitation, transport of migrants.",
           "migrant_smuggling", choices=POI_REASONS),
        _f("since_date", "date", True, "Fecha desde la que la persona es de interés.",
           "Date since which the person is of interest.", "2021-06-01"),
    ),
    ("record_id",),
)  # fmt: skip

BIOMETRIC_TEMPLATES = DatasetSpec(
    "biometric_templates", "Plantillas biométricas", "Biometric templates",
    "Plantillas faciales (vectores de 128 dimensiones) de una fracción de las personas.",
    "Face templates (128-dimensional vectors) of a fraction of the persons.",
    (
        _RECORD_ID, _PERSON_ID,
        _f("modality", "code", True, "Modalidad biométrica.", "Biometric modality.", "face",
           choices=("face",)),
        _f("capture_date", "date", True, "Fecha de captura.", "Capture date.", "2023-09-14"),
        _f("vector", "float_vector", True, "Vector de 128 float32 little-endian codificado en "
           "base64 (512 bytes, 684 caracteres); nunca sale del nodo.", "128 little-endian "
           "float32 values in base64 (512 bytes, 684 characters); never leaves the node.",
           "AACAPwAAAL8…", dimension=TEMPLATE_DIMENSION),
    ),
    ("record_id",),
)  # fmt: skip

MATRICES = DatasetSpec(
    "matrices", "Cuadros estadísticos", "Statistical matrices",
    "Totales agregados para los países que solo llevan cuadros; una dimensión vacía significa "
    "'todas' (total).",
    "Aggregate totals for countries that keep only tables; an empty dimension means 'all' "
    "(total).",
    (
        _f("matrix_id", "str", True, "Identificador del cuadro.", "Matrix identifier.",
           "eventos_nacionalidad", max_length=60, pattern=r"^[a-z0-9_]+$"),
        _f("period", "str", True, "Periodo: AAAA, AAAAQn (trimestre) o AAAA-MM.",
           "Period: YYYY, YYYYQn (quarter) or YYYY-MM.", "2023Q3",
           pattern=r"^[0-9]{4}(Q[1-4]|-(0[1-9]|1[0-2]))?$"),
        _f("event_type", "code", True, "Tipo de evento.", "Event type.", "encounter",
           codelist="event_type"),
        _NAT,
        _f("nationality_basis", "code", False, "Fundamento de la nacionalidad (vacío: todos).",
           "Nationality basis (empty: all).", "", codelist="nationality_basis"),
        _f("sex", "code", False, "Sexo (vacío: todos).", "Sex (empty: all).", "F",
           codelist="sex"),
        _f("age_group", "code", False, "Grupo de edad (vacío: todos).", "Age group (empty: all).",
           "Y18T24", codelist="age_group"),
        _f("value", "int", True, "Número de eventos.", "Number of events.", "137", minimum=0),
    ),
    ("matrix_id", "period", "event_type", "nationality", "nationality_basis", "sex",
     "age_group"),
)  # fmt: skip

CONSULAR_DIRECTORY = DatasetSpec(
    "consular_directory", "Directorio consular", "Consular directory",
    "Consulados de los países de origen acreditados en el país (información pública).",
    "Consulates of origin countries accredited in the country (public information).",
    (
        _f("origin_country", "code", True, "País que representa el consulado.",
           "Country the consulate represents.", "IND", codelist="nationality"),
        _f("host_country", "code", True, "País miembro donde está acreditado.",
           "Member country where it is accredited.", "PAN", codelist="member"),
        _f("city", "str", True, "Ciudad de la sede (puede estar en otro país si la acreditación "
           "es concurrente).", "City of the office (may be abroad for concurrent "
           "accreditation).", "Ciudad de Panamá", max_length=60),
        _f("consulate_name", "str", True, "Nombre oficial.", "Official name.",
           "Embajada de India en Panamá — Sección Consular", max_length=120),
        _f("address", "str", False, "Dirección.", "Address.", "Calle 50, piso 12", max_length=160),
        _f("phone", "str", False, "Teléfono en formato internacional.",
           "Phone in international format.", "+507 263 9001", max_length=30,
           pattern=r"^\+[0-9]{1,3}( [0-9]{2,5}){1,4}$"),
        _f("email", "str", False, "Correo electrónico.", "E-mail.", "consular.pty@mea.example",
           max_length=80, pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$"),
        _f("procedures", "codes", True, "Trámites que atiende, separados por ';'.",
           "Procedures handled, separated by ';'.", "passport_issue;travel_document",
           choices=PROCEDURES),
    ),
    ("origin_country", "host_country", "city", "consulate_name"),
)  # fmt: skip

DATASETS: Mapping[str, DatasetSpec] = MappingProxyType(
    {
        s.name: s
        for s in (ENCOUNTERS, TRAVEL_DOCUMENTS, DOCUMENT_ALERTS, PERSONS_OF_INTEREST,
                  BIOMETRIC_TEMPLATES, MATRICES, CONSULAR_DIRECTORY)
    }
)  # fmt: skip


@functools.cache
def _allowed(field: Field) -> frozenset[str]:
    return frozenset(codelist(field.codelist)) if field.codelist else frozenset(field.choices)


def _value_problem(field: Field, value: str) -> str | None:
    if field.max_length is not None and len(value) > field.max_length:
        return f"{len(value)} characters; at most {field.max_length}"
    if field.pattern is not None and not re.fullmatch(field.pattern, value):
        return f"{value!r} does not have the expected form (e.g. {field.example!r})"
    kind = field.type
    if kind == "int":
        if not _INT_RE.fullmatch(value):
            return f"{value!r} is not a whole number"
        if field.minimum is not None and int(value) < field.minimum:
            return f"{value} is below {field.minimum}"
    elif kind == "bool" and value not in ("true", "false"):
        return f"{value!r} must be 'true' or 'false'"
    elif kind == "date":
        try:
            if not _DATE_RE.fullmatch(value):
                raise ValueError
            date.fromisoformat(value)
        except ValueError:
            return f"{value!r} is not a date YYYY-MM-DD"
    elif kind == "datetime":
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return f"{value!r} is not an ISO 8601 date-time"
        if moment.tzinfo is None:
            return f"{value!r} has no time zone (add Z or an offset)"
    elif kind == "partial_date":
        if not value.isascii():
            return f"{value!r} is not a date YYYY, YYYY-MM or YYYY-MM-DD"
        try:
            parse_partial_date(value)
        except InvalidDateError as exc:
            return exc.message
    elif kind == "code":
        if value not in _allowed(field):
            return f"{value!r} is not a code of {field.codelist or 'the allowed values'}"
    elif kind == "codes":
        return _codes_problem(field, value)
    elif kind == "float_vector":
        return _vector_problem(field, value)
    return _check_problem(field, value)


def _codes_problem(field: Field, value: str) -> str | None:
    parts = value.split(";")
    allowed = _allowed(field)
    bad = [p for p in parts if p not in allowed]
    if bad:
        return f"{bad[0]!r} is not a code of {field.codelist or 'the allowed values'}"
    if len(set(parts)) != len(parts):
        return "a code is repeated"
    if "none" in parts and len(parts) > 1:
        return "'none' cannot be combined with other codes"
    return None


def _vector_problem(field: Field, value: str) -> str | None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return "not valid base64"
    dim = field.dimension or 0
    if len(raw) != 4 * dim:
        return f"{len(raw)} bytes; expected {4 * dim} ({dim} float32)"
    if not all(math.isfinite(x) for x in struct.unpack(f"<{dim}f", raw)):
        return "contains NaN or infinite values"
    return None


def _check_problem(field: Field, value: str) -> str | None:
    try:
        if field.check == "document_number":
            normalise_document_number(value)
        elif field.check == "state":
            normalise_country_code(value)
        elif field.check == "name" and not normalise_name(value):
            return f"{value!r} has no letters"
    except NormalisationError as exc:
        return str(exc)
    return None


def validate_row(spec: DatasetSpec, row: Mapping[str, str]) -> list[str]:
    """Every problem of ``row`` as ``"column: problem"``; an empty list means the row is valid."""
    problems = [f"{name}: unknown column" for name in row if name not in spec.columns]
    for field in spec.fields:
        value = row.get(field.name)
        if value is None:
            problems.append(f"{field.name}: column missing")
        elif value == "":
            if field.required:
                problems.append(f"{field.name}: required but empty")
        else:
            problem = _value_problem(field, value)
            if problem:
                problems.append(f"{field.name}: {problem}")
    return problems


def check_row(spec: DatasetSpec, row: Mapping[str, str]) -> None:
    """Raise :class:`InvalidArgumentError` (with ``field``) for the first problem of ``row``."""
    problems = validate_row(spec, row)
    if problems:
        column, _, message = problems[0].partition(": ")
        raise InvalidArgumentError(
            message,
            field=f"{spec.name}.{column}",
            hint=f"see the '{spec.name}' section of docs/data-dictionary.md",
        )


def check_header(spec: DatasetSpec, header: list[str]) -> None:
    """Raise unless ``header`` has exactly the spec's columns (any order)."""
    missing = [c for c in spec.columns if c not in header]
    extra = [c for c in header if c not in spec.columns]
    if missing or extra or len(set(header)) != len(header):
        raise InvalidArgumentError(
            f"header has missing {missing}, unknown {extra} or repeated columns",
            field=f"{spec.name}.header",
            hint=f"the header of {spec.filename} is: {','.join(spec.columns)}",
        )
