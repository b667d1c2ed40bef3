"""The bus operators' CSV manifest: columns, dates, bad rows, duplicates, round trip."""

from __future__ import annotations

import datetime as dt

import pytest

from node.manifests.csv_manifest import read_csv_manifest, write_csv_manifest
from node.manifests.model import ManifestError
from node.records.dates import PartialDate

TODAY = dt.date(2026, 3, 1)
HEADER = (
    "Surname,Given Names,Sex,Birth Date,Nationality,Document Type,Document Number,"
    "Issuing State,Expiry Date,Embarkation,Debarkation,Role,Operator,Trip,Departure Date\n"
)


def test_reads_rows_and_trip_columns() -> None:
    data = (
        HEADER + "Pérez Gómez,Ana,F,1992-04-30,SLV,P,a 123-456,SLV,2030-01-01,SAL,SJO,,TICA,T77,"
        "2026-02-27T06:00\n" + "Mbeki,Thabo,M,05/11/1979,ZAF,P,M00012345,ZAF,,SAL,SJO,crew,,,\n"
    ).encode("utf-8-sig")
    m = read_csv_manifest(data, today=TODAY)
    assert (m.carrier, m.transport) == ("TICA", "T77")
    assert m.departure_at == dt.datetime(2026, 2, 27, 6, 0, tzinfo=dt.UTC)
    first, second = m.travellers
    assert (first.document_number, first.issuing_state) == ("A123456", "SLV")
    assert first.birth_date == PartialDate(1992, 4, 30)
    assert second.birth_date == PartialDate(1979, 11, 5) and second.role == "crew"
    assert m.problems == [] and m.rejected == []


def test_semicolon_files_and_two_digit_years_use_the_century_rule() -> None:
    data = (
        b"surname;given_names;birth_date;document_number;issuing_state;departure_date\n"
        b"LOPEZ;LUIS;250301;N1;NIC;2026-02-27\n"
        b"LOPEZ;LUCIA;260301;N2;NIC;\n"
    )
    m = read_csv_manifest(data, today=TODAY)
    # Departure 2026-02-27: born 2025-03-01, and "260301" would be after the trip -> 1926.
    assert [t.birth_date for t in m.travellers] == [
        PartialDate(2025, 3, 1),
        PartialDate(1926, 3, 1),
    ]


def test_bad_rows_are_rejected_with_their_line_and_the_rest_is_read() -> None:
    data = (
        HEADER
        + "OK,ONE,F,1990-01-01,HND,P,H1,HND,,,,,,,\n"
        + "BAD,DATE,F,1990-02-30,HND,P,H2,HND,,,,,,,\n"
        + "BAD,STATE,F,1990-01-01,HND,P,H3,ZZZ,,,,,,,\n"
        + "SHORT,ROW\n"
        + "BAD,ROLE,F,1990-01-01,HND,P,H5,HND,,,,captain,,,\n"
        + "WARN,SEX,Q,1990-01-01,HND,P,H6,HND,,,,,,,\n"
    ).encode()
    m = read_csv_manifest(data, today=TODAY)
    assert [t.surname for t in m.travellers] == ["OK", "WARN"]
    assert [(r.location, r.name) for r in m.rejected] == [
        ("line 3", "BAD, DATE"), ("line 4", "BAD, STATE"), ("line 5", "SHORT, ROW"),
        ("line 6", "BAD, ROLE"),
    ]  # fmt: skip
    assert "February" in m.rejected[0].reasons[0]
    assert m.travellers[1].sex == "U"
    assert any(p.position == "line 7" and "sex" in p.message for p in m.problems)


def test_structurally_broken_files_raise() -> None:
    with pytest.raises(ManifestError, match="missing column"):
        read_csv_manifest(b"name,passport\nA,B\n", today=TODAY)
    with pytest.raises(ManifestError, match="no traveller rows"):
        read_csv_manifest(HEADER.encode(), today=TODAY)
    with pytest.raises(ManifestError, match="UTF-8"):
        read_csv_manifest(HEADER.encode() + "MÜLLER,X\n".encode("latin-1"), today=TODAY)


def test_duplicates_and_non_latin_names() -> None:
    data = (
        HEADER
        + "DOE,JANE,F,1980-01-01,CAN,P,X1,CAN,,,,,,,\n"
        + "Doe,Jane,F,1980-01-01,CAN,P,x-1,can,,,,,,,\n"
        + "Παπαδόπουλος,Γιώργος,M,1975-06-01,GRC,P,AE12,GRC,,,,,,,\n"
        + "김,민준,M,1999-09-09,KOR,P,M1,KOR,,,,,,,\n"
    ).encode()
    m = read_csv_manifest(data, today=TODAY)
    assert [t.duplicate_of for t in m.travellers] == [None, 1, None]
    assert [r.position for r in m.rejected] == [4]


def test_round_trip() -> None:
    data = HEADER + "DIALLO,AMINATA,F,1990-07-03,SEN,P,A0123,SEN,2030-05-01,SAL,SJO,,,,\n"
    m = read_csv_manifest(data.encode(), today=TODAY)
    again = read_csv_manifest(write_csv_manifest(m).encode(), today=TODAY)
    assert [t.to_dict() | {"location": ""} for t in again.travellers] == [
        t.to_dict() | {"location": ""} for t in m.travellers
    ]


SHORT = "surname,given_names,birth_date,document_number,issuing_state\n"


def test_a_stray_quote_rejects_its_own_row_and_never_merges_the_next_ones() -> None:
    data = (SHORT + "DOE,JOHN,1970-01-01,AB1234567,CRI\n"
            'ROE,"ANN,1980-01-01,CD7654321,CRI\n'
            "POE,EVE,1990-01-01,EF1111111,CRI\n"
            'LOE,MAX",1991-02-02,GH2222222,CRI\n'
            "KOE,KAI,1992-03-03,IJ3333333,CRI\n").encode()  # fmt: skip
    m = read_csv_manifest(data, today=TODAY)
    assert [(t.surname, t.location) for t in m.travellers] == [
        ("DOE", "line 2"), ("POE", "line 4"), ("KOE", "line 6"),
    ]  # fmt: skip
    first, second = m.rejected
    assert (first.position, first.location) == (2, "line 3")
    assert "line 3" in first.reasons[0] and "not closed" in first.reasons[0]
    assert (second.location, second.name) == ("line 5", 'LOE, MAX"')
    assert "stray quote" in second.reasons[0]


def test_an_unclosed_quote_does_not_swallow_the_rest_of_the_file() -> None:
    rows = [f"P{i},N,1990-01-01,X{i:07d},CRI" for i in range(50)]
    rows[3] = rows[3].replace(",N,", ',"N,')
    m = read_csv_manifest((SHORT + "\r\n".join(rows) + "\r\n").encode(), today=TODAY)
    assert len(m.travellers) == 49 and [r.location for r in m.rejected] == ["line 5"]
    quoted = SHORT + '"DOE, JR",JOHN,1970-01-01,AB1234567,CRI\n'  # a quoted comma is fine
    (t,) = read_csv_manifest(quoted.encode(), today=TODAY).travellers
    assert t.surname == "DOE, JR"
    with pytest.raises(ManifestError, match="line 1: header"):
        read_csv_manifest(('surname,"given_names\n' + "DOE,JOHN\n").encode(), today=TODAY)


def test_an_overlong_line_is_a_manifest_error_with_its_line_number() -> None:
    data = (SHORT + "DOE,JOHN,1970-01-01,AB1234567,CRI\n"
            "ROE,ANN,1980-01-01,CD7654321,CRI," + "x" * 140_000 + "\n").encode()  # fmt: skip
    with pytest.raises(ManifestError, match=r"line 3: the line is 140,033 characters long"):
        read_csv_manifest(data, today=TODAY)
