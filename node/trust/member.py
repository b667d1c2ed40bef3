"""Member descriptors: the public identity of one node, as listed in the federation directory.

Why a module of its own: ``enlace init`` writes a descriptor into ``HOME/member.json``, the
Secretariat collects them into the directory, and every peer reads them back to check
signatures and pin TLS certificates. All three must agree on one strict parser, so a descriptor
that would be read differently by two nodes is refused here, once.

Invariants enforced by :meth:`MemberDescriptor.from_dict`:

* ``country`` is three upper-case ASCII letters (ISO 3166 alpha-3). The Technical Secretariat
  is not a country; it uses the reserved code ``CRM``, and the ``secretariat`` role is held by
  ``CRM`` and by nobody else.
* ``roles`` is a non-empty list of distinct known roles (``member``, ``secretariat``, ``helper``).
* every signing key's ``key_id`` equals :func:`crypto.signing.key_id` of its public key, key ids
  are distinct, and each validity window is non-empty (``not_before < not_after``).
* ``tls_fingerprint`` is ``sha256:`` + lower-case hex of the SHA-256 of the certificate's DER
  encoding, and matches the PEM certificate given (which must not carry private key material).
* the optional ``tls_rollover_certificate`` / ``tls_rollover_fingerprint`` pair (both or
  neither) pins a second certificate during a TLS rotation; it follows the same rules, differs
  from the main one, and is omitted from the JSON when absent (older documents keep their
  canonical bytes and hashes).
* unknown fields are refused: the directory format is versioned, not open-ended.

This module is also the bottom of the :mod:`node.trust` import graph, so the base of the
directory error family lives here; :mod:`node.trust.directory` documents the whole tree.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from crypto.errors import CryptoError
from crypto.signing import PUBLIC_KEY_SIZE, key_id
from node.errors import EnlaceError, InvalidArgumentError

ROLES = ("member", "secretariat", "helper")
SECRETARIAT_COUNTRY = "CRM"

_ISO3 = re.compile(r"[A-Z]{3}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_HEX32 = re.compile(r"[0-9a-f]{64}")
_FINGERPRINT = re.compile(r"sha256:[0-9a-f]{64}")


class DirectoryError(EnlaceError):
    """Base of every error about the federation directory or a member descriptor."""


class DirectoryFormatError(DirectoryError, InvalidArgumentError):
    """A directory or member descriptor is malformed; ``field`` names the offending field."""

    status_name = "INVALID_ARGUMENT"


# --- small strict parsers shared with node.trust.directory ---------------------------------


def require_fields(
    data: Any, where: str, required: Iterable[str], optional: Iterable[str] = ()
) -> Mapping[str, Any]:
    """Check that ``data`` is an object with exactly the expected keys."""
    if not isinstance(data, Mapping):
        raise DirectoryFormatError("must be a JSON object", field=where)
    required = tuple(required)
    allowed = set(required) | set(optional)
    missing = [k for k in required if k not in data]
    if missing:
        raise DirectoryFormatError(f"missing field(s) {', '.join(missing)}", field=where)
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise DirectoryFormatError(f"unknown field(s) {', '.join(unknown)}", field=where)
    return data


def strict_json_loads(raw: str | bytes, where: str) -> Any:
    """JSON that reads the same in every parser: duplicate keys and NaN/Infinity are refused."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise DirectoryFormatError(f"duplicate JSON key {k!r}", field=where)
            out[k] = v
        return out

    def no_constants(name: str) -> Any:
        raise DirectoryFormatError(f"{name} is not valid JSON", field=where)

    try:
        return json.loads(raw, object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except ValueError as exc:  # includes UnicodeDecodeError
        raise DirectoryFormatError(f"not JSON: {exc}", field=where) from None


def text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DirectoryFormatError("must be a non-empty string", field=field)
    return value


def hex_key(value: Any, field: str) -> bytes:
    """A 32-byte key written as 64 lower-case hex digits."""
    if not isinstance(value, str) or not _HEX32.fullmatch(value):
        raise DirectoryFormatError("must be 64 lower-case hex digits (32 bytes)", field=field)
    return bytes.fromhex(value)


def checked_key_id(value: Any, public_key: bytes, field: str) -> str:
    """The declared key id, which must be the one derived from the public key."""
    if not isinstance(value, str) or not _KEY_ID.fullmatch(value):
        raise DirectoryFormatError("must be 16 lower-case hex digits", field=field)
    try:
        expected = key_id(public_key)
    except CryptoError as exc:
        raise DirectoryFormatError(str(exc), field=field) from None
    if value != expected:
        raise DirectoryFormatError(
            f"key id {value} does not match its public key (expected {expected})", field=field
        )
    return value


def parse_time(value: Any, field: str) -> datetime:
    """An RFC 3339 timestamp with an explicit offset, returned in UTC."""
    if not isinstance(value, str):
        raise DirectoryFormatError("must be an RFC 3339 timestamp string", field=field)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise DirectoryFormatError(f"not an RFC 3339 timestamp: {value!r}", field=field) from None
    if parsed.tzinfo is None:
        raise DirectoryFormatError("timestamp needs an offset, e.g. 'Z'", field=field)
    return parsed.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix (the form this package writes)."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def country_code(value: Any, field: str = "country") -> str:
    if not isinstance(value, str) or not _ISO3.fullmatch(value):
        raise DirectoryFormatError(
            f"must be an upper-case ISO 3166 alpha-3 code (or {SECRETARIAT_COUNTRY}), "
            f"got {value!r}",
            field=field,
        )
    return value


def tls_fingerprint_der(der: bytes) -> str:
    """The pinning fingerprint of a certificate given in DER (as the TLS layer sees it)."""
    return "sha256:" + hashlib.sha256(der).hexdigest()


def tls_fingerprint(certificate_pem: str | bytes) -> str:
    """The pinning fingerprint of a PEM certificate: SHA-256 over its DER encoding."""
    raw = certificate_pem.encode() if isinstance(certificate_pem, str) else certificate_pem
    if b"PRIVATE KEY" in raw:
        raise DirectoryFormatError(
            "contains private key material; publish the certificate only",
            field="tls_certificate",
        )
    try:
        cert = x509.load_pem_x509_certificate(raw)
    except ValueError:
        raise DirectoryFormatError("not a PEM X.509 certificate", field="tls_certificate") from None
    return tls_fingerprint_der(cert.public_bytes(Encoding.DER))


# --- the descriptor -------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberSigningKey:
    """One Ed25519 signing key of a member and the window in which its signatures count."""

    key_id: str
    public_key: bytes
    not_before: datetime
    not_after: datetime

    def valid_at(self, at: datetime) -> bool:
        return self.not_before <= at < self.not_after

    @classmethod
    def from_dict(cls, data: Any, field: str) -> MemberSigningKey:
        obj = require_fields(data, field, ("key_id", "public_key", "not_before", "not_after"))
        public_key = hex_key(obj["public_key"], f"{field}.public_key")
        kid = checked_key_id(obj["key_id"], public_key, f"{field}.key_id")
        not_before = parse_time(obj["not_before"], f"{field}.not_before")
        not_after = parse_time(obj["not_after"], f"{field}.not_after")
        if not_before >= not_after:
            raise DirectoryFormatError("not_before must be before not_after", field=field)
        return cls(kid, public_key, not_before, not_after)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "public_key": self.public_key.hex(),
            "not_before": format_time(self.not_before),
            "not_after": format_time(self.not_after),
        }


@dataclass(frozen=True)
class FocalPoint:
    """A person the Secretariat and peers may contact about this node (public)."""

    name: str
    email: str

    @classmethod
    def from_dict(cls, data: Any, field: str) -> FocalPoint:
        obj = require_fields(data, field, ("name", "email"))
        email = text(obj["email"], f"{field}.email")
        if "@" not in email or any(c.isspace() for c in email):
            raise DirectoryFormatError(f"not an e-mail address: {email!r}", field=f"{field}.email")
        return cls(text(obj["name"], f"{field}.name"), email)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "email": self.email}


_MEMBER_REQUIRED = (
    "country",
    "name",
    "endpoint",
    "roles",
    "signing_keys",
    "x25519_public_key",
    "tls_certificate",
    "tls_fingerprint",
)


_ROLLOVER = ("tls_rollover_certificate", "tls_rollover_fingerprint")


def _rollover(obj: Mapping[str, Any], main_fingerprint: str) -> tuple[str, str]:
    """The optional second pinned certificate: both fields or neither, checked like the main."""
    present = [k for k in _ROLLOVER if k in obj]
    if not present:
        return "", ""
    if len(present) != len(_ROLLOVER):
        raise DirectoryFormatError("needs tls_rollover_fingerprint too", field=present[0])
    certificate = text(obj["tls_rollover_certificate"], "tls_rollover_certificate")
    declared = obj["tls_rollover_fingerprint"]
    if not isinstance(declared, str) or not _FINGERPRINT.fullmatch(declared):
        raise DirectoryFormatError(
            "must be 'sha256:' followed by 64 lower-case hex digits",
            field="tls_rollover_fingerprint",
        )
    try:
        actual = tls_fingerprint(certificate)
    except DirectoryFormatError as exc:
        problem = exc.message.split(": ", 1)[-1]
        raise DirectoryFormatError(problem, field="tls_rollover_certificate") from None
    if declared != actual:
        raise DirectoryFormatError(
            f"does not match the certificate (certificate hashes to {actual})",
            field="tls_rollover_fingerprint",
        )
    if declared == main_fingerprint:
        raise DirectoryFormatError(
            "is the main certificate again; list a different one", field="tls_rollover_fingerprint"
        )
    return certificate, declared


def _endpoint(value: Any) -> str:
    endpoint = text(value, "endpoint")
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise DirectoryFormatError(f"must be host:port, got {endpoint!r}", field="endpoint")
    if any(c.isspace() for c in endpoint):
        raise DirectoryFormatError("must not contain whitespace", field="endpoint")
    return endpoint


def _roles(value: Any, country: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise DirectoryFormatError("must be a non-empty list", field="roles")
    for role in value:
        if role not in ROLES:
            raise DirectoryFormatError(
                f"unknown role {role!r} (known: {', '.join(ROLES)})", field="roles"
            )
    if len(set(value)) != len(value):
        raise DirectoryFormatError("roles must be distinct", field="roles")
    if ("secretariat" in value) != (country == SECRETARIAT_COUNTRY):
        raise DirectoryFormatError(
            f"the secretariat role belongs to country code {SECRETARIAT_COUNTRY} only",
            field="roles",
        )
    return tuple(value)


@dataclass(frozen=True)
class MemberDescriptor:
    """The public description of one node; see the module docstring for what is checked."""

    country: str
    name: str
    endpoint: str
    roles: tuple[str, ...]
    signing_keys: tuple[MemberSigningKey, ...]
    x25519_public_key: bytes
    tls_certificate: str
    tls_fingerprint: str
    focal_points: tuple[FocalPoint, ...] = ()
    tls_rollover_certificate: str = ""
    tls_rollover_fingerprint: str = ""

    @property
    def tls_fingerprints(self) -> tuple[str, ...]:
        """Every fingerprint pinned for this member (two while a TLS rotation overlaps)."""
        extra = (self.tls_rollover_fingerprint,) if self.tls_rollover_fingerprint else ()
        return (self.tls_fingerprint, *extra)

    @property
    def tls_certificates_pem(self) -> bytes:
        """The pinned certificates as one PEM bundle (trust roots for this member)."""
        return (self.tls_certificate + self.tls_rollover_certificate).encode("ascii")

    @classmethod
    def from_dict(cls, data: Any) -> MemberDescriptor:
        obj = require_fields(data, "member", _MEMBER_REQUIRED, ("focal_points", *_ROLLOVER))
        country = country_code(obj["country"])
        keys_raw = obj["signing_keys"]
        if not isinstance(keys_raw, list) or not keys_raw:
            raise DirectoryFormatError("must be a non-empty list", field="signing_keys")
        keys = tuple(
            MemberSigningKey.from_dict(k, f"signing_keys[{i}]") for i, k in enumerate(keys_raw)
        )
        if len({k.key_id for k in keys}) != len(keys):
            raise DirectoryFormatError("key ids must be distinct", field="signing_keys")
        certificate = text(obj["tls_certificate"], "tls_certificate")
        declared = obj["tls_fingerprint"]
        if not isinstance(declared, str) or not _FINGERPRINT.fullmatch(declared):
            raise DirectoryFormatError(
                "must be 'sha256:' followed by 64 lower-case hex digits", field="tls_fingerprint"
            )
        actual = tls_fingerprint(certificate)
        if declared != actual:
            raise DirectoryFormatError(
                f"does not match the certificate (certificate hashes to {actual})",
                field="tls_fingerprint",
            )
        rollover = _rollover(obj, declared)
        focal_raw = obj.get("focal_points", [])
        if not isinstance(focal_raw, list):
            raise DirectoryFormatError("must be a list", field="focal_points")
        return cls(
            country=country,
            name=text(obj["name"], "name"),
            endpoint=_endpoint(obj["endpoint"]),
            roles=_roles(obj["roles"], country),
            signing_keys=keys,
            x25519_public_key=hex_key(obj["x25519_public_key"], "x25519_public_key"),
            tls_certificate=certificate,
            tls_fingerprint=declared,
            focal_points=tuple(
                FocalPoint.from_dict(f, f"focal_points[{i}]") for i, f in enumerate(focal_raw)
            ),
            tls_rollover_certificate=rollover[0],
            tls_rollover_fingerprint=rollover[1],
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> MemberDescriptor:
        """Parse ``member.json`` as written by ``enlace init``."""
        return cls.from_dict(strict_json_loads(raw, "member"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def build(
        cls,
        *,
        country: str,
        name: str,
        endpoint: str,
        roles: Sequence[str],
        signing_public_keys: Sequence[bytes],
        not_before: datetime,
        not_after: datetime,
        x25519_public_key: bytes,
        tls_certificate_pem: str,
        focal_points: Sequence[tuple[str, str]] = (),
    ) -> MemberDescriptor:
        """Assemble a descriptor from key material (derives key ids and the fingerprint).

        The result goes through :meth:`from_dict`, so a built descriptor is always one that
        every peer will accept.
        """
        if len(x25519_public_key) != PUBLIC_KEY_SIZE:
            raise DirectoryFormatError("must be 32 bytes", field="x25519_public_key")
        draft = {
            "country": country,
            "name": name,
            "endpoint": endpoint,
            "roles": list(roles),
            "signing_keys": [
                {
                    "key_id": key_id(pk) if len(pk) == PUBLIC_KEY_SIZE else "",
                    "public_key": pk.hex(),
                    "not_before": format_time(not_before),
                    "not_after": format_time(not_after),
                }
                for pk in signing_public_keys
            ],
            "x25519_public_key": x25519_public_key.hex(),
            "tls_certificate": tls_certificate_pem,
            "tls_fingerprint": tls_fingerprint(tls_certificate_pem),
            "focal_points": [{"name": n, "email": e} for n, e in focal_points],
        }
        return cls.from_dict(draft)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "country": self.country,
            "name": self.name,
            "endpoint": self.endpoint,
            "roles": list(self.roles),
            "signing_keys": [k.to_dict() for k in self.signing_keys],
            "x25519_public_key": self.x25519_public_key.hex(),
            "tls_certificate": self.tls_certificate,
            "tls_fingerprint": self.tls_fingerprint,
        }
        if self.focal_points:
            out["focal_points"] = [f.to_dict() for f in self.focal_points]
        if self.tls_rollover_fingerprint:
            out["tls_rollover_certificate"] = self.tls_rollover_certificate
            out["tls_rollover_fingerprint"] = self.tls_rollover_fingerprint
        return out

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def signing_key(self, key_id: str) -> MemberSigningKey | None:
        """The listed key with that id, or ``None`` (lookups that must succeed raise upstream)."""
        for key in self.signing_keys:
            if key.key_id == key_id:
                return key
        return None
