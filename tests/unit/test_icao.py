"""ICAO 9303 normalisation, MRZ parsing/building, and partial dates."""

from __future__ import annotations

import string
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.errors import NormalisationError
from node.errors import InvalidArgumentError
from node.records.codelists import codelist
from node.records.dates import (
    InvalidDateError,
    PartialDate,
    parse_partial_date,
    resolve_century,
)
from node.records.icao import (
    MAX_DOCUMENT_NUMBER_LENGTH,
    MrzError,
    MrzRecord,
    check_digit,
    document_key,
    document_type_for,
    make_mrz,
    make_td1,
    make_td3,
    nationality_code,
    normalise_country_code,
    normalise_document_number,
    parse_mrz,
)

# Specimens published in ICAO Doc 9303 (Part 4 TD3 passport, Part 5 TD1 card and its example
# of a document number longer than nine characters).
TD3_SPECIMEN = (
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"
)
TD1_SPECIMEN = (
    "I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<"
)
TD1_OVERFLOW_SPECIMEN = (
    "I<UTOD23145890<7349<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<"
)

ALNUM = string.ascii_uppercase + string.digits


# --------------------------------------------------------------------------- check digits


def test_check_digits_of_the_td3_specimen() -> None:
    line = TD3_SPECIMEN.splitlines()[1]
    assert check_digit(line[0:9]) == line[9] == "6"
    assert check_digit(line[13:19]) == line[19] == "2"
    assert check_digit(line[21:27]) == line[27] == "9"
    assert check_digit(line[28:42]) == line[42] == "1"
    assert check_digit(line[0:10] + line[13:20] + line[21:43]) == line[43] == "0"


def test_check_digits_of_the_td1_specimens() -> None:
    l1, l2, _ = TD1_SPECIMEN.splitlines()
    assert check_digit(l1[5:14]) == l1[14] == "7"
    assert check_digit(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29]) == l2[29] == "6"
    assert check_digit("D23145890734") == "9"  # the overflow example's full number


def test_check_digit_weights_and_values() -> None:
    # Weights 7, 3, 1 repeating; B = 11 (77 mod 10), Z = 35 (245 mod 10); fillers count 0.
    cases = {"": "0", "<<<": "0", "1": "7", "01": "3", "001": "1", "0001": "7", "B": "7", "Z": "5"}
    assert {field: check_digit(field) for field in cases} == cases


@pytest.mark.parametrize("bad", ["a", "-", " ", "É"])
def test_check_digit_rejects_non_mrz_characters(bad: str) -> None:
    with pytest.raises(NormalisationError, match="not an MRZ character"):
        check_digit("AB" + bad)


@given(st.text(alphabet=string.digits, min_size=1, max_size=20), st.data())
def test_check_digit_detects_any_single_digit_substitution(field: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(field) - 1))
    replacement = data.draw(st.sampled_from([d for d in string.digits if d != field[position]]))
    changed = field[:position] + replacement + field[position + 1 :]
    assert check_digit(changed) != check_digit(field)


# --------------------------------------------------------------------------- document numbers


@pytest.mark.parametrize(
    "raw",
    [
        "ab 123-456",
        "AB123456",
        "AB.123.456",
        "AB123456<<<",
        " ab123456 ",
        "ＡＢ１２３４５６",
        "АВ123456",
    ],
)
def test_equivalent_document_numbers_normalise_identically(raw: str) -> None:
    # The last two are full-width Latin and Cyrillic look-alike capitals.
    assert normalise_document_number(raw) == "AB123456"


def test_letters_and_digits_are_never_swapped() -> None:
    assert normalise_document_number("O1234") != normalise_document_number("01234")
    assert normalise_document_number("I1234") != normalise_document_number("11234")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        (" - . << ", "empty"),
        ("AB/1234", "'/'"),
        ("AB_1234", "'_'"),
        ("ÄB1234", "'Ä'"),
        ("A" * (MAX_DOCUMENT_NUMBER_LENGTH + 1), "at most"),
    ],
)
def test_bad_document_numbers_are_rejected(raw: str, message: str) -> None:
    with pytest.raises(NormalisationError, match=message):
        normalise_document_number(raw)


separator = st.sampled_from([" ", "-", ".", "<", "  "])


@given(st.text(alphabet=ALNUM, min_size=1, max_size=MAX_DOCUMENT_NUMBER_LENGTH), st.data())
def test_document_number_normalisation_is_idempotent_and_ignores_case_and_fillers(
    number: str, data: st.DataObject
) -> None:
    noisy = "".join(
        (c.lower() if data.draw(st.booleans()) else c)
        + data.draw(st.one_of(st.just(""), separator))
        for c in number
    )
    assert normalise_document_number(noisy) == number
    assert normalise_document_number(normalise_document_number(noisy)) == number


# --------------------------------------------------------------------------- state codes


COUNTRY_CASES = "PAN:PAN pan:PAN PA:PAN D:DEU D<<:DEU GBD:GBD GBN:GBN XXA:XXA XXB:XXB XXC:XXC"
COUNTRY_CASES += " XXX:XXX UNO:UNO EUE:EUE ROM:ROU ZAR:COD YUG:YUG ht:HTI"


@pytest.mark.parametrize(("raw", "expected"), [c.split(":") for c in COUNTRY_CASES.split()])
def test_country_codes(raw: str, expected: str) -> None:
    assert normalise_country_code(raw) == expected


def test_unknown_country_code_is_rejected_with_suggestion() -> None:
    with pytest.raises(NormalisationError, match="PAN"):
        normalise_country_code("PNA")
    with pytest.raises(NormalisationError, match="alpha-2"):
        normalise_country_code("QQ")
    with pytest.raises(NormalisationError, match="1-3 letters"):
        normalise_country_code("P4N")


def test_every_nationality_code_is_a_fixed_point() -> None:
    for code in codelist("nationality"):
        assert normalise_country_code(code) == code


def test_nationality_code_maps_british_classes_and_refuses_organisations() -> None:
    assert nationality_code("GBD") == "GBR"
    assert nationality_code("D<<") == "DEU"
    with pytest.raises(NormalisationError, match="not a nationality"):
        nationality_code("UNO")


def test_document_key() -> None:
    assert document_key("ab 1234567", "pa") == "PAN|AB1234567"
    assert document_key("AB-1234567<<", "PAN") == document_key("ab1234567", "PA")
    assert document_key("C01X00T47", "D<<") == "DEU|C01X00T47"


def test_document_type_for_mrz_codes() -> None:
    codes = {"P<": "P", "PO": "P", "ID": "I", "I<": "I", "AC": "I", "V<": "V", "X<": "O"}
    assert {code: document_type_for(code) for code in codes} == codes


# --------------------------------------------------------------------------- parsing


def test_parse_td3_specimen() -> None:
    record = parse_mrz(TD3_SPECIMEN)
    assert record == MrzRecord(
        document_type="P",
        issuing_state="UTO",
        surname="ERIKSSON",
        given_names="ANNA MARIA",
        document_number="L898902C3",
        nationality="UTO",
        birth_date=PartialDate(1974, 8, 12),
        sex="F",
        expiry_date=PartialDate(2012, 4, 15),
        optional_data="ZE184226B",
        format="TD3",
    )
    assert record.document_key() == "UTO|L898902C3"


def test_parse_td1_specimens_including_overflow() -> None:
    short = parse_mrz(TD1_SPECIMEN)
    assert (short.format, short.document_number, short.optional_data) == ("TD1", "D23145890", "")
    long = parse_mrz(TD1_OVERFLOW_SPECIMEN)
    assert long.document_number == "D23145890734"
    assert long.optional_data == ""
    assert (long.birth_date, long.expiry_date) == (
        PartialDate(1974, 8, 12),
        PartialDate(2012, 4, 15),
    )


@pytest.mark.parametrize("text", [TD3_SPECIMEN, TD1_SPECIMEN, TD1_OVERFLOW_SPECIMEN])
def test_specimens_are_rebuilt_exactly(text: str) -> None:
    assert make_mrz(parse_mrz(text)) == text


def test_parse_accepts_surrounding_whitespace_and_one_line() -> None:
    assert parse_mrz("  " + TD3_SPECIMEN + "\n\n") == parse_mrz(TD3_SPECIMEN.replace("\n", ""))


def _replace(text: str, line: int, position: int, char: str) -> str:
    lines = text.splitlines()
    lines[line] = lines[line][:position] + char + lines[line][position + 1 :]
    return "\n".join(lines)


def _other_digit(char: str) -> str:
    return "1" if char != "1" else "2"


@pytest.mark.parametrize(
    ("text", "line", "position", "field"),
    [
        (TD3_SPECIMEN, 1, 9, "document_number"),
        (TD3_SPECIMEN, 1, 2, "document_number"),
        (TD3_SPECIMEN, 1, 19, "birth_date"),
        (TD3_SPECIMEN, 1, 15, "birth_date"),
        (TD3_SPECIMEN, 1, 27, "expiry_date"),
        (TD3_SPECIMEN, 1, 42, "optional_data"),
        (TD3_SPECIMEN, 1, 43, "composite"),
        (TD1_SPECIMEN, 0, 14, "document_number"),
        (TD1_SPECIMEN, 1, 6, "birth_date"),
        (TD1_SPECIMEN, 1, 14, "expiry_date"),
        (TD1_SPECIMEN, 1, 29, "composite"),
        (TD1_SPECIMEN, 0, 20, "composite"),  # optional data is covered only by the composite
        (TD1_OVERFLOW_SPECIMEN, 0, 18, "document_number"),  # the overflow's check digit
        (TD1_OVERFLOW_SPECIMEN, 0, 16, "document_number"),  # an overflow character
    ],
)
def test_each_bad_check_digit_is_rejected_naming_the_field(
    text: str, line: int, position: int, field: str
) -> None:
    original = text.splitlines()[line][position]
    corrupted = _replace(text, line, position, _other_digit(original))
    with pytest.raises(MrzError) as caught:
        parse_mrz(corrupted)
    assert caught.value.field == field
    assert field in str(caught.value)


def test_td3_number_without_check_digit_is_rejected() -> None:
    with pytest.raises(MrzError) as caught:
        parse_mrz(_replace(TD3_SPECIMEN, 1, 9, "<"))
    assert caught.value.field == "document_number"


def test_td1_filler_check_digit_without_overflow_is_rejected() -> None:
    with pytest.raises(MrzError) as caught:
        parse_mrz(_replace(TD1_SPECIMEN, 0, 14, "<"))
    assert caught.value.field == "document_number"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (TD3_SPECIMEN[:-1], "layout"),
        ("", "layout"),
        (TD3_SPECIMEN.replace("ERIKSSON", "eriksson"), "line 1"),
        (TD3_SPECIMEN.replace("P<UTO", "P<QQQ"), "issuing_state"),
        (TD3_SPECIMEN.replace("6UTO", "6QQQ"), "nationality"),
        (TD3_SPECIMEN.replace("2F1", "2Q1"), "sex"),
        (TD3_SPECIMEN.replace("P<UTOERIKSSON", "P<UTO<<<<<<<<"), "name"),
        (TD3_SPECIMEN.replace("P<UTO", "1<UTO"), "document_type"),
    ],
)
def test_malformed_mrz_is_rejected_naming_the_field(text: str, field: str) -> None:
    with pytest.raises(MrzError) as caught:
        parse_mrz(text)
    assert caught.value.field == field


def _fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "issuing_state": "PAN",
        "surname": "PEREZ",
        "given_names": "ANA",
        "document_number": "PA0000001",
        "nationality": "PAN",
        "birth_date": "1990-01-01",
        "sex": "F",
        "expiry_date": "2030-01-01",
    }
    return {**fields, **overrides}


def test_german_d_filler_code_is_read_as_deu() -> None:
    text = make_td3(**_fields(issuing_state="D", nationality="D", birth_date="1964-08-12"))
    assert text.startswith("P<DEU")  # canonical form; 'D<<' on the booklet reads the same
    booklet = text.replace("P<DEU", "P<D<<").replace("DEU64", "D<<64")
    assert parse_mrz(booklet) == parse_mrz(text)


def test_centuries_follow_the_reference_year() -> None:
    assert parse_mrz(TD3_SPECIMEN, reference_year=2026).birth_date.year == 1974
    young = make_td3(**_fields(birth_date="2019-01-02", expiry_date="2024-01-01"))
    assert parse_mrz(young, reference_year=2026).birth_date == PartialDate(2019, 1, 2)
    # A birth year after the reference year is read in the previous century.
    assert parse_mrz(young, reference_year=2018).birth_date.year == 1919


def test_unknown_birth_parts_and_missing_expiry() -> None:
    text = make_td1(**_fields(birth_date=PartialDate(1990), sex="X", expiry_date=None))
    assert "90<<<<" in text
    record = parse_mrz(text, reference_year=2026)
    assert (record.birth_date, record.expiry_date, record.sex) == (PartialDate(1990), None, "X")
    with pytest.raises(MrzError) as caught:
        parse_mrz(text)  # no expiry and no reference year: the century is unknowable
    assert caught.value.field == "birth_date"


def test_builders_refuse_what_an_mrz_cannot_hold() -> None:
    with pytest.raises(MrzError, match="TD3 has no overflow"):
        make_td3(**_fields(document_number="AB1234567890"))
    with pytest.raises(MrzError, match="sex"):
        make_td3(**_fields(sex="U"))
    with pytest.raises(MrzError, match="optional_data"):
        make_td1(**_fields(document_number="A" * 22, optional_data="X"))


def test_long_names_are_cut_to_the_field() -> None:
    surname, given = "HERNANDEZ DE LA CRUZ GUTIERREZ", "MARIA GUADALUPE DEL CARMEN"
    text = make_td3(**_fields(surname=surname, given_names=given))
    record = parse_mrz(text)
    assert text.splitlines()[0] == "P<PANHERNANDEZ<DE<LA<CRUZ<GUTIERREZ<<MARIA<G"
    assert (record.surname, record.given_names) == (surname, "MARIA G")


# --------------------------------------------------------------------------- round trips

name_part = st.text(alphabet=string.ascii_uppercase, min_size=1, max_size=6)
states = st.sampled_from(["PAN", "HTI", "CUB", "IND", "NPL", "CMR", "DEU", "GBD", "XXA", "UTO"])


@st.composite
def records(draw: st.DrawFn, fmt: str) -> MrzRecord:
    width = 30 if fmt == "TD1" else 39
    surname = " ".join(draw(st.lists(name_part, min_size=1, max_size=2)))
    budget = width - len(surname) - 2
    given = " ".join(draw(st.lists(name_part, max_size=2)))
    if len(given) > budget:
        given = ""
    expiry_year = draw(st.integers(1975, 2065))
    birth_year = draw(st.integers(max(1850, expiry_year - 99), expiry_year))
    month = draw(st.none() | st.integers(1, 12))
    day = None if month is None else draw(st.none() | st.integers(1, 28))
    max_number = MAX_DOCUMENT_NUMBER_LENGTH if fmt == "TD1" else 9
    number = draw(st.text(alphabet=ALNUM, min_size=1, max_size=max_number))
    optional_room = 15 - (len(number) - 9 + 2) if len(number) > 9 else 15
    optional_width = optional_room if fmt == "TD1" else 14
    optional = draw(st.text(alphabet=ALNUM + "<", max_size=optional_width)).rstrip("<")
    expiry = draw(st.none() | st.just(PartialDate(expiry_year, 6, 30)))
    return MrzRecord(
        document_type=draw(
            st.sampled_from(["I", "ID", "AC", "C"] if fmt == "TD1" else ["P", "PO"])
        ),
        issuing_state=draw(states),
        surname=surname,
        given_names=given,
        document_number=number,
        nationality=draw(states),
        birth_date=PartialDate(birth_year, month, day),
        sex=draw(st.sampled_from(["F", "M", "X"])),
        expiry_date=expiry,
        optional_data=optional,
        optional_data_2=(
            draw(st.text(alphabet=ALNUM + "<", max_size=11)).rstrip("<") if fmt == "TD1" else ""
        ),
        format="TD1" if fmt == "TD1" else "TD3",
    )


def _reference(record: MrzRecord) -> int | None:
    return None if record.expiry_date is not None else record.birth_date.year + 1


@settings(max_examples=150)
@given(records("TD3"))
def test_td3_round_trip(record: MrzRecord) -> None:
    text = make_mrz(record)
    assert [len(line) for line in text.splitlines()] == [44, 44]
    assert parse_mrz(text, reference_year=_reference(record)) == record


@settings(max_examples=150)
@given(records("TD1"))
def test_td1_round_trip_including_overflow(record: MrzRecord) -> None:
    text = make_mrz(record)
    assert [len(line) for line in text.splitlines()] == [30, 30, 30]
    if len(record.document_number) > 9:
        assert text[14] == "<"
    assert parse_mrz(text, reference_year=_reference(record)) == record


# --------------------------------------------------------------------------- partial dates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1990-02-28", PartialDate(1990, 2, 28)),
        ("2000-02-29", PartialDate(2000, 2, 29)),
        ("1990-02", PartialDate(1990, 2)),
        ("1990", PartialDate(1990)),
        ("1990-00-00", PartialDate(1990)),
        ("1990-07-00", PartialDate(1990, 7)),
        (" 1990-07-01 ", PartialDate(1990, 7, 1)),
    ],
)
def test_parse_partial_date(text: str, expected: PartialDate) -> None:
    parsed = parse_partial_date(text)
    assert parsed == expected
    assert parse_partial_date(parsed.iso()) == parsed


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("1990-02-30", "1990-02-00"),
        ("1900-02-29", "1900-02-00"),
        ("1990-13-01", "00"),
        ("1990-00-05", "1990-00-00"),
        ("90-1-1", "YYYY-MM-DD"),
        ("740812", "reference_year"),
        ("0990-01-01", "year"),
    ],
)
def test_impossible_dates_raise_with_a_hint(text: str, hint: str) -> None:
    with pytest.raises(InvalidDateError) as caught:
        parse_partial_date(text)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, InvalidArgumentError)
    assert hint in caught.value.hint


def test_mrz_dates_with_unknown_parts() -> None:
    assert parse_partial_date("74<<<<", reference_year=2026) == PartialDate(1974)
    assert parse_partial_date("7408<<", reference_year=2026) == PartialDate(1974, 8)
    assert parse_partial_date("300101", reference_year=2026, kind="expiry").year == 2030
    assert PartialDate(1974, 8).mrz() == "7408<<"
    for bad in ("74<812", "<<0812", "7<0812"):
        with pytest.raises(InvalidDateError):
            parse_partial_date(bad, reference_year=2026)


@given(st.integers(0, 99), st.integers(1900, 2150))
def test_resolve_century(yy: int, reference: int) -> None:
    birth = resolve_century(yy, reference, "birth")
    assert birth % 100 == yy and reference - 100 < birth <= reference
    expiry = resolve_century(yy, reference, "expiry")
    assert expiry % 100 == yy and reference - 50 <= expiry <= reference + 49


def test_age_on() -> None:
    on = date(2026, 6, 15)
    assert PartialDate(1990, 6, 15).age_on(on) == 36
    assert PartialDate(1990, 6, 16).age_on(on) == 35
    assert PartialDate(1990, 5).age_on(on) == 36
    assert PartialDate(1990, 6).age_on(on) is None  # birthday this month: 35 or 36
    assert PartialDate(1990).age_on(on) is None
    assert PartialDate(2026).age_on(on) == 0
    with pytest.raises(InvalidDateError):
        PartialDate(2027).age_on(on)


def test_iso_strings() -> None:
    assert PartialDate(1990, 1, 2).iso() == "1990-01-02"
    assert PartialDate(1990, 1).iso() == "1990-01"
    assert str(PartialDate(1850)) == "1850"
