"""The querier's OPRF arithmetic, spread over worker processes for large batches.

Why: a querier pays, per element and per holder, one hash to the group (shared by the holders
of one fan-out), a blinding and an unblinding scalar multiplication and the finalising hash —
about 140 µs of libsodium and Python, all under one interpreter lock. Threads cannot spread
that over the cores (libsodium is called through ctypes, which hands the lock back and forth on
every call: two threads ran slower than one), so a manifest of 500 travellers screened against
ten holders (35,000 elements) kept one core busy for five seconds while the other waited. The
arithmetic needs nothing but bytes in and bytes out, so batches of at least
:data:`PARALLEL_MIN` elements go to a small pool of worker processes (one per usable core, at
most :data:`MAX_DEFAULT_WORKERS`) while the querier's threads carry on with gRPC, signatures
and lookups; smaller ones (a single document query) stay in the calling thread, where a round
trip to a worker would cost more than the arithmetic.

The workers run :mod:`crypto.oprf` and nothing else: they are spawned, never forked (the
querier holds gRPC threads), import no node state, hold no keys of the node, and see only what
the querier would compute itself (its own inputs and fresh blinds, and the holder's answers).
They live as long as the :class:`QuerierCrypto` that started them.

Invariants:
* The results are those of :mod:`crypto.oprf` called in-process, byte for byte (the blinds
  are fresh random scalars either way): the tests compare both paths on the same inputs.
* A failure in a worker is raised in the caller as the :class:`~crypto.errors.CryptoError`
  the function raised; a worker that died takes the pool with it, and the next batch starts
  a fresh pool (:class:`~concurrent.futures.process.BrokenProcessPool` is never returned as a
  result).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from crypto.oprf import BlindState, HashedInputs, Mode, blind, hash_inputs

#: Elements from which a batch is worth a round trip to a worker process.
PARALLEL_MIN = 64
#: Most worker processes started by default: a querier on a large server does not need one per
#: core to keep up with its peers, and each worker is a Python process of its own.
MAX_DEFAULT_WORKERS = 8
log = logging.getLogger(__name__)
T = TypeVar("T")


def default_workers() -> int:
    """One worker per core this process may run on (its CPU affinity, which containers set),
    at most :data:`MAX_DEFAULT_WORKERS`."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        usable = os.cpu_count() or 1
    return max(1, min(usable, MAX_DEFAULT_WORKERS))


class QuerierCrypto:
    """Blinding, hashing and finalising for one querier; close it to stop its workers.

    ``workers`` is the number of processes (0: :func:`default_workers`; 1, or a single usable
    core: no processes, everything in the calling thread).
    """

    def __init__(self, workers: int = 0, *, parallel_min: int = PARALLEL_MIN) -> None:
        self.workers = workers or default_workers()
        self.parallel_min = parallel_min
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> QuerierCrypto:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def worker_pids(self) -> list[int]:
        """Process ids of the running workers (for CPU accounting; empty before the first
        large batch)."""
        with self._lock:
            pool = self._pool
        processes = getattr(pool, "_processes", None) or {}
        return sorted(int(pid) for pid in processes)

    # -- the operations ----------------------------------------------------------------
    def blind(
        self, inputs: Sequence[bytes], mode: Mode, points: HashedInputs | None = None
    ) -> BlindState:
        return self._run(len(inputs), _blind, tuple(inputs), mode, points)

    def hash_and_blind(
        self, inputs: Sequence[bytes], mode: Mode
    ) -> tuple[HashedInputs, BlindState]:
        """Both in one round trip: the hashes, to blind the same inputs for other holders, and
        this holder's blinded batch."""
        return self._run(len(inputs), _hash_and_blind, tuple(inputs), mode)

    def finalize(
        self,
        state: BlindState,
        evaluated: Sequence[bytes],
        *,
        proof: bytes | None = None,
        public_key: bytes | None = None,
    ) -> list[bytes]:
        """Unblind and hash (checking the batch proof first when ``proof`` is given)."""
        return self._run(len(evaluated), _finalize, state, list(evaluated), proof, public_key)

    # -- where they run ----------------------------------------------------------------
    def _run(self, size: int, function: Callable[..., T], *args: object) -> T:
        pool = self._pool_for(size)
        if pool is None:
            return function(*args)
        try:
            return pool.submit(function, *args).result()
        except BrokenProcessPool:
            self._discard(pool)
            log.warning("an OPRF worker process died; the batch is computed here instead")
            return function(*args)

    def _pool_for(self, size: int) -> ProcessPoolExecutor | None:
        if size < self.parallel_min or self.workers < 2:
            return None
        with self._lock:
            if self._closed:
                return None
            if self._pool is None:
                context = multiprocessing.get_context("spawn")  # never fork gRPC threads
                self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)


def _blind(inputs: tuple[bytes, ...], mode: Mode, points: HashedInputs | None) -> BlindState:
    return blind(inputs, mode, points=points)


def _hash_and_blind(inputs: tuple[bytes, ...], mode: Mode) -> tuple[HashedInputs, BlindState]:
    points = hash_inputs(inputs, mode)
    return points, blind(inputs, mode, points=points)


def _finalize(
    state: BlindState, evaluated: list[bytes], proof: bytes | None, public_key: bytes | None
) -> list[bytes]:
    if proof is None:
        return state.finalize(evaluated)
    if public_key is None:
        raise ValueError("a proof is checked against the holder's public key")
    return state.finalize_verifiable(evaluated, proof, public_key)
