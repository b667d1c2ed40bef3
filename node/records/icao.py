"""ICAO Doc 9303 rules: check digits, document numbers, state codes and machine-readable zones.

Why: a passport is matched across borders by hashing (OPRF) a canonical string built from its
number and issuing state. Panama and Mexico must build *the same* string from the same booklet,
whether it was typed from the data page ("AB 123-456"), read from the MRZ ("AB123456<") or
imported from a legacy system. The rules below are that agreement; they are versioned by
:data:`NORMALISATION_VERSION`, which must be bound into every OPRF context and dataset manifest
so keys normalised by different rule editions are never compared. The exact rules are written
down in ``docs/normalisation.md``.

Invariants:
* Normalisation is idempotent and conservative: it removes only what cannot be part of a number
  (case, spaces, hyphens, dots, ``<`` fillers) and replaces Cyrillic/Greek letters that look
  exactly like Latin ones. Letters and digits are never swapped (``O``/``0``, ``I``/``1``):
  Doc 9303 numbers are alphanumeric, so such a "correction" would merge different documents.
* :func:`parse_mrz` verifies every check digit (document number, with TD1 overflow; birth date;
  expiry; TD3 personal number; composite) and raises :class:`MrzError` naming the field.
* ``parse_mrz(make_td3(...))`` and ``parse_mrz(make_td1(...))`` give back the canonical record
  (names that fit the field, dates within the century window).
* Everything that cannot be normalised raises :class:`crypto.errors.NormalisationError`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from crypto.errors import NormalisationError
from node.records.codelists import (
    codelist,
    icao_state_codes,
    iso_alpha2_to_alpha3,
    suggest_codes,
)
from node.records.dates import InvalidDateError, PartialDate, parse_mrz_date, parse_partial_date
from node.records.names import normalise_name

NORMALISATION_VERSION = "icao9303-1"

#: 9 characters in the number field plus up to 13 in the TD1 optional data (the overflow is
#: followed there by its check digit and one filler, within 15 characters).
MAX_DOCUMENT_NUMBER_LENGTH = 22

#: Expiry years are read in [reference - 50, reference + 49]; without a reference year this one
#: is used, i.e. expiry years 1970-2069. Callers in production pass the year of ``now``.
DEFAULT_EXPIRY_REFERENCE_YEAR = 2020

MrzFormat = Literal["TD1", "TD3"]

_WEIGHTS = (7, 3, 1)
_MRZ_LINE_RE = re.compile(r"^[A-Z0-9<]*$")
_SEPARATORS = frozenset(" -.<\u00a0\u2010\u2011\u2012\u2013\u2014\u2212\u30fb\uff0d")

# Cyrillic and Greek capitals (and the Cyrillic small letters that share a Latin shape) that
# are visually identical to a Latin letter in the OCR-B set. Never letter<->digit.
_HOMOGLYPHS = str.maketrans(
    {
        "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
        "С": "C", "Т": "T", "Х": "X", "а": "A", "е": "E", "о": "O", "р": "P", "с": "C",
        "х": "X", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K",
        "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    }
)  # fmt: skip


class MrzError(NormalisationError):
    """An MRZ that does not verify; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"MRZ {field}: {message}")
        self.field = field


# --------------------------------------------------------------------------- check digits


def _char_value(char: str) -> int:
    if "0" <= char <= "9":
        return ord(char) - ord("0")
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    if char == "<":
        return 0
    raise NormalisationError(f"{char!r} is not an MRZ character (A-Z, 0-9, '<')")


def check_digit(field: str) -> str:
    """The Doc 9303 check digit: weights 7-3-1, digits as such, A=10..Z=35, '<'=0, mod 10."""
    total = sum(_char_value(c) * _WEIGHTS[i % 3] for i, c in enumerate(field))
    return str(total % 10)


# --------------------------------------------------------------------------- numbers and states


def normalise_document_number(number: str) -> str:
    """The canonical form of a travel-document number (see ``docs/normalisation.md``)."""
    if not isinstance(number, str):
        raise NormalisationError(f"document number must be text, got {type(number).__name__}")
    text = unicodedata.normalize("NFKC", number).translate(_HOMOGLYPHS).upper()
    kept = [c for c in text if c not in _SEPARATORS and not c.isspace()]
    if not kept:
        raise NormalisationError(f"document number {number!r} is empty after removing fillers")
    for position, char in enumerate(kept):
        if not ("A" <= char <= "Z" or "0" <= char <= "9"):
            raise NormalisationError(
                f"document number {number!r} contains {char!r} (U+{ord(char):04X}); "
                f"only letters A-Z and digits are allowed (character {position + 1})"
            )
    if len(kept) > MAX_DOCUMENT_NUMBER_LENGTH:
        raise NormalisationError(
            f"document number {number!r} has {len(kept)} characters; "
            f"at most {MAX_DOCUMENT_NUMBER_LENGTH} are allowed"
        )
    return "".join(kept)


def _known_three_letter_codes() -> list[str]:
    icao = icao_state_codes()
    return [*codelist("nationality"), *icao.special, *icao.historic, *icao.legacy]


def normalise_country_code(code: str) -> str:
    """The canonical three-letter state code (ISO 3166-1 alpha-3 or ICAO)."""
    if not isinstance(code, str):
        raise NormalisationError(f"state code must be text, got {type(code).__name__}")
    text = unicodedata.normalize("NFKC", code).strip().upper().rstrip("<").strip()
    if not re.fullmatch(r"[A-Z]{1,3}", text):
        raise NormalisationError(f"state code {code!r} must be 1-3 letters (e.g. 'PAN', 'D<<')")
    icao = icao_state_codes()
    if text in icao.aliases:
        return icao.aliases[text]
    if len(text) == 2:
        alpha3 = iso_alpha2_to_alpha3().get(text)
        if alpha3 is None:
            raise NormalisationError(f"state code {code!r} is not an ISO 3166-1 alpha-2 code")
        return alpha3
    if text in icao.legacy:
        return icao.legacy[text]
    if text in codelist("nationality") or text in icao.special or text in icao.historic:
        return text
    close = suggest_codes(text, _known_three_letter_codes())
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise NormalisationError(f"state code {code!r} is neither ISO 3166-1 nor ICAO{hint}")


def nationality_code(code: str) -> str:
    """The regional ``nationality`` code for a state code read from a document.

    British ICAO codes become ``GBR``; organisation codes (UNO, EUE...) are not nationalities.
    """
    canonical = normalise_country_code(code)
    canonical = icao_state_codes().nationality_of.get(canonical, canonical)
    if canonical not in codelist("nationality"):
        raise NormalisationError(
            f"{canonical!r} is a valid document code but not a nationality; record the "
            "holder's nationality (or XXX with nationality basis 'unknown')"
        )
    return canonical


def document_key(number: str, issuing_state: str) -> str:
    """The canonical string hashed for document matching, e.g. ``"PAN|AB1234567"``."""
    return f"{normalise_country_code(issuing_state)}|{normalise_document_number(number)}"


def document_type_for(mrz_document_code: str) -> str:
    """The regional ``document_type`` code for an MRZ document code (``P<``, ``ID``, ``V<``)."""
    first = mrz_document_code.strip()[:1].upper()
    if first == "P":
        return "P"
    if first in ("I", "A", "C"):
        return "I"
    if first == "V":
        return "V"
    return "O"


# --------------------------------------------------------------------------- MRZ records


@dataclass(frozen=True)
class MrzRecord:
    """The canonical content of a TD1 or TD3 machine-readable zone."""

    document_type: str
    issuing_state: str
    surname: str
    given_names: str
    document_number: str
    nationality: str
    birth_date: PartialDate
    sex: str
    expiry_date: PartialDate | None
    optional_data: str = ""
    optional_data_2: str = ""
    format: MrzFormat = "TD3"

    def document_key(self) -> str:
        return document_key(self.document_number, self.issuing_state)


def _verify(field: str, data: str, digit: str, *, filler_allowed: bool = False) -> None:
    if filler_allowed and digit == "<" and set(data) <= {"<"}:
        return
    expected = check_digit(data)
    if digit != expected:
        raise MrzError(field, f"check digit is {digit!r}, expected {expected!r} for {data!r}")


def _lines(text: str) -> list[str]:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) == 1 and len(lines[0]) in (88, 90):
        width = 44 if len(lines[0]) == 88 else 30
        lines = [lines[0][i : i + width] for i in range(0, len(lines[0]), width)]
    for number, line in enumerate(lines, start=1):
        if not _MRZ_LINE_RE.match(line):
            position = next(i for i, c in enumerate(line) if not _MRZ_LINE_RE.match(c))
            raise MrzError(
                f"line {number}",
                f"{line[position]!r} at position {position + 1} is not an MRZ character "
                "(A-Z, 0-9, '<')",
            )
    return lines


def _names(field: str) -> tuple[str, str]:
    primary, _, secondary = field.partition("<<")
    surname = " ".join(primary.replace("<", " ").split())
    given = " ".join(secondary.replace("<", " ").split())
    if not surname:
        raise MrzError("name", "the primary identifier (surname) is empty")
    return surname, given


def _state(field: str, raw: str) -> str:
    try:
        return normalise_country_code(raw)
    except NormalisationError as exc:
        raise MrzError(field, str(exc)) from exc


def _number(raw: str) -> str:
    try:
        return normalise_document_number(raw)
    except NormalisationError as exc:
        raise MrzError("document_number", str(exc)) from exc


def _document_code(raw: str) -> str:
    if not re.fullmatch(r"[A-Z][A-Z<]", raw):
        raise MrzError("document_type", f"{raw!r} must be a letter followed by a letter or '<'")
    return raw.rstrip("<")


def _sex(raw: str) -> str:
    if raw in ("F", "M"):
        return raw
    if raw == "<":
        return "X"
    raise MrzError("sex", f"{raw!r} must be 'F', 'M' or '<'")


def _dates(
    birth_raw: str, expiry_raw: str, reference_year: int | None
) -> tuple[PartialDate, PartialDate | None]:
    expiry: PartialDate | None = None
    if expiry_raw != "<<<<<<":
        ref = DEFAULT_EXPIRY_REFERENCE_YEAR if reference_year is None else reference_year
        try:
            expiry = parse_mrz_date(expiry_raw, reference_year=ref, kind="expiry")
        except InvalidDateError as exc:
            raise MrzError("expiry_date", str(exc)) from exc
    candidates = [y for y in (reference_year, expiry.year if expiry else None) if y is not None]
    if not candidates:
        raise MrzError("birth_date", "no expiry date and no reference year to resolve the century")
    try:
        birth = parse_mrz_date(birth_raw, reference_year=min(candidates), kind="birth")
    except InvalidDateError as exc:
        raise MrzError("birth_date", str(exc)) from exc
    return birth, expiry


def _parse_td3(l1: str, l2: str, reference_year: int | None) -> MrzRecord:
    if l2[9] == "<":
        raise MrzError("document_number", "check digit is '<'; TD3 has no number overflow")
    _verify("document_number", l2[0:9], l2[9])
    _verify("birth_date", l2[13:19], l2[19])
    _verify("expiry_date", l2[21:27], l2[27], filler_allowed=True)
    _verify("optional_data", l2[28:42], l2[42], filler_allowed=True)
    _verify("composite", l2[0:10] + l2[13:20] + l2[21:43], l2[43])
    surname, given = _names(l1[5:44])
    birth, expiry = _dates(l2[13:19], l2[21:27], reference_year)
    return MrzRecord(
        document_type=_document_code(l1[0:2]),
        issuing_state=_state("issuing_state", l1[2:5]),
        surname=surname,
        given_names=given,
        document_number=_number(l2[0:9]),
        nationality=_state("nationality", l2[10:13]),
        birth_date=birth,
        sex=_sex(l2[20]),
        expiry_date=expiry,
        optional_data=l2[28:42].rstrip("<"),
        format="TD3",
    )


def _parse_td1(l1: str, l2: str, l3: str, reference_year: int | None) -> MrzRecord:
    optional = l1[15:30]
    if l1[14] == "<":
        end = optional.find("<")
        overflow = optional if end < 0 else optional[:end]
        if len(overflow) < 2 or "<" in l1[5:14]:
            raise MrzError(
                "document_number",
                "check digit is '<' but the optional data holds no overflow and check digit",
            )
        number_raw = l1[5:14] + overflow[:-1]
        _verify("document_number", number_raw, overflow[-1])
        optional = "" if end < 0 else optional[end + 1 :]
    else:
        number_raw = l1[5:14]
        _verify("document_number", number_raw, l1[14])
    _verify("birth_date", l2[0:6], l2[6])
    _verify("expiry_date", l2[8:14], l2[14], filler_allowed=True)
    _verify("composite", l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29], l2[29])
    surname, given = _names(l3)
    birth, expiry = _dates(l2[0:6], l2[8:14], reference_year)
    return MrzRecord(
        document_type=_document_code(l1[0:2]),
        issuing_state=_state("issuing_state", l1[2:5]),
        surname=surname,
        given_names=given,
        document_number=_number(number_raw),
        nationality=_state("nationality", l2[15:18]),
        birth_date=birth,
        sex=_sex(l2[7]),
        expiry_date=expiry,
        optional_data=optional.rstrip("<"),
        optional_data_2=l2[18:29].rstrip("<"),
        format="TD1",
    )


def parse_mrz(text: str, *, reference_year: int | None = None) -> MrzRecord:
    """Parse and verify a TD1 (3 x 30) or TD3 (2 x 44) MRZ.

    ``reference_year`` (the year of ``now``) fixes the centuries: expiry within 50 years of it,
    birth not after it nor after the expiry year. Without it, expiry years are read in
    1970-2069 and the birth century is resolved against the expiry year.
    """
    lines = _lines(text)
    if len(lines) == 2 and all(len(line) == 44 for line in lines):
        return _parse_td3(lines[0], lines[1], reference_year)
    if len(lines) == 3 and all(len(line) == 30 for line in lines):
        return _parse_td1(lines[0], lines[1], lines[2], reference_year)
    shape = " + ".join(str(len(line)) for line in lines) or "empty"
    raise MrzError(
        "layout", f"lines of {shape} characters are neither TD1 (3 x 30) nor TD3 (2 x 44)"
    )


# --------------------------------------------------------------------------- MRZ builders


def _field(name: str, value: str, width: int) -> str:
    text = value.upper().rstrip("<")
    if not _MRZ_LINE_RE.match(text) or len(text) > width:
        raise MrzError(name, f"{value!r} must be at most {width} characters of A-Z, 0-9 and '<'")
    return text.ljust(width, "<")


def _name_field(surname: str, given_names: str, width: int) -> str:
    primary = normalise_name(surname).replace(" ", "<")
    secondary = normalise_name(given_names).replace(" ", "<")
    if not primary:
        raise MrzError("name", "the surname (primary identifier) is empty")
    full = primary + ("<<" + secondary if secondary else "")
    return full[:width].ljust(width, "<")


def _date_text(field: str, value: PartialDate | str | None, *, allow_none: bool) -> str:
    if value is None:
        if not allow_none:
            raise MrzError(field, "is required")
        return "<<<<<<"
    if isinstance(value, str):
        try:
            value = parse_partial_date(value)
        except InvalidDateError as exc:
            raise MrzError(field, str(exc)) from exc
    return value.mrz()


def _sex_char(sex: str) -> str:
    if sex in ("F", "M"):
        return sex
    if sex in ("X", "<"):
        return "<"
    raise MrzError("sex", f"{sex!r} cannot be written in an MRZ; use 'F', 'M' or 'X'")


def _digit_or_filler(data: str) -> str:
    """``data`` followed by its check digit, or by ``<`` when it is all fillers."""
    return data + ("<" if set(data) <= {"<"} else check_digit(data))


def make_td3(
    *,
    issuing_state: str,
    surname: str,
    given_names: str,
    document_number: str,
    nationality: str,
    birth_date: PartialDate | str,
    sex: str,
    expiry_date: PartialDate | str | None,
    optional_data: str = "",
    document_type: str = "P",
) -> str:
    """Build a valid TD3 (passport) MRZ, two lines of 44 characters joined by a newline."""
    number = _number(document_number)
    if len(number) > 9:
        raise MrzError("document_number", f"{number!r} is longer than 9; TD3 has no overflow")
    code = _field("document_type", document_type, 2)
    line1 = code + _state("issuing_state", issuing_state) + _name_field(surname, given_names, 39)
    number_field = number.ljust(9, "<")
    birth = _date_text("birth_date", birth_date, allow_none=False)
    expiry = _date_text("expiry_date", expiry_date, allow_none=True)
    personal = _field("optional_data", optional_data, 14)
    line2 = number_field + check_digit(number_field) + _state("nationality", nationality)
    line2 += birth + check_digit(birth) + _sex_char(sex)
    line2 += _digit_or_filler(expiry) + _digit_or_filler(personal)
    line2 += check_digit(line2[0:10] + line2[13:20] + line2[21:43])
    return line1 + "\n" + line2


def make_td1(
    *,
    issuing_state: str,
    surname: str,
    given_names: str,
    document_number: str,
    nationality: str,
    birth_date: PartialDate | str,
    sex: str,
    expiry_date: PartialDate | str | None,
    optional_data: str = "",
    optional_data_2: str = "",
    document_type: str = "I",
) -> str:
    """Build a valid TD1 (card) MRZ, three lines of 30; numbers over 9 use the overflow."""
    number = _number(document_number)
    extra = optional_data.upper().rstrip("<")
    if len(number) > 9:
        overflow = number[9:] + check_digit(number) + "<"
        optional = _field("optional_data", overflow + extra, 15)
        number_part = number[:9] + "<"
    else:
        optional = _field("optional_data", extra, 15)
        number_part = number.ljust(9, "<") + check_digit(number.ljust(9, "<"))
    code = _field("document_type", document_type, 2)
    line1 = code + _state("issuing_state", issuing_state) + number_part + optional
    birth = _date_text("birth_date", birth_date, allow_none=False)
    expiry = _date_text("expiry_date", expiry_date, allow_none=True)
    line2 = birth + check_digit(birth) + _sex_char(sex) + _digit_or_filler(expiry)
    line2 += _state("nationality", nationality) + _field("optional_data_2", optional_data_2, 11)
    line2 += check_digit(line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29])
    line3 = _name_field(surname, given_names, 30)
    return "\n".join((line1, line2, line3))


def make_mrz(record: MrzRecord) -> str:
    """The MRZ of ``record`` in its own format."""
    common = {
        "issuing_state": record.issuing_state,
        "surname": record.surname,
        "given_names": record.given_names,
        "document_number": record.document_number,
        "nationality": record.nationality,
        "sex": record.sex,
        "optional_data": record.optional_data,
        "document_type": record.document_type,
    }
    if record.format == "TD1":
        return make_td1(
            **common,
            birth_date=record.birth_date,
            expiry_date=record.expiry_date,
            optional_data_2=record.optional_data_2,
        )
    if record.optional_data_2:
        raise MrzError("optional_data_2", "TD3 has no second optional data field")
    return make_td3(**common, birth_date=record.birth_date, expiry_date=record.expiry_date)
