"""A member's signed consular directory is checked before the Secretariat merges it.

Why: the merged entries are written as CSV and JSON for the CRM's public page and printed to
the operator; an entry with an escape sequence, a line break, unbounded text or an unknown
procedure went into them as sent. A malformed answer must be that member's failure, named.
"""

from __future__ import annotations

import pytest

from enlace.v1 import secretariat_pb2
from node.errors import PeerError
from node.secretariat.consular_answer import check_entries

GOOD = {
    "origin_country": "IND",
    "host_country": "PAN",
    "city": "Ciudad de Panamá",
    "consulate_name": "Embajada de India en Panamá — Sección Consular",
    "address": "Calle 50, piso 12",
    "phone": "+507 263 9001",
    "email": "consular.pty@mea.example",
}


def _entry(procedures: tuple[str, ...] = ("passport_issue",), **changes: str) -> object:
    return secretariat_pb2.ConsularEntry(**(GOOD | changes), procedures=list(procedures))


def test_a_well_formed_directory_is_accepted() -> None:
    check_entries("PAN", [_entry(), _entry(address="", phone="", email="")])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (_entry(origin_country="india"), "origin_country 'india' is not an alpha-3 code"),
        (_entry(city="x" * 61), "entry 0: city is longer than 60 characters"),
        (_entry(consulate_name="Embajada\x1b]0;owned\x07"), "consulate_name"),
        (_entry(address="Calle 50\nIND,PAN,forged"), "address 'Calle 50\\nIND"),
        (_entry(city="\x00"), "holds a control character"),
        (_entry(city="  "), "entry 0: city is empty"),
        (_entry(phone="=HYPERLINK(1)"), "phone '=HYPERLINK(1)' is not in the dataset's form"),
        (_entry(email="not an address"), "email 'not an address' is not in the dataset's form"),
        (_entry(procedures=("passport_issue", "exfiltrate")), "unknown procedures 'exfiltrate'"),
    ],
)
def test_a_malformed_entry_is_the_members_failure(entry: object, problem: str) -> None:
    with pytest.raises(PeerError) as raised:
        check_entries("PAN", [entry])  # type: ignore[list-item]
    error = raised.value
    assert problem in error.message, error.message
    assert error.peer == "PAN" and error.status_name == "INVALID_ARGUMENT"
    assert "PAN's consular directory cannot be used" in error.message
    assert not any(c in error.message for c in "\x00\x1b\x07\n")


def test_the_published_csv_does_not_run_a_members_text_as_a_formula() -> None:
    """A member's free text beginning like a formula ("=HYPERLINK(…)", "@SUM(…)") reaches the
    spreadsheet of whoever opens the regional directory as text; phone numbers, held to their
    international form, stay as reported."""
    import csv
    import io

    from node.secretariat.consular import COLUMNS, ConsularEntry, to_csv

    entry = ConsularEntry(
        origin_country="IND",
        host_country="PAN",
        city='=HYPERLINK("http://x","Panamá")',
        consulate_name="@SUM(1+1)",
        address="-2+3",
        phone="+507 263 9001",
        email="=cmd@x.example",
        procedures=("passport_issue",),
        reported_by=("PAN",),
    )
    data = to_csv([entry])
    assert data.startswith(b"\xef\xbb\xbf")  # a BOM: Excel reads the accents as UTF-8
    (header, row) = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert tuple(header) == tuple(COLUMNS)
    cells = dict(zip(header, row, strict=True))
    assert cells["city"] == "'" + entry.city
    assert cells["consulate_name"] == "'@SUM(1+1)"
    assert cells["address"] == "'-2+3"
    assert cells["email"] == "'=cmd@x.example"
    assert cells["phone"] == "+507 263 9001"  # digits in the international form: no formula
