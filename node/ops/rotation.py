"""Rotating a node's signing key and TLS certificate without a failed request, and the expiry
report alarms are raised from.

Why overlapping validity: a peer accepts a signature only from a key the directory lists for
the sender at the request's issued-at time, and a TLS handshake only with a certificate the
directory pins. A node that switched key material before every peer held a directory naming
it would be refused. So a rotation has three steps:

1. ``enlace rotate-signing-key`` / ``enlace rotate-tls`` create the new material next to the
   old and write ``member.json`` listing both, the new one *activating* at a set time (default
   two days ahead);
2. the directory administrators publish a directory with that descriptor; every node adopts
   it on its next refresh;
3. at the activation time each serving replica (job ``key-rollover``,
   :func:`apply_due_rotations`) switches — but only if its own installed directory already
   lists the new material. Until then it keeps signing and serving with the old.

Invariants:
* :func:`select_signing_key` picks, among the keys present in the home, the newest one that
  the installed directory lists for this node and that is valid at ``now``; with none, the
  current key stays (never a key peers cannot verify).
* A key once listed stays listed in ``member.json`` with its validity window, after any
  number of rotations: the audit log's checkpoints and the evidence of past exchanges name
  the key that signed them, and an auditor resolves it from the directory alone. Its
  ``not_after`` is what refuses it for anything new (peers check it at the claimed time and,
  for live calls, at their own time too).
* Key files are never overwritten in place: new keys are created with ``O_EXCL`` and mode
  0600; ``keys/signing.key`` (what every command loads) is replaced atomically by a copy of a
  key already archived as ``keys/signing-<key id>.key``.
* A TLS swap replaces the private key first and the certificate second;
  :meth:`crypto.keys.KeyPaths.load_tls` refuses (and retries) a pair whose halves do not
  match, so neither the server nor a client ever uses a half-swapped pair.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crypto.keys import (
    KeyPaths,
    certificate_fingerprint,
    certificate_not_after,
    make_tls_certificate,
    read_hex_key,
    write_private,
    write_public,
)
from crypto.signing import SigningKey
from node.errors import ConfigError, FailedPreconditionError
from node.home import NodeHome
from node.runtime import NodeRuntime
from node.trust.directory import Directory, DirectoryLookupError
from node.trust.member import MemberDescriptor, format_time, parse_time

log = logging.getLogger("node.rotation")

DEFAULT_ACTIVATE_AFTER = dt.timedelta(days=2)
DEFAULT_RETIRE_AFTER = dt.timedelta(days=7)
SIGNING_VALIDITY = dt.timedelta(days=730)
TLS_DAYS = 365
ALARM_BEFORE = dt.timedelta(days=30)


# -- signing keys ----------------------------------------------------------------------------
def _archived_signing_path(keys: KeyPaths, key_id: str) -> Path:
    return keys.signing_key.parent / f"signing-{key_id}.key"


def home_signing_keys(home: NodeHome) -> dict[str, SigningKey]:
    """Every signing key kept in the home (current and archived), by key id."""
    found: dict[str, SigningKey] = {}
    folder = home.keys.signing_key.parent
    for path in sorted(folder.glob("signing-*.key")):
        key = SigningKey(read_hex_key(path))
        found[key.key_id] = key
    current = home.keys.load_signing_key()
    found.setdefault(current.key_id, current)
    return found


def select_signing_key(
    keys: Mapping[str, SigningKey],
    member: MemberDescriptor | None,
    now: dt.datetime,
    fallback: SigningKey,
) -> SigningKey:
    """The newest key we hold that ``member`` (our directory entry) lists as valid at ``now``."""
    if member is None:
        return fallback
    usable = [k for k in member.signing_keys if k.key_id in keys and k.valid_at(now)]
    if not usable:
        return fallback
    newest = max(usable, key=lambda k: (k.not_before, k.not_after))
    return keys[newest.key_id]


def _write_member(home: NodeHome, data: dict[str, Any]) -> MemberDescriptor:
    member = MemberDescriptor.from_dict(data)  # the rules peers apply, checked before writing
    text = json.dumps(member.to_dict(), indent=2, sort_keys=True) + "\n"
    write_public(home.member_path, text.encode("utf-8"))
    return member


@dataclass(frozen=True)
class SigningRotation:
    new_key_id: str
    activate_at: dt.datetime
    retired: dict[str, dt.datetime]  # old key id -> its new not_after
    member_path: Path


def rotate_signing_key(
    home: NodeHome,
    now: dt.datetime,
    *,
    activate_after: dt.timedelta = DEFAULT_ACTIVATE_AFTER,
    retire_after: dt.timedelta = DEFAULT_RETIRE_AFTER,
    validity: dt.timedelta = SIGNING_VALIDITY,
) -> SigningRotation:
    """Create the next signing key and list it in ``member.json`` next to the current one."""
    if activate_after < dt.timedelta(0) or retire_after < dt.timedelta(0):
        raise ConfigError("activation and retirement delays must not be negative")
    member = home.member()
    pending = [k for k in member.signing_keys if k.not_before > now]
    if pending:
        raise FailedPreconditionError(
            f"signing key {pending[0].key_id} is already waiting to activate at "
            f"{format_time(pending[0].not_before)}",
            hint="finish that rotation first (publish the directory), or wait for it",
        )
    current = home.keys.load_signing_key()
    archived = _archived_signing_path(home.keys, current.key_id)
    if not archived.exists():
        write_private(archived, current.seed.hex().encode() + b"\n")
    new = SigningKey.generate()
    write_private(_archived_signing_path(home.keys, new.key_id), new.seed.hex().encode() + b"\n")
    activate_at = now + activate_after
    cut = activate_at + retire_after
    entries: list[dict[str, Any]] = []
    retired: dict[str, dt.datetime] = {}
    for key in member.signing_keys:
        if key.not_after <= now:
            # Retired, but it signed history (checkpoints, requests, responses) that must
            # verify forever: keep it listed with its window, which refuses new signatures.
            entries.append(key.to_dict())
            continue
        not_after = min(key.not_after, cut)
        retired[key.key_id] = not_after
        entries.append({**key.to_dict(), "not_after": format_time(not_after)})
    entries.append(
        {
            "key_id": new.key_id,
            "public_key": new.public_key.hex(),
            "not_before": format_time(activate_at),
            "not_after": format_time(activate_at + validity),
        }
    )
    _write_member(home, {**member.to_dict(), "signing_keys": entries})
    log.info("signing key %s created; activates at %s", new.key_id, format_time(activate_at))
    return SigningRotation(new.key_id, activate_at, retired, home.member_path)


def _promote_signing_file(home: NodeHome, chosen: SigningKey) -> None:
    """Make ``keys/signing.key`` (what every command loads) hold ``chosen``, atomically."""
    path = home.keys.signing_key
    if read_hex_key(path) == chosen.seed:
        return
    archived = _archived_signing_path(home.keys, home.keys.load_signing_key().key_id)
    if not archived.exists():
        write_private(archived, home.keys.load_signing_key().seed.hex().encode() + b"\n")
    fd, tmp = tempfile.mkstemp(prefix=".signing.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:  # mkstemp creates the file with mode 0600
            handle.write(chosen.seed.hex().encode() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- TLS certificates ------------------------------------------------------------------------
@dataclass(frozen=True)
class TlsPending:
    """A certificate created by :func:`rotate_tls`, waiting for its activation time."""

    key_path: Path
    cert_path: Path
    state_path: Path
    fingerprint: str
    activate_at: dt.datetime


def _tls_paths(home: NodeHome) -> tuple[Path, Path, Path]:
    return (
        home.keys.tls_key.with_name("tls-next.key"),
        home.root / "tls-next.crt",
        home.root / "tls-next.json",
    )


def pending_tls(home: NodeHome) -> TlsPending | None:
    key_path, cert_path, state_path = _tls_paths(home)
    if not state_path.exists():
        return None
    state = json.loads(state_path.read_text("utf-8"))
    return TlsPending(
        key_path,
        cert_path,
        state_path,
        str(state["fingerprint"]),
        parse_time(state["activate_at"], "activate_at"),
    )


def rotate_tls(
    home: NodeHome,
    now: dt.datetime,
    *,
    activate_after: dt.timedelta = DEFAULT_ACTIVATE_AFTER,
    days: int = TLS_DAYS,
) -> TlsPending:
    """Create the next TLS key and certificate; pin it in ``member.json`` as the rollover."""
    if pending_tls(home) is not None:
        raise FailedPreconditionError(
            "a TLS rotation is already pending", hint="wait for it to activate (enlace health)"
        )
    member = home.member()
    host = member.endpoint.rpartition(":")[0]
    # A subject of its own (see make_tls_certificate): both certificates are pinned at once.
    generation = f"generation {now.strftime('%Y%m%dT%H%M%S%fZ')}"
    key_pem, cert_pem = make_tls_certificate(
        member.country, now, days, (host, "localhost"), generation
    )
    key_path, cert_path, state_path = _tls_paths(home)
    write_private(key_path, key_pem)
    write_public(cert_path, cert_pem)
    fingerprint = certificate_fingerprint(cert_pem)
    activate_at = now + activate_after
    state = {"fingerprint": fingerprint, "activate_at": format_time(activate_at)}
    write_public(state_path, (json.dumps(state, indent=2) + "\n").encode())
    data = member.to_dict()
    data["tls_rollover_certificate"] = cert_pem.decode("ascii")
    data["tls_rollover_fingerprint"] = fingerprint
    _write_member(home, data)
    log.info("TLS certificate %s created; activates at %s", fingerprint, format_time(activate_at))
    return TlsPending(key_path, cert_path, state_path, fingerprint, activate_at)


def _swap_tls(home: NodeHome, pending: TlsPending) -> None:
    keys = home.keys
    old_key, old_cert = keys.load_tls()
    retired = keys.tls_key.parent / "retired"
    label = certificate_fingerprint(old_cert)[7:23]
    if not (retired / f"tls-{label}.key").exists():
        write_private(retired / f"tls-{label}.key", old_key)
        write_public(retired / f"tls-{label}.crt", old_cert)
    try:
        os.replace(pending.key_path, keys.tls_key)  # key first: see load_tls_pair
        os.replace(pending.cert_path, keys.tls_certificate)
    except FileNotFoundError:
        return  # another replica sharing this home swapped first
    pending.state_path.unlink(missing_ok=True)
    new_cert = keys.tls_certificate.read_bytes().decode("ascii")
    data = home.member().to_dict()
    data.pop("tls_rollover_certificate", None)
    data.pop("tls_rollover_fingerprint", None)
    data["tls_certificate"] = new_cert
    data["tls_fingerprint"] = pending.fingerprint
    _write_member(home, data)


# -- the rollover job ------------------------------------------------------------------------
def own_entry(directory: Directory | None, country: str) -> MemberDescriptor | None:
    if directory is None:
        return None
    try:
        return directory.member(country)
    except DirectoryLookupError:
        return None


def apply_due_rotations(runtime: NodeRuntime) -> list[str]:
    """Switch to new key material whose time has come and which peers already trust."""
    now = runtime.clock.now()
    home = runtime.home
    member = own_entry(runtime.directory.peek(), runtime.config.country)
    done: list[str] = []
    chosen = select_signing_key(home_signing_keys(home), member, now, runtime.signing_key)
    if chosen.key_id != runtime.signing_key.key_id:
        runtime.signing_key = chosen
        done.append(f"signing with key {chosen.key_id}")
    _promote_signing_file(home, chosen)
    pending = pending_tls(home)
    if (
        pending is not None
        and now >= pending.activate_at
        and member is not None
        and pending.fingerprint in member.tls_fingerprints
    ):
        _swap_tls(home, pending)
        done.append(f"serving TLS certificate {pending.fingerprint}")
    for message in done:
        log.warning("key rollover: %s", message)
    return done


# -- expiry ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Expiry:
    """One thing that stops traffic when it expires."""

    kind: str  # directory | signing_key | tls_certificate | peer_signing_key | peer_tls_certificate
    subject: str
    expires_at: dt.datetime

    def remaining(self, now: dt.datetime) -> dt.timedelta:
        return self.expires_at - now


def expiry_report(home: NodeHome, directory: Directory | None, country: str) -> list[Expiry]:
    """When each piece of trust data stops working (the latest of overlapping ones)."""
    report: list[Expiry] = []
    own_cert = certificate_not_after(home.keys.load_tls()[1])
    pending = pending_tls(home)
    if pending is not None:
        own_cert = max(own_cert, certificate_not_after(pending.cert_path.read_bytes()))
    report.append(Expiry("tls_certificate", country, own_cert))
    if directory is None:
        return report
    report.append(Expiry("directory", f"v{directory.version}", directory.expires_at))
    held = home_signing_keys(home)
    for member in directory.members:
        mine = member.country == country
        keys = [k for k in member.signing_keys if not mine or k.key_id in held]
        if keys:
            last = max(keys, key=lambda k: k.not_after)
            kind = "signing_key" if mine else "peer_signing_key"
            report.append(Expiry(kind, f"{member.country}/{last.key_id}", last.not_after))
        if not mine:
            pems = [member.tls_certificate, member.tls_rollover_certificate]
            latest = max(certificate_not_after(p.encode()) for p in pems if p)
            report.append(Expiry("peer_tls_certificate", member.country, latest))
    return report


def alarm_window(kind: str, runtime: NodeRuntime) -> dt.timedelta:
    if kind == "directory":
        return dt.timedelta(days=runtime.config.directory_warn_days)
    return ALARM_BEFORE


def log_expiry_alarms(runtime: NodeRuntime) -> list[Expiry]:
    """Warn in the log about everything that expires within its alarm window."""
    now = runtime.clock.now()
    report = expiry_report(runtime.home, runtime.directory.peek(), runtime.config.country)
    due = [e for e in report if e.remaining(now) <= alarm_window(e.kind, runtime)]
    for item in due:
        log.warning(
            "%s %s expires at %s (in %.1f days); rotate or renew it",
            item.kind,
            item.subject,
            format_time(item.expires_at),
            item.remaining(now).total_seconds() / 86400,
        )
    return due
