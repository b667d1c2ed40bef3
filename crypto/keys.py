"""Node key material on disk: Ed25519 signing key, X25519 key, TLS key and certificate.

Why files and references: operators back up and rotate a node home as a directory, and code
elsewhere refers to keys by :class:`KeyPaths`, loading the bytes only where they are used.

Invariants:
* Private files are created with mode 0600 (``O_CREAT | O_EXCL``), so an existing key is never
  overwritten and never readable by other users, even for an instant.
* The TLS certificate is self-signed (ECDSA P-256) and carries the SAN ``enlace-<iso3>``: peers
  pin it by its SHA-256 fingerprint from the federation directory and connect with that name as
  the TLS target, so no public CA is involved.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from crypto.errors import EncodingError, KeyError_
from crypto.signing import SigningKey

PRIVATE_MODE = 0o600


def tls_server_name(country: str) -> str:
    """The name every peer uses as TLS target for ``country`` (pinned, not resolved)."""
    return f"enlace-{country.lower()}"


def private_directory(folder: Path) -> None:
    """Create ``folder`` (and its parents) if missing; one this creates is 0700, as the
    keys folder should be (an existing folder's mode is the operator's)."""
    if not folder.exists():
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 (in a folder created 0700); refuse if it exists."""
    private_directory(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError as exc:
        raise KeyError_(f"{path} already exists; refusing to overwrite a key") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def read_hex_key(path: Path, size: int = 32) -> bytes:
    """Read a key stored as hex text, checking length and permissions."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError as exc:
        raise KeyError_(f"key file {path} is missing") from exc
    if path.stat().st_mode & 0o077:
        raise KeyError_(f"key file {path} is readable by other users; run chmod 600 {path}")
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise EncodingError(f"key file {path} is not hex") from exc
    if len(raw) != size:
        raise EncodingError(f"key file {path} must hold {size} bytes, holds {len(raw)}")
    return raw


@functools.lru_cache(maxsize=64)
def certificate_fingerprint(pem: bytes) -> str:
    """``sha256:<hex>`` of the DER certificate; the value pinned in the directory."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise EncodingError("not a PEM X.509 certificate") from exc
    der = cert.public_bytes(serialization.Encoding.DER)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def certificate_not_after(pem: bytes) -> dt.datetime:
    return x509.load_pem_x509_certificate(pem).not_valid_after_utc


def make_tls_certificate(
    country: str,
    now: dt.datetime,
    days: int = 365,
    extra_hosts: tuple[str, ...] = (),
    generation: str = "",
) -> tuple[bytes, bytes]:
    """Return ``(key_pem, cert_pem)`` for a self-signed node certificate.

    ``generation`` (an organisational unit) makes the subject differ from earlier
    certificates of the same node: TLS stacks look trust roots up by subject name, so two
    pinned certificates of one node during a rotation must not share one.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [
        x509.NameAttribute(NameOID.COMMON_NAME, tls_server_name(country)),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "crm-enlace"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "ZZ"),
    ]
    if generation:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, generation))
    name = x509.Name(attributes)
    sans: list[x509.GeneralName] = [x509.DNSName(tls_server_name(country))]
    for host in extra_hosts:
        if not host:
            continue
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host.strip("[]"))))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


@functools.lru_cache(maxsize=64)
def tls_key_matches(key_pem: bytes, cert_pem: bytes) -> bool:
    """Whether ``key_pem`` is the private key of ``cert_pem`` (EncodingError if unparsable)."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise EncodingError(f"TLS key or certificate is not valid PEM: {exc}") from exc
    mine = key.public_key().public_bytes(serialization.Encoding.DER, spki)
    return mine == cert.public_key().public_bytes(serialization.Encoding.DER, spki)


@dataclass(frozen=True)
class KeyPaths:
    """Where a node home keeps its key material."""

    root: Path

    @property
    def signing_key(self) -> Path:
        return self.root / "keys" / "signing.key"

    @property
    def x25519_key(self) -> Path:
        return self.root / "keys" / "x25519.key"

    @property
    def oprf_master(self) -> Path:
        return self.root / "keys" / "oprf-master.key"

    @property
    def cell_key(self) -> Path:
        return self.root / "keys" / "cellkey.key"

    @property
    def tls_key(self) -> Path:
        return self.root / "keys" / "tls.key"

    @property
    def tls_certificate(self) -> Path:
        return self.root / "tls.crt"

    def load_signing_key(self) -> SigningKey:
        return SigningKey(read_hex_key(self.signing_key))

    def load_x25519_private(self) -> bytes:
        return read_hex_key(self.x25519_key)

    def x25519_public(self) -> bytes:
        private = x25519.X25519PrivateKey.from_private_bytes(self.load_x25519_private())
        return private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def load_tls(self) -> tuple[bytes, bytes]:
        """``(key_pem, cert_pem)``, two halves of one pair.

        A certificate rotation replaces the two files one after the other; a read that falls
        between the two renames sees halves of different pairs and is retried briefly.
        """
        for _ in range(20):
            try:
                key_pem = self.tls_key.read_bytes()
                cert_pem = self.tls_certificate.read_bytes()
            except FileNotFoundError as exc:
                raise KeyError_(f"TLS key or certificate missing under {self.root}") from exc
            if tls_key_matches(key_pem, cert_pem):
                return key_pem, cert_pem
            time.sleep(0.05)
        raise KeyError_(f"{self.tls_key} is not the key of {self.tls_certificate}")

    def create_all(self, country: str, now: dt.datetime, hosts: tuple[str, ...] = ()) -> None:
        """Generate every key; refuses (before writing anything) if any already exists."""
        existing = [
            p
            for p in (
                self.signing_key,
                self.x25519_key,
                self.oprf_master,
                self.cell_key,
                self.tls_key,
                self.tls_certificate,
            )
            if p.exists()
        ]
        if existing:
            names = ", ".join(str(p) for p in existing)
            raise KeyError_(f"refusing to overwrite existing key material: {names}")
        write_private(self.signing_key, SigningKey.generate().seed.hex().encode() + b"\n")
        x_private = x25519.X25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        write_private(self.x25519_key, x_private.hex().encode() + b"\n")
        # Secrets that never leave the node: the OPRF master key (matching filters) and the
        # cell-key secret (statistical perturbation). Created now so the first backup has them.
        for secret in (self.oprf_master, self.cell_key):
            write_private(secret, os.urandom(32).hex().encode() + b"\n")
        key_pem, cert_pem = make_tls_certificate(country, now, extra_hosts=hosts)
        write_private(self.tls_key, key_pem)
        write_public(self.tls_certificate, cert_pem)
