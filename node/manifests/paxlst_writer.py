"""A :class:`~node.manifests.model.Manifest` written as one UN/EDIFACT PAXLST interchange.

Why: the demo, the sample manifests and the tests need PAXLST files shaped as carriers send
them (D.05B, two-digit years, ``UNA`` service string advice, one segment per line), and the
reader (:mod:`node.manifests.paxlst`) is only trustworthy if what it reads back is what was
written: the tests round-trip every traveller field through both.

Invariants:
* The declared counts are those of the segments written (``UNT`` from ``UNH`` to ``UNT``,
  ``CNT`` the travellers, ``UNZ`` one message), so the reader's count checks pass.
* An optional field the manifest lacks is left out rather than written empty, except where
  the message needs a value: the ``UNB`` sender and ``NAD+MS`` name (``CARRIER``), the sex
  (``U``, unknown) and the document type (``P``).
"""

from __future__ import annotations

import datetime as dt

from pydifact.control.characters import Characters
from pydifact.segments import Segment
from pydifact.serializer import Serializer

from node.manifests.model import Manifest, Traveller
from node.manifests.paxlst import ROLE_CODES


def _date(value: dt.datetime) -> list[str]:
    return [value.strftime("%y%m%d%H%M"), "201"]


def traveller_segments(t: Traveller) -> list[Segment]:
    """The segment group of one traveller (two-digit years, as carriers send them)."""
    given = t.given_names.split()
    out = [Segment("NAD", ROLE_CODES[t.role], "", "", [t.surname, *given[:2]])]
    out.append(Segment("ATT", "2", "", t.sex or "U"))
    if t.birth_date is not None:
        out.append(Segment("DTM", ["329", t.birth_date.mrz().replace("<", "0")]))
    if t.debarkation:
        out.append(Segment("LOC", "22", t.debarkation))
    if t.embarkation:
        out.append(Segment("LOC", "178", t.embarkation))
    if t.nationality:
        out.append(Segment("NAT", "2", t.nationality))
    if t.document_number:
        out.append(Segment("DOC", [t.document_type or "P", "110", "111"], t.document_number))
        if t.expiry_date is not None:
            out.append(Segment("DTM", ["36", t.expiry_date.mrz().replace("<", "0")]))
        out.append(Segment("LOC", "91", t.issuing_state))
    return out


def write_paxlst(
    manifest: Manifest,
    *,
    recipient: str,
    prepared_at: dt.datetime,
    control: str = "1",
    message_ref: str = "1",
) -> str:
    """One interchange with one PAXLST D.05B message holding ``manifest.travellers``."""
    segments: list[Segment] = [
        Segment("UNB", ["UNOY", "4"], manifest.sender or "CARRIER", recipient,
                [prepared_at.strftime("%y%m%d"), prepared_at.strftime("%H%M")], control),
        Segment("UNH", message_ref, ["PAXLST", "D", "05B", "UN", "IATA"], "API01"),
        Segment("BGM", "250" if manifest.list_type == "crew" else "745"),
        Segment("NAD", "MS", "", "", manifest.carrier or manifest.sender or "CARRIER"),
        Segment("TDT", "20", manifest.transport, "", "", manifest.carrier),
    ]  # fmt: skip
    if manifest.departure_port:
        segments.append(Segment("LOC", "125", manifest.departure_port))
    if manifest.departure_at:
        segments.append(Segment("DTM", ["189", *_date(manifest.departure_at)]))
    if manifest.arrival_port:
        segments.append(Segment("LOC", "87", manifest.arrival_port))
    if manifest.arrival_at:
        segments.append(Segment("DTM", ["232", *_date(manifest.arrival_at)]))
    for traveller in manifest.travellers:
        segments += traveller_segments(traveller)
    segments.append(Segment("CNT", ["42", str(len(manifest.travellers))]))
    count = len(segments)  # UNH .. CNT, plus UNT itself, minus UNB
    segments.append(Segment("UNT", str(count), message_ref))
    segments.append(Segment("UNZ", "1", control))
    chars = Characters()  # type: ignore[no-untyped-call]
    return Serializer(chars).serialize(segments, with_una_header=True, break_lines=True)
