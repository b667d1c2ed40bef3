"""The node's audit log, as pure functions over dataclasses (persistence lives in the store).

Every signed exchange, on both sides, becomes an :class:`AuditRecord`, appended with
:func:`chain_next` as a hash-chained :class:`AuditEntry`; the node signs periodic
:class:`Checkpoint` s of the head; :func:`verify_chain` and
:func:`verify_chain_with_checkpoints` detect and locate any edit, deletion, reordering or
truncation; :func:`build_evidence` / :func:`verify_evidence` export and check the proof of one
exchange with the federation directory alone. See ``docs/audit.md``.
"""

from __future__ import annotations

from node.audit.chain import (
    GENESIS_HASH,
    AuditEntry,
    AuditRecord,
    ChainSummary,
    canonical_bytes,
    chain_next,
    compute_entry_hash,
    entry_from_bytes,
    entry_from_dict,
    entry_to_bytes,
    entry_to_dict,
    record_digest,
    record_from_dict,
    record_to_dict,
    verify_chain,
    walk_chain,
)
from node.audit.checkpoint import (
    CHECKPOINT_CONTEXT,
    Checkpoint,
    KeyResolver,
    checkpoint_due,
    checkpoint_from_dict,
    checkpoint_to_dict,
    make_checkpoint,
    verify_chain_with_checkpoints,
    verify_checkpoint,
)
from node.audit.evidence import (
    EVIDENCE_FORMAT,
    EvidenceReport,
    build_evidence,
    covering_checkpoint,
    verify_evidence,
)

__all__ = [
    "CHECKPOINT_CONTEXT",
    "EVIDENCE_FORMAT",
    "GENESIS_HASH",
    "AuditEntry",
    "AuditRecord",
    "ChainSummary",
    "Checkpoint",
    "EvidenceReport",
    "KeyResolver",
    "build_evidence",
    "canonical_bytes",
    "chain_next",
    "checkpoint_due",
    "checkpoint_from_dict",
    "checkpoint_to_dict",
    "compute_entry_hash",
    "covering_checkpoint",
    "entry_from_bytes",
    "entry_from_dict",
    "entry_to_bytes",
    "entry_to_dict",
    "make_checkpoint",
    "record_digest",
    "record_from_dict",
    "record_to_dict",
    "verify_chain",
    "verify_chain_with_checkpoints",
    "verify_checkpoint",
    "verify_evidence",
    "walk_chain",
]
