"""The federation directory: the signed, versioned, expiring list of members every node trusts.

Why: a node must know, without asking anyone at call time, which countries exist, where they
listen, which Ed25519 keys sign for them and which TLS certificate to pin. That knowledge is the
trust anchor of the federation, so it is a document signed by a threshold of *directory keys*
(held by the Secretariat and by member countries), in the manner of TUF's root metadata.

Trust rules (see ``docs/directory.md``):

* **Canonical bytes** are the sorted-key, compact, UTF-8 JSON of the body — every field except
  ``signatures``. Signatures are Ed25519 over those bytes with the context ``enlace/1 directory``.
* **Root** (:func:`verify_root`): the first copy a node accepts must carry valid signatures from
  ``threshold`` distinct keys of its own ``directory_keys`` and not be expired; the operator pins
  :func:`directory_hash` out of band.
* **Update** (:func:`verify_update`): a candidate replaces the trusted copy only if its version is
  higher, it is signed by a threshold of the keys the *trusted* copy lists, *and* by a threshold
  of its own keys, and it is not expired. Re-presenting the trusted version is a no-op; anything
  else at the same or a lower version is a rollback.
* Counting signatures: each key counts once however often it signs; signatures by keys that are
  not listed, or that do not verify, count for nothing (and are reported).

Error family (the edge maps ``status_name`` to the gRPC status)::

    DirectoryError(EnlaceError)
    ├── DirectoryFormatError     INVALID_ARGUMENT     malformed document or member (names the field)
    ├── DirectorySignatureError  UNAUTHENTICATED      threshold not met, pinned hash mismatch
    ├── DirectoryLookupError     UNAUTHENTICATED      unknown member, key, fingerprint; key outside
    │                                                 its validity window
    ├── DirectoryExpiredError    FAILED_PRECONDITION  expired (beyond grace, see freshness.py)
    └── DirectoryRollbackError   FAILED_PRECONDITION  version not newer than the trusted one

Each also derives from the matching :mod:`node.errors` class, so generic handlers work.
This module is pure: no clock, no files. :mod:`node.trust.freshness` holds the file lifecycle.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from crypto.errors import CryptoError
from crypto.signing import key_id, verify
from node.errors import AuthenticationError, FailedPreconditionError
from node.trust.member import (
    DirectoryError,
    DirectoryFormatError,
    MemberDescriptor,
    checked_key_id,
    format_time,
    hex_key,
    parse_time,
    require_fields,
    strict_json_loads,
    text,
)

FORMAT = "enlace-directory/1"
FEDERATION = "crm-enlace"
SIGNATURE_CONTEXT = b"enlace/1 directory"


class DirectorySignatureError(DirectoryError, AuthenticationError):
    """Not enough distinct valid signatures, or not the directory the operator pinned."""

    status_name = "UNAUTHENTICATED"


class DirectoryLookupError(DirectoryError, AuthenticationError):
    """A peer, key or certificate the directory does not vouch for (at that time)."""

    status_name = "UNAUTHENTICATED"


class DirectoryExpiredError(DirectoryError, FailedPreconditionError):
    """The directory is past ``expires_at`` (and past the grace period, where one applies)."""

    status_name = "FAILED_PRECONDITION"


class DirectoryRollbackError(DirectoryError, FailedPreconditionError):
    """A candidate whose version is not newer than the trusted copy."""

    status_name = "FAILED_PRECONDITION"


class KeyResolver(Protocol):
    """What envelope verification needs: the public key a country signs with at a time."""

    def signing_key(self, country: str, key_id: str, at: datetime) -> bytes: ...


@dataclass(frozen=True)
class DirectoryKey:
    """A key allowed to sign the directory, and who holds it (free text, for people)."""

    key_id: str
    public_key: bytes
    holder: str

    @classmethod
    def from_public_key(cls, public_key: bytes, holder: str) -> DirectoryKey:
        try:
            kid = key_id(public_key)
        except CryptoError as exc:
            raise DirectoryFormatError(str(exc), field="public_key") from None
        entry = {"key_id": kid, "public_key": public_key.hex(), "holder": holder}
        return cls.from_dict(entry, "directory_key")

    @classmethod
    def from_dict(cls, data: Any, where: str) -> DirectoryKey:
        obj = require_fields(data, where, ("key_id", "public_key", "holder"))
        public_key = hex_key(obj["public_key"], f"{where}.public_key")
        kid = checked_key_id(obj["key_id"], public_key, f"{where}.key_id")
        return cls(kid, public_key, text(obj["holder"], f"{where}.holder"))

    def to_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "public_key": self.public_key.hex(), "holder": self.holder}


@dataclass(frozen=True)
class DirectorySignature:
    key_id: str
    signature: bytes

    @classmethod
    def from_dict(cls, data: Any, where: str) -> DirectorySignature:
        obj = require_fields(data, where, ("key_id", "signature"))
        kid = text(obj["key_id"], f"{where}.key_id")
        try:
            sig = base64.b64decode(text(obj["signature"], f"{where}.signature"), validate=True)
        except (binascii.Error, ValueError):
            raise DirectoryFormatError("not base64", field=f"{where}.signature") from None
        if len(sig) != 64:
            raise DirectoryFormatError("must be a 64-byte signature", field=f"{where}.signature")
        return cls(kid, sig)

    def to_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "signature": base64.b64encode(self.signature).decode()}


def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


_BODY_FIELDS = (
    "format",
    "federation",
    "version",
    "issued_at",
    "expires_at",
    "threshold",
    "directory_keys",
    "members",
)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DirectoryFormatError("must be a positive integer", field=name)
    return value


@dataclass(frozen=True)
class Directory:
    """A parsed, well-formed directory. Well-formed is not trusted: see :func:`verify_root`.

    ``body`` keeps the canonical bytes of the body as received, so signatures are always
    checked over what was signed, never over a re-serialisation of the parsed fields.
    """

    format: str
    federation: str
    version: int
    issued_at: datetime
    expires_at: datetime
    threshold: int
    directory_keys: tuple[DirectoryKey, ...]
    members: tuple[MemberDescriptor, ...]
    signatures: tuple[DirectorySignature, ...]
    body: bytes = field(repr=False)

    @classmethod
    def from_dict(cls, data: Any) -> Directory:
        obj = require_fields(data, "directory", _BODY_FIELDS, ("signatures",))
        if obj["format"] != FORMAT:
            raise DirectoryFormatError(f"unsupported format (expected {FORMAT})", field="format")
        keys = tuple(_list_of(obj, "directory_keys", DirectoryKey.from_dict, non_empty=True))
        if len({k.key_id for k in keys}) != len(keys):
            raise DirectoryFormatError("key ids must be distinct", field="directory_keys")
        threshold = _positive_int(obj["threshold"], "threshold")
        if threshold > len(keys):
            raise DirectoryFormatError(
                f"threshold {threshold} exceeds the {len(keys)} directory key(s)", field="threshold"
            )
        members = tuple(_list_of(obj, "members", _member))
        _check_members_distinct(members)
        issued_at = parse_time(obj["issued_at"], "issued_at")
        expires_at = parse_time(obj["expires_at"], "expires_at")
        if expires_at <= issued_at:
            raise DirectoryFormatError("must be after issued_at", field="expires_at")
        body = {k: obj[k] for k in _BODY_FIELDS}
        try:
            canonical = _canonical(body)
        except (TypeError, ValueError):
            raise DirectoryFormatError("body is not plain JSON", field="directory") from None
        return cls(
            format=FORMAT,
            federation=text(obj["federation"], "federation"),
            version=_positive_int(obj["version"], "version"),
            issued_at=issued_at,
            expires_at=expires_at,
            threshold=threshold,
            directory_keys=keys,
            members=members,
            signatures=tuple(_list_of(obj, "signatures", DirectorySignature.from_dict)),
            body=canonical,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.body)
        out["signatures"] = [s.to_dict() for s in self.signatures]
        return out

    def to_json(self) -> str:
        """Human-readable JSON for files (the signed form is :attr:`body`, not this text)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @functools.cached_property
    def hash(self) -> str:
        """Kept once computed: every agreement decision compares it, and ``body`` is frozen."""
        return directory_hash(self)

    # --- lookups -------------------------------------------------------------------------

    def member(self, country: str) -> MemberDescriptor:
        for m in self.members:
            if m.country == country:
                return m
        raise DirectoryLookupError(
            f"{country!r} is not a member in directory v{self.version}",
            hint="check the country code, or refresh the directory",
        )

    def signing_key(self, country: str, key_id: str, at: datetime) -> bytes:
        """The public key ``country`` signs with under ``key_id``, if valid at ``at``."""
        key = self.member(country).signing_key(key_id)
        if key is None:
            raise DirectoryLookupError(
                f"{country} has no signing key {key_id} in directory v{self.version}",
                hint="the peer may have rotated keys; refresh the directory",
            )
        if not key.valid_at(at):
            raise DirectoryLookupError(
                f"{country} key {key_id} is valid from {format_time(key.not_before)} "
                f"until {format_time(key.not_after)}, not at {format_time(at)}",
                hint="check both clocks, or whether the key was rotated",
            )
        return key.public_key

    def live_signing_key(
        self, country: str, key_id: str, signed_at: datetime, now: datetime
    ) -> bytes:
        """The public key to check a live message with: valid when it says it was signed and
        still valid now. The signer chooses ``signed_at`` (within the skew window), so a
        retired key is refused from its ``not_after`` on, not one window later. Stored
        history (audit entries, checkpoints, evidence) is checked at ``signed_at`` alone."""
        public_key = self.signing_key(country, key_id, signed_at)
        self.signing_key(country, key_id, now)
        return public_key

    def by_tls_fingerprint(self, fingerprint: str) -> MemberDescriptor:
        wanted = fingerprint.strip().lower()
        for m in self.members:
            if wanted in m.tls_fingerprints:
                return m
        raise DirectoryLookupError(
            f"no member presents TLS certificate {wanted} in directory v{self.version}",
            hint="the peer certificate is not pinned in the directory",
        )

    def members_with_role(self, role: str) -> tuple[MemberDescriptor, ...]:
        return tuple(m for m in self.members if m.has_role(role))


def _member(data: Any, where: str) -> MemberDescriptor:
    try:
        return MemberDescriptor.from_dict(data)
    except DirectoryFormatError as exc:
        raise DirectoryFormatError(exc.message, field=where, hint=exc.hint) from None


def _list_of(obj: Mapping[str, Any], name: str, parse: Any, non_empty: bool = False) -> list[Any]:
    raw = obj.get(name, [])
    if not isinstance(raw, list) or (non_empty and not raw):
        expected = "a non-empty list" if non_empty else "a list"
        raise DirectoryFormatError(f"must be {expected}", field=name)
    return [parse(item, f"{name}[{i}]") for i, item in enumerate(raw)]


def _check_members_distinct(members: Sequence[MemberDescriptor]) -> None:
    seen: dict[str, str] = {}
    for m in members:
        labels = [f"country {m.country}", *(f"fingerprint {f}" for f in m.tls_fingerprints)]
        labels += [f"signing key {k.key_id}" for k in m.signing_keys]
        for label in labels:
            if label in seen:
                raise DirectoryFormatError(
                    f"{label} appears for both {seen[label]} and {m.country}", field="members"
                )
            seen[label] = m.country


def parse_directory_json(raw: str | bytes) -> Directory:
    """Parse a directory file (strict JSON: no duplicate keys, no NaN)."""
    return Directory.from_dict(strict_json_loads(raw, "directory"))


def directory_hash(directory: Directory) -> str:
    """SHA-256 hex of the canonical body: what operators pin and compare out of band."""
    return hashlib.sha256(directory.body).hexdigest()


# --- signatures and verification ---------------------------------------------------------


@dataclass(frozen=True)
class SignatureCount:
    """How the signatures of a directory fare against one set of keys and threshold."""

    threshold: int
    valid: tuple[str, ...]  # distinct key ids whose signature verifies
    invalid: tuple[str, ...]  # listed keys whose signature does not verify
    unknown: tuple[str, ...]  # key ids not in the set

    @property
    def met(self) -> bool:
        return len(self.valid) >= self.threshold


def count_signatures(
    directory: Directory, keys: Iterable[DirectoryKey], threshold: int
) -> SignatureCount:
    by_id = {k.key_id: k for k in keys}
    valid: list[str] = []
    invalid: list[str] = []
    unknown: list[str] = []
    for sig in directory.signatures:
        key = by_id.get(sig.key_id)
        if key is None:
            unknown.append(sig.key_id)
            continue
        try:
            verify(key.public_key, SIGNATURE_CONTEXT, directory.body, sig.signature)
        except CryptoError:
            invalid.append(sig.key_id)
            continue
        if sig.key_id not in valid:
            valid.append(sig.key_id)
    bad = tuple(dict.fromkeys(k for k in invalid if k not in valid))
    return SignatureCount(threshold, tuple(valid), bad, tuple(dict.fromkeys(unknown)))


def _require_threshold(directory: Directory, count: SignatureCount, whose: str) -> None:
    if not count.met:
        detail = f"{len(count.valid)} valid signature(s) of {count.threshold} required"
        if count.invalid:
            detail += f"; {len(count.invalid)} do not verify (altered after signing?)"
        raise DirectorySignatureError(
            f"directory v{directory.version}: {detail} from the keys listed in {whose}",
            hint="collect more signatures with 'enlace directory sign'",
        )


def _require_unexpired(directory: Directory, now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if now >= directory.expires_at:
        raise DirectoryExpiredError(
            f"directory v{directory.version} expired at {format_time(directory.expires_at)}",
            hint="ask the directory key holders for a newer version",
        )


def verify_root(directory: Directory, now: datetime, *, expected_hash: str = "") -> Directory:
    """Accept a first directory: self-signed by its threshold, unexpired, and pinned if given."""
    if expected_hash and expected_hash.strip().lower() != directory.hash:
        raise DirectorySignatureError(
            f"directory v{directory.version} hashes to {directory.hash}, "
            f"not the pinned {expected_hash.strip()}",
            hint="obtain the directory hash again from the Secretariat over a separate channel",
        )
    count = count_signatures(directory, directory.directory_keys, directory.threshold)
    _require_threshold(directory, count, f"v{directory.version} itself")
    _require_unexpired(directory, now)
    return directory


def _verify_step(trusted: Directory, candidate: Directory) -> None:
    if candidate.federation != trusted.federation:
        raise DirectorySignatureError(
            f"candidate is for federation {candidate.federation!r}, not {trusted.federation!r}"
        )
    if candidate.version <= trusted.version:
        raise DirectoryRollbackError(
            f"candidate v{candidate.version} is not newer than trusted v{trusted.version}",
            hint="a replacement needs a higher version; refusing a rollback",
        )
    old = count_signatures(candidate, trusted.directory_keys, trusted.threshold)
    _require_threshold(candidate, old, f"trusted v{trusted.version}")
    new = count_signatures(candidate, candidate.directory_keys, candidate.threshold)
    _require_threshold(candidate, new, f"v{candidate.version} itself")


def verify_update(trusted: Directory, candidate: Directory, now: datetime) -> Directory:
    """Return the directory to trust from now on: ``candidate`` if it is a valid successor."""
    if candidate.version == trusted.version and candidate.body == trusted.body:
        return trusted
    _verify_step(trusted, candidate)
    _require_unexpired(candidate, now)
    return candidate


def verify_chain(trusted: Directory, chain: Sequence[Directory], now: datetime) -> Directory:
    """Walk successive versions (a node that missed a key rotation must not skip it).

    Intermediate versions may have expired since; only the last must be current.
    """
    current = trusted
    for candidate in chain:
        if candidate.version == current.version and candidate.body == current.body:
            continue
        _verify_step(current, candidate)
        current = candidate
    _require_unexpired(current, now)
    return current
