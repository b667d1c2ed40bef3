"""Name normalisation and name-key variants."""

from __future__ import annotations

import re
import string
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.errors import NormalisationError
from node.records.names import (
    MAX_VARIANTS,
    first_surname,
    name_variants,
    normalise_name,
    normalise_name_expanded,
)

CANONICAL = re.compile(r"^([A-Z]+( [A-Z]+)*)?$")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Müller-Lüdenscheidt", "MULLER LUDENSCHEIDT"),
        ("Peña Nieto", "PENA NIETO"),
        ("Argüello", "ARGUELLO"),
        ("Ångström", "ANGSTROM"),
        ("O'Neill", "ONEILL"),
        ("D’Alembert", "DALEMBERT"),
        ("Straße", "STRASSE"),
        ("Søren Æbelø", "SOEREN AEBELOE"),
        ("Łukasz Đorđević", "LUKASZ DORDEVIC"),
        ("Þórður", "THORDUR"),
        ("Nɔ́ɔ Ɓello", "NOO BELLO"),
        ("İlkay Işık", "ILKAY ISIK"),
        ("ERIKSSON<<ANNA<MARIA", "ERIKSSON ANNA MARIA"),
        ("  garcía,   josé  ", "GARCIA JOSE"),
        ("Louis XIV 2nd", "LOUIS XIV ND"),
        ("Дмитрий Шостакович", "DMITRII SHOSTAKOVICH"),
        ("Юлия Щербакова", "IULIIA SHCHERBAKOVA"),
        ("Παπαδόπουλος", "PAPADOPOULOS"),
        ("Χρήστος", "CHRISTOS"),
        ("محمد", "MHMD"),
        ("پرویز", "PRWYZ"),
        ("ﬁfi", "FIFI"),
        ("", ""),
        ("- ' <<", ""),
    ],
)
def test_normalise_name(raw: str, expected: str) -> None:
    assert normalise_name(raw) == expected


def test_expanded_spelling_is_the_icao_alternative() -> None:
    assert normalise_name_expanded("Müller Åsa Öz") == "MUELLER AASA OEZ"
    assert normalise_name_expanded("Peña") == "PENA"


@pytest.mark.parametrize("raw", ["王小明", "राम", "שרה", "김민준", "ሰላም"])
def test_unsupported_scripts_raise_instead_of_vanishing(raw: str) -> None:
    with pytest.raises(NormalisationError, match="Latin spelling"):
        normalise_name(raw)


latin_extras = "ÄÖÜÅÑÉÈÇØÆŒßäöüåñéèçøæœ"
name_text = st.text(alphabet=string.ascii_letters + latin_extras + " -'<.,", max_size=30)


@given(name_text)
def test_normalisation_is_idempotent_and_canonical(text: str) -> None:
    once = normalise_name(text)
    assert CANONICAL.match(once)
    assert normalise_name(once) == once


@given(name_text)
def test_case_and_unicode_form_do_not_matter(text: str) -> None:
    expected = normalise_name(text)
    assert normalise_name(text.upper()) == expected
    assert normalise_name(text.lower()) == expected
    assert normalise_name(unicodedata.normalize("NFD", text)) == expected
    assert normalise_name(unicodedata.normalize("NFC", text)) == expected


@given(st.lists(st.text(alphabet=string.ascii_uppercase, min_size=1, max_size=8), min_size=1))
def test_separators_between_words_do_not_matter(words: list[str]) -> None:
    expected = " ".join(words)
    for separator in (" ", "  ", "-", "<", "<<", ", ", " - "):
        assert normalise_name(separator.join(words)) == expected


def test_diacritics_do_not_matter() -> None:
    assert normalise_name("José María Núñez") == normalise_name("Jose Maria Nunez")


def test_first_surname() -> None:
    assert first_surname("GARCIA LOPEZ") == "GARCIA"
    assert first_surname("DE LA CRUZ MARTINEZ") == "DE LA CRUZ"
    assert first_surname("MARTINEZ DE LA CRUZ") == "MARTINEZ"
    assert first_surname("GARCIA Y LOPEZ") == "GARCIA"
    assert first_surname("VAN DER BERG") == "VAN DER BERG"
    assert first_surname("SMITH") == "SMITH"
    assert first_surname("DE") == "DE"


def test_variants_of_a_compound_spanish_name() -> None:
    assert name_variants("García López", "María José") == [
        "GARCIA LOPEZ|MARIA",
        "GARCIA LOPEZ|MARIA JOSE",
        "GARCIA|MARIA",
        "GARCIA|MARIA JOSE",
    ]


def test_data_page_and_mrz_spellings_share_a_key() -> None:
    typed = set(name_variants("Müller", "Anna Lena"))
    from_mrz = set(name_variants("MUELLER", "ANNA LENA"))
    stripped = set(name_variants("MULLER", "ANNA"))
    assert "MUELLER|ANNA LENA" in typed & from_mrz
    assert "MULLER|ANNA" in typed & stripped


def test_different_people_do_not_share_keys() -> None:
    assert not set(name_variants("Garcia Lopez", "Maria")) & set(name_variants("Lopez", "Maria"))
    assert not set(name_variants("Perez", "Ana")) & set(name_variants("Ana", "Perez"))


def test_mononym_goes_to_the_surname() -> None:
    assert name_variants("", "Suharto") == name_variants("Suharto", "") == ["SUHARTO|"]
    with pytest.raises(NormalisationError, match="both are empty"):
        name_variants(" ", "<<")


names = st.text(alphabet=string.ascii_letters + latin_extras + " -'", max_size=40)


@given(names.filter(lambda t: normalise_name(t) != ""), names)
def test_variants_are_sorted_small_and_deterministic(surname: str, given_names: str) -> None:
    variants = name_variants(surname, given_names)
    assert variants == sorted(set(variants))
    assert 1 <= len(variants) <= MAX_VARIANTS
    assert variants == name_variants(surname, given_names)
    assert f"{normalise_name(surname)}|{normalise_name(given_names)}" in variants
    assert name_variants(surname.upper(), given_names.lower()) == variants
