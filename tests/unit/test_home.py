"""The node home on disk: what ``init_home`` creates, with which modes, and what it refuses.

Why: a node home holds the keys that speak for a country. It must come out complete and
private (keys 0600, directory 0700, even under a permissive umask), must never overwrite an
existing identity, and its ``member.json`` must be exactly what peers will accept and pin.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from crypto.errors import EncodingError, KeyError_
from crypto.keys import (
    KeyPaths,
    certificate_fingerprint,
    certificate_not_after,
    read_hex_key,
    tls_server_name,
    write_private,
)
from node.config import NodeConfig
from node.errors import ConfigError, EnlaceError
from node.home import SIGNING_KEY_VALIDITY, NodeHome, init_home
from node.store.database import default_sqlite_url
from node.trust.member import MemberDescriptor, tls_fingerprint

PRIVATE = (
    "keys/signing.key",
    "keys/x25519.key",
    "keys/oprf-master.key",
    "keys/cellkey.key",
    "keys/tls.key",
)
PUBLIC = ("node.toml", "tls.crt", "member.json")


def make_home(root: Path, now: dt.datetime, **changes: object) -> NodeHome:
    arguments: dict[str, object] = {
        "country": "PAN",
        "name": "Servicio Nacional de Migración, Panamá",
        "endpoint": "10.20.30.40:7001",
        "roles": ("member",),
        "now": now,
    }
    arguments.update(changes)
    return init_home(root, **arguments)  # type: ignore[arg-type]


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root`` with its bytes and mode."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def home(tmp_path: Path, fixed_now: dt.datetime) -> NodeHome:
    return make_home(tmp_path / "pan", fixed_now)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


# --- what init creates ------------------------------------------------------------------------


def test_init_creates_every_file(home: NodeHome) -> None:
    assert set(snapshot(home.root)) == {*PRIVATE, *PUBLIC}
    assert not home.directory_path.exists()
    assert not (home.root / "enlace.db").exists()


def test_private_files_are_0600_and_home_is_0700(home: NodeHome) -> None:
    for name in PRIVATE:
        assert mode(home.root / name) == 0o600, name
    assert mode(home.root) == 0o700


def test_modes_hold_under_a_permissive_umask(
    tmp_path: Path, fixed_now: dt.datetime, permissive_umask: None
) -> None:
    created = make_home(tmp_path / "open", fixed_now)
    for name in PRIVATE:
        assert mode(created.root / name) == 0o600, name
    assert mode(created.root) == 0o700


def test_existing_open_directory_is_tightened(tmp_path: Path, fixed_now: dt.datetime) -> None:
    root = tmp_path / "pre-existing"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    make_home(root, fixed_now)
    assert mode(root) == 0o700


def test_key_files_hold_what_they_claim(home: NodeHome) -> None:
    seed = read_hex_key(home.keys.signing_key)
    assert home.signing_key().seed == seed
    x_private = x25519.X25519PrivateKey.from_private_bytes(read_hex_key(home.keys.x25519_key))
    x_public = x_private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert home.keys.x25519_public() == x_public
    key_pem, cert_pem = home.keys.load_tls()
    tls_key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(tls_key, ec.EllipticCurvePrivateKey)
    certificate = x509.load_pem_x509_certificate(cert_pem)
    assert certificate.public_key() == tls_key.public_key()
    assert b"PRIVATE KEY" not in cert_pem


def test_every_init_makes_fresh_keys(tmp_path: Path, fixed_now: dt.datetime) -> None:
    first = make_home(tmp_path / "a", fixed_now)
    second = make_home(tmp_path / "b", fixed_now)
    assert first.signing_key().seed != second.signing_key().seed
    assert first.keys.x25519_public() != second.keys.x25519_public()
    assert first.keys.load_tls() != second.keys.load_tls()


def test_certificate_names_and_validity(home: NodeHome, fixed_now: dt.datetime) -> None:
    _, cert_pem = home.keys.load_tls()
    certificate = x509.load_pem_x509_certificate(cert_pem)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = names.get_values_for_type(x509.DNSName)
    ips = names.get_values_for_type(x509.IPAddress)
    assert tls_server_name("PAN") == "enlace-pan"
    assert set(dns) == {"enlace-pan", "localhost"}
    assert [str(ip) for ip in ips] == ["10.20.30.40"]
    assert certificate_not_after(cert_pem) == fixed_now + dt.timedelta(days=365)
    assert certificate.not_valid_before_utc == fixed_now - dt.timedelta(minutes=5)


def test_configuration_is_written_and_loads(home: NodeHome) -> None:
    config = home.config()
    assert config == NodeConfig(
        country="PAN", name="Servicio Nacional de Migración, Panamá", endpoint="10.20.30.40:7001"
    )
    assert home.database_url(config) == default_sqlite_url(home.root)
    assert home.database_url(config).endswith(str(home.root / "enlace.db"))


def test_options_reach_the_configuration(tmp_path: Path, fixed_now: dt.datetime) -> None:
    created = make_home(
        tmp_path / "crm",
        fixed_now,
        country="crm",
        roles=("secretariat",),
        database_url="postgresql://enlace@db/crm",
        directory_source="peer:PAN",
        focal_points=(("Ana Pérez", "ana@crm.example"),),
    )
    config = created.config()
    assert config.country == "CRM"
    assert config.roles == ("secretariat",)
    assert created.database_url() == "postgresql://enlace@db/crm"
    assert config.directory_source == "peer:PAN"
    assert config.focal_points == ("ana@crm.example",)
    member = created.member()
    assert [(f.name, f.email) for f in member.focal_points] == [("Ana Pérez", "ana@crm.example")]


# --- member.json ------------------------------------------------------------------------------


def test_member_json_parses_and_matches_the_keys(home: NodeHome, fixed_now: dt.datetime) -> None:
    member = MemberDescriptor.from_json(home.member_path.read_text(encoding="utf-8"))
    assert member == home.member()
    cert_pem = home.keys.tls_certificate.read_bytes()
    assert member.tls_fingerprint == certificate_fingerprint(cert_pem)
    assert member.tls_fingerprint == tls_fingerprint(cert_pem)
    assert member.tls_certificate.encode("ascii") == cert_pem
    assert (member.country, member.endpoint, member.roles) == (
        "PAN",
        "10.20.30.40:7001",
        ("member",),
    )
    assert member.x25519_public_key == home.keys.x25519_public()
    (signing,) = member.signing_keys
    key = home.signing_key()
    assert signing.public_key == key.public_key
    assert signing.key_id == key.key_id
    assert signing.not_before == fixed_now - dt.timedelta(minutes=5)
    assert signing.not_after == fixed_now + SIGNING_KEY_VALIDITY
    assert signing.valid_at(fixed_now)


def test_member_json_carries_no_private_material(home: NodeHome) -> None:
    text = home.member_path.read_text(encoding="utf-8")
    for name in PRIVATE:
        secret = (home.root / name).read_text(encoding="ascii").strip()
        assert secret not in text
    assert "PRIVATE KEY" not in text
    assert json.loads(text)["country"] == "PAN"


def test_missing_member_json_is_a_config_error(home: NodeHome) -> None:
    home.member_path.unlink()
    with pytest.raises(ConfigError, match=r"member\.json"):
        home.member()


# --- refusing to overwrite --------------------------------------------------------------------


def test_second_init_refused_and_files_unchanged(home: NodeHome, fixed_now: dt.datetime) -> None:
    before = snapshot(home.root)
    with pytest.raises(ConfigError, match="refusing to re-initialise"):
        make_home(home.root, fixed_now)
    with pytest.raises(ConfigError):
        make_home(home.root, fixed_now, country="CRI", endpoint="127.0.0.1:7002")
    assert snapshot(home.root) == before


def test_keys_without_config_refused_and_keys_unchanged(
    tmp_path: Path, fixed_now: dt.datetime
) -> None:
    root = tmp_path / "half"
    KeyPaths(root).create_all("PAN", fixed_now)
    before = snapshot(root)
    with pytest.raises(ConfigError, match="already holds keys"):
        make_home(root, fixed_now)
    assert snapshot(root) == before
    assert not (root / "node.toml").exists()


def test_invalid_settings_refused_before_anything_is_written(
    tmp_path: Path, fixed_now: dt.datetime
) -> None:
    root = tmp_path / "never"
    with pytest.raises(ConfigError, match="country"):
        make_home(root, fixed_now, country="PANAMA")
    with pytest.raises(ConfigError, match="endpoint"):
        make_home(root, fixed_now, endpoint="no-port")
    with pytest.raises(ConfigError, match="roles"):
        make_home(root, fixed_now, roles=("auditor",))
    assert not root.exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"country": "PAN", "roles": ("secretariat",)},
        {"country": "CRM", "roles": ("member",)},
        {"endpoint": "pan host:7001"},
    ],
    ids=["secretariat-not-CRM", "CRM-not-secretariat", "space-in-endpoint"],
)
def test_descriptor_rules_checked_before_keys_are_written(
    tmp_path: Path, fixed_now: dt.datetime, changes: dict[str, object]
) -> None:
    root = tmp_path / "bad"
    with pytest.raises(EnlaceError):
        make_home(root, fixed_now, **changes)
    assert not root.exists() or snapshot(root) == {}


def test_write_private_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "k.key"
    write_private(path, b"first\n")
    with pytest.raises(KeyError_, match="refusing to overwrite"):
        write_private(path, b"second\n")
    assert path.read_bytes() == b"first\n"
    assert mode(path) == 0o600


# --- reading keys back ------------------------------------------------------------------------


@pytest.mark.parametrize("bad_mode", [0o640, 0o604, 0o644, 0o660, 0o666, 0o610, 0o601])
def test_read_hex_key_refuses_group_or_other_access(home: NodeHome, bad_mode: int) -> None:
    path = home.keys.signing_key
    os.chmod(path, bad_mode)
    with pytest.raises(KeyError_, match="chmod 600"):
        read_hex_key(path)
    with pytest.raises(ConfigError, match="readable by other users"):
        home.signing_key()


@pytest.mark.parametrize("good_mode", [0o600, 0o400])
def test_read_hex_key_accepts_owner_only(home: NodeHome, good_mode: int) -> None:
    path = home.keys.signing_key
    os.chmod(path, good_mode)
    assert len(read_hex_key(path)) == 32


def test_read_hex_key_missing(tmp_path: Path) -> None:
    with pytest.raises(KeyError_, match="missing"):
        read_hex_key(tmp_path / "absent.key")


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"zz" * 32 + b"\n", "not hex"), (b"ab" * 31 + b"\n", "must hold 32 bytes, holds 31")],
)
def test_read_hex_key_checks_content(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "k.key"
    write_private(path, content)
    with pytest.raises(EncodingError, match=message):
        read_hex_key(path)


def test_missing_signing_key_is_a_config_error(home: NodeHome) -> None:
    home.keys.signing_key.unlink()
    with pytest.raises(ConfigError, match="missing"):
        home.signing_key()


def test_missing_tls_material_is_a_key_error(home: NodeHome) -> None:
    home.keys.tls_key.unlink()
    with pytest.raises(KeyError_, match="TLS"):
        home.keys.load_tls()
