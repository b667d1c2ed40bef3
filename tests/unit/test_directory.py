"""Member descriptors, directory format, threshold signatures, lookups and freshness."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.x509.oid import NameOID

from crypto.signing import SigningKey, key_id
from node.errors import AuthenticationError, FailedPreconditionError, InvalidArgumentError
from node.trust import (
    Directory,
    DirectoryExpiredError,
    DirectoryFormatError,
    DirectoryKey,
    DirectoryLookupError,
    DirectorySignatureError,
    FreshnessState,
    MemberDescriptor,
    add_member,
    check_freshness,
    directory_hash,
    install_directory,
    load_trusted,
    new_directory,
    parse_directory_json,
    remove_member,
    sign_directory,
    tls_fingerprint,
    verify_root,
)

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def self_signed_pem(common_name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(T0 - timedelta(days=1))
        .not_valid_after(T0 + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def x25519_public() -> bytes:
    return x25519.X25519PrivateKey.generate().public_key().public_bytes_raw()


def make_member(
    country: str = "PAN",
    roles: tuple[str, ...] = ("member",),
    keys: tuple[SigningKey, ...] | None = None,
    not_before: datetime = T0 - timedelta(days=30),
    not_after: datetime = T0 + timedelta(days=365),
) -> MemberDescriptor:
    keys = keys or (SigningKey.generate(),)
    return MemberDescriptor.build(
        country=country,
        name=f"Migración {country}",
        endpoint="127.0.0.1:7001",
        roles=roles,
        signing_public_keys=[k.public_key for k in keys],
        not_before=not_before,
        not_after=not_after,
        x25519_public_key=x25519_public(),
        tls_certificate_pem=self_signed_pem(country.lower()),
        focal_points=[("Punto focal", f"focal@{country.lower()}.example")],
    )


@pytest.fixture(scope="module")
def dkeys() -> list[SigningKey]:
    return [SigningKey.generate() for _ in range(3)]


def unsigned(dkeys: list[SigningKey], threshold: int = 2, version: int = 1) -> Directory:
    return new_directory(
        version=version,
        issued_at=T0,
        expires_at=T0 + timedelta(days=90),
        threshold=threshold,
        directory_keys=[
            DirectoryKey.from_public_key(k.public_key, f"holder {i}") for i, k in enumerate(dkeys)
        ],
        members=[make_member("PAN"), make_member("CRM", roles=("secretariat",))],
    )


def signed(directory: Directory, *keys: SigningKey) -> Directory:
    for k in keys:
        directory = sign_directory(directory, k)
    return directory


# --- member descriptors ----------------------------------------------------------------------


def test_member_round_trips_through_json() -> None:
    member = make_member("HND")
    again = MemberDescriptor.from_json(member.to_json())
    assert again == member
    assert again.signing_keys[0].key_id == key_id(member.signing_keys[0].public_key)
    assert again.tls_fingerprint == tls_fingerprint(member.tls_certificate)


def _member_dict(**changes: Any) -> dict[str, Any]:
    data = make_member("GTM").to_dict()
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"country": "gtm"}, "country"),
        ({"country": "GT"}, "country"),
        ({"roles": ["member", "admin"]}, "roles"),
        ({"roles": []}, "roles"),
        ({"roles": ["secretariat"]}, "roles"),  # only CRM holds the secretariat role
        ({"endpoint": "localhost"}, "endpoint"),
        ({"endpoint": "localhost:99999"}, "endpoint"),
        ({"x25519_public_key": "ab" * 31}, "x25519_public_key"),
        ({"extra": 1}, "member"),
        ({"signing_keys": []}, "signing_keys"),
    ],
)
def test_member_validation_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(DirectoryFormatError) as info:
        MemberDescriptor.from_dict(_member_dict(**changes))
    assert info.value.field == field
    assert info.value.status_name == "INVALID_ARGUMENT"
    assert isinstance(info.value, InvalidArgumentError)


def test_member_fingerprint_must_match_certificate() -> None:
    other = tls_fingerprint(self_signed_pem("someone-else"))
    with pytest.raises(DirectoryFormatError, match="does not match the certificate"):
        MemberDescriptor.from_dict(_member_dict(tls_fingerprint=other))


def test_member_key_id_must_match_public_key() -> None:
    data = _member_dict()
    data["signing_keys"][0]["key_id"] = key_id(SigningKey.generate().public_key)
    with pytest.raises(DirectoryFormatError, match="does not match its public key"):
        MemberDescriptor.from_dict(data)


def test_member_refuses_private_key_in_certificate_field() -> None:
    pem = self_signed_pem("x")
    leaked = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(DirectoryFormatError, match="private key"):
        tls_fingerprint(pem + leaked.decode())


def test_crm_is_the_secretariat() -> None:
    st = make_member("CRM", roles=("secretariat",))
    assert st.has_role("secretariat")
    with pytest.raises(DirectoryFormatError):
        make_member("CRM", roles=("member",))


# --- directory format, threshold, tampering -----------------------------------------------


def test_threshold_two_of_three(dkeys: list[SigningKey]) -> None:
    d = signed(unsigned(dkeys), dkeys[0], dkeys[2])
    assert verify_root(d, T0) is d
    again = parse_directory_json(d.to_json())
    assert directory_hash(again) == d.hash
    verify_root(again, T0)


def test_one_of_three_refused(dkeys: list[SigningKey]) -> None:
    d = signed(unsigned(dkeys), dkeys[1])
    with pytest.raises(DirectorySignatureError, match="1 valid signature") as info:
        verify_root(d, T0)
    assert isinstance(info.value, AuthenticationError)


def test_same_key_twice_counts_once(dkeys: list[SigningKey]) -> None:
    d = signed(unsigned(dkeys), dkeys[0])
    data = d.to_dict()
    data["signatures"] = data["signatures"] * 2
    with pytest.raises(DirectorySignatureError, match="1 valid signature"):
        verify_root(Directory.from_dict(data), T0)


def test_signature_by_unlisted_key_does_not_count(dkeys: list[SigningKey]) -> None:
    outsider = SigningKey.generate()
    d = signed(unsigned(dkeys), dkeys[0], outsider)
    with pytest.raises(DirectorySignatureError):
        verify_root(d, T0)
    verify_root(sign_directory(d, dkeys[1]), T0)


def test_tampered_body_detected(dkeys: list[SigningKey]) -> None:
    d = signed(unsigned(dkeys), *dkeys)
    data = d.to_dict()
    data["members"][0]["endpoint"] = "203.0.113.9:7001"
    with pytest.raises(DirectorySignatureError, match="do not verify"):
        verify_root(Directory.from_dict(data), T0)


def test_pinned_hash(dkeys: list[SigningKey]) -> None:
    d = signed(unsigned(dkeys), *dkeys)
    verify_root(d, T0, expected_hash=d.hash.upper())
    with pytest.raises(DirectorySignatureError, match="pinned"):
        verify_root(d, T0, expected_hash="00" * 32)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("threshold", 4),
        ("threshold", 0),
        ("version", True),
        ("version", 1.0),
        ("format", "enlace-directory/2"),
        ("expires_at", "2025-01-01"),
        ("expires_at", "2025-02-01T00:00:00Z"),
        ("directory_keys", []),
    ],
)
def test_format_errors(dkeys: list[SigningKey], key: str, value: object) -> None:
    data = unsigned(dkeys).to_dict()
    with pytest.raises(DirectoryFormatError) as info:
        Directory.from_dict({**data, key: value})
    assert info.value.field == key


def test_strict_json(dkeys: list[SigningKey]) -> None:
    data = unsigned(dkeys).to_dict()
    with pytest.raises(DirectoryFormatError, match="duplicate JSON key"):
        parse_directory_json('{"version": 1, "version": 2}')
    with pytest.raises(DirectoryFormatError, match="NaN"):
        parse_directory_json('{"version": NaN}')
    dup = {**data, "members": [data["members"][0], data["members"][0]]}
    with pytest.raises(DirectoryFormatError, match="appears for both"):
        Directory.from_dict(dup)


def test_bad_member_inside_directory_is_located(dkeys: list[SigningKey]) -> None:
    data = unsigned(dkeys).to_dict()
    data["members"][1]["tls_fingerprint"] = "sha256:" + "0" * 64
    with pytest.raises(DirectoryFormatError) as info:
        Directory.from_dict(data)
    assert info.value.field == "members[1]"
    assert "tls_fingerprint" in info.value.message


def test_add_member_replaces_and_clears_signatures(dkeys: list[SigningKey]) -> None:
    d = signed(unsigned(dkeys), *dkeys)
    pan2 = make_member("PAN")
    changed = add_member(d, pan2)
    assert changed.signatures == ()
    assert changed.member("PAN") == pan2
    assert [m.country for m in changed.members] == ["CRM", "PAN"]
    assert [m.country for m in remove_member(changed, "PAN").members] == ["CRM"]
    with pytest.raises(DirectorySignatureError):
        verify_root(changed, T0)


# --- lookups ---------------------------------------------------------------------------------


def test_signing_key_lookup_respects_validity_window(dkeys: list[SigningKey]) -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    d = add_member(
        unsigned(dkeys),
        make_member("MEX", keys=(old, new), not_before=T0, not_after=T0 + timedelta(days=10)),
    )
    assert d.signing_key("MEX", new.key_id, T0) == new.public_key
    assert d.signing_key("MEX", old.key_id, T0 + timedelta(days=9)) == old.public_key
    for at in (T0 - timedelta(seconds=1), T0 + timedelta(days=10)):
        with pytest.raises(DirectoryLookupError, match="valid from"):
            d.signing_key("MEX", old.key_id, at)
    with pytest.raises(DirectoryLookupError, match="no signing key"):
        d.signing_key("MEX", key_id(SigningKey.generate().public_key), T0)
    with pytest.raises(DirectoryLookupError, match="not a member") as info:
        d.signing_key("CRI", new.key_id, T0)
    assert info.value.status_name == "UNAUTHENTICATED"


def test_member_and_fingerprint_lookup(dkeys: list[SigningKey]) -> None:
    d = unsigned(dkeys)
    pan = d.member("PAN")
    assert d.by_tls_fingerprint(pan.tls_fingerprint.upper().replace("SHA256", "sha256")) == pan
    assert [m.country for m in d.members_with_role("secretariat")] == ["CRM"]
    with pytest.raises(DirectoryLookupError):
        d.by_tls_fingerprint(tls_fingerprint(self_signed_pem("stranger")))


# --- freshness -------------------------------------------------------------------------------


def test_freshness_states(dkeys: list[SigningKey]) -> None:
    d = unsigned(dkeys)  # expires T0 + 90 days
    grace, warn = timedelta(days=7), timedelta(days=14)
    expiry = d.expires_at
    assert check_freshness(d, T0, grace, warn).state is FreshnessState.VALID
    f = check_freshness(d, expiry - timedelta(days=3), grace, warn)
    assert f.state is FreshnessState.WARNING
    assert "expires in 3 day" in f.message
    g = check_freshness(d, expiry, grace, warn)
    assert g.state is FreshnessState.GRACE
    assert g.remaining == timedelta(0)
    assert "EXPIRED" in g.message
    assert check_freshness(d, expiry + grace - timedelta(seconds=1), grace, warn).state == "grace"
    with pytest.raises(DirectoryExpiredError) as info:
        check_freshness(d, expiry + grace, grace, warn)
    assert isinstance(info.value, FailedPreconditionError)
    with pytest.raises(ValueError, match="timezone-aware"):
        check_freshness(d, datetime(2025, 3, 1), grace, warn)


def test_expired_root_refused_even_within_grace(dkeys: list[SigningKey]) -> None:
    d = signed(unsigned(dkeys), *dkeys)
    verify_root(d, d.expires_at - timedelta(seconds=1))
    with pytest.raises(DirectoryExpiredError):
        verify_root(d, d.expires_at)


# --- installing into a node home -------------------------------------------------------------


def test_install_and_load(tmp_path: Path, dkeys: list[SigningKey]) -> None:
    d = signed(unsigned(dkeys), dkeys[0], dkeys[1])
    with pytest.raises(DirectorySignatureError):
        install_directory(tmp_path, sign_directory(unsigned(dkeys), dkeys[0]), T0)
    assert not (tmp_path / "directory.json").exists()
    trusted, changed = install_directory(tmp_path, d, T0, expected_hash=d.hash)
    assert changed and trusted.hash == d.hash
    assert stat.S_IMODE(os.stat(tmp_path / "directory.json").st_mode) == 0o644
    assert install_directory(tmp_path, d, T0) == (d, False)
    loaded, fresh = load_trusted(tmp_path, d.expires_at + timedelta(days=1))
    assert loaded.hash == d.hash and fresh.state is FreshnessState.GRACE
    assert [p.name for p in tmp_path.iterdir()] == ["directory.json"]  # no temp files left


def test_load_detects_edited_copy(tmp_path: Path, dkeys: list[SigningKey]) -> None:
    d = signed(unsigned(dkeys), *dkeys)
    install_directory(tmp_path, d, T0)
    data = json.loads((tmp_path / "directory.json").read_text())
    data["members"][0]["name"] = "edited"
    (tmp_path / "directory.json").write_text(json.dumps(data))
    with pytest.raises(DirectorySignatureError, match="altered"):
        load_trusted(tmp_path, T0)
