"""Agreement documents: schema, canonical bytes, YAML round trip, signatures, revocation."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from crypto.errors import KeyError_
from crypto.signing import SigningKey
from policies.agreement import AGREEMENT_CONTEXT, REVOCATION_CONTEXT, Agreement
from policies.canonical import (
    b64encode,
    canonical_json,
    format_timestamp,
    load_document,
    parse_timestamp,
)
from policies.errors import AgreementFormatError, AgreementSignatureError
from policies.signatures import (
    PartySignature,
    Revocation,
    SignedAgreement,
    SignedRevocation,
    VerifiedAgreement,
    dump_revocation,
    dump_signed_agreement,
    load_revocation,
    load_signed_agreement,
    sign_agreement,
    sign_revocation,
    verify_agreement,
    verify_recorded_revocation,
    verify_revocation,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "agreement-pan-cri.yaml"


def key_for(label: str) -> SigningKey:
    return SigningKey(hashlib.sha256(f"test key {label}".encode()).digest())


class Directory:
    """A stand-in for the federation directory: keys per country with validity windows."""

    def __init__(self) -> None:
        self.keys: dict[tuple[str, str], tuple[bytes, datetime, datetime]] = {}

    def add(self, country: str, key: SigningKey, start: datetime, end: datetime) -> None:
        self.keys[(country, key.key_id)] = (key.public_key, start, end)

    def __call__(self, country: str, key_id: str, at: datetime) -> bytes:
        entry = self.keys.get((country, key_id))
        if entry is None:
            raise KeyError_(f"{country} has no key {key_id}")
        public_key, start, end = entry
        if not start <= at < end:
            raise KeyError_(f"key {key_id} of {country} is not valid at {at}")
        return public_key


PAN, CRI, MEX = key_for("PAN"), key_for("CRI"), key_for("MEX")
EPOCH, FAR = datetime(2020, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC)


def directory() -> Directory:
    d = Directory()
    d.add("PAN", PAN, EPOCH, FAR)
    d.add("CRI", CRI, EPOCH, FAR)
    d.add("MEX", MEX, EPOCH, FAR)
    return d


def base_doc() -> dict[str, Any]:
    return {
        "format": "enlace-agreement/1",
        "id": "PAN-CRI-T",
        "version": 1,
        "title": "Acuerdo de prueba",
        "parties": ["PAN", "CRI"],
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2027-01-01T00:00:00Z",
        "grants": [
            {
                "holder": "PAN",
                "requester": "CRI",
                "service": "stats",
                "datasets": ["encounters", "matrices"],
                "purposes": ["quarterly_matrices"],
                "dimensions": ["sex", "nationality", "age_group"],
                "disclosure": {"profile": "standard"},
                "quotas": {"per_day": 100, "per_quarter": None},
            },
            {
                "holder": "CRI",
                "requester": "PAN",
                "service": "followup",
                "datasets": ["travel_documents"],
                "purposes": ["identity_verification"],
                "attributes": ["first_seen_quarter"],
                "quotas": {"per_day": 10, "per_quarter": 200},
            },
        ],
    }


def signed_both(doc: dict[str, Any] | None = None) -> SignedAgreement:
    agreement = Agreement.from_document(doc or base_doc())
    return sign_agreement(sign_agreement(agreement, "PAN", PAN), "CRI", CRI)


def reorder(value: Any) -> Any:
    """Reverse every mapping's key order and every set-like list (not grants/parties)."""
    if isinstance(value, dict):
        return {k: reorder(value[k]) for k in reversed(list(value))}
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and len(value) != 2:
        return list(reversed(value))
    if isinstance(value, list):
        return [reorder(v) for v in value]
    return value


# --- canonical bytes ----------------------------------------------------------------------


def test_canonical_json_encoding_is_sorted_compact_utf8() -> None:
    data = {"b": 1, "a": [True, None, "é"], "c": {"z": "x", "y": datetime(2026, 1, 2, tzinfo=UTC)}}
    assert canonical_json(data) == (
        '{"a":[true,null,"é"],"b":1,"c":{"y":"2026-01-02T00:00:00Z","z":"x"}}'.encode()
    )


@pytest.mark.parametrize(
    "value",
    [1.5, float("nan"), 2**53, {1: "x"}, datetime(2026, 1, 1), object(), "\ud800"],
    ids=["float", "nan", "big-int", "int-key", "naive-datetime", "object", "lone-surrogate"],
)
def test_canonical_json_refuses_what_has_no_canonical_form(value: object) -> None:
    with pytest.raises(ValueError):
        canonical_json({"v": value})


def test_canonical_bytes_stable_under_key_and_list_reordering() -> None:
    a = Agreement.from_document(base_doc())
    b = Agreement.from_document(reorder(base_doc()))
    assert list(reorder(base_doc())) != list(base_doc())
    assert a.canonical_bytes() == b.canonical_bytes()
    assert a.hash == b.hash == hashlib.sha256(a.canonical_bytes()).hexdigest()
    assert a == b


def test_canonical_bytes_change_with_any_enforced_value() -> None:
    doc = base_doc()
    doc["grants"][0]["quotas"]["per_day"] = 101
    assert Agreement.from_document(doc).hash != Agreement.from_document(base_doc()).hash


@pytest.mark.parametrize(
    "text",
    ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00.000000Z"],
)
def test_timestamps_are_normalised(text: str) -> None:
    doc = base_doc()
    doc["valid_from"] = text
    agreement = Agreement.from_document(doc)
    assert agreement.hash == Agreement.from_document(base_doc()).hash
    assert agreement.to_document()["valid_from"] == "2026-01-01T00:00:00Z"


def test_fractional_seconds_are_kept() -> None:
    ts = parse_timestamp("2026-01-01T00:00:00.5Z")
    assert ts.microsecond == 500000
    assert format_timestamp(ts) == "2026-01-01T00:00:00.500000Z"


def test_title_is_hashed_in_unicode_nfc() -> None:
    composed, decomposed = base_doc(), base_doc()
    composed["title"] = "Panam\u00e1"
    decomposed["title"] = "Panama\u0301"
    assert Agreement.from_document(composed).hash == Agreement.from_document(decomposed).hash


def test_decimal_written_as_number_or_string_hashes_the_same() -> None:
    as_number, as_string = base_doc(), base_doc()
    dp = {"mechanism": "discrete_laplace", "budget_per_period": 10, "period": "quarter"}
    as_number["grants"][0]["disclosure"]["dp"] = {**dp, "epsilon_per_query": 0.50}
    as_string["grants"][0]["disclosure"]["dp"] = {**dp, "epsilon_per_query": "0.5"}
    a, b = Agreement.from_document(as_number), Agreement.from_document(as_string)
    assert a.hash == b.hash
    assert b'"epsilon_per_query":"0.5"' in a.canonical_bytes()


# --- schema and semantic checks -----------------------------------------------------------


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is _DELETE:
            del target[int(last) if last.isdigit() else last]
        else:
            target[int(last) if last.isdigit() else last] = value

    return mutate


_DELETE = object()

MALFORMED = [
    ("no-id", _set("id", _DELETE), "$", "'id' is a required property"),
    ("format", _set("format", "enlace-agreement/2"), "$.format", "enlace-agreement/1"),
    ("version-string", _set("version", "1"), "$.version", "integer"),
    ("version-float", _set("version", 1.0), "$.version", "integer"),
    ("version-zero", _set("version", 0), "$.version", "minimum"),
    ("one-party", _set("parties", ["PAN"]), "$.parties", "too short"),
    ("same-party", _set("parties", ["PAN", "PAN"]), "$.parties", "non-unique"),
    ("lower-case-party", _set("parties.0", "pan"), "$.parties[0]", "'pan' is not valid here: ISO"),
    ("date-only", _set("valid_from", "2026-01-01"), "$.valid_from", "e.g. 2027-12-01T00:00:00Z"),
    ("not-utc", _set("valid_from", "2026-01-01T00:00:00-05:00"), "$.valid_from", "RFC 3339 in UTC"),
    ("bad-date", _set("valid_from", "2026-02-30T00:00:00Z"), "$.valid_from", "valid"),
    ("until-before", _set("valid_until", "2025-01-01T00:00:00Z"), "$.valid_until", "later"),
    ("extra-key", _set("extra", 1), "$", "Additional properties"),
    ("grants-missing", _set("grants", _DELETE), "$", "'grants' is a required"),
    ("service", _set("grants.0.service", "email"), "$.grants[0].service", "is not one of"),
    (
        "dataset-name",
        _set("grants.0.datasets.0", "Encounters"),
        "$.grants[0].datasets[0]",
        "lower-case letters",
    ),
    ("dup-dataset", _set("grants.0.datasets", ["a", "a"]), "$.grants[0].datasets", "non-unique"),
    ("grant-typo", _set("grants.0.dataset", ["a"]), "$.grants[0]", "Additional properties"),
    ("quota-missing", _set("grants.0.quotas", {"per_day": 1}), "$.grants[0].quotas", "per_quarter"),
    (
        "quota-negative",
        _set("grants.0.quotas.per_day", -1),
        "$.grants[0].quotas.per_day",
        "minimum",
    ),
    ("quota-text", _set("grants.0.quotas.per_day", "10"), "$.grants[0].quotas.per_day", "type"),
    ("no-disclosure", _set("grants.0.disclosure", _DELETE), "$.grants[0]", "'disclosure'"),
    ("min-cell-0", _set("grants.0.disclosure.min_cell", 0), "$.grants[0].disclosure.min_cell", "1"),
    (
        "dp-mechanism",
        _set(
            "grants.0.disclosure.dp",
            {
                "mechanism": "laplace",
                "epsilon_per_query": "1",
                "budget_per_period": "2",
                "period": "quarter",
            },
        ),
        "$.grants[0].disclosure.dp.mechanism",
        "is not one of",
    ),
    (
        "dp-budget-below-epsilon",
        _set(
            "grants.0.disclosure.dp",
            {
                "mechanism": "discrete_gaussian",
                "epsilon_per_query": "1",
                "budget_per_period": "0.5",
                "period": "quarter",
            },
        ),
        "$.grants[0].disclosure.dp.budget_per_period",
        "at least",
    ),
    ("attrs-on-stats", _set("grants.0.attributes", ["x"]), "$.grants[0].attributes", "followup"),
    ("dims-on-followup", _set("grants.1.dimensions", ["x"]), "$.grants[1].dimensions", "stats"),
    (
        "disclosure-on-followup",
        _set("grants.1.disclosure", {"profile": "p"}),
        "$.grants[1].disclosure",
        "only stats",
    ),
    (
        "approval-on-stats",
        _set("grants.0.followup_requires_approval", False),
        "$.grants[0].followup_requires_approval",
        "only followup",
    ),
    ("holder-not-party", _set("grants.0.holder", "MEX"), "$.grants[0].holder", "not a party"),
    ("requester-is-holder", _set("grants.0.requester", "PAN"), "$.grants[0].requester", "other"),
]


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_schema_rejects_malformed_documents_naming_the_path(
    mutate: Callable[[dict[str, Any]], None], path: str, fragment: str
) -> None:
    doc = base_doc()
    mutate(doc)
    with pytest.raises(AgreementFormatError) as info:
        Agreement.from_document(doc)
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: ")
    assert fragment in str(info.value)


def test_every_problem_is_listed() -> None:
    doc = base_doc()
    doc["version"] = "x"
    doc["grants"][0]["service"] = "email"
    with pytest.raises(AgreementFormatError) as info:
        Agreement.from_document(doc)
    paths = {p.split(":")[0] for p in info.value.problems}
    assert {"$.version", "$.grants[0].service"} <= paths


def test_direct_construction_is_validated_too() -> None:
    good = Agreement.from_document(base_doc())
    with pytest.raises(AgreementFormatError) as info:
        Agreement(good.id, good.version, ("PAN", "CRI"), good.title, NOW, NOW, good.grants)
    assert info.value.path == "$.valid_until"
    with pytest.raises(ValueError, match="timezone-aware"):
        Agreement(good.id, 1, ("PAN", "CRI"), "t", datetime(2026, 1, 1), NOW, ())


def test_empty_grant_list_is_a_valid_document() -> None:
    doc = base_doc()
    doc["grants"] = []
    assert Agreement.from_document(doc).grants == ()


# --- YAML ---------------------------------------------------------------------------------


def test_yaml_round_trip_is_lossless_and_idempotent() -> None:
    signed = signed_both()
    text = dump_signed_agreement(signed)
    again = load_signed_agreement(text)
    assert again == signed
    assert dump_signed_agreement(again) == text
    assert "signatures:" in text
    assert "signatures" not in again.agreement.canonical_bytes().decode()


def test_json_and_yaml_forms_load_to_the_same_agreement() -> None:
    from_json = load_signed_agreement(json.dumps(base_doc()).encode())
    from_yaml = load_signed_agreement(yaml.safe_dump(reorder(base_doc())))
    assert from_json == from_yaml


def test_unquoted_yaml_words_stay_strings() -> None:
    doc = base_doc()
    doc["grants"][0]["purposes"] = ["no", "on"]
    text = yaml.safe_dump(doc).replace("'no'", "no").replace("'on'", "on")
    assert "- no" in text
    assert load_signed_agreement(text).agreement.grants[0].purposes == ("no", "on")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("id: a\nid: b\n", "duplicate key"),
        ("a: &x [1]\nb: *x\n", "aliases"),
        ("grants: [\n", "YAML"),
        (b"\xff\xfe", "UTF-8"),
        ("- just\n- a list\n", "not of type 'object'"),
    ],
    ids=["duplicate-key", "alias", "syntax", "not-utf8", "not-a-mapping"],
)
def test_strict_loader_refuses(text: str | bytes, fragment: str) -> None:
    with pytest.raises(AgreementFormatError, match=fragment):
        load_signed_agreement(text)


# --- signatures ---------------------------------------------------------------------------


def test_both_signatures_verify() -> None:
    verified = verify_agreement(signed_both(), directory(), NOW)
    assert verified.key_ids == {"PAN": PAN.key_id, "CRI": CRI.key_id}
    assert verified.hash == Agreement.from_document(base_doc()).hash


def _only_pan() -> SignedAgreement:
    return sign_agreement(Agreement.from_document(base_doc()), "PAN", PAN)


def _unknown_key() -> SignedAgreement:
    return sign_agreement(_only_pan(), "CRI", key_for("CRI-unlisted"))


def _tampered() -> SignedAgreement:
    signed = signed_both()
    doc = base_doc()
    doc["grants"][0]["quotas"]["per_day"] = 100000
    return SignedAgreement(Agreement.from_document(doc), signed.signatures)


def _third_party_signs() -> SignedAgreement:
    signed = signed_both()
    fake = PartySignature(MEX.key_id, signed.signatures["CRI"].signature_b64)
    return SignedAgreement(signed.agreement, {**signed.signatures, "MEX": fake})


def _wrong_context() -> SignedAgreement:
    agreement = Agreement.from_document(base_doc())
    raw = CRI.sign(REVOCATION_CONTEXT, agreement.canonical_bytes())
    sigs = {**_only_pan().signatures, "CRI": PartySignature(CRI.key_id, b64encode(raw))}
    return SignedAgreement(agreement, sigs)


def _pan_key_under_cri() -> SignedAgreement:
    pan_sig = _only_pan().signatures["PAN"]
    return SignedAgreement(_only_pan().agreement, {"PAN": pan_sig, "CRI": pan_sig})


def _bad_base64() -> SignedAgreement:
    sigs = {**_only_pan().signatures, "CRI": PartySignature(CRI.key_id, "not base64!")}
    return SignedAgreement(_only_pan().agreement, sigs)


BAD_SIGNATURES: list[tuple[str, Callable[[], SignedAgreement], str]] = [
    ("unsigned", lambda: SignedAgreement(Agreement.from_document(base_doc())), "PAN has not"),
    ("one-party-only", _only_pan, "CRI has not signed"),
    ("key-unknown-to-directory", _unknown_key, "does not list"),
    ("tampered-after-signing", _tampered, "does not verify"),
    ("third-party-signature", _third_party_signs, "MEX signed but is not a party"),
    ("signed-for-another-purpose", _wrong_context, "does not verify"),
    ("other-party-key", _pan_key_under_cri, "does not list"),
    ("bad-base64", _bad_base64, "does not verify"),
]


@pytest.mark.parametrize(
    ("make", "fragment"), [b[1:] for b in BAD_SIGNATURES], ids=[b[0] for b in BAD_SIGNATURES]
)
def test_verification_refuses(make: Callable[[], SignedAgreement], fragment: str) -> None:
    with pytest.raises(AgreementSignatureError, match=fragment):
        verify_agreement(make(), directory(), NOW)


def test_key_outside_its_directory_window_is_refused() -> None:
    d = directory()
    d.add("CRI", CRI, EPOCH, NOW)  # CRI's key retired exactly now
    with pytest.raises(AgreementSignatureError, match="CRI signed with key"):
        verify_agreement(signed_both(), d, NOW)
    verify_agreement(signed_both(), d, NOW - timedelta(seconds=1))


def test_rotation_needs_only_the_rotating_party_to_resign() -> None:
    new_cri = key_for("CRI-2027")
    d = directory()
    d.add("CRI", CRI, EPOCH, NOW)
    d.add("CRI", new_cri, NOW, FAR)
    resigned = sign_agreement(signed_both(), "CRI", new_cri)
    assert resigned.signatures["PAN"] == signed_both().signatures["PAN"]
    assert verify_agreement(resigned, d, NOW).key_ids["CRI"] == new_cri.key_id


def test_only_parties_can_sign_and_verified_objects_cannot_be_forged() -> None:
    with pytest.raises(AgreementSignatureError, match="not a party"):
        sign_agreement(Agreement.from_document(base_doc()), "MEX", MEX)
    with pytest.raises(TypeError):
        VerifiedAgreement(signed_both(), {"PAN": "x", "CRI": "y"}, NOW)


def test_signature_is_over_the_domain_separated_canonical_bytes() -> None:
    signed = signed_both()
    from policies.canonical import b64decode

    raw = b64decode(signed.signatures["PAN"].signature_b64)
    expected = PAN.sign(AGREEMENT_CONTEXT, signed.agreement.canonical_bytes())
    assert raw == expected


# --- revocation ---------------------------------------------------------------------------


def test_revocation_round_trip_and_verify() -> None:
    agreement = Agreement.from_document(base_doc())
    rev = sign_revocation(Revocation.for_agreement(agreement, "CRI", NOW, "Fin."), CRI)
    loaded = load_revocation(dump_revocation(rev))
    assert loaded == rev
    verified = verify_revocation(loaded, agreement, directory(), NOW)
    assert verified.revocation.agreement_hash == agreement.hash


def test_revocation_survives_a_later_key_rotation() -> None:
    agreement = Agreement.from_document(base_doc())
    rev = sign_revocation(Revocation.for_agreement(agreement, "CRI", NOW, "Fin."), CRI)
    d = directory()
    d.add("CRI", CRI, EPOCH, NOW + timedelta(days=1))
    verify_revocation(rev, agreement, d, NOW + timedelta(days=30))


def test_a_verified_revocation_carries_the_key_that_verified_it() -> None:
    agreement = Agreement.from_document(base_doc())
    rev = sign_revocation(Revocation.for_agreement(agreement, "CRI", NOW, "Fin."), CRI)
    verified = verify_revocation(rev, agreement, directory(), NOW)
    assert (verified.key_id, verified.public_key) == (CRI.key_id, CRI.public_key)


def test_a_recorded_revocation_verifies_without_the_directory() -> None:
    agreement = Agreement.from_document(base_doc())
    rev = sign_revocation(Revocation.for_agreement(agreement, "CRI", NOW, "Fin."), CRI)
    later = NOW + timedelta(days=3650)  # the key has long left every directory
    verified = verify_recorded_revocation(rev, agreement, CRI.public_key, later)
    assert verified.revocation == rev.revocation


@pytest.mark.parametrize(
    ("recorded", "edit", "fragment"),
    [
        (PAN.public_key, {}, "returned a different key"),
        (CRI.public_key, {"reason": "Otra razón."}, "does not verify"),
        (CRI.public_key, {"by": "PAN"}, "does not verify"),
    ],
    ids=["another-key-recorded", "altered-after-install", "claims-another-party"],
)
def test_a_recorded_revocation_refuses_anything_else(
    recorded: bytes, edit: dict[str, Any], fragment: str
) -> None:
    agreement = Agreement.from_document(base_doc())
    rev = sign_revocation(Revocation.for_agreement(agreement, "CRI", NOW, "Fin."), CRI)
    altered = SignedRevocation(dataclasses.replace(rev.revocation, **edit), rev.signature)
    with pytest.raises(AgreementSignatureError, match=fragment):
        verify_recorded_revocation(altered, agreement, recorded, NOW)


def _rev(by: str, key: SigningKey, agreement: Agreement | None = None) -> SignedRevocation:
    target = agreement or Agreement.from_document(base_doc())
    return sign_revocation(Revocation.for_agreement(target, by, NOW, "Fin."), key)


def _other_version() -> Agreement:
    doc = base_doc()
    doc["version"] = 2
    return Agreement.from_document(doc)


BAD_REVOCATIONS: list[tuple[str, Callable[[], SignedRevocation], str]] = [
    ("by-non-party", lambda: _rev("MEX", MEX), "not a party"),
    ("other-version", lambda: _rev("CRI", CRI, _other_version()), "revocation names"),
    ("signed-by-other-party", lambda: _rev("PAN", CRI), "does not list"),
    ("unknown-key", lambda: _rev("PAN", key_for("stranger")), "does not list"),
]


@pytest.mark.parametrize(
    ("make", "fragment"), [b[1:] for b in BAD_REVOCATIONS], ids=[b[0] for b in BAD_REVOCATIONS]
)
def test_revocation_verification_refuses(
    make: Callable[[], SignedRevocation], fragment: str
) -> None:
    with pytest.raises(AgreementSignatureError, match=fragment):
        verify_revocation(make(), Agreement.from_document(base_doc()), directory(), NOW)


def test_revocation_document_is_schema_checked() -> None:
    text = dump_revocation(_rev("CRI", CRI)).replace("agreement_hash: ", "agreement_hash: zz")
    with pytest.raises(AgreementFormatError) as info:
        load_revocation(text)
    assert info.value.path == "$.agreement_hash"


# --- the worked example -------------------------------------------------------------------


def test_worked_example_loads_and_both_signatures_verify() -> None:
    text = EXAMPLE.read_text("utf-8")
    signed = load_signed_agreement(text)
    d = Directory()
    for party in ("PAN", "CRI"):
        seed = hashlib.sha256(f"crm-enlace example key {party}".encode()).digest()
        d.add(party, SigningKey(seed), EPOCH, FAR)
    verified = verify_agreement(signed, d, datetime(2026, 3, 1, tzinfo=UTC))
    services = {(g.holder, g.service) for g in verified.agreement.grants}
    assert ("PAN", "followup") in services
    assert ("CRI", "followup") not in services
    # What was signed is the body alone, whatever the comments and layout of the file.
    body = copy.deepcopy(yaml.safe_load(text))
    del body["signatures"]
    body["valid_from"] = format_timestamp(body["valid_from"])
    body["valid_until"] = format_timestamp(body["valid_until"])
    assert Agreement.from_document(body).hash == verified.hash


def test_a_yaml_syntax_error_gives_its_line_and_column() -> None:
    with pytest.raises(AgreementFormatError) as caught:
        load_document("format: enlace-agreement/1\nid: [oops\n")
    assert "not a valid YAML/JSON document at line 3, column 1: expected ','" in str(caught.value)
    assert "<unicode string>" not in str(caught.value)
