"""A node whose per-call database writes cost nothing: for ``bench_fanout_bound.py`` only.

Why: the fan-out's p50 is set by the CPU one query costs, and the largest single share of
what the node adds to the floor is the three writes of every call (the replay nonce, the
quota counters, the audit entry) and the querier's audit entry. Whether *any* storage design
could bring the fan-out within its target is answered by removing those writes altogether and
measuring what is left. This module does that, in memory and in a benchmark process only:

* ``Store.remember_nonce`` remembers nothing (no replay protection);
* ``PolicyStore.consume_quota`` counts nothing (every window reads as unused);
* ``Store.append_audit`` still builds and hashes the entry, chained on an in-memory head,
  and writes nothing.

Everything else — envelopes, signatures, the directory, agreement decisions, the OPRF, the
filter — runs unchanged. A node patched like this breaks the design's non-negotiables (replay
cache, quotas, audit); nothing in ``node/`` imports it, and the benchmark only reports figures.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def strip_instance(store: Any) -> None:
    """Patch one open :class:`node.store.store.Store` (the querier's, in this process)."""
    from node.audit import GENESIS_HASH, AuditEntry, AuditRecord, compute_entry_hash

    lock = threading.Lock()
    head = [0, GENESIS_HASH]

    def append_audit(record: AuditRecord) -> AuditEntry:
        with lock:
            seq, prev = head[0] + 1, str(head[1])
            entry = AuditEntry(seq, record, prev, compute_entry_hash(seq, prev, record))
            head[:] = [seq, entry.entry_hash]
            return entry

    store.append_audit = append_audit
    store.remember_nonce = lambda sender, nonce, expires_at: None
    store.policies.consume_quota = _count_nothing


def _count_nothing(
    scope: str,
    window_keys: Sequence[str],
    units: int,
    check: Callable[[Mapping[str, int]], None],
) -> dict[str, int]:
    keys = sorted(set(window_keys))
    check(dict.fromkeys(keys, 0))
    return dict.fromkeys(keys, units)


def strip_classes() -> None:
    """Patch the classes, so every store a node process opens writes nothing per call."""
    from node.store.store import Store

    opened = Store.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        opened(self, *args, **kwargs)
        strip_instance(self)

    Store.__init__ = init  # type: ignore[method-assign]
