"""Signed checkpoints of the audit chain, and verification of a chain against them.

Why: a hash chain proves that nothing *before* its head was changed, but whoever controls the
log can delete its newest entries, or rewrite a suffix and recompute every hash after it. A
checkpoint — the node's Ed25519 signature over ``(seq, entry_hash, at, node, key_id)`` —
pins the head at one moment. Once a copy is held by someone else (the Secretariat, a peer, an
auditor), the log can no longer be rewritten at or before that seq, nor cut short of it,
without the mismatch showing.

Invariants:

* The signature is over the canonical JSON of the five fields, with the domain-separation
  context ``b"enlace/1 audit-checkpoint"`` (:mod:`crypto.signing`), so it can never be
  replayed as a request, response, agreement or directory signature.
* :func:`verify_checkpoint` raises :class:`crypto.errors.VerificationError`;
  :func:`verify_chain_with_checkpoints` raises :class:`node.errors.AuditIntegrityError` for
  every fault, chained to the underlying error. Neither returns a bool.
* Keys come from a resolver ``(country, key_id, at) -> public key`` that a third party builds
  from the federation directory; its ``LookupError`` or crypto errors mean "not a valid key".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from crypto.errors import CryptoError, VerificationError
from crypto.signing import PUBLIC_KEY_SIZE, SigningKey, key_id, verify
from node.audit.chain import (
    GENESIS_HASH,
    AuditEntry,
    ChainSummary,
    b64decode,
    b64encode,
    canonical_json,
    format_time,
    is_hex64,
    parse_time,
    walk_chain,
)
from node.errors import AuditIntegrityError, EnlaceError, InvalidArgumentError

CHECKPOINT_CONTEXT: Final = b"enlace/1 audit-checkpoint"

KeyResolver = Callable[[str, str, datetime], bytes]
"""``(country ISO3, key_id, at) -> Ed25519 public key`` valid for that country at that time."""

_ISO3 = re.compile(r"[A-Z]{3}")
_FIELDS: Final = frozenset({"seq", "entry_hash", "at", "node", "key_id", "signature"})


@dataclass(frozen=True)
class Checkpoint:
    """The node's signed statement "entry ``seq`` of my log has hash ``entry_hash``"."""

    seq: int
    entry_hash: str
    at: datetime
    node: str
    key_id: str
    signature: bytes

    def __post_init__(self) -> None:
        if isinstance(self.seq, bool) or not isinstance(self.seq, int) or self.seq < 1:
            raise InvalidArgumentError("must be an integer >= 1", field="seq")
        if not is_hex64(self.entry_hash):
            raise InvalidArgumentError("must be 64 lowercase hex digits", field="entry_hash")
        object.__setattr__(self, "at", parse_time(format_time(self.at)))
        if not isinstance(self.node, str) or not _ISO3.fullmatch(self.node):
            raise InvalidArgumentError("must be an ISO 3166 alpha-3 code", field="node")
        if not isinstance(self.key_id, str) or not self.key_id:
            raise InvalidArgumentError("must be a non-empty string", field="key_id")
        if not isinstance(self.signature, bytes):
            raise InvalidArgumentError("must be bytes", field="signature")

    def signed_bytes(self) -> bytes:
        return checkpoint_signed_bytes(self.seq, self.entry_hash, self.at, self.node, self.key_id)


def checkpoint_signed_bytes(seq: int, entry_hash: str, at: datetime, node: str, kid: str) -> bytes:
    """Canonical bytes a checkpoint signature is over (the context is added by the signer)."""
    return canonical_json(
        {"at": format_time(at), "entry_hash": entry_hash, "key_id": kid, "node": node, "seq": seq}
    )


def make_checkpoint(
    entry: AuditEntry, node: str, signing_key: SigningKey, at: datetime
) -> Checkpoint:
    """Sign the current head ``entry`` of ``node``'s log at time ``at``."""
    kid = signing_key.key_id
    message = checkpoint_signed_bytes(entry.seq, entry.entry_hash, at, node, kid)
    signature = signing_key.sign(CHECKPOINT_CONTEXT, message)
    return Checkpoint(entry.seq, entry.entry_hash, at, node, kid, signature)


def verify_checkpoint(checkpoint: Checkpoint, public_key: bytes) -> None:
    """Raise :class:`VerificationError` unless ``public_key`` made this checkpoint."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise VerificationError("checkpoint key must be a 32-byte Ed25519 public key")
    if key_id(public_key) != checkpoint.key_id:
        raise VerificationError(
            f"checkpoint names key {checkpoint.key_id}, not the key {key_id(public_key)} given"
        )
    verify(public_key, CHECKPOINT_CONTEXT, checkpoint.signed_bytes(), checkpoint.signature)


def checkpoint_to_dict(checkpoint: Checkpoint) -> dict[str, Any]:
    """JSON-ready form, to hand to the Secretariat, a peer or an auditor."""
    return {
        "at": format_time(checkpoint.at),
        "entry_hash": checkpoint.entry_hash,
        "key_id": checkpoint.key_id,
        "node": checkpoint.node,
        "seq": checkpoint.seq,
        "signature": b64encode(checkpoint.signature),
    }


def checkpoint_from_dict(data: Mapping[str, object]) -> Checkpoint:
    """Strict inverse of :func:`checkpoint_to_dict`; raises InvalidArgumentError naming a field."""
    if not isinstance(data, Mapping) or set(data) != _FIELDS:
        raise InvalidArgumentError(
            f"must have exactly the keys {sorted(_FIELDS)}", field="checkpoint"
        )
    seq, entry_hash, node, kid = data["seq"], data["entry_hash"], data["node"], data["key_id"]
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise InvalidArgumentError("must be an integer", field="seq")
    if not isinstance(entry_hash, str) or not isinstance(node, str) or not isinstance(kid, str):
        raise InvalidArgumentError(
            "entry_hash, node and key_id must be strings", field="checkpoint"
        )
    at = parse_time(data["at"])
    return Checkpoint(
        seq, entry_hash, at, node, kid, b64decode(data["signature"], name="signature")
    )


def checkpoint_due(
    last: Checkpoint | None,
    head: AuditEntry | None,
    now: datetime,
    *,
    every_entries: int = 1000,
    every: timedelta = timedelta(hours=1),
) -> bool:
    """Whether the node should sign a new checkpoint now (a schedule, not a verification).

    Due when there are entries past the last checkpoint and either ``every_entries`` of them
    have accumulated or the last checkpoint is older than ``every``. Checkpoint often: the
    newest entries after the last checkpoint held elsewhere are the ones an insider can drop.
    """
    if head is None or (last is not None and head.seq <= last.seq):
        return False
    if last is None:
        return True
    return head.seq - last.seq >= every_entries or now - last.at >= every


def _resolve(resolve_key: KeyResolver, cp: Checkpoint) -> bytes:
    try:
        return resolve_key(cp.node, cp.key_id, cp.at)
    except (CryptoError, LookupError, EnlaceError) as exc:
        raise AuditIntegrityError(
            f"audit entry {cp.seq}: bad checkpoint: key {cp.key_id} of {cp.node} is not valid "
            f"at {format_time(cp.at)}",
            position=cp.seq,
            hint="refresh the federation directory; otherwise the checkpoint is forged",
        ) from exc


def _check_signatures(
    checkpoints: Iterable[Checkpoint], resolve_key: KeyResolver, node: str | None
) -> list[Checkpoint]:
    ordered = sorted(checkpoints, key=lambda cp: cp.seq)
    for cp in ordered:
        if node is not None and cp.node != node:
            raise AuditIntegrityError(
                f"audit entry {cp.seq}: bad checkpoint: made by {cp.node}, not by {node}",
                position=cp.seq,
                hint="pass only the checkpoints of the node whose log is verified",
            )
        try:
            verify_checkpoint(cp, _resolve(resolve_key, cp))
        except VerificationError as exc:
            raise AuditIntegrityError(
                f"audit entry {cp.seq}: bad checkpoint: signature does not verify ({exc})",
                position=cp.seq,
                hint="the checkpoint was forged or altered; get a copy from its other holders",
            ) from exc
    return ordered


def _mismatch(cp: Checkpoint, actual: str) -> AuditIntegrityError:
    return AuditIntegrityError(
        f"audit entry {cp.seq}: checkpoint mismatch: the checkpoint signed at "
        f"{format_time(cp.at)} records {cp.entry_hash[:16]}…, the chain has {actual[:16]}…",
        position=cp.seq,
        hint=f"the log was rewritten at or before entry {cp.seq} after that checkpoint; "
        "restore it from a backup or the peers' copies",
    )


def verify_chain_with_checkpoints(
    entries: Iterable[AuditEntry],
    checkpoints: Iterable[Checkpoint],
    resolve_key: KeyResolver,
    *,
    node: str | None = None,
    start_prev_hash: str = GENESIS_HASH,
    start_seq: int = 1,
) -> ChainSummary:
    """:func:`verify_chain` plus: every checkpoint is genuine, matches, and is reached.

    Checkpoints are few and are held in memory; entries still stream. A checkpoint at
    ``start_seq - 1`` is checked against ``start_prev_hash``; earlier ones are out of reach of
    a segment and ignored. If ``node`` is given, every checkpoint must be that node's.
    """
    pending = _check_signatures(checkpoints, resolve_key, node)
    index = checked = 0
    while index < len(pending) and pending[index].seq < start_seq:
        cp = pending[index]
        if cp.seq == start_seq - 1:
            if cp.entry_hash != start_prev_hash:
                raise _mismatch(cp, start_prev_hash)
            checked += 1
        index += 1
    count, head = 0, start_prev_hash
    for entry in walk_chain(entries, start_prev_hash=start_prev_hash, start_seq=start_seq):
        count, head = count + 1, entry.entry_hash
        while index < len(pending) and pending[index].seq == entry.seq:
            if pending[index].entry_hash != entry.entry_hash:
                raise _mismatch(pending[index], entry.entry_hash)
            index, checked = index + 1, checked + 1
    last_seq = start_seq + count - 1
    if index < len(pending):
        cp = pending[-1]
        raise AuditIntegrityError(
            f"audit entry {last_seq + 1}: truncated: the log ends at entry {last_seq} but "
            f"{cp.node} signed a checkpoint at entry {cp.seq} on {format_time(cp.at)}",
            position=last_seq + 1,
            hint=f"entries {last_seq + 1}..{cp.seq} at least were deleted; restore them",
        )
    return ChainSummary(count, start_seq, last_seq, head, checkpoints=checked)
