"""Identity keys, per-epoch OPRF keys, and private matching end to end in memory."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import oprf
from crypto.errors import EncodingError, KeyError_, NormalisationError
from crypto.filter import build_filter, encode_filter
from crypto.match_keys import (
    describe_filter,
    epoch_at,
    oprf_key_for,
    sign_manifest,
    verify_filter,
    verify_manifest,
)
from crypto.oprf import Mode
from crypto.signing import SigningKey
from node.errors import InvalidArgumentError
from node.matching.keys import (
    MAX_INPUT_BYTES,
    NORMALISATION_VERSIONS,
    alert_input,
    birth_date_forms,
    document_input,
    parse_input,
    person_inputs,
    poi_inputs,
    strongest,
)
from node.records.dates import PartialDate
from node.records.icao import NORMALISATION_VERSION
from node.records.names import TRANSLITERATION_VERSION, name_variants

MASTER = bytes(range(32))
NOW = datetime(2026, 3, 2, tzinfo=UTC)
BORN = PartialDate(1990, 5, 17)

# --------------------------------------------------------------------------- document keys


def test_document_key_format_binds_dataset_and_rule_edition() -> None:
    key = document_input("AB1234567", "PAN")
    assert key == f"enlace/1 doc:travel_documents|{NORMALISATION_VERSION}|PAN|AB1234567".encode()
    assert parse_input(key).kind == "doc"
    assert parse_input(key).value == "PAN|AB1234567"


@pytest.mark.parametrize(
    ("number", "state"),
    [
        ("ab 123-4567", "pan"),
        ("AB1234567<<", "PA"),
        ("ＡＢ１２３４５６７", " pan<"),
        ("AB.123.456.7", "PAN"),
    ],
)
def test_equivalent_documents_give_the_same_key(number: str, state: str) -> None:
    assert document_input(number, state) == document_input("AB1234567", "PAN")
    assert alert_input(number, state) == alert_input("AB1234567", "PAN")


def test_different_documents_and_datasets_give_different_keys() -> None:
    keys = {
        document_input("AB1234567", "PAN"),
        document_input("AB1234568", "PAN"),
        document_input("AB1234567", "CRI"),
        document_input("AB1234567", "PAN", dataset="encounters"),
        document_input("AB1234567", "PAN", dataset="persons_of_interest"),
        alert_input("AB1234567", "PAN"),
    }
    assert len(keys) == 6
    assert parse_input(alert_input("X1", "HTI")).dataset == "document_alerts"


def test_unknown_datasets_and_kinds_are_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        document_input("X1", "HTI", dataset="biometric_templates")
    with pytest.raises(InvalidArgumentError):
        person_inputs("Ali", "Omar", BORN, dataset="document_alerts")
    with pytest.raises(NormalisationError):
        document_input("AB/123", "PAN")


_SEPARATORS = st.sampled_from(["", " ", "-", ".", "<"])


@given(
    st.text(alphabet=string.ascii_uppercase + string.digits, min_size=1, max_size=15),
    st.data(),
)
def test_separators_and_case_never_change_a_document_key(number: str, data: st.DataObject) -> None:
    spelled = "".join(
        data.draw(_SEPARATORS) + (c.lower() if data.draw(st.booleans()) else c) for c in number
    )
    assert document_input(spelled, "hti") == document_input(number, "HTI")
    assert len(document_input(number, "HTI")) <= MAX_INPUT_BYTES


# --------------------------------------------------------------------------- person keys


def test_person_keys_are_variants_times_known_precisions() -> None:
    variants = name_variants("García López", "María José")
    keys = person_inputs("García López", "María José", BORN)
    assert len(keys) == 3 * len(variants)
    assert keys == sorted(set(keys))
    parsed = [parse_input(k) for k in keys]
    assert {p.precision for p in parsed} == {"day", "month", "year"}
    assert {p.value for p in parsed} == set(variants)
    assert all(p.edition == TRANSLITERATION_VERSION for p in parsed)
    assert len(person_inputs("García López", "María José", PartialDate(1990, 5))) == 2 * len(
        variants
    )
    assert len(person_inputs("García López", "María José", PartialDate(1990))) == len(variants)
    only_day = person_inputs("García López", "María José", BORN, precisions=["day"])
    assert {parse_input(k).precision for k in only_day} == {"day"}
    with pytest.raises(InvalidArgumentError):
        person_inputs("García López", "María José", BORN, precisions=["week"])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError):
        person_inputs("García López", "María José", None)


def test_birth_date_forms_only_use_known_parts() -> None:
    assert birth_date_forms(BORN) == ["1990-05-17", "1990-05", "1990"]
    assert birth_date_forms(PartialDate(1990, 5)) == ["1990-05", "1990"]
    assert birth_date_forms(PartialDate(1990), ["day", "month"]) == []


@pytest.mark.parametrize(
    ("surname", "given"),
    [
        ("GARCIA LOPEZ", "MARIA JOSE"),
        ("garcía lópez", "maría josé"),
        ("  García-López ", " María   José"),
        ("GARCIA<LOPEZ", "MARIA<JOSE"),
    ],
)
def test_equivalent_names_give_the_same_keys(surname: str, given: str) -> None:
    assert person_inputs(surname, given, BORN) == person_inputs("García López", "María José", BORN)


def test_partial_information_still_shares_a_key() -> None:
    full = set(person_inputs("García López", "María José", BORN))
    # A querier who knows one surname, one given name and the birth year.
    partial = set(person_inputs("GARCIA", "MARIA", PartialDate(1990)))
    shared = full & partial
    assert [parse_input(k).precision for k in shared] == ["year"]
    # Another birth day still meets on month and year, never on the day.
    other_day = set(person_inputs("García López", "María José", PartialDate(1990, 5, 18)))
    assert {parse_input(k).precision for k in full & other_day} == {"month", "year"}
    # Other people do not meet at all.
    assert not full & set(person_inputs("García López", "Ana", BORN))
    assert not full & set(person_inputs("García López", "María José", PartialDate(1991, 5, 17)))


def test_poi_inputs_combine_person_and_document_keys() -> None:
    keys = poi_inputs("Ali", "Omar", PartialDate(1985), "X1234", "SEN")
    kinds = sorted(parse_input(k).kind for k in keys)
    assert kinds == ["doc", "person"]
    assert all(parse_input(k).dataset == "persons_of_interest" for k in keys)
    assert poi_inputs("Ali", "Omar", None, "X1234", "SEN") == [keys[-1]]
    with pytest.raises(InvalidArgumentError):
        poi_inputs("Ali", "Omar", None)
    with pytest.raises(InvalidArgumentError):
        poi_inputs("Ali", "Omar", None, "X1234")


def test_strongest_hit_prefers_documents_then_precise_dates() -> None:
    person = [parse_input(k) for k in person_inputs("Ali", "Omar", BORN)]
    document = parse_input(document_input("X1", "SEN", dataset="encounters"))
    assert strongest([*person, document]) == document
    strongest_person = strongest(person)
    assert strongest_person is not None and strongest_person.precision == "day"
    assert strongest([]) is None


def test_overlong_names_and_foreign_bytes_are_refused() -> None:
    with pytest.raises(NormalisationError):
        person_inputs("A" * 600, "B", BORN)
    for bad in (
        b"other/1 doc:x|y|z",
        b"\xff",
        b"enlace/1 doc",
        b"enlace/1 person:encounters|x|y",
        b"enlace/1 person:document_alerts|names-1|1990|A|B",
        b"enlace/1 doc:unknown|icao9303-1|PAN|X1",
        b"enlace/1 person:encounters|names-1|19900|A|B",
    ):
        with pytest.raises(NormalisationError):
            parse_input(bad)


@settings(max_examples=50)
@given(
    st.text(alphabet=string.ascii_letters + " -'áéíóúñü", min_size=1, max_size=40),
    st.text(alphabet=string.ascii_letters + " áéíóúñ", max_size=40),
    st.integers(min_value=1900, max_value=2025),
)
def test_person_keys_are_bounded_and_case_insensitive(surname: str, given: str, year: int) -> None:
    try:
        keys = person_inputs(surname, given, PartialDate(year, 2, 28))
    except NormalisationError:
        return  # nothing left of the name after normalisation
    assert 1 <= len(keys) <= 24
    assert all(len(k) <= MAX_INPUT_BYTES for k in keys)
    assert person_inputs(surname.upper(), given.lower(), PartialDate(year, 2, 28)) == keys


# --------------------------------------------------------------------------- OPRF key epochs


def test_oprf_keys_are_derived_per_dataset_and_epoch() -> None:
    key = oprf_key_for(MASTER, "travel_documents", 1)
    assert key.secret == oprf_key_for(MASTER, "travel_documents", 1).secret
    others = {
        oprf_key_for(MASTER, "travel_documents", 2).secret,
        oprf_key_for(MASTER, "document_alerts", 1).secret,
        oprf_key_for(bytes(32), "travel_documents", 1).secret,
        oprf_key_for(MASTER, "travel_documents", 1, Mode.VOPRF).secret,
    }
    assert key.secret not in others and len(others) == 4
    with pytest.raises(KeyError_):
        oprf_key_for(MASTER[:31], "travel_documents", 1)
    for dataset, epoch in (("Travel", 1), ("a|b", 1), ("travel_documents", -1)):
        with pytest.raises(EncodingError, match=r"dataset|epoch"):
            oprf_key_for(MASTER, dataset, epoch)


def test_epoch_at_counts_whole_periods() -> None:
    origin = datetime(2026, 1, 1, tzinfo=UTC)
    quarter = timedelta(days=90)
    assert epoch_at(origin, origin=origin, period=quarter) == 0
    assert epoch_at(origin + quarter - timedelta(seconds=1), origin=origin, period=quarter) == 0
    assert epoch_at(origin + 2 * quarter, origin=origin, period=quarter) == 2
    with pytest.raises(ValueError):
        epoch_at(origin - timedelta(days=1), origin=origin, period=quarter)
    with pytest.raises(ValueError):
        epoch_at(datetime(2026, 2, 1), origin=origin, period=quarter)  # naive
    with pytest.raises(ValueError):
        epoch_at(origin, origin=origin, period=timedelta(0))


# --------------------------------------------------------------------------- end to end


HOLDER_DOCUMENTS = [(f"P{n:07d}", state) for n in range(60) for state in ("HTI", "CUB")]


def _holder_filter(epoch: int, version: int = 1) -> bytes:
    key = oprf_key_for(MASTER, "travel_documents", epoch)
    outputs = key.evaluate_many([document_input(n, s) for n, s in HOLDER_DOCUMENTS])
    return encode_filter(build_filter(outputs, version=version))


def _query(epoch: int, inputs: list[bytes]) -> list[bytes]:
    """The querier's side of one round trip; the holder only sees blinded elements."""
    state = oprf.blind(inputs)
    evaluated = oprf_key_for(MASTER, "travel_documents", epoch).blind_evaluate(
        state.blinded_elements
    )
    return state.finalize(evaluated)


def test_private_document_match_end_to_end() -> None:
    holder_key = SigningKey.generate()
    encoded = _holder_filter(epoch=4)
    manifest = describe_filter(
        encoded,
        holder="PAN",
        dataset="travel_documents",
        epoch=4,
        created_at=NOW,
        normalisation=NORMALISATION_VERSIONS,
    )
    signed = sign_manifest(manifest, holder_key)
    # Querier: verify the manifest and the filter, then query.
    checked = verify_manifest(signed, holder_key.public_key, holder="PAN")
    filt = verify_filter(checked, encoded)
    queries = [
        document_input("p 000-0042", "hti"),  # held, spelled differently
        document_input("P0000042", "SEN"),  # same number, other issuing state
        document_input("P9999999", "CUB"),  # not held
    ]
    outputs = _query(4, queries)
    assert filt.contains_many(outputs) == [True, False, False]
    assert filt.contains(outputs[0])


def test_rotation_makes_old_outputs_miss() -> None:
    old_filter = build_filter(
        oprf_key_for(MASTER, "travel_documents", 4).evaluate_many(
            [document_input(n, s) for n, s in HOLDER_DOCUMENTS]
        )
    )
    new_filter = build_filter(
        oprf_key_for(MASTER, "travel_documents", 5).evaluate_many(
            [document_input(n, s) for n, s in HOLDER_DOCUMENTS]
        )
    )
    held = [document_input(n, s) for n, s in HOLDER_DOCUMENTS[:10]]
    cached = _query(4, held)
    assert all(old_filter.contains_many(cached))
    assert not any(new_filter.contains_many(cached))
    assert all(new_filter.contains_many(_query(5, held)))


def test_person_match_end_to_end_in_voprf_mode() -> None:
    key = oprf_key_for(MASTER, "persons_of_interest", 1, Mode.VOPRF)
    records = [
        ("García López", "María José", BORN),
        ("Diallo", "Mamadou", PartialDate(1979)),
        ("Mbeki", "Grace", PartialDate(1988, 11, 2)),
    ]
    holder_inputs = [k for s, g, b in records for k in poi_inputs(s, g, b)]
    filt = build_filter(key.evaluate_many(holder_inputs, Mode.VOPRF))
    manifest = describe_filter(
        encode_filter(filt),
        holder="MEX",
        dataset="persons_of_interest",
        epoch=1,
        created_at=NOW,
        normalisation=NORMALISATION_VERSIONS,
        oprf_public_key=key.public_key,
    )
    public = manifest.public_key_bytes
    assert public is not None
    # A querier who has only "GARCIA MARIA, born 1990", and an unrelated person.
    queries = poi_inputs("GARCIA", "MARIA", PartialDate(1990)) + poi_inputs(
        "Diallo", "Mamadou", PartialDate(1980)
    )
    state = oprf.blind(queries, Mode.VOPRF)
    evaluated, proof = key.blind_evaluate_verifiable(state.blinded_elements)
    outputs = state.finalize_verifiable(evaluated, proof, public)
    hits = [
        parse_input(q) for q, hit in zip(queries, filt.contains_many(outputs), strict=True) if hit
    ]
    assert [(h.value, h.precision) for h in hits] == [("GARCIA|MARIA", "year")]
