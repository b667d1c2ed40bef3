"""Identity keys evaluated under a holder's OPRF key, in this process or in worker processes.

Why apart from :mod:`node.matching.filters`: evaluating a million records is the one part of
the holder's work that needs processes (about a minute of CPU), and its workers must import
nothing of the node but the OPRF arithmetic and the key derivation; the filters module keeps
the state, the store and the publication.

Invariants:
* The result does not depend on the number of workers nor on ``progress``: the same records
  give the same keys per record and the same :data:`EVALUATED`-byte results, in order.
* Workers are spawned, never forked (the caller may hold gRPC threads), and derive the key
  from the master secret they are given; they keep nothing after the pool closes.
* Memory stays bounded while the store is read: at most :data:`_IN_FLIGHT` chunks of
  :data:`_CHUNK` records per worker are queued.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import multiprocessing
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import numpy as np

from crypto.filter import DEFAULT_TRUNCATION, MAX_TRUNCATION, Filter, truncation_for
from crypto.match_keys import oprf_key_for
from crypto.oprf import Mode, OprfServerKey
from node.matching.sources import record_keys

PARALLEL_THRESHOLD = 50_000
_CHUNK = 2_000
_IN_FLIGHT = 4  # chunks queued per worker process while the store is still being read
_PROGRESS_CHUNK = 10_000  # records per progress report when evaluating in this process


_WORKER_KEY: dict[str, tuple[OprfServerKey, Mode]] = {}
Item = tuple[str, Mapping[str, Any]]  # (source table, record columns)


def _init_worker(master: bytes, dataset: str, epoch: int, mode: int) -> None:
    _WORKER_KEY["key"] = (oprf_key_for(master, dataset, epoch, Mode(mode)), Mode(mode))


# What the holder keeps of one evaluated key: the output's 16-byte prefix and its SHA-256.
EVALUATED = MAX_TRUNCATION + 32


def _prefix_digests(outputs: Sequence[bytes]) -> bytes:
    """48 bytes per output: its 16-byte prefix, then the SHA-256 of the whole output."""
    return b"".join(o[:MAX_TRUNCATION] + hashlib.sha256(o).digest() for o in outputs)


def key_and_evaluate(
    key: OprfServerKey, mode: Mode, dataset: str, items: Sequence[Item]
) -> tuple[list[int], bytes]:
    """Identity keys of each record, evaluated: (keys per record, 48 bytes per key in order).

    Records of one person share keys (every encounter), so each distinct key is evaluated
    once.
    """
    per_record = [record_keys(dataset, source, row) for source, row in items]
    unique = list(dict.fromkeys(k for keys in per_record for k in keys))
    evaluated = _prefix_digests(key.evaluate_many(unique, mode))
    position = {k: EVALUATED * n for n, k in enumerate(unique)}
    joined = b"".join(
        evaluated[position[k] : position[k] + EVALUATED] for ks in per_record for k in ks
    )
    return [len(keys) for keys in per_record], joined


def _worker_chunk(dataset: str, items: Sequence[Item]) -> tuple[list[int], bytes]:
    key, mode = _WORKER_KEY["key"]
    return key_and_evaluate(key, mode, dataset, items)


def evaluate_records(
    master: bytes,
    dataset: str,
    epoch: int,
    mode: Mode,
    items: Iterable[Item],
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[int], bytes]:
    """:func:`key_and_evaluate` under the key of ``dataset``, ``epoch`` and ``mode``; many
    records are split over ``workers`` processes (0: one per core), which also build the keys.

    ``items`` may be a generator reading the store: once more than
    :data:`PARALLEL_THRESHOLD` records have come, chunks go to the workers as they are read
    (at most :data:`_IN_FLIGHT` per worker queued), so reading overlaps evaluation; results
    are taken in order. ``progress(records evaluated so far)`` is called after each chunk.
    """
    key = oprf_key_for(master, dataset, epoch, mode)
    count = workers or os.cpu_count() or 1
    iterator = iter(items)
    head = list(itertools.islice(iterator, PARALLEL_THRESHOLD))
    if len(head) < PARALLEL_THRESHOLD or count < 2:
        if progress is None:
            return key_and_evaluate(key, mode, dataset, [*head, *iterator])
        # In chunks, to report: a key shared across chunks is evaluated once per chunk.
        counts: list[int] = []
        parts: list[bytes] = []
        rest = itertools.chain(head, iterator)
        while chunk := list(itertools.islice(rest, _PROGRESS_CHUNK)):
            chunk_counts, joined = key_and_evaluate(key, mode, dataset, chunk)
            counts.extend(chunk_counts)
            parts.append(joined)
            progress(len(counts))
        return counts, b"".join(parts)
    context = multiprocessing.get_context("spawn")  # never fork a process holding gRPC threads
    counts = []
    parts = []
    pending: collections.deque[Future[tuple[list[int], bytes]]] = collections.deque()

    def collect(limit: int) -> None:
        while len(pending) > limit:
            chunk_counts, joined = pending.popleft().result()
            counts.extend(chunk_counts)
            parts.append(joined)
            if progress is not None:
                progress(len(counts))

    with ProcessPoolExecutor(
        count,
        mp_context=context,
        initializer=_init_worker,
        initargs=(master, dataset, epoch, int(mode)),
    ) as pool:
        chunks = itertools.chain(
            (head[i : i + _CHUNK] for i in range(0, len(head), _CHUNK)),
            iter(lambda: list(itertools.islice(iterator, _CHUNK)), []),
        )
        for chunk in chunks:
            pending.append(pool.submit(_worker_chunk, dataset, chunk))
            collect(count * _IN_FLIGHT)
        collect(0)
    return counts, b"".join(parts)


def prefixes_of(evaluated: bytes) -> bytes:
    """The 16-byte prefixes out of :func:`key_and_evaluate`'s 48-byte records, concatenated."""
    table = np.frombuffer(evaluated, dtype=np.uint8).reshape(-1, EVALUATED)
    return table[:, :MAX_TRUNCATION].tobytes()


def filter_of(joined_prefixes: bytes, version: int) -> Filter:
    """The filter of 16-byte prefixes, at the narrowest width (>= 8) keeping lookups <= 1e-9."""
    table = np.frombuffer(joined_prefixes, dtype=np.uint8).reshape(-1, MAX_TRUNCATION)
    width = DEFAULT_TRUNCATION
    while True:
        built = Filter.from_truncated(table[:, :width].tobytes(), width, version)
        needed = truncation_for(len(built), minimum=width)
        if needed == width:
            return built
        width = needed
