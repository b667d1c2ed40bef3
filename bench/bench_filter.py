"""Cost of publishing and using a match filter: build, encode, verify, look up, update.

Why: a holder rebuilds the filter of a dataset at every key epoch, so "how long for a million
records on the node's two cores?" decides how often keys can rotate; the encoded size decides
how long peers take to sync it; lookups per second decide what a querier's batch costs locally.
Figures only; nothing is asserted.

    python bench/bench_filter.py [--records N] [--workers 1 2] [--lookups L] [--json]

Stages, each timed on its own: identity keys (``document_input`` over synthetic passports),
OPRF ``evaluate_many`` (serially, and split over a pool of worker processes that each derive the
same key and return 16-byte prefixes), ``build_filter`` (sort + de-duplicate), encoding in both
formats, manifest check (SHA-256 + decode), single and batched lookups, and a 1% delta
(diff, encode, decode, apply). Every loop is bounded by ``--records`` and ``--lookups``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import resource
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crypto.filter import (
    ENCODINGS,
    MAX_TRUNCATION,
    apply_delta,
    build_filter,
    decode_delta,
    diff,
    encode_delta,
    encode_filter,
    encoded_size,
)
from crypto.match_keys import describe_filter, oprf_key_for, verify_filter
from crypto.oprf import OprfServerKey
from node.matching.keys import NORMALISATION_VERSIONS, document_input

T = TypeVar("T")
MASTER = bytes(range(32))
DATASET = "travel_documents"
EPOCH = 1
CHUNK = 10_000
STATES = ("HTI", "CUB", "IND", "NPL", "BGD", "CHN", "CMR", "COD", "AGO", "SEN", "GIN", "AFG")

_WORKER: dict[str, OprfServerKey] = {}  # the key of a pool worker, derived once per process


def _timed(run: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


def _cpu() -> float:
    """CPU seconds of this process and of its reaped children (the pool workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _processes(count: int) -> str:
    return "1 process" if count == 1 else f"{count} processes"


def _documents(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    return [
        (
            f"{rng.choice(letters)}{rng.choice(letters)} {rng.randrange(10**7):07d}",
            rng.choice(STATES),
        )
        for _ in range(count)
    ]


def _init_worker(master: bytes) -> None:
    _WORKER["key"] = oprf_key_for(master, DATASET, EPOCH)


def _evaluate_chunk(inputs: Sequence[bytes]) -> bytes:
    """One worker's share: full OPRF outputs, of which only 16 bytes travel back."""
    return b"".join(out[:MAX_TRUNCATION] for out in _WORKER["key"].evaluate_many(inputs))


def _evaluate_pool(inputs: list[bytes], workers: int) -> list[bytes]:
    chunks = [inputs[i : i + CHUNK] for i in range(0, len(inputs), CHUNK)]
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_init_worker, initargs=(MASTER,)) as pool:
        joined = b"".join(pool.map(_evaluate_chunk, chunks, chunksize=1))
    width = MAX_TRUNCATION
    return [joined[i : i + width] for i in range(0, len(joined), width)]


def _row(name: str, ops: int, seconds: float, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name, "ops": ops, "seconds": round(seconds, 3)}
    row["ops_per_s"] = round(ops / seconds, 1) if seconds > 0 else None
    return {**row, **extra}


def run(records: int, workers: Sequence[int], lookups: int) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    documents = _documents(records, seed=1)
    inputs, seconds = _timed(lambda: [document_input(n, s) for n, s in documents])
    rows.append(_row("identity keys (document_input)", records, seconds))

    outputs: list[bytes] = []
    evaluate_seconds: dict[int, float] = {}
    for count in workers:
        cpu_before = _cpu()
        if count == 1:
            serial = partial(oprf_key_for(MASTER, DATASET, EPOCH).evaluate_many, inputs)
            result, seconds = _timed(serial)
        else:
            result, seconds = _timed(partial(_evaluate_pool, inputs, count))
        cpu = round(_cpu() - cpu_before, 3)
        evaluate_seconds[count] = seconds
        name = f"OPRF evaluate_many ({_processes(count)})"
        rows.append(_row(name, records, seconds, cpu_seconds=cpu))
        if outputs and [o[:MAX_TRUNCATION] for o in result] != [
            o[:MAX_TRUNCATION] for o in outputs
        ]:
            raise RuntimeError("serial and parallel evaluation disagree")
        outputs = result

    filt, build_seconds = _timed(lambda: build_filter(outputs, version=1))
    rows.append(_row("build_filter (sort + unique)", records, build_seconds))
    sizes = {name: encoded_size(filt, name) for name in ENCODINGS}
    encoded, encode_seconds = _timed(lambda: encode_filter(filt))
    rows.append(_row("encode_filter (automatic)", len(filt), encode_seconds, bytes=len(encoded)))

    manifest = describe_filter(
        encoded,
        holder="PAN",
        dataset=DATASET,
        epoch=EPOCH,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        normalisation=NORMALISATION_VERSIONS,
    )
    checked, seconds = _timed(lambda: verify_filter(manifest, encoded))
    rows.append(_row("verify_filter (SHA-256 + decode)", len(filt), seconds))

    rng = random.Random(2)
    probes = [rng.choice(outputs) if i % 2 else rng.randbytes(64) for i in range(lookups)]
    hits, seconds = _timed(lambda: sum(checked.contains(p) for p in probes))
    rows.append(_row("contains (one at a time)", lookups, seconds, hits=hits))
    hits, seconds = _timed(lambda: sum(checked.contains_many(probes)))
    rows.append(_row("contains_many (one batch)", lookups, seconds, hits=hits))

    changed = max(1, records // 100)
    fresh = [rng.randbytes(64) for _ in range(changed)]
    newer = build_filter(outputs[changed:] + fresh, version=2)
    delta, seconds = _timed(lambda: diff(filt, newer))
    payload = encode_delta(delta)
    rows.append(_row("diff (1% changed)", len(newer), seconds, bytes=len(payload)))
    applied, seconds = _timed(lambda: apply_delta(filt, decode_delta(payload)))
    if applied != newer:
        raise RuntimeError("delta did not reproduce the new filter")
    rows.append(_row("decode + apply_delta", len(newer), seconds))

    best = min(evaluate_seconds.values())
    return {
        "benchmark": "filter",
        "records": records,
        "distinct": len(filt),
        "truncation_bytes": filt.truncation,
        "false_positive_rate": filt.false_positive_rate(),
        "encoded_bytes": len(encoded),
        "encoding": manifest.encoding,
        "sizes": sizes,
        "build_wall_seconds": {
            str(count): round(seconds + build_seconds + encode_seconds, 3)
            for count, seconds in evaluate_seconds.items()
        },
        "best_build_wall_seconds": round(best + build_seconds + encode_seconds, 3),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "cpus": os.cpu_count(),
        },
        "results": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records in the filter")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="process counts for evaluate"
    )
    parser.add_argument("--lookups", type=int, default=100_000, help="lookups to time")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not 0 < args.records <= 10_000_000 or not 0 < args.lookups <= 10_000_000:
        parser.error("--records and --lookups must be in 1..10,000,000")
    if any(not 1 <= w <= 8 for w in args.workers):
        parser.error("--workers takes process counts in 1..8")
    report = run(args.records, args.workers, args.lookups)
    if args.json:
        sys.stdout.write(json.dumps(report, sort_keys=True) + "\n")
        return 0
    print(f"{report['records']:,} records, {report['distinct']:,} distinct")
    for row in report["results"]:
        rate = f"{row['ops_per_s']:>14,.0f} /s" if row["ops_per_s"] else " " * 16
        extra = "".join(f"  {k}={row[k]:,}" for k in ("bytes", "hits", "cpu_seconds") if k in row)
        print(f"{row['name']:<40} {row['seconds']:>9.3f} s {rate}{extra}")
    sizes = ", ".join(f"{k} {v:,} B" for k, v in report["sizes"].items())
    print(f"encoded: {report['encoding']} {report['encoded_bytes']:,} B ({sizes})")
    print(f"truncation {report['truncation_bytes']} B, false positives per lookup "
          f"{report['false_positive_rate']:.1e}")  # fmt: skip
    for count, seconds in report["build_wall_seconds"].items():
        label = _processes(int(count))
        print(f"filter build (evaluate + sort + encode), {label}: {seconds:.1f} s wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
