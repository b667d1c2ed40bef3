"""The optional total privacy budget of a DP grant: form, validation, and unchanged old bytes."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from test_agreement import CRI, EPOCH, EXAMPLE, FAR, PAN, Directory, base_doc, directory

from crypto.signing import SigningKey
from policies.agreement import Agreement, DifferentialPrivacy
from policies.errors import AgreementFormatError
from policies.signatures import (
    dump_signed_agreement,
    load_signed_agreement,
    sign_agreement,
    verify_agreement,
)

#: The hash of docs/examples/agreement-pan-cri.yaml, whose DP grant has no ``budget_total``,
#: as computed before the field existed: its signatures were made over these bytes.
EXAMPLE_HASH = "559bbb2df0242fdd6e08b2632518432504d68ec8dd17977db6a7c4088697793f"
#: The DP part of that grant in those bytes.
EXAMPLE_DP_BYTES = (
    b'"dp":{"budget_per_period":"10","epsilon_per_query":"0.5",'
    b'"mechanism":"discrete_laplace","period":"quarter"}'
)
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _dp_doc(**extra: object) -> dict[str, Any]:
    doc = base_doc()
    doc["grants"][0]["disclosure"]["dp"] = {
        "mechanism": "discrete_laplace",
        "epsilon_per_query": "0.5",
        "budget_per_period": "2",
        "period": "quarter",
        **extra,
    }
    return doc


def _example_directory() -> Directory:
    d = Directory()
    for party in ("PAN", "CRI"):
        seed = hashlib.sha256(f"crm-enlace example key {party}".encode()).digest()
        d.add(party, SigningKey(seed), EPOCH, FAR)
    return d


def test_an_agreement_without_a_total_keeps_its_signed_bytes() -> None:
    signed = load_signed_agreement(EXAMPLE.read_text("utf-8"))
    body = signed.agreement.canonical_bytes()
    assert signed.agreement.hash == EXAMPLE_HASH
    assert EXAMPLE_DP_BYTES in body
    assert b"budget_total" not in body
    # The signatures made before the field existed still verify.
    verified = verify_agreement(signed, _example_directory(), NOW)
    assert verified.hash == EXAMPLE_HASH
    dp = verified.agreement.grants[3].disclosure
    assert dp is not None and dp.dp is not None and dp.dp.budget_total is None


def test_a_total_is_signed_when_set_and_round_trips() -> None:
    without = Agreement.from_document(_dp_doc())
    with_total = Agreement.from_document(_dp_doc(budget_total="40.50"))
    assert b'"budget_total":"40.5"' in with_total.canonical_bytes()
    assert b"budget_total" not in without.canonical_bytes()
    assert with_total.hash != without.hash
    disclosure = with_total.grants[0].disclosure
    assert disclosure is not None and disclosure.dp is not None
    assert disclosure.dp.budget_total == Decimal("40.5")
    # written as a number or a string, it is the same agreement
    assert Agreement.from_document(_dp_doc(budget_total=40.5)).hash == with_total.hash
    signed = sign_agreement(sign_agreement(with_total, "PAN", PAN), "CRI", CRI)
    again = load_signed_agreement(dump_signed_agreement(signed))
    assert again.agreement == with_total
    assert verify_agreement(again, directory(), NOW).hash == with_total.hash


def test_a_model_built_in_code_has_the_same_bytes_as_the_document() -> None:
    doc = _dp_doc(budget_total="8")
    agreement = Agreement.from_document(doc)
    disclosure = agreement.grants[0].disclosure
    assert disclosure is not None
    dp = DifferentialPrivacy("discrete_laplace", Decimal("0.5"), Decimal("2"), "quarter", "8")
    assert disclosure.dp == dp


@pytest.mark.parametrize(
    ("total", "path", "fragment"),
    [
        ("1.5", "budget_total", "must be at least budget_per_period"),
        ("0", "budget_total", "must be at least budget_per_period"),
        ("1.0000000001", "budget_total", "is not valid here"),
        ("1000001", "budget_total", "is not valid here"),
        (None, "budget_total", "is not of type"),
        ("lots", "budget_total", "is not valid here"),
    ],
)
def test_a_bad_total_is_refused_naming_its_path(total: object, path: str, fragment: str) -> None:
    with pytest.raises(AgreementFormatError) as info:
        Agreement.from_document(_dp_doc(budget_total=total))
    assert info.value.path == f"$.grants[0].disclosure.dp.{path}"
    assert fragment in str(info.value)


def test_every_budget_order_problem_is_listed() -> None:
    doc = _dp_doc(budget_total="0.25")
    doc["grants"][0]["disclosure"]["dp"]["budget_per_period"] = "0.4"
    with pytest.raises(AgreementFormatError) as info:
        Agreement.from_document(doc)
    assert list(info.value.problems) == [
        "$.grants[0].disclosure.dp.budget_per_period: must be at least epsilon_per_query",
        "$.grants[0].disclosure.dp.budget_total: must be at least budget_per_period",
    ]


def test_direct_construction_checks_the_total_too() -> None:
    good = Agreement.from_document(_dp_doc(budget_total="2"))  # equal to the period: allowed
    grant = good.grants[0]
    assert grant.disclosure is not None and grant.disclosure.dp is not None
    low = DifferentialPrivacy("discrete_laplace", Decimal("0.5"), Decimal("2"), "quarter", "1")
    bad_grant = replace(grant, disclosure=replace(grant.disclosure, dp=low))
    with pytest.raises(AgreementFormatError) as info:
        replace(good, grants=(bad_grant, *good.grants[1:]))
    assert info.value.path == "$.grants[0].disclosure.dp.budget_total"
