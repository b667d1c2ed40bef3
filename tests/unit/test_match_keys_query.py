"""A querier's reduced person keys: a subset of what holders publish that meets every holder
record the full set meets (names), or exactly what each birth-date policy promises (dates)."""

from __future__ import annotations

from itertools import product

import pytest

from node.errors import InvalidArgumentError
from node.matching.keys import (
    DATE_POLICIES,
    parse_input,
    person_inputs,
    person_query_inputs,
    query_date_forms,
    query_name_variants,
)
from node.matching.sources import person_query, query_keys
from node.records.dates import PartialDate
from node.records.names import name_variants

BORN = PartialDate(1990, 5, 17)

# Surnames and given names chosen so that holders and queriers share variants in every way the
# rules allow: compound surnames, particles, conjunctions, mononyms, and the ICAO alternative
# spellings on either side (MÜLLER / MUELLER / MULLER, JÜRGEN / JUERGEN, ÅSTRÖM / AASTROEM).
SURNAMES = ("GARCIA", "LOPEZ", "Müller", "MUELLER", "MULLER", "DE LA CRUZ", "RODRIGUEZ",
            "Åström", "AASTROEM", "ASTROM", "JEAN", "BAPTISTE", "SCHMIDT")  # fmt: skip
GIVEN = ("MARIA", "MARIA JOSE", "Jürgen", "JUERGEN", "JURGEN", "ANNA", "ANNA LENA",
         "MIGUEL ANGEL", "Zoë Ana", "")  # fmt: skip


def _corpus() -> list[tuple[str, str]]:
    surnames = [*SURNAMES, ""]
    surnames += [f"{a} {b}" for a, b in product(SURNAMES, repeat=2) if a != b]
    surnames += [f"{a} Y {b}" for a, b in product(SURNAMES[:4], repeat=2) if a != b]
    return [(s, g) for s, g in product(surnames, GIVEN) if s or g]


def test_query_names_meet_every_holder_the_full_variants_meet() -> None:
    corpus = _corpus()
    published: dict[str, set[int]] = {}
    for number, (surname, given) in enumerate(corpus):
        for variant in name_variants(surname, given):
            published.setdefault(variant, set()).add(number)
    shared = 0
    for surname, given in corpus:
        full = set(name_variants(surname, given))
        sent = query_name_variants(surname, given)
        assert set(sent) <= full and sent == sorted(sent)
        met_full = set().union(*(published.get(v, set()) for v in full))
        met_sent = set().union(*(published.get(v, set()) for v in sent))
        assert met_sent == met_full, (surname, given)
        shared += len(met_full) - 1
    assert shared > 10 * len(corpus)  # the corpus does exercise shared variants


def test_cross_spellings_need_the_digraph_variants_that_are_kept() -> None:
    # The holder wrote the umlaut; the querier has the MRZ spelling (and the reverse): the only
    # common variant is the full compound surname, which a first-surname-only query would lose.
    holder = set(name_variants("Müller Schmidt", "Anna"))
    assert not {"MUELLER|ANNA"} & holder
    assert set(query_name_variants("MUELLER SCHMIDT", "ANNA")) & holder
    holder = set(name_variants("Garcia Lopez", "Jürgen"))
    assert not {"GARCIA|JUERGEN"} & holder
    assert set(query_name_variants("GARCIA LOPEZ", "JUERGEN")) & holder
    assert set(query_name_variants("Müller Schmidt", "Anna")) & set(
        name_variants("MUELLER SCHMIDT", "ANNA")
    )


def test_most_names_send_one_variant() -> None:
    assert query_name_variants("García López", "María José") == ["GARCIA|MARIA"]
    assert query_name_variants("Quiros Mora", "Sofia") == ["QUIROS|SOFIA"]
    assert query_name_variants("De la Cruz", "Ana") == ["DE LA CRUZ|ANA"]
    assert query_name_variants("", "Suharto") == ["SUHARTO|"]
    assert len(name_variants("García López", "María José")) == 4
    # A digraph keeps the full surname too (it could be a holder's alternative spelling).
    assert query_name_variants("Rodriguez Vargas", "Miguel Angel") == [
        "RODRIGUEZ VARGAS|MIGUEL",
        "RODRIGUEZ|MIGUEL",
    ]


def test_date_policies() -> None:
    assert query_date_forms(BORN) == ["1990-05-17", "1990-05", "1990"]
    assert query_date_forms(BORN, "covering") == ["1990-05-17", "1990"]
    assert query_date_forms(BORN, "finest") == ["1990-05-17"]
    assert query_date_forms(PartialDate(1990, 5), "covering") == ["1990-05", "1990"]
    assert query_date_forms(PartialDate(1990, 5), "finest") == ["1990-05"]
    assert query_date_forms(PartialDate(1990), "covering") == ["1990"]
    with pytest.raises(InvalidArgumentError):
        query_date_forms(BORN, "weekly")  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", DATE_POLICIES)
def test_query_inputs_are_published_inputs(policy: str) -> None:
    for surname, given in [("García López", "María José"), ("Müller", "Anna Lena")]:
        for born in (BORN, PartialDate(1990, 5), PartialDate(1990)):
            sent = person_query_inputs(surname, given, born, dates=policy)  # type: ignore[arg-type]
            assert sent and set(sent) <= set(person_inputs(surname, given, born))
    with pytest.raises(InvalidArgumentError):
        person_query_inputs("Ali", "Omar", None)


def _met(sent: list[bytes], held: set[bytes]) -> set[str]:
    return {parse_input(k).strength for k in sent if k in held}


def test_covering_finds_what_every_finds_and_finest_misses_partial_records() -> None:
    name = ("García López", "María José")
    holders = {
        "same day": set(person_inputs("GARCIA", "MARIA", BORN)),
        "month only": set(person_inputs("GARCIA LOPEZ", "MARIA", PartialDate(1990, 5))),
        "year only": set(person_inputs("GARCIA", "MARIA JOSE", PartialDate(1990))),
        "other day": set(person_inputs("GARCIA", "MARIA", PartialDate(1990, 5, 18))),
        "other year": set(person_inputs("GARCIA", "MARIA", PartialDate(1991, 5, 17))),
    }
    found = {
        policy: {
            label: _met(person_query_inputs(*name, BORN, dates=policy), held)
            for label, held in holders.items()
        }
        for policy in DATE_POLICIES
    }
    assert found["every"] == {
        "same day": {"name+day", "name+month", "name+year"},
        "month only": {"name+month", "name+year"},
        "year only": {"name+year"},
        "other day": {"name+month", "name+year"},
        "other year": set(),
    }
    for label, strengths in found["every"].items():
        assert bool(found["covering"][label]) == bool(strengths), label
        assert found["covering"][label] == strengths - {"name+month"}
    assert {k for k, v in found["finest"].items() if v} == {"same day"}


def test_person_query_carries_its_policy_into_its_keys() -> None:
    every = query_keys(person_query("García López", "María José", "1990-05-17"))
    finest = query_keys(person_query("García López", "María José", "1990-05-17", dates="finest"))
    assert set(every) == set(finest) == {"identities", "persons_of_interest"}
    assert [len(v) for v in every.values()] == [3, 3]
    assert [len(v) for v in finest.values()] == [1, 1]
    assert set(finest["identities"]) < set(every["identities"])
