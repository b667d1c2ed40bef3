"""One ``Evaluate`` between a querier and a holder in one process, without gRPC, beside the floor.

Why: the fan-out of ``bench_match.py`` is set by the CPU one query costs (its p50 is about 0.6
of the CPU per query on two cores), and its figures move by half from one hour to the next on
this shared machine. Here the querier's ``MatchClient`` (CRI) hands its signed request straight
to the holder's ``Pipeline`` (PAN) in the same process, so what is measured is our per-call code
and the libraries it calls (SQLite, libsodium, JSON, hashing), with no transport and no eleven
processes taking turns on two cores: stable to a few per cent, so a change to either side's
per-call path can be judged in a minute. The anchor, interleaved round by round, is the floor of
``_floor.py`` doing what the design requires per pair in the same process (fresh blind, Ed25519
both ways, evaluation, finalisation, nonce and one audit row per side in SQLite). The ratio
node/floor is what our code adds per pair; the fan-out multiplies both by roughly two (cold
caches, eleven processes) and adds gRPC over mutual TLS.

The first query goes over real gRPC (it syncs PAN's filter into CRI's cache); every measured one
is a full ``MatchClient.run`` of one document against PAN: targets, keys, blinding, the sealed
request, PAN's whole request path (envelope checks, replay cache, agreement and quota, handler,
audit, signed response), verification, the querier's audit entry, finalisation and the filter
lookup.

    .venv/bin/python bench/bench_call_path.py                       # table
    .venv/bin/python bench/bench_call_path.py --rounds 20 --json

Every loop is bounded by ``--rounds`` × ``--pairs`` and by ``--seconds``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._floor import FloorHolder, FloorQuerier  # noqa: E402
from bench._util import machine, print_json  # noqa: E402
from bench.bench_match import (  # noqa: E402
    ANCHOR_PAYLOAD,
    PURPOSE,
    STATES,
    document_holders,
    number,
    write_documents,
)

EVALUATE = "/enlace.v1.MatchService/Evaluate"


def node_pair(root: Path) -> tuple[Callable[[], None], dict[str, float], Callable[[], None]]:
    """CRI's one-document query against PAN, the call handed straight to PAN's pipeline.

    Returns the query, a dict whose ``holder`` entry accumulates PAN's CPU seconds, and a
    closer."""
    from node.matching import service as match_service
    from node.matching.client import MatchClient
    from node.matching.sources import document_query
    from node.runtime import open_runtime
    from node.server.edge import from_proto, to_proto
    from node.server.factory import build_server

    source = root / "documents.csv"
    write_documents(source, 2000)
    federation, runtimes = document_holders(root / "federation", ["PAN"], source)
    holder = open_runtime(federation.homes["PAN"])
    server = build_server(holder, listen=federation.endpoint("PAN"))
    server.start()
    querier = runtimes["CRI"]
    client_pem = querier.home.keys.load_tls()[1]
    client = MatchClient(querier, timeout=10.0, workers=1)
    query = [document_query(number(7), STATES[7])]
    spent = {"holder": 0.0}

    def run() -> None:
        report = client.run(query, ["travel_documents"], purpose=PURPOSE)
        hits = [o for o in report.outcomes if o.peer == "PAN" and o.status == "hit"]
        if len(hits) != 1:
            raise RuntimeError(f"expected one hit from PAN, got {report.outcomes}")

    run()  # over gRPC: syncs the filter, opens the channel
    spec = next(s for s in match_service.method_specs(holder) if s.full_name == EVALUATE)

    def straight(wire: Any, timeout: float | None = None) -> Any:
        started = time.process_time()
        outcome = server.pipeline.handle(spec, from_proto(wire), client_pem)
        spent["holder"] += time.process_time() - started
        if outcome.error is not None:
            raise RuntimeError(f"PAN refused: {outcome.error}")
        return to_proto(outcome.response)

    peer = client.client("PAN")
    peer._stub(EVALUATE)
    peer._stubs[EVALUATE] = straight  # type: ignore[assignment]

    def close() -> None:
        client.close()
        server.stop(0)
        holder.close()
        querier.close()

    return run, spent, close


def floor_pair(root: Path) -> tuple[Callable[[], None], dict[str, float]]:
    """The floor's querier asking the floor's holder, in this process."""
    import os

    import nacl.signing

    from crypto.oprf import Mode, hash_inputs
    from node.matching.keys import document_input

    querier = FloorQuerier(root / "floor-querier.db", ANCHOR_PAYLOAD - 48)
    seed = os.urandom(32)
    holder = FloorHolder(seed, bytes(querier.key.verify_key), root / "floor-holder.db")
    holder_key = nacl.signing.VerifyKey(bytes(holder.signer.verify_key))
    value = document_input(number(7), STATES[7])
    spent = {"holder": 0.0}

    def answer(request: bytes) -> bytes:
        started = time.process_time()
        reply = holder.answer(request)
        spent["holder"] += time.process_time() - started
        return reply

    def run() -> None:
        points = hash_inputs([value], Mode.OPRF)
        querier.ask(answer, "PAN", holder_key, points)

    return run, spent


def measure(
    sides: dict[str, tuple[Callable[[], None], dict[str, float]]],
    rounds: int,
    pairs: int,
    seconds: float,
) -> dict[str, Any]:
    """Per side, the CPU per pair in each round (whole, holder, querier), rounds interleaved."""
    per_round: dict[str, dict[str, list[float]]] = {
        name: {"total": [], "holder": []} for name in sides
    }
    deadline = time.monotonic() + seconds
    done = 0
    for _ in range(rounds):
        if time.monotonic() > deadline:
            break
        for name, (run, spent) in sides.items():
            spent["holder"] = 0.0
            started = time.process_time()
            for _ in range(pairs):
                run()
            per_round[name]["total"].append((time.process_time() - started) / pairs * 1e6)
            per_round[name]["holder"].append(spent["holder"] / pairs * 1e6)
        done += 1
    figures: dict[str, Any] = {"rounds": done, "pairs_per_round": pairs}
    for name, values in per_round.items():
        total = statistics.median(values["total"])
        holder = statistics.median(values["holder"])
        figures[f"{name}_us_per_pair"] = total
        figures[f"{name}_holder_us_per_pair"] = holder
        figures[f"{name}_querier_us_per_pair"] = total - holder
    for part in ("", "holder_", "querier_"):
        figures[f"node_vs_floor_{part}cpu"] = (
            figures[f"node_{part}us_per_pair"] / figures[f"floor_{part}us_per_pair"]
        )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=300, help="queries per side and round")
    parser.add_argument("--seconds", type=float, default=120.0, help="time budget")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-call-path-") as tmp:
        root = Path(tmp)
        sys.stderr.write("building a federation of PAN and CRI…\n")
        node_run, node_spent, close = node_pair(root)
        try:
            floor_run, floor_spent = floor_pair(root)
            for _ in range(30):  # warm both
                node_run()
                floor_run()
            sides = {"node": (node_run, node_spent), "floor": (floor_run, floor_spent)}
            figures = measure(sides, args.rounds, args.pairs, args.seconds)
        finally:
            close()
    result = {"benchmark": "call_path", **figures, "machine": machine()}
    if args.json:
        print_json(result)
        return 0
    print(f"one Evaluate per pair, in one process, no gRPC ({figures['rounds']} rounds of "
          f"{figures['pairs_per_round']} pairs per side; medians of the rounds)")  # fmt: skip
    print(f"{'':8s} {'CPU per pair':>14s} {'holder':>10s} {'querier':>10s}")
    for name in ("node", "floor"):
        print(
            f"{name:8s} {figures[f'{name}_us_per_pair']:11.0f} µs "
            f"{figures[f'{name}_holder_us_per_pair']:7.0f} µs "
            f"{figures[f'{name}_querier_us_per_pair']:7.0f} µs"
        )
    print(
        f"node/floor: {figures['node_vs_floor_cpu']:.2f}× "
        f"(holder {figures['node_vs_floor_holder_cpu']:.2f}×, "
        f"querier {figures['node_vs_floor_querier_cpu']:.2f}×)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
