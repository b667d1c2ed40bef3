"""Signed envelopes: round trip, every tamper, strict header parsing, request binding, times.

Why: the envelope is the only thing a peer's signature covers, so a header that two nodes read
differently, or a byte that can change without the signature noticing, would undo DESIGN §4.
The tests build headers by hand (plain ``json``) rather than through :class:`Header`, so the
parser is checked against bytes a different implementation could send.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.envelope import (
    MAX_HEADER_BYTES,
    PROTOCOL,
    REQUEST_CONTEXT,
    RESPONSE_CONTEXT,
    Header,
    Sealed,
    decode_header,
    format_time,
    open_envelope,
    parse_time,
    peek_header,
    seal,
    sha256_hex,
)
from crypto.errors import CryptoError, EncodingError, VerificationError
from crypto.signing import SigningKey

PAN = SigningKey(hashlib.sha256(b"envelope test PAN").digest())
CRI = SigningKey(hashlib.sha256(b"envelope test CRI").digest())
ISSUED = "2026-11-28T12:00:00.000Z"
NONCE = "00112233445566778899aabbccddeeff"
METHOD = "/enlace.v1.NodeService/Ping"
BODY = b"\x08\x01\x12\x0bping payload\x00\xff"
REQUIRED = ("v", "kind", "method", "sender", "recipient", "issued_at", "nonce", "key_id")


def request_header(body: bytes = BODY, **changes: Any) -> Header:
    header = Header(
        kind="request",
        method=METHOD,
        sender="PAN",
        recipient="CRI",
        issued_at=ISSUED,
        nonce=NONCE,
        key_id=PAN.key_id,
        body_sha256=sha256_hex(body),
        agreement="PAN-CRI-2026",
        purpose="case 2026/118: identity check",
    )
    return dataclasses.replace(header, **changes)


def response_header(request: Sealed, body: bytes = BODY, **changes: Any) -> Header:
    header = Header(
        kind="response",
        method=METHOD,
        sender="CRI",
        recipient="PAN",
        issued_at="2026-11-28T12:00:00.250Z",
        nonce="ffeeddccbbaa99887766554433221100",
        key_id=CRI.key_id,
        body_sha256=sha256_hex(body),
        request_digest=request.digest,
        status="OK",
    )
    return dataclasses.replace(header, **changes)


REQUEST = seal(request_header(), BODY, PAN)
RESPONSE = seal(response_header(REQUEST), BODY, CRI)


def header_fields(**changes: Any) -> dict[str, Any]:
    """The fields of the valid request header as a plain dict, with ``changes`` applied."""
    fields: dict[str, Any] = json.loads(REQUEST.header)
    for name, value in changes.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return fields


def canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]


# --- round trip ----------------------------------------------------------------------------


def test_seal_open_round_trip() -> None:
    header = open_envelope(REQUEST, PAN.public_key, "request")
    assert header == request_header()
    assert REQUEST.header == request_header().encode()
    assert REQUEST.body == BODY
    assert REQUEST.digest == hashlib.sha256(REQUEST.header).hexdigest()


def test_header_is_canonical_json_without_empty_optionals() -> None:
    text = REQUEST.header.decode()
    parsed = json.loads(text)
    assert list(parsed) == sorted(parsed)
    assert " " not in text.replace(parsed["purpose"], "")
    assert "request_digest" not in parsed and "status" not in parsed and "reason" not in parsed
    assert parsed["v"] == PROTOCOL


def test_signature_covers_context_and_header_bytes() -> None:
    from crypto.signing import verify

    verify(PAN.public_key, REQUEST_CONTEXT, REQUEST.header, REQUEST.signature)
    with pytest.raises(VerificationError):
        verify(PAN.public_key, RESPONSE_CONTEXT, REQUEST.header, REQUEST.signature)


def test_empty_body_round_trips() -> None:
    sealed = seal(request_header(b""), b"", PAN)
    assert open_envelope(sealed, PAN.public_key, "request").body_sha256 == sha256_hex(b"")


def test_non_ascii_text_round_trips_as_utf8() -> None:
    header = request_header(purpose="verificación de identidad, niño no acompañado")
    sealed = seal(header, BODY, PAN)
    assert "verificación".encode() in sealed.header
    assert open_envelope(sealed, PAN.public_key, "request").purpose == header.purpose


def test_peek_header_reads_without_verifying() -> None:
    forged = Sealed(REQUEST.header, bytes(64), b"another body")
    assert peek_header(forged).sender == "PAN"
    with pytest.raises(VerificationError):
        open_envelope(forged, PAN.public_key, "request")


# --- seal refuses inconsistent input -------------------------------------------------------


def test_seal_refuses_body_digest_mismatch() -> None:
    with pytest.raises(ValueError, match="body_sha256"):
        seal(request_header(), BODY + b"!", PAN)


def test_seal_refuses_key_id_of_another_key() -> None:
    with pytest.raises(ValueError, match="key_id"):
        seal(request_header(), BODY, CRI)


# --- every tamper is rejected --------------------------------------------------------------


def test_semantic_header_edit_fails_signature() -> None:
    edited = REQUEST.header.replace(b'"recipient":"CRI"', b'"recipient":"HND"')
    assert edited != REQUEST.header
    decode_header(edited)  # still a well-formed header
    with pytest.raises(VerificationError):
        open_envelope(Sealed(edited, REQUEST.signature, BODY), PAN.public_key, "request")


def test_structural_header_edit_is_rejected() -> None:
    broken = REQUEST.header[:-1]
    with pytest.raises(CryptoError):
        open_envelope(Sealed(broken, REQUEST.signature, BODY), PAN.public_key, "request")


@pytest.mark.parametrize("index", [0, len(BODY) // 2, len(BODY) - 1])
def test_body_byte_edit_fails_digest(index: int) -> None:
    with pytest.raises(VerificationError, match="body"):
        open_envelope(
            Sealed(REQUEST.header, REQUEST.signature, flip(BODY, index)), PAN.public_key, "request"
        )


@pytest.mark.parametrize("body", [b"", BODY + b"\x00", BODY[:-1]])
def test_body_length_change_fails_digest(body: bytes) -> None:
    with pytest.raises(VerificationError):
        open_envelope(Sealed(REQUEST.header, REQUEST.signature, body), PAN.public_key, "request")


@pytest.mark.parametrize("index", [0, 17, 32, 63, -1])
def test_signature_byte_edit_or_truncation_fails(index: int) -> None:
    signature = REQUEST.signature[:-1] if index < 0 else flip(REQUEST.signature, index)
    tampered = Sealed(REQUEST.header, signature, BODY)
    with pytest.raises(VerificationError):
        open_envelope(tampered, PAN.public_key, "request")


def test_wrong_key_fails() -> None:
    with pytest.raises(VerificationError):
        open_envelope(REQUEST, CRI.public_key, "request")


def test_request_cannot_be_opened_as_response() -> None:
    with pytest.raises(VerificationError, match="expected a response"):
        open_envelope(REQUEST, PAN.public_key, "response")


def test_response_cannot_be_opened_as_request() -> None:
    with pytest.raises(VerificationError, match="expected a request"):
        open_envelope(RESPONSE, CRI.public_key, "request")


def test_kind_swap_in_header_fails_signature() -> None:
    """Rewriting ``kind`` so the expected-kind check passes still breaks the signature."""
    as_response = REQUEST.header.replace(b'"kind":"request"', b'"kind":"response"')
    with pytest.raises(VerificationError):
        open_envelope(Sealed(as_response, REQUEST.signature, BODY), PAN.public_key, "response")


def test_response_header_signed_under_request_context_is_rejected() -> None:
    header = response_header(REQUEST).encode()
    wrong_context = Sealed(header, CRI.sign(REQUEST_CONTEXT, header), BODY)
    with pytest.raises(VerificationError):
        open_envelope(wrong_context, CRI.public_key, "response")


@settings(max_examples=300, deadline=None)
@given(
    part=st.sampled_from(["header", "body"]),
    position=st.floats(min_value=0, max_value=1, exclude_max=True),
    mask=st.integers(min_value=1, max_value=255),
)
def test_any_single_byte_mutation_is_rejected(part: str, position: float, mask: int) -> None:
    header, body = REQUEST.header, REQUEST.body
    if part == "header":
        header = flip(header, int(position * len(header)), mask)
    else:
        body = flip(body, int(position * len(body)), mask)
    with pytest.raises(CryptoError):
        open_envelope(Sealed(header, REQUEST.signature, body), PAN.public_key, "request")


@settings(max_examples=100, deadline=None)
@given(index=st.integers(min_value=0), mask=st.integers(min_value=1, max_value=255))
def test_any_single_byte_mutation_of_response_is_rejected(index: int, mask: int) -> None:
    whole = RESPONSE.header + RESPONSE.body
    index %= len(whole)
    mutated = flip(whole, index, mask)
    cut = len(RESPONSE.header)
    tampered = Sealed(mutated[:cut], RESPONSE.signature, mutated[cut:])
    with pytest.raises(CryptoError):
        open_envelope(tampered, CRI.public_key, "response")


def test_malformed_header_raises_verification_error_as_documented() -> None:
    with pytest.raises(VerificationError):
        open_envelope(Sealed(b"{}", REQUEST.signature, BODY), PAN.public_key, "request")


# --- the response binds the request --------------------------------------------------------


def test_response_binds_request_digest() -> None:
    header = open_envelope(RESPONSE, CRI.public_key, "response")
    assert header.request_digest == hashlib.sha256(REQUEST.header).hexdigest()
    assert header.request_digest == REQUEST.digest


def test_response_binding_cannot_be_moved_to_another_request() -> None:
    other = seal(request_header(nonce="0f" * 16), BODY, PAN)
    assert other.digest != REQUEST.digest
    rebound = RESPONSE.header.replace(REQUEST.digest.encode(), other.digest.encode())
    assert decode_header(rebound).request_digest == other.digest
    with pytest.raises(VerificationError):
        open_envelope(Sealed(rebound, RESPONSE.signature, BODY), CRI.public_key, "response")


# --- decode_header strictness --------------------------------------------------------------


def test_decode_accepts_the_canonical_bytes() -> None:
    assert decode_header(canonical(header_fields())) == request_header()


def test_unknown_field_refused() -> None:
    with pytest.raises(EncodingError, match="unknown fields: 'priority'"):
        decode_header(canonical(header_fields(priority="high")))


@pytest.mark.parametrize("name", [*REQUIRED, "body_sha256"])
def test_missing_field_refused(name: str) -> None:
    with pytest.raises(EncodingError, match=f"lacks fields: {name}"):
        decode_header(canonical(header_fields(**{name: None})))


def test_spacing_is_not_canonical() -> None:
    spaced = json.dumps(header_fields(), sort_keys=True).encode()
    assert json.loads(spaced) == json.loads(REQUEST.header)
    with pytest.raises(EncodingError, match="canonical"):
        decode_header(spaced)


def test_key_order_is_not_canonical() -> None:
    fields = header_fields()
    reordered = dict(sorted(fields.items(), reverse=True))
    data = json.dumps(reordered, separators=(",", ":"), ensure_ascii=False).encode()
    with pytest.raises(EncodingError, match="canonical"):
        decode_header(data)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(lambda b: b + b"\n", id="trailing-newline"),
        pytest.param(lambda b: b" " + b, id="leading-space"),
        pytest.param(lambda b: b[:-1] + b',"nonce":"' + NONCE.encode() + b'"}', id="duplicate-key"),
        pytest.param(
            lambda b: json.dumps(json.loads(b), sort_keys=True, separators=(",", ":")).encode(),
            id="ascii-escapes",
        ),
    ],
)
def test_other_non_canonical_forms_refused(data: Any) -> None:
    fields = header_fields(purpose="niño")
    raw = data(canonical(fields))
    assert raw != canonical(fields)
    with pytest.raises(EncodingError):
        decode_header(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(b"[" * 2000 + b"]" * 2000, "nests too deeply", id="deep-nesting"),
        pytest.param(
            json.dumps(header_fields(purpose="\ud800"), sort_keys=True, separators=(",", ":")),
            "lone surrogate",
            id="lone-surrogate",
        ),
    ],
)
def test_headers_python_cannot_handle_are_encoding_errors(raw: bytes | str, message: str) -> None:
    # Anyone can send these before any signature is checked: a RecursionError or a
    # UnicodeEncodeError would reach the caller as INTERNAL and log a traceback.
    data = raw.encode() if isinstance(raw, str) else raw
    assert len(data) <= MAX_HEADER_BYTES
    with pytest.raises(EncodingError, match=message):
        decode_header(data)


@pytest.mark.parametrize("name", ["agreement", "purpose", "status", "reason", "request_digest"])
def test_explicit_empty_optional_field_is_not_canonical(name: str) -> None:
    with pytest.raises(EncodingError, match="canonical"):
        decode_header(canonical(header_fields(**{name: ""})))


@pytest.mark.parametrize(
    "nonce",
    [NONCE.upper(), NONCE[:-1], NONCE + "0", "g" * 32, "", "00" * 15 + "-1"],
    ids=["upper", "short", "long", "not-hex", "empty", "sign"],
)
def test_bad_nonce_refused(nonce: str) -> None:
    with pytest.raises(EncodingError, match="nonce"):
        decode_header(canonical(header_fields(nonce=nonce)))


@pytest.mark.parametrize("value", ["0" * 63, "A" * 64, "z" * 64])
def test_bad_body_digest_refused(value: str) -> None:
    with pytest.raises(EncodingError, match="body_sha256"):
        decode_header(canonical(header_fields(body_sha256=value)))


@pytest.mark.parametrize("value", ["0" * 63, "F" * 64, "not hex"])
def test_bad_request_digest_refused(value: str) -> None:
    with pytest.raises(EncodingError, match="request_digest"):
        decode_header(canonical(header_fields(kind="response", request_digest=value)))


def test_size_limit_is_inclusive() -> None:
    base = canonical(header_fields(purpose=""))
    padding = MAX_HEADER_BYTES - len(base)
    at_limit = canonical(header_fields(purpose="p" * padding))
    assert len(at_limit) == MAX_HEADER_BYTES
    assert decode_header(at_limit).purpose == "p" * padding
    over = canonical(header_fields(purpose="p" * (padding + 1)))
    assert len(over) == MAX_HEADER_BYTES + 1
    with pytest.raises(EncodingError, match="limit"):
        decode_header(over)


@pytest.mark.parametrize("version", ["enlace/2", "enlace/0", "", "ENLACE/1"])
def test_wrong_protocol_version_refused(version: str) -> None:
    with pytest.raises(EncodingError, match="protocol"):
        decode_header(canonical(header_fields(v=version)))


@pytest.mark.parametrize("kind", ["notification", "Request", ""])
def test_unknown_kind_refused(kind: str) -> None:
    with pytest.raises(EncodingError, match="kind"):
        decode_header(canonical(header_fields(kind=kind)))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("nonce", 1234),
        ("issued_at", 1764331200),
        ("purpose", ["a"]),
        ("sender", {"iso3": "PAN"}),
        ("agreement", True),
        ("recipient", 1.5),
    ],
)
def test_non_string_values_refused(name: str, value: object) -> None:
    with pytest.raises(EncodingError, match="string"):
        decode_header(canonical(header_fields(**{name: value})))


def test_null_value_refused() -> None:
    fields = header_fields()
    fields["purpose"] = None
    with pytest.raises(EncodingError, match="string"):
        decode_header(canonical(fields))


@pytest.mark.parametrize("data", [b"", b"[]", b'"header"', b"null", b"\xff\xfe", b"{"], ids=repr)
def test_not_a_json_object_refused(data: bytes) -> None:
    with pytest.raises(EncodingError):
        decode_header(data)


@pytest.mark.parametrize(
    "issued_at",
    [
        "2026-11-28T12:00:00.000",
        "2026-11-28T12:00:00.000+00:00",
        "2026-11-28T07:00:00.000-05:00",
        "2026-02-30T12:00:00.000Z",
        "2026-11-28T24:00:01.000Z",
        "yesterday Z",
        "",
    ],
    ids=["naive", "offset-utc", "offset-other", "no-such-day", "bad-hour", "words", "empty"],
)
def test_bad_issued_at_refused(issued_at: str) -> None:
    with pytest.raises(EncodingError, match="time"):
        decode_header(canonical(header_fields(issued_at=issued_at)))


@pytest.mark.parametrize(
    "issued_at",
    ["20261128T120000Z", "2026-11-28 12:00:00.000Z", "2026-11-28T12:00Z", "2026-11-28T12:00:00Z"],
    ids=["basic", "space", "no-seconds", "no-millis"],
)
def test_only_the_format_time_form_is_accepted(issued_at: str) -> None:
    with pytest.raises(EncodingError):
        decode_header(canonical(header_fields(issued_at=issued_at)))


# --- format_time / parse_time --------------------------------------------------------------


def test_format_time_of_fixed_now(fixed_now: dt.datetime) -> None:
    assert format_time(fixed_now) == "2026-11-28T12:00:00.000Z"


def test_format_time_truncates_to_milliseconds() -> None:
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, 999_999, tzinfo=dt.UTC)
    assert format_time(moment) == "2026-01-02T03:04:05.999Z"


def test_format_time_converts_to_utc() -> None:
    panama = dt.timezone(dt.timedelta(hours=-5))
    moment = dt.datetime(2026, 12, 31, 22, 30, 0, 5_000, tzinfo=panama)
    assert format_time(moment) == "2027-01-01T03:30:00.005Z"


def test_format_time_refuses_naive() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_time(dt.datetime(2026, 11, 28, 12, 0))


def test_parse_time_returns_aware_utc() -> None:
    parsed = parse_time("2026-11-28T12:00:00.250Z")
    assert parsed == dt.datetime(2026, 11, 28, 12, 0, 0, 250_000, tzinfo=dt.UTC)
    assert parsed.utcoffset() == dt.timedelta(0)


@given(
    moment=st.datetimes(
        min_value=dt.datetime(1970, 1, 2),
        max_value=dt.datetime(9998, 12, 31),
        timezones=st.sampled_from(
            [dt.UTC, dt.timezone(dt.timedelta(hours=-6)), dt.timezone(dt.timedelta(hours=9))]
        ),
    )
)
def test_time_round_trip_is_millisecond_exact(moment: dt.datetime) -> None:
    text = format_time(moment)
    parsed = parse_time(text)
    assert parsed.tzinfo is not None
    assert parsed == moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert format_time(parsed) == text
    assert len(text) == len("2026-11-28T12:00:00.000Z")
