"""Throughput of the RFC 9497 OPRF/VOPRF (ristretto255-SHA512) building blocks.

Why: sizing a node means knowing how long a holder takes to build its filter (one ``evaluate``
per record), how many blinded elements a holder can evaluate per second for its peers, and what
a querier pays per key and for checking a VOPRF batch proof. Figures only; nothing is asserted.

    python bench/bench_oprf.py [--n N] [--batch B] [--proof-batch P] [--json]

Every loop is bounded by the sizes given; the defaults finish in a few seconds on one core.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crypto import oprf
from crypto import ristretto as r255
from crypto.oprf import Mode, OprfServerKey


def _measure(name: str, ops: int, run: Callable[[], object]) -> dict[str, float | int | str]:
    start = time.perf_counter()
    run()
    elapsed = time.perf_counter() - start
    return {
        "name": name,
        "ops": ops,
        "seconds": round(elapsed, 6),
        "ops_per_s": round(ops / elapsed, 1) if elapsed > 0 else float("inf"),
        "us_per_op": round(elapsed / ops * 1e6, 2),
    }


def _inputs(count: int, tag: bytes) -> list[bytes]:
    return [tag + b"|P<HTI|" + i.to_bytes(4, "big") for i in range(count)]


def run(n: int, batch: int, proof_batch: int) -> list[dict[str, float | int | str]]:
    key = OprfServerKey.generate()
    records = _inputs(n, b"rec")
    element = oprf.hash_to_group(b"bench")
    scalar = r255.random_scalar()
    results = [
        _measure("hash_to_group", n, lambda: [oprf.hash_to_group(x) for x in records]),
        _measure("scalar_mult", n, lambda: [r255.mult(scalar, element) for _ in range(n)]),
    ]

    states: list[oprf.BlindState] = []
    evaluated_batches: list[list[bytes]] = []

    def client_blind() -> None:
        states.extend(oprf.blind(records[i : i + batch]) for i in range(0, n, batch))

    def server_blind_evaluate() -> None:
        evaluated_batches.extend(key.blind_evaluate(s.blinded_elements) for s in states)

    def client_finalize() -> None:
        for state, evaluated in zip(states, evaluated_batches, strict=True):
            state.finalize(evaluated)

    blind_row = _measure(f"client_blind(batch={batch})", n, client_blind)
    server_row = _measure(f"server_blind_evaluate(batch={batch})", n, server_blind_evaluate)
    finalize_row = _measure(f"client_finalize(batch={batch})", n, client_finalize)
    client_us = float(blind_row["us_per_op"]) + float(finalize_row["us_per_op"])
    results += [blind_row, finalize_row, server_row]
    results.append(
        {
            "name": "client_blind+finalize (sum)",
            "ops": n,
            "seconds": round(client_us * n / 1e6, 6),
            "ops_per_s": round(1e6 / client_us, 1),
            "us_per_op": round(client_us, 2),
        }
    )
    results.append(_measure("server_evaluate(filter build)", n, lambda: key.evaluate_many(records)))

    proof_inputs = _inputs(proof_batch, b"voprf")
    state = oprf.blind(proof_inputs, Mode.VOPRF)
    evaluated: list[bytes] = []
    proof = b""

    def prove() -> None:
        nonlocal evaluated, proof
        evaluated, proof = key.blind_evaluate_verifiable(state.blinded_elements)

    results.append(_measure(f"voprf_blind_evaluate+prove(batch={proof_batch})", proof_batch, prove))
    results.append(
        _measure(
            f"voprf_verify_proof(batch={proof_batch})",
            proof_batch,
            lambda: oprf.verify_proof(key.public_key, state.blinded_elements, evaluated, proof),
        )
    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="elements per measurement")
    parser.add_argument("--batch", type=int, default=1000, help="blind_evaluate batch size")
    parser.add_argument("--proof-batch", type=int, default=500, help="VOPRF proof batch size")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not (0 < args.n <= 1_000_000 and args.batch > 0 and 0 < args.proof_batch <= 0xFFFF):
        parser.error("sizes must be positive (n <= 1e6, proof batch <= 65535)")
    results = run(args.n, args.batch, args.proof_batch)
    if args.json:
        meta = {"suite": "ristretto255-SHA512", "python": sys.version.split()[0]}
        meta["cpus"] = str(os.cpu_count())
        print(json.dumps({"benchmark": "oprf", **meta, "results": results}))
    else:
        for row in results:
            rate, cost = row["ops_per_s"], row["us_per_op"]
            print(f"{row['name']:<48} {rate:>12,.1f} ops/s {cost:>10.2f} µs/op")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
