"""UN/EDIFACT PAXLST (advance passenger information) read into a :class:`Manifest`.

Why: airlines and shipping lines send passenger and crew lists as PAXLST messages (directories
D.02B/D.05B, as profiled by the WCO/IATA/ICAO API guidelines). The EDIFACT syntax (service
characters, release character, components) is read by ``pydifact``; this module interprets the
PAXLST segments (:mod:`node.manifests.paxlst_writer` writes them)::

    UNA UNB [UNG] UNH BGM NAD+MS TDT LOC+125 DTM+189 LOC+87 DTM+232
        { NAD+FL|FM|DDT|DDU ATT+2 DTM+329 LOC+22/178 NAT+2 [RFF] DOC DTM+36 LOC+91 } CNT UNT
    [UNE] UNZ

Positions are segment numbers counted from UNB (= 1), the UNA service string advice excluded.

Invariants:
* Structurally broken input raises :class:`ManifestError` and nothing is screened: not an
  interchange (no UNB), no PAXLST message, a terminator that does not end the segments, a
  message without UNT or an interchange without UNZ (truncated). The error names the position.
* Declared counts that disagree with what was read (``UNT`` segments, ``CNT`` travellers,
  ``UNZ`` messages) raise :class:`ManifestError` too. A lost segment terminator merges two
  segments, which can move one traveller's date of birth or passport onto another or drop a
  traveller; the segment count is the only reliable witness when the file has no line breaks,
  and which travellers were merged cannot be known, so the whole manifest is refused.
* Anything else wrong is local: a malformed or unknown segment, or an unknown qualifier, is a
  :class:`Problem` with its position; inside a traveller's group an error on a matching field,
  or a segment whose elements are missing, shifted or too many (a lost ``+`` or ``:``; see
  :func:`_shape_problem`), rejects that traveller only (listed in ``Manifest.rejected``); the
  rest is still read.
* Two-digit years follow the century rule of :mod:`node.manifests.model`; the reference date is
  the departure (else arrival) date of the message, else ``today`` (injected).
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Sequence
from typing import Any

from pydifact.control.characters import Characters
from pydifact.exceptions import EDISyntaxError, MissingImplementationWarning, ValidationError
from pydifact.parser import Parser
from pydifact.segments import Segment

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
from node.records.dates import resolve_century

ROLES: dict[str, Role] = {
    "FL": "passenger",
    "FM": "crew",
    "DDT": "transit_passenger",
    "DDU": "transit_crew",
}
ROLE_CODES = {role: code for code, role in ROLES.items()}
LIST_TYPES = {"745": "passengers", "250": "crew", "266": "passengers", "336": "passengers"}
#: Segments of the PAXLST message this reader knows but does not need.
IGNORED = frozenset({"RFF", "EMP", "FTX", "GEI", "COM", "CTA", "QTY", "MEA", "SEQ", "GID",
                     "CPI", "TSR", "ERP", "ERC", "FOC", "UNG", "UNE", "UNS", "ATT"})  # fmt: skip
_UTF8_SYNTAX = frozenset({"UNOW", "UNOY"})
_TAG = re.compile(r"^[A-Z][A-Z0-9]{2}$")


def _decode(data: bytes) -> str:
    head = data[:40].decode("ascii", "replace")
    syntax = re.search(r"UNB\W(UNO[A-Z])", head)
    if syntax and syntax.group(1) not in _UTF8_SYNTAX and syntax.group(1) != "UNOA":
        return data.decode("latin-1")  # UNOB-UNOK: ISO 8859 parts; latin-1 keeps every byte
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _element(segment: Segment, index: int) -> Any:
    """Element ``index`` or None when the segment is shorter (a missing element is empty)."""
    return segment.elements[index] if index < len(segment.elements) else None


def _component(segment: Segment, index: int, part: int = 0) -> str:
    value = _element(segment, index)
    if value is None:
        return ""
    if isinstance(value, list):
        return str(value[part]) if part < len(value) and value[part] is not None else ""
    return str(value) if part == 0 else ""


def _components(segment: Segment, index: int) -> list[str]:
    value = _element(segment, index)
    if value is None:
        return []
    return [str(v or "") for v in value] if isinstance(value, list) else [str(value)]


def _timestamp(value: str, fmt: str, today: dt.date) -> dt.datetime:
    """DTM values: 201 YYMMDDHHMM, 203 CCYYMMDDHHMM, 101 YYMMDD, 102 CCYYMMDD (UTC assumed)."""
    fmt = fmt or {10: "201", 12: "203", 6: "101", 8: "102"}.get(len(value), "")
    layouts = {"201": (2, 10), "203": (4, 12), "101": (2, 6), "102": (4, 8)}
    if (
        fmt not in layouts
        or len(value) != layouts[fmt][1]
        or not (value.isascii() and value.isdigit())
    ):
        raise ValueError(f"date/time {value!r} does not match format {fmt or '?'}")
    width = layouts[fmt][0]
    year = int(value[:width])
    if width == 2:
        year = resolve_century(year, today.year, "expiry")
    rest = value[width:]
    hour, minute = (int(rest[4:6]), int(rest[6:8])) if len(rest) == 8 else (0, 0)
    return dt.datetime(year, int(rest[0:2]), int(rest[2:4]), hour, minute, tzinfo=dt.UTC)


#: Most elements a traveller segment has (UN/EDIFACT D.05B segment directory).
_MAX_ELEMENTS = {"NAD": 9, "ATT": 3, "DTM": 1, "LOC": 5, "NAT": 2, "DOC": 5}


def _shape_problem(s: Segment) -> str:
    """Why a traveller segment's elements cannot be trusted, or "".

    Why: a lost ``+`` or ``:`` keeps the segment count right but shifts a value into the wrong
    element (``DOC+P:110:111AB1234567`` has no document number, ``NAD+FL++DOE:JOHN`` no name),
    and a lost ``'`` glues the next segment on as extra elements. Read literally, the traveller
    would be screened without the value, or with a wrong one, and look clear.
    """
    tag, count = s.tag, len(s.elements)
    if count > _MAX_ELEMENTS.get(tag, count):
        return f"{tag} has {count} elements, at most {_MAX_ELEMENTS[tag]} expected"
    if tag == "NAD":
        if not _component(s, 3):
            shifted = _component(s, 1) or _component(s, 2)
            return "NAD has no surname in element 4" + (" (its value is shifted)" * bool(shifted))
        if _component(s, 1) or _component(s, 2):
            return "NAD elements 2 and 3 must be empty (NAD+FL+++SURNAME:GIVEN NAMES)"
    elif tag == "DTM" and (len(_components(s, 0)) < 2 or not _component(s, 0, 1)):
        return "DTM has no value after its qualifier (DTM+329:YYMMDD)"
    elif tag in ("LOC", "NAT") and not _component(s, 1):
        return f"{tag} has no value in element 2 ({tag}+qualifier+code)"
    elif tag == "DOC" and not _component(s, 1):
        return "DOC has no document number in element 2 (DOC+P:110:111+NUMBER)"
    elif tag == "ATT" and _component(s, 1):
        return "ATT element 2 must be empty (ATT+2++F)"
    return ""


def _segments(text: str) -> list[Segment]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingImplementationWarning)
        try:
            return [s for s in Parser().parse(text) if s.tag != "UNA"]
        except (EDISyntaxError, ValidationError, ValueError, IndexError) as exc:
            raise ManifestError(
                f"not readable as EDIFACT: {exc}", hint="check the service characters (UNA)"
            ) from None


def _check_framing(text: str) -> Characters:
    if not text.startswith(("UNA", "UNB")):
        raise ManifestError(
            "not an EDIFACT interchange (it must start with UNA or UNB)",
            position="byte 1",
            hint="PAXLST files start with UNA:+.? ' or UNB+UNO…",
        )
    chars = Parser.get_control_characters(text) or Characters()  # type: ignore[no-untyped-call]
    body = text[9:] if text.startswith("UNA") else text
    terminator = chars.segment_terminator
    if terminator not in body:
        lines = len(re.findall(r"(?m)^[A-Z]{3}\+", body))
        hint = (
            f"{lines} lines start with a segment tag: segments seem to end with line breaks"
            if lines > 1
            else "the UNA service string advice declares the terminator"
        )
        raise ManifestError(
            f"no segment ends with the declared terminator {terminator!r}",
            position="segment 1",
            hint=hint,
        )
    return chars


class _Reader:
    """One pass over the segments; see the module docstring for what is structural."""

    def __init__(self, manifest: Manifest, today: dt.date) -> None:
        self.m = manifest
        self.today = today
        self.current: RawTraveller | None = None
        self.pending: list[RawTraveller] = []
        self.doc_primary = False
        self.doc_seen = False
        self.last_location = ""
        self.messages = 0
        self.in_message = False
        self.message_start = 0
        self.message_ref = ""
        self.interchange_ref = ""
        self.closed = False
        self.message_travellers = 0
        self.declared: tuple[int, str] | None = None  # this message's CNT and its position
        self.suspect = ""  # the first segment that seems to have lost its terminator

    def problem(self, where: str, message: str, traveller: RawTraveller | None = None) -> None:
        if traveller is not None:
            traveller.errors.append(message)
            return
        self.m.problems.append(Problem(where, message, "warning"))

    def finish_traveller(self) -> None:
        if self.current is not None:
            self.pending.append(self.current)
        self.current = None

    def run(self, segments: Sequence[Segment]) -> None:
        if not segments or segments[0].tag != "UNB":
            raise ManifestError("the interchange does not start with UNB", position="segment 1")
        for number, segment in enumerate(segments, start=1):
            where = f"segment {number} ({segment.tag})"
            if self.closed:
                self.problem(where, "data after UNZ ignored")
                continue
            if not _TAG.match(segment.tag):
                self.problem(where, f"{segment.tag!r} is not a segment tag", self.current)
                continue
            if any("\n" in part or "\r" in part for i in range(len(segment.elements))
                   for part in _components(segment, i)):  # fmt: skip
                self.suspect = self.suspect or f"{where} contains a line break"
                self.problem(
                    where,
                    f"{where} contains a line break: its terminator is probably missing",
                    self.current,
                )
                continue
            try:
                self.segment(segment, number, where)
            except (ValueError, IndexError) as exc:
                self.problem(where, f"{where}: {exc}", self.current)
        if self.in_message:
            raise ManifestError(
                f"message {self.message_ref or '?'} has no UNT: the interchange is truncated",
                position=f"segment {len(segments)}",
                hint="ask the carrier to resend the whole manifest",
            )
        if not self.closed:
            raise ManifestError(
                "the interchange has no UNZ: it is truncated",
                position=f"segment {len(segments)}",
                hint="ask the carrier to resend the whole manifest",
            )
        if self.messages == 0:
            raise ManifestError("the interchange holds no PAXLST message", position="segment 1")

    def segment(self, s: Segment, number: int, where: str) -> None:
        tag = s.tag
        if tag == "UNB":
            self.m.sender = _component(s, 1)
            self.interchange_ref = _component(s, 4)
        elif tag == "UNH":
            if self.in_message:
                raise ManifestError(
                    f"message {self.message_ref} has no UNT before the next UNH",
                    position=where,
                    hint="the interchange is truncated or two files were joined",
                )
            kind = _component(s, 1, 0)
            if kind != "PAXLST":
                raise ManifestError(f"message type {kind!r} is not PAXLST", position=where)
            self.in_message, self.message_start = True, number
            self.message_travellers, self.declared = 0, None
            self.message_ref = _component(s, 0)
            self.m.reference = self.m.reference or f"{self.interchange_ref}/{self.message_ref}"
        elif tag == "UNT":
            self.finish_traveller()
            if not self.in_message:
                raise ManifestError("UNT without UNH", position=where)
            declared, actual = _component(s, 0), number - self.message_start + 1
            if declared != str(actual):
                lost = f" ({self.suspect})" if self.suspect else ""
                raise ManifestError(
                    f"UNT counts {declared or '?'} segments, the message has {actual}: a segment "
                    f"terminator or a segment was probably lost{lost}; travellers may be merged",
                    position=where,
                    hint="nothing was screened; ask the carrier to resend the manifest",
                )
            self.check_travellers(where)
            self.in_message = False
            self.messages += 1
        elif tag == "UNZ":
            if self.in_message:
                raise ManifestError(
                    f"message {self.message_ref} has no UNT before UNZ", position=where
                )
            self.closed = True
            if _component(s, 0) not in (str(self.messages), ""):
                raise ManifestError(
                    f"UNZ counts {_component(s, 0)} messages, the interchange has "
                    f"{self.messages}: a message was probably lost",
                    position=where,
                    hint="nothing was screened; ask the carrier to resend the manifest",
                )
        elif not self.in_message:
            if tag not in IGNORED:
                self.problem(where, f"{tag} outside a message ignored")
        elif tag == "NAD":
            self.nad(s, number, where)
        elif self.current is not None:
            self.traveller_segment(s, where, self.current)
        else:
            self.header_segment(s, where)

    def header_segment(self, s: Segment, where: str) -> None:
        tag, qualifier = s.tag, _component(s, 0)
        if tag == "BGM":
            code = _component(s, 0)
            if code not in LIST_TYPES:
                self.problem(where, f"unknown document code BGM {code!r}")
            self.m.list_type = LIST_TYPES.get(code, self.m.list_type)
        elif tag == "TDT":
            self.m.transport = _component(s, 1)
            self.m.carrier = _component(s, 4) or _component(s, 2)
        elif tag == "LOC":
            self.last_location = qualifier
            if qualifier == "125":
                self.m.departure_port = _component(s, 1)
            elif qualifier == "87":
                self.m.arrival_port = _component(s, 1)
            else:
                self.problem(where, f"unknown location qualifier LOC+{qualifier}")
        elif tag == "DTM":
            code, value, fmt = _component(s, 0, 0), _component(s, 0, 1), _component(s, 0, 2)
            if code in ("189", "232"):
                when = _timestamp(value, fmt, self.today)
                if code == "189":
                    self.m.departure_at = when
                else:
                    self.m.arrival_at = when
            else:
                self.problem(where, f"unknown date qualifier DTM+{code}")
        elif tag == "CNT":
            if _component(s, 0, 0) in ("41", "42"):
                value = _component(s, 0, 1)
                if not (value.isascii() and value.isdigit()):
                    raise ManifestError(
                        f"CNT declares {value!r} travellers, not a number",
                        position=where,
                        hint="nothing was screened; ask the carrier to resend the manifest",
                    )
                self.declared = (int(value), where)
                self.m.declared_count = (self.m.declared_count or 0) + int(value)
        elif tag not in IGNORED:
            self.problem(where, f"unknown segment {tag} ignored")

    def check_travellers(self, where: str) -> None:
        """The message's CNT must count the traveller groups read (a lost group is refused)."""
        if self.declared is not None and self.declared[0] != self.message_travellers:
            raise ManifestError(
                f"CNT declares {self.declared[0]} travellers, the message lists "
                f"{self.message_travellers}: a traveller was probably lost or merged into "
                f"another" + (f" ({self.suspect})" if self.suspect else ""),
                position=self.declared[1],
                hint="nothing was screened; ask the carrier to resend the manifest",
            )

    def nad(self, s: Segment, number: int, where: str) -> None:
        qualifier = _component(s, 0)
        if qualifier == "MS" and self.current is None and not self.pending:
            return  # the reporting party
        self.finish_traveller()
        self.message_travellers += 1
        names = _components(s, 3)
        raw = RawTraveller(
            position=len(self.pending) + 1,
            location=f"segment {number}",
            role=ROLES.get(qualifier, "passenger"),
            surname=names[0] if names else "",
            given_names=" ".join(n for n in names[1:] if n),
        )
        if qualifier not in ROLES:
            raw.errors.append(f"unknown party qualifier NAD+{qualifier} at {where}")
        shape = _shape_problem(s)
        if shape:
            raw.errors.append(f"{where}: {shape}; a + or : was probably lost")
        self.current, self.doc_primary, self.doc_seen = raw, False, False

    def traveller_segment(self, s: Segment, where: str, t: RawTraveller) -> None:
        tag, qualifier = s.tag, _component(s, 0)
        shape = _shape_problem(s)
        if shape:
            t.errors.append(f"{where}: {shape}; a service character was probably lost")
            self.suspect = self.suspect or f"{where}: {shape}"
            return
        if tag == "ATT":
            if qualifier == "2":
                t.sex = _component(s, 2)
            else:
                self.warn(where, f"unknown attribute qualifier ATT+{qualifier}", t)
        elif tag == "DTM":
            code, value = _component(s, 0, 0), _component(s, 0, 1)
            if code == "329":
                t.birth_date = value
            elif code == "36":
                if self.doc_primary:
                    t.expiry_date = value
            else:
                self.warn(where, f"unknown date qualifier DTM+{code}", t)
        elif tag == "LOC":
            place = _component(s, 1)
            if qualifier == "22":
                t.debarkation = place
            elif qualifier == "178":
                t.embarkation = place
            elif qualifier == "91":
                if self.doc_primary:
                    t.issuing_state = place
            elif qualifier not in ("174", "180"):
                self.warn(where, f"unknown location qualifier LOC+{qualifier}", t)
        elif tag == "NAT":
            if qualifier in ("1", "2"):
                t.nationality = _component(s, 1)
            else:
                self.warn(where, f"unknown nationality qualifier NAT+{qualifier}", t)
        elif tag == "DOC":
            kind, number = _component(s, 0, 0), _component(s, 1)
            replace = not self.doc_seen or (t.document_type == "V" and kind != "V")
            self.doc_seen, self.doc_primary = True, replace
            if replace:
                t.document_type, t.document_number, t.issuing_state = kind, number, ""
                t.expiry_date = ""
        elif tag in ("CNT", "UNS"):
            self.finish_traveller()
            self.header_segment(s, where)
        elif tag not in IGNORED:
            self.warn(where, f"unknown segment {tag} ignored", t)

    def warn(self, where: str, message: str, t: RawTraveller) -> None:
        self.m.problems.append(Problem(where, message, "warning", t.position))


def read_paxlst(data: bytes, *, today: dt.date) -> Manifest:
    """Read a PAXLST interchange (see the module docstring for what raises)."""
    text = _decode(data).lstrip("\r\n\t ")
    _check_framing(text)
    manifest = Manifest(format="paxlst", sha256=digest(data))
    reader = _Reader(manifest, today)
    reader.run(_segments(text))
    reference = reference_date(manifest, today)
    for raw in reader.pending:
        add_traveller(manifest, raw, reference)
    return manifest
