"""The holder's OPRF keys per dataset and epoch, and the signed manifest that publishes a filter.

Why: a holder evaluates its records under one OPRF key per (dataset, epoch) and publishes the
resulting :class:`~crypto.filter.Filter`. Keys must be re-creatable from one stored secret (a
node restores from a backup of its home, not of every key it ever used), independent across
datasets (a hit names the dataset; a querier cannot replay an alert output against travel
documents), and replaceable (rotation: a new epoch makes every output computed under the old key
useless against the new filter). A querier must be sure the filter it caches is the one the
holder published for that dataset, epoch and version: the manifest binds them to the SHA-256 of
the encoded filter and is signed with the holder's Ed25519 node key.

Key derivation (:func:`oprf_key_for`)::

    seed = HKDF-SHA256(ikm=master_secret, salt="enlace/1 oprf-seed",
                       info="enlace/1 oprf-seed|<dataset>|<epoch>", length=32)
    key  = DeriveKeyPair(seed, info="enlace/1 oprf", mode)      (RFC 9497 section 3.2.1)

Invariants:
* Same (master secret, dataset, epoch, mode) -> same key; any change -> an independent key.
* :meth:`FilterManifest.to_json` is canonical (sorted keys, no whitespace, ASCII, integers only,
  RFC 3339 UTC time) and :meth:`FilterManifest.from_json` accepts only canonical bytes, so the
  signature covers exactly one meaning. It is signed under :data:`MANIFEST_CONTEXT`.
* :func:`verify_manifest`, :func:`verify_filter` and :func:`verify_filter_state` raise
  :class:`~crypto.errors.VerificationError` on any mismatch; they never return a verdict.
* Time is injected: ``created_at`` and ``now`` are parameters, timezone-aware.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crypto.chunks import ChunkAssembler
from crypto.errors import EncodingError, KeyError_, VerificationError
from crypto.filter import (
    ENCODINGS,
    MAX_FALSE_POSITIVE_RATE,
    MAX_TRUNCATION,
    MAX_VERSION,
    MIN_TRUNCATION,
    Encoding,
    Filter,
    decode_filter,
    encode_filter,
    false_positive_rate,
    read_header,
)
from crypto.oprf import Mode, OprfServerKey
from crypto.signing import SigningKey, key_id, verify

MANIFEST_CONTEXT = b"enlace/1 filter-manifest"
MANIFEST_FORMAT = "enlace/1 filter-manifest"
OPRF_INFO = b"enlace/1 oprf"
MIN_MASTER_SECRET_SIZE = 32
MAX_EPOCH = (1 << 32) - 1

ModeName = Literal["oprf", "voprf"]

_SEED_SALT = b"enlace/1 oprf-seed"
_DATASET_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_HOLDER_RE = re.compile(r"^[A-Z]{3}$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
_LABEL_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_VALUE_RE = re.compile(r"^[\x21-\x7e]{1,64}$")
_TIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{6})?Z$", re.ASCII)
_FIELDS = frozenset(
    ("format", "holder", "dataset", "epoch", "version", "count", "truncation_bytes", "encoding",
     "size", "sha256", "created_at", "mode", "oprf_public_key", "normalisation")
)  # fmt: skip


def _check_dataset(dataset: str) -> None:
    if not isinstance(dataset, str) or not _DATASET_RE.match(dataset):
        raise EncodingError(f"dataset {dataset!r} must match {_DATASET_RE.pattern}")


def _check_int(name: str, value: object, maximum: int) -> None:
    if type(value) is not int or not 0 <= value <= maximum:
        raise EncodingError(f"{name} must be an integer in 0..{maximum}, not {value!r}")


# --------------------------------------------------------------------------- key epochs


def oprf_key_for(
    master_secret: bytes, dataset: str, epoch: int, mode: Mode = Mode.OPRF
) -> OprfServerKey:
    """The holder's OPRF key for one dataset and epoch, re-derivable from the master secret."""
    if len(master_secret) < MIN_MASTER_SECRET_SIZE:
        raise KeyError_(f"the OPRF master secret needs at least {MIN_MASTER_SECRET_SIZE} bytes")
    _check_dataset(dataset)
    _check_int("epoch", epoch, MAX_EPOCH)
    info = b"enlace/1 oprf-seed|" + dataset.encode("ascii") + b"|" + str(epoch).encode("ascii")
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SEED_SALT, info=info).derive(
        master_secret
    )
    return OprfServerKey.derive(seed, OPRF_INFO, mode)


def epoch_at(now: datetime, *, origin: datetime, period: timedelta) -> int:
    """The epoch in force at ``now`` when epochs of length ``period`` start at ``origin``."""
    if now.tzinfo is None or origin.tzinfo is None:
        raise ValueError("epoch_at needs timezone-aware datetimes")
    if period <= timedelta(0):
        raise ValueError("an epoch period must be positive")
    if now < origin:
        raise ValueError(f"{now.isoformat()} is before the first epoch ({origin.isoformat()})")
    return (now - origin) // period


# --------------------------------------------------------------------------- manifest


def _rfc3339(moment: datetime) -> str:
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{moment.microsecond:06d}" if moment.microsecond else "") + "Z"


def _parse_time(text: object) -> datetime:
    match = _TIME_RE.match(text) if isinstance(text, str) else None
    if match is None:
        raise EncodingError(f"created_at {text!r} is not an RFC 3339 UTC time (…Z)")
    try:
        moment = datetime.fromisoformat(match.group(1) + (match.group(2) or ""))
    except ValueError as exc:
        raise EncodingError(f"created_at {text!r} is not a calendar time") from exc
    return moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class FilterManifest:
    """What a holder signs about one published filter (see ``docs/matching.md``)."""

    holder: str
    dataset: str
    epoch: int
    version: int
    count: int
    truncation_bytes: int
    encoding: Encoding
    size: int
    sha256: str
    created_at: datetime
    normalisation: Mapping[str, str]
    mode: ModeName = "oprf"
    oprf_public_key: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.holder, str) or not _HOLDER_RE.match(self.holder):
            raise EncodingError(f"holder {self.holder!r} must be an ISO 3166 alpha-3 code")
        _check_dataset(self.dataset)
        _check_int("epoch", self.epoch, MAX_EPOCH)
        _check_int("version", self.version, MAX_VERSION)
        _check_int("count", self.count, MAX_VERSION)
        _check_int("size", self.size, MAX_VERSION)
        _check_int("truncation_bytes", self.truncation_bytes, MAX_TRUNCATION)
        if self.truncation_bytes < MIN_TRUNCATION:
            raise EncodingError(f"a published filter keeps at least {MIN_TRUNCATION} bytes")
        if self.encoding not in ENCODINGS:
            raise EncodingError(f"unknown filter encoding {self.encoding!r}")
        if not isinstance(self.sha256, str) or not _HEX64_RE.match(self.sha256):
            raise EncodingError("sha256 must be 64 lower-case hex digits")
        if not isinstance(self.created_at, datetime) or self.created_at.tzinfo is None:
            raise EncodingError("created_at must be a timezone-aware datetime")
        object.__setattr__(self, "created_at", self.created_at.astimezone(UTC))
        labels = dict(self.normalisation) if isinstance(self.normalisation, Mapping) else None
        if not labels or not all(
            isinstance(k, str) and isinstance(v, str) and _LABEL_RE.match(k) and _VALUE_RE.match(v)
            for k, v in labels.items()
        ):
            raise EncodingError("normalisation must name at least one rule edition, e.g. keys")
        object.__setattr__(self, "normalisation", MappingProxyType(dict(sorted(labels.items()))))
        if self.mode == "voprf":
            key = self.oprf_public_key
            if not isinstance(key, str) or not _HEX64_RE.match(key):
                raise EncodingError("a VOPRF manifest carries the 32-byte public key in hex")
        elif self.mode == "oprf":
            if self.oprf_public_key is not None:
                raise EncodingError("an OPRF-mode manifest carries no public key")
        else:
            raise EncodingError(f"mode must be 'oprf' or 'voprf', not {self.mode!r}")

    def to_json(self) -> bytes:
        """The canonical bytes that are signed."""
        document: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "holder": self.holder,
            "dataset": self.dataset,
            "epoch": self.epoch,
            "version": self.version,
            "count": self.count,
            "truncation_bytes": self.truncation_bytes,
            "encoding": self.encoding,
            "size": self.size,
            "sha256": self.sha256,
            "created_at": _rfc3339(self.created_at),
            "mode": self.mode,
            "oprf_public_key": self.oprf_public_key,
            "normalisation": dict(self.normalisation),
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("ascii")

    @classmethod
    def from_json(cls, data: bytes) -> FilterManifest:
        """Parse canonical manifest bytes; anything else (even equivalent JSON) raises."""
        try:
            document = json.loads(data, object_pairs_hook=_no_duplicates, parse_float=_no_float)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EncodingError(f"manifest is not JSON: {exc}") from exc
        if not isinstance(document, dict) or set(document) != _FIELDS:
            raise EncodingError(f"a manifest has exactly the fields {sorted(_FIELDS)}")
        if document.pop("format") != MANIFEST_FORMAT:
            raise EncodingError(f"manifest format must be {MANIFEST_FORMAT!r}")
        document["created_at"] = _parse_time(document["created_at"])
        manifest = cls(**document)
        if manifest.to_json() != data:
            raise EncodingError("manifest bytes are not in canonical form")
        return manifest

    @property
    def public_key_bytes(self) -> bytes | None:
        """The VOPRF public key to check evaluation proofs against (``None`` in OPRF mode)."""
        return None if self.oprf_public_key is None else bytes.fromhex(self.oprf_public_key)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise EncodingError(f"manifest repeats the field {name!r}")
        out[name] = value
    return out


def _no_float(text: str) -> float:
    raise EncodingError(f"manifest numbers are integers, not {text}")


def filter_sha256(encoded: bytes) -> str:
    """The hex SHA-256 of an encoded filter, as a manifest carries it."""
    return hashlib.sha256(encoded).hexdigest()


def describe_filter(
    encoded: bytes,
    *,
    holder: str,
    dataset: str,
    epoch: int,
    created_at: datetime,
    normalisation: Mapping[str, str],
    oprf_public_key: bytes | None = None,
) -> FilterManifest:
    """The manifest for an encoded filter (VOPRF mode when a public key is given)."""
    header = read_header(encoded)
    return FilterManifest(
        holder=holder,
        dataset=dataset,
        epoch=epoch,
        version=header.version,
        count=header.count,
        truncation_bytes=header.truncation,
        encoding=header.encoding,
        size=len(encoded),
        sha256=filter_sha256(encoded),
        created_at=created_at,
        normalisation=normalisation,
        mode="oprf" if oprf_public_key is None else "voprf",
        oprf_public_key=None if oprf_public_key is None else oprf_public_key.hex(),
    )


@dataclass(frozen=True)
class SignedManifest:
    """Canonical manifest bytes and the holder's signature over them."""

    body: bytes
    signature: bytes
    key_id: str


def sign_manifest(manifest: FilterManifest, signing_key: SigningKey) -> SignedManifest:
    body = manifest.to_json()
    return SignedManifest(body, signing_key.sign(MANIFEST_CONTEXT, body), signing_key.key_id)


def verify_manifest(
    signed: SignedManifest,
    public_key: bytes,
    *,
    holder: str | None = None,
    dataset: str | None = None,
) -> FilterManifest:
    """Check the signature, then parse; ``holder``/``dataset`` guard against substitution."""
    if not hmac.compare_digest(key_id(public_key), signed.key_id):
        raise VerificationError(f"manifest names key {signed.key_id}, not the one given")
    verify(public_key, MANIFEST_CONTEXT, signed.body, signed.signature)
    manifest = FilterManifest.from_json(signed.body)
    if holder is not None and manifest.holder != holder:
        raise VerificationError(f"manifest is from {manifest.holder}, expected {holder}")
    if dataset is not None and manifest.dataset != dataset:
        raise VerificationError(f"manifest covers {manifest.dataset}, expected {dataset}")
    return manifest


def _check_density(manifest: FilterManifest, max_false_positive_rate: float) -> None:
    rate = false_positive_rate(manifest.count, manifest.truncation_bytes)
    if rate > max_false_positive_rate:
        raise VerificationError(
            f"{manifest.count} entries of {manifest.truncation_bytes} bytes give a "
            f"false-positive rate of {rate:.1e} per lookup, above {max_false_positive_rate:.0e}"
        )


def verify_filter(
    manifest: FilterManifest,
    encoded: bytes,
    *,
    max_false_positive_rate: float = MAX_FALSE_POSITIVE_RATE,
) -> Filter:
    """The filter of a verified manifest, decoded; raises on any mismatch with the manifest."""
    _check_density(manifest, max_false_positive_rate)
    if len(encoded) != manifest.size:
        raise VerificationError(f"filter is {len(encoded)} bytes, manifest says {manifest.size}")
    if not hmac.compare_digest(filter_sha256(encoded), manifest.sha256):
        raise VerificationError("filter bytes do not match the SHA-256 in the manifest")
    filt = decode_filter(encoded)
    header = read_header(encoded)
    announced = (manifest.encoding, manifest.truncation_bytes, manifest.version, manifest.count)
    if (header.encoding, filt.truncation, filt.version, len(filt)) != announced:
        raise VerificationError("filter header disagrees with its signed manifest")
    return filt


def verify_filter_state(
    manifest: FilterManifest,
    filt: Filter,
    *,
    max_false_positive_rate: float = MAX_FALSE_POSITIVE_RATE,
) -> None:
    """Check a locally updated filter (after deltas) against the manifest of that version."""
    _check_density(manifest, max_false_positive_rate)
    if (filt.truncation, filt.version, len(filt)) != (
        manifest.truncation_bytes,
        manifest.version,
        manifest.count,
    ):
        raise VerificationError(
            f"local filter {filt!r} is not version {manifest.version} with {manifest.count} "
            f"entries of {manifest.truncation_bytes} bytes; fetch the full filter"
        )
    encoded = encode_filter(filt, manifest.encoding)
    if not hmac.compare_digest(filter_sha256(encoded), manifest.sha256):
        raise VerificationError("local filter does not match the manifest; fetch the full filter")


def assembler_for(manifest: FilterManifest) -> ChunkAssembler:
    """A receiver for the streamed filter of ``manifest`` (size and digest as signed)."""
    return ChunkAssembler(manifest.size, manifest.sha256)
