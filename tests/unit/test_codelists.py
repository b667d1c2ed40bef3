"""The packaged regional code lists."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.errors import ConfigError, InvalidArgumentError
from node.records.codelists import (
    CODELIST_NAMES,
    CODELISTS_VERSION,
    REGIONAL_MEMBERS,
    CodeEntry,
    CodeList,
    UnknownCodeError,
    age_group_for,
    all_codelists,
    codelist,
    icao_state_codes,
    iso_alpha2_to_alpha3,
)


def test_every_list_loads_with_labels_in_both_languages() -> None:
    lists = all_codelists()
    assert list(lists) == list(CODELIST_NAMES)
    for name, codes in lists.items():
        assert codes.name == name
        assert codes.version == CODELISTS_VERSION
        assert codes.description_es and codes.description_en
        assert len(codes) > 0
        for code, entry in codes.codes.items():
            assert entry.code == code
            assert entry.label_es.strip() and entry.label_en.strip()


def test_required_codes_are_present() -> None:
    assert list(codelist("event_type")) == [
        "irregular_entry",
        "encounter",
        "detention",
        "deportation",
        "assisted_voluntary_return",
        "stranded",
        "asylum_application",
        "asylum_rejected",
        "asylum_granted",
    ]
    assert list(codelist("nationality_basis")) == ["documented", "declared", "presumed", "unknown"]
    assert list(codelist("sex")) == ["F", "M", "X", "U"]
    assert {"health", "shelter", "none"} <= set(codelist("care"))
    assert {"unaccompanied_minor", "possible_trafficking_victim"} <= set(codelist("vulnerability"))
    assert set(codelist("document_type")) == {"P", "I", "V", "O"}
    assert {"lost", "stolen", "counterfeit", "forged", "fraudulent"} <= set(codelist("alert_type"))


def test_nationality_is_iso_alpha3_plus_icao_codes() -> None:
    nationality = codelist("nationality")
    assert {"XXA", "XXB", "XXC", "XXX"} <= set(nationality)
    iso = [c for c in nationality if c not in {"XXA", "XXB", "XXC", "XXX"}]
    assert len(iso) == len(iso_alpha2_to_alpha3()) == 249
    assert all(re.fullmatch(r"[A-Z]{3}", c) for c in nationality)
    assert nationality.label("HTI", "es") == "Haití"
    assert nationality.label("COD", "en") == "Democratic Republic of the Congo"
    assert iso_alpha2_to_alpha3()["PA"] == "PAN"
    assert set(iso_alpha2_to_alpha3().values()) == set(iso)


def test_members_are_the_eleven_crm_countries() -> None:
    members = codelist("member")
    assert tuple(members) == REGIONAL_MEMBERS
    assert len(set(REGIONAL_MEMBERS)) == 11
    for code in REGIONAL_MEMBERS:
        assert members.entry(code) == codelist("nationality").entry(code)


def test_icao_state_codes_do_not_overlap_iso() -> None:
    icao = icao_state_codes()
    nationality = set(codelist("nationality"))
    assert not set(icao.special) & nationality
    assert not set(icao.historic) & nationality
    assert set(icao.legacy.values()) <= nationality
    assert set(icao.aliases.values()) <= nationality
    assert set(icao.nationality_of.values()) <= nationality
    assert {"GBD", "GBN", "GBO", "GBP", "GBS", "UNO", "UNA", "UNK", "EUE"} <= set(icao.special)


def test_validate_returns_the_code() -> None:
    assert codelist("sex").validate("F") == "F"
    assert "PAN" in codelist("nationality")
    assert 3 not in codelist("nationality")


@pytest.mark.parametrize(
    ("name", "code", "suggestion"),
    [
        ("nationality", "PNA", "PAN"),
        ("nationality", "pan", "PAN"),
        ("nationality", "Panama", "PAN"),
        ("nationality", "Haiti", "HTI"),
        ("event_type", "encounterr", "encounter"),
        ("event_type", "Deportación", "deportation"),
        ("sex", "f", "F"),
        ("age_group", "Y0T5", "Y0T4"),
    ],
)
def test_unknown_codes_are_rejected_with_suggestions(name: str, code: str, suggestion: str) -> None:
    with pytest.raises(UnknownCodeError) as caught:
        codelist(name).validate(code)
    error = caught.value
    assert isinstance(error, ValueError) and isinstance(error, InvalidArgumentError)
    assert error.list_name == name and error.field == name
    assert suggestion in error.suggestions
    assert name in str(error) and repr(suggestion) in str(error)


def test_unknown_code_without_any_close_match() -> None:
    with pytest.raises(UnknownCodeError) as caught:
        codelist("care").validate("zzzzzzzzzz")
    assert caught.value.suggestions == ()
    assert "docs/code-lists.md" in str(caught.value)
    with pytest.raises(UnknownCodeError):
        codelist("care").validate(None)


def test_unknown_list_name() -> None:
    with pytest.raises(UnknownCodeError) as caught:
        codelist("nationalty")
    assert "nationality" in caught.value.suggestions


def test_code_lists_are_immutable() -> None:
    codes = codelist("sex")
    with pytest.raises(TypeError):
        codes.codes["Q"] = CodeEntry("Q", "q", "q")  # type: ignore[index]
    with pytest.raises(AttributeError):
        codes.version = "0"  # type: ignore[misc]


def test_a_code_list_refuses_mismatched_keys() -> None:
    with pytest.raises(ConfigError, match="key 'A' holds entry 'B'"):
        CodeList("x", "1", {"A": CodeEntry("B", "b", "b")})


@pytest.mark.parametrize(
    ("age", "group"),
    [
        (0, "Y0T4"),
        (4, "Y0T4"),
        (5, "Y5T9"),
        (14, "Y10T14"),
        (15, "Y15T17"),
        (17, "Y15T17"),
        (18, "Y18T24"),
        (34, "Y25T34"),
        (64, "Y55T64"),
        (65, "Y_GE65"),
        (119, "Y_GE65"),
        (None, "_U"),
    ],
)
def test_age_group_for(age: int | None, group: str) -> None:
    assert age_group_for(age) == group
    assert group in codelist("age_group")


@pytest.mark.parametrize("bad", [-1, True, 3.5])
def test_age_group_for_rejects_non_ages(bad: object) -> None:
    with pytest.raises(InvalidArgumentError, match="age"):
        age_group_for(bad)  # type: ignore[arg-type]


@given(st.integers(0, 130), st.integers(0, 130))
def test_age_groups_are_ordered_like_ages(a: int, b: int) -> None:
    order = list(codelist("age_group"))
    young, old = sorted((a, b))
    assert order.index(age_group_for(young)) <= order.index(age_group_for(old))


@pytest.mark.parametrize("name", ["care", "vulnerability"])
def test_codes_an_encounter_stores_joined_need_no_escaping(name: str) -> None:
    # The view encounter_codes and the statistics split ';'-joined codes inside the database
    # by building a JSON array around them: a quote, backslash or ';' in a code would break it.
    for code in codelist(name):
        assert re.fullmatch(r"[A-Za-z0-9_]+", code), f"{name}: {code!r}"
