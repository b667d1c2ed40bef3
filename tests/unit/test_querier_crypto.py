"""The querier's OPRF arithmetic gives the same outputs in worker processes as in-process."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from crypto import ristretto as r255
from crypto.errors import InvalidPointError, VerificationError
from crypto.oprf import Mode, OprfServerKey
from node.matching.querier_crypto import QuerierCrypto

INPUTS = [f"P<HTI{n:07d}".encode() for n in range(80)]


@pytest.fixture(scope="module")
def pooled() -> Iterator[QuerierCrypto]:
    crypto = QuerierCrypto(2, parallel_min=1)
    yield crypto
    crypto.close()


@pytest.mark.parametrize("mode", [Mode.OPRF, Mode.VOPRF])
@pytest.mark.parametrize("where", ["workers", "in-process"])
def test_outputs_are_the_prf_of_the_inputs(pooled: QuerierCrypto, mode: Mode, where: str) -> None:
    crypto = pooled if where == "workers" else QuerierCrypto(1)
    key = OprfServerKey.generate()
    points, _ = crypto.hash_and_blind(INPUTS, mode)  # the hashes, as a fan-out shares them
    state = crypto.blind(INPUTS, mode, points)
    assert state.blinded_elements != points.points  # blinded, not the bare hashes
    if mode == Mode.VOPRF:
        evaluated, proof = key.blind_evaluate_verifiable(state.blinded_elements)
        outputs = crypto.finalize(state, evaluated, proof=proof, public_key=key.public_key)
    else:
        outputs = crypto.finalize(state, key.blind_evaluate(state.blinded_elements))
    assert outputs == key.evaluate_many(INPUTS, mode)


def test_two_blindings_of_the_same_inputs_are_unlinkable(pooled: QuerierCrypto) -> None:
    first = pooled.blind(INPUTS, Mode.OPRF)
    second = pooled.blind(INPUTS, Mode.OPRF)
    assert not set(first.blinded_elements) & set(second.blinded_elements)
    assert not set(first.blinds) & set(second.blinds)


def test_a_bad_answer_raises_its_own_error_through_a_worker(pooled: QuerierCrypto) -> None:
    key = OprfServerKey.generate()
    state = pooled.blind(INPUTS, Mode.VOPRF)
    evaluated, proof = key.blind_evaluate_verifiable(state.blinded_elements)
    tampered = [evaluated[1], evaluated[0], *evaluated[2:]]
    with pytest.raises(VerificationError):
        pooled.finalize(state, tampered, proof=proof, public_key=key.public_key)
    with pytest.raises(InvalidPointError):
        pooled.finalize(state, [r255.IDENTITY] * len(INPUTS))


def test_small_batches_never_start_a_worker() -> None:
    crypto = QuerierCrypto(2, parallel_min=64)
    try:
        crypto.blind(INPUTS[:3], Mode.OPRF)
        assert crypto._pool is None
        crypto.blind(INPUTS, Mode.OPRF)
        assert crypto._pool is not None
    finally:
        crypto.close()


def test_a_dead_worker_costs_the_pool_not_the_answer() -> None:
    crypto = QuerierCrypto(2, parallel_min=1)
    key = OprfServerKey.generate()
    try:
        crypto.blind(INPUTS, Mode.OPRF)  # starts the pool
        pool = crypto._pool
        assert pool is not None
        for process in list(pool._processes.values()):  # type: ignore[union-attr]
            os.kill(process.pid, 9)
            process.join(5)
        state = crypto.blind(INPUTS, Mode.OPRF)
        outputs = crypto.finalize(state, key.blind_evaluate(state.blinded_elements))
        assert outputs == key.evaluate_many(INPUTS)
        assert crypto._pool is not pool  # the broken pool was dropped
    finally:
        crypto.close()


def test_a_fan_out_hashes_once_and_blinds_afresh_for_every_holder() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from node.matching.client import HashMemo

    class Counting(QuerierCrypto):
        hashed = 0

        def hash_and_blind(self, inputs: Sequence[bytes], mode: Mode) -> tuple[Any, Any]:
            Counting.hashed += 1
            return super().hash_and_blind(inputs, mode)

    crypto = Counting(1)
    memo = HashMemo(crypto)
    holders = [OprfServerKey.generate() for _ in range(4)]
    with ThreadPoolExecutor(4) as threads:
        states = list(threads.map(lambda _: memo.blind(INPUTS, Mode.OPRF), holders))
    assert Counting.hashed == 1  # the other three holders' threads reused the hashes
    blinded = [set(s.blinded_elements) for s in states]
    assert all(not a & b for i, a in enumerate(blinded) for b in blinded[i + 1 :])
    for key, state in zip(holders, states, strict=True):
        outputs = crypto.finalize(state, key.blind_evaluate(state.blinded_elements))
        assert outputs == key.evaluate_many(INPUTS)


def test_a_process_pinned_to_one_core_starts_no_worker() -> None:
    import subprocess
    import sys

    code = (
        "import os\n"
        "os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})\n"
        "from node.matching.querier_crypto import QuerierCrypto\n"
        "crypto = QuerierCrypto()\n"
        "print(crypto.workers, crypto._pool_for(10_000) is None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "True"]
