"""Private identity matching end to end, side by side with OpenMined PSI, and fan-out latency.

Why: the issue sets three targets for matching on the node's two cores — at least 1.5x the
per-element throughput of OpenMined PSI (the anchor: ECDH-PSI over P-256 with a GCS filter),
a filter build for 1M records in at most 60 s, and a single document query fanned out to 10
peers with p50 at most 15 ms. Figures only; nothing is asserted.

    python bench/bench_match.py [--holder 1000000] [--queries 10000] [--peers 10] [--json]

Stages, each timed on its own (wall and CPU, server CPU read from /proc):

* ``build``   a holder node with ``--holder`` travel documents imported through the importer;
              ``Holder.rebuild`` (identity keys, OPRF evaluation in worker processes, entries
              written, filter encoded and signed).
* ``enlace``  the holder serves as its own ``enlace serve`` process; an in-process querier
              (the CLI's :class:`MatchClient`) syncs the filter once, then matches ``--queries``
              documents (half held, half not) over signed, audited gRPC with mutual TLS.
* ``psi``     OpenMined PSI (``pip install --no-deps openmined-psi``) with the same sets: a
              plain-gRPC server process builds the setup message for the same holder set, the
              client sends its request, the server processes it, the client intersects.
* ``fanout``  ``--peers`` holder processes with small filters and agreements; one document
              query fanned out to all of them, repeated; p50/p90 with warm channels. Its
              anchor, interleaved query by query: the same fan-out of a plain gRPC ``Ping``
              over mutual TLS to ``--peers`` trivial server processes (``bench_ping.py
              --serve-anchor``, one per holder key) — what eleven processes talking over
              loopback cost this machine before any of our work; and the protocol's floor
              (``_floor.py``): the same fan-out doing only the signatures, OPRF arithmetic and
              durable nonce and audit rows the design requires, with no node code — about
              the least an implementation of the protocol in Python pays on this machine.

Query rounds alternate between the two sides (``--rounds``, median reported), so both meet
the same shared machine. Per-element figures exclude one-time work on both sides: the filter
build and sync (ours), the setup message and its transfer (PSI's); both are reported
separately. Every loop is bounded by the sizes given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent import futures
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._floor import floor_fanout
from bench._util import machine, percentile, print_json, process_cpu_seconds

STATES = ("HTI", "CUB", "IND", "NPL", "BGD", "CHN", "CMR", "COD", "AGO", "SEN", "GIN", "AFG")
PURPOSE = "identity_verification"


def number(i: int, prefix: str = "P") -> str:
    return f"{prefix}{(i * 7919 + 13) % 10**8:08d}"  # a bijection on 0..10^8-1


def write_documents(path: Path, count: int) -> None:
    from node.records.datasets import DATASETS

    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(DATASETS["travel_documents"].columns) + "\n")
        for i in range(count):
            handle.write(
                f"B{i:09d},BP{i:09d},P,{number(i)},{STATES[i % 12]},{STATES[i % 12]},"
                f"APELLIDO{i % 997},NOMBRE{i % 113},{1950 + i % 50}-0{1 + i % 9}-1{i % 9},"
                f"{'FM'[i % 2]},2030-01-01,2024-0{1 + i % 9}-01\n"
            )


def query_set(holder: int, queries: int, seed: int = 5) -> tuple[list[tuple[str, str]], int]:
    """``queries`` documents: half drawn from the holder's set, half never issued."""
    rng = random.Random(seed)
    held = rng.sample(range(holder), min(queries // 2, holder))
    out = [(number(i), STATES[i % 12]) for i in held]
    out += [(number(i, "Q"), STATES[i % 12]) for i in range(queries - len(out))]
    rng.shuffle(out)
    return out, len(held)


def _cpu_self_and_children() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def agree(runtimes: dict[str, Any], holder: str, requester: str, now: dt.datetime) -> None:
    from node.agreements import AgreementBook
    from policies.agreement import Agreement, Grant, Quotas
    from policies.signatures import SignedAgreement, dump_signed_agreement, sign_agreement

    start = (now - dt.timedelta(days=1)).replace(microsecond=0)
    grant = Grant(
        holder=holder,
        requester=requester,
        service="match",
        datasets=("travel_documents", "document_alerts", "persons_of_interest"),
        purposes=(PURPOSE,),
        quotas=Quotas(per_day=None, per_quarter=None),
    )
    agreement = Agreement(
        id=f"{holder}-{requester}-BENCH", version=1, parties=(holder, requester),
        title="benchmark", valid_from=start, valid_until=start + dt.timedelta(days=30),
        grants=(grant,),
    )  # fmt: skip
    signed = SignedAgreement(agreement)
    for party in agreement.parties:
        signed = sign_agreement(signed, party, runtimes[party].signing_key)
    for party in agreement.parties:
        AgreementBook(runtimes[party]).install_text(dump_signed_agreement(signed), now)


def serve_nodes(
    federation: Any, countries: list[str], env: dict[str, str] | None = None
) -> list[Any]:
    from node.demo.processes import NodeProcess

    nodes = [NodeProcess(c, federation.homes[c], federation.endpoint(c)) for c in countries]
    for node in nodes:
        node.start({"ENLACE_LOG_LEVEL": "WARNING", **(env or {})})
    deadline = time.monotonic() + 120
    for node in nodes:
        try:
            node.wait_ready(deadline)
        except (RuntimeError, TimeoutError):
            sys.stderr.write(node.log_path.read_text(encoding="utf-8", errors="replace")[-3000:])
            raise
    return nodes


def document_holders(root: Path, holders: list[str], source: Path) -> tuple[Any, dict[str, Any]]:
    """A federation of ``holders`` and CRI: each holder imports ``source`` as travel documents,
    publishes its filter and agrees with CRI. The holders' runtimes are closed (they are to
    serve in processes of their own); CRI's stays open for the querier."""
    from node.demo.federation import create_federation
    from node.ingest.pipeline import ingest
    from node.matching.filters import Holder
    from node.runtime import open_runtime

    now = dt.datetime.now(dt.UTC)
    federation = create_federation(root, (*holders, "CRI"), now)
    runtimes = {c: open_runtime(federation.homes[c]) for c in (*holders, "CRI")}
    for country in holders:
        rt = runtimes[country]
        ingest(rt.store, "travel_documents", [source], now=now)
        Holder(rt.store, rt.home, country, rt.signing_key).rebuild(now, ["travel_documents"])
        agree(runtimes, country, "CRI", now)
        rt.close()
    return federation, runtimes


Round = Callable[[], dict[str, Any]]


def round_figures(
    queries: int, wall: float, client_cpu: float, server_cpu: float
) -> dict[str, Any]:
    return {
        "wall_s": wall,
        "client_cpu_s": client_cpu,
        "server_cpu_s": server_cpu,
        "us_per_element_wall": wall / queries * 1e6,
        "us_per_element_cpu": (client_cpu + server_cpu) / queries * 1e6,
        "elements_per_s": queries / wall,
    }


def enlace_side(
    root: Path, holder: int, queries: int, workers: int, stack: ExitStack
) -> tuple[dict[str, Any], Round]:
    """Build the holder, serve it, sync once; return the set-up figures and one query round."""
    from node.demo.federation import create_federation
    from node.ingest.pipeline import ingest
    from node.matching.client import MatchClient
    from node.matching.filters import Holder
    from node.matching.sources import document_query
    from node.runtime import open_runtime

    now = dt.datetime.now(dt.UTC)
    federation = create_federation(root / "fed", ("PAN", "CRI"), now)
    runtimes = {c: open_runtime(federation.homes[c]) for c in ("PAN", "CRI")}
    stack.callback(runtimes["CRI"].close)
    source = root / "travel_documents.csv"
    write_documents(source, holder)
    started = time.perf_counter()
    ingest(runtimes["PAN"].store, "travel_documents", [source], now=now)
    ingest_s = time.perf_counter() - started
    pan = runtimes["PAN"]
    cpu, started = _cpu_self_and_children(), time.perf_counter()
    (report,) = Holder(pan.store, pan.home, "PAN", pan.signing_key).rebuild(
        now, ["travel_documents"], workers=workers
    )
    build = {"records": holder, "wall_s": time.perf_counter() - started,
             "cpu_s": _cpu_self_and_children() - cpu, "entries": report.entries,
             "ingest_wall_s": ingest_s}  # fmt: skip
    agree(runtimes, "PAN", "CRI", now)
    pan.close()
    (node,) = serve_nodes(federation, ["PAN"])
    stack.callback(node.stop)
    docs, held = query_set(holder, queries)
    asked = [document_query(n, s) for n, s in docs]
    threads = int(os.environ.get("BENCH_CLIENT_THREADS", "8"))
    client = stack.enter_context(MatchClient(runtimes["CRI"], timeout=600.0, workers=threads))
    started = time.perf_counter()
    cached = client.sync("PAN", "travel_documents", PURPOSE)
    sync = {"wall_s": time.perf_counter() - started, "bytes": cached.manifest.size}

    def workers_cpu() -> dict[int, float]:  # the querier's OPRF worker processes
        return {pid: process_cpu_seconds(pid) or 0.0 for pid in client.crypto.worker_pids()}

    def one_round() -> dict[str, Any]:
        server_cpu = process_cpu_seconds(node.process.pid) or 0.0
        workers = workers_cpu()
        cpu, started = time.process_time(), time.perf_counter()
        result = client.run(asked, ["travel_documents"], purpose=PURPOSE, peers=["PAN"])
        wall, client_cpu = time.perf_counter() - started, time.process_time() - cpu
        server_cpu = (process_cpu_seconds(node.process.pid) or 0.0) - server_cpu
        # a worker started during the round counts whole (its start-up is part of the round)
        client_cpu += sum(t - workers.get(pid, 0.0) for pid, t in workers_cpu().items())
        hits = sum(o.status == "hit" for o in result.outcomes)
        return {"hits": hits, **round_figures(queries, wall, client_cpu, server_cpu)}

    return {"build": build, "sync": sync, "queries": queries, "expected_hits": held}, one_round


def median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(rounds, key=lambda r: r["wall_s"])
    return ordered[len(ordered) // 2] | {"rounds_wall_s": [round(r["wall_s"], 3) for r in rounds]}


# --------------------------------------------------------------------------- fan-out

ANCHOR_PAYLOAD = 512  # bytes: about a signed one-element Evaluate envelope


def _plain_anchors(
    stack: ExitStack, federation: Any, holders: list[str]
) -> tuple[list[Callable[[], None]], list[int]]:
    """One trivial Ping server per holder (``bench_ping.py``'s anchor), each behind mutual TLS
    with that holder's own key, as the querier's channel to it would be: the same fan-out with
    no envelope, no audit, no agreement and no OPRF — what the machine itself costs for eleven
    processes talking over loopback. Returns one echo-checking call per holder, and the pids."""
    from bench.bench_ping import mtls_layer, start_anchor

    payload = os.urandom(ANCHOR_PAYLOAD)
    calls, pids = [], []
    for country in holders:
        anchor, _, tls_port = start_anchor(stack, federation, server=country, client="CRI")
        calls.append(mtls_layer(stack, tls_port, federation, payload, server=country))
        pids.append(anchor.pid)
    return calls, pids


def run_fanout(root: Path, peers: int, repeats: int) -> dict[str, Any]:
    from node.matching.client import MatchClient
    from node.matching.keys import document_input
    from node.matching.sources import document_query
    from node.records.codelists import REGIONAL_MEMBERS

    holders = [c for c in REGIONAL_MEMBERS if c != "CRI"][:peers]
    source = root / "small.csv"
    write_documents(source, 2000)
    federation, runtimes = document_holders(root / "fanout", holders, source)
    nodes = serve_nodes(federation, holders)
    names = ("travel_documents", "all_document_datasets", "floor", "plain_grpc")
    timings: dict[str, list[float]] = {name: [] for name in names}
    # CPU seconds spent by the querier (this process) and by the servers, per kind of query.
    cpu: dict[str, list[float]] = {name: [0.0, 0.0] for name in names}

    def servers_cpu(pids: list[int]) -> float:
        return sum(process_cpu_seconds(pid) or 0.0 for pid in pids)

    try:
        with ExitStack() as stack, MatchClient(runtimes["CRI"], timeout=10.0, workers=16) as client:
            anchor_calls, anchor_pids = _plain_anchors(stack, federation, holders)
            floor, floor_pids = floor_fanout(
                stack, root, federation, holders, filler=ANCHOR_PAYLOAD - 48
            )
            pool = stack.enter_context(futures.ThreadPoolExecutor(16))  # as MatchClient's
            query = [document_query(number(7), STATES[7])]
            query_input = document_input(number(7), STATES[7])
            everything = ["travel_documents", "document_alerts", "persons_of_interest"]

            def plain_fanout() -> None:
                list(pool.map(lambda call: call(), anchor_calls))  # each checks its echo

            def enlace_fanout(datasets: list[str]) -> Callable[[], None]:
                def run() -> None:
                    report = client.run(query, datasets, purpose=PURPOSE)
                    assert sum(o.status == "hit" for o in report.outcomes) == len(holders)

                return run

            holder_pids = [n.process.pid for n in nodes if n.process]
            kinds = (("travel_documents", enlace_fanout(["travel_documents"]), holder_pids),
                     ("all_document_datasets", enlace_fanout(everything), holder_pids),
                     ("floor", lambda: floor(query_input), floor_pids),
                     ("plain_grpc", plain_fanout, anchor_pids))  # fmt: skip
            for _, fan, _ in kinds:
                fan()  # warm: channels, TLS sessions, filters
            for _ in range(repeats):  # interleaved, so drift on the machine hits all alike
                for name, fan, pids in kinds:
                    served, own = servers_cpu(pids), time.process_time()
                    started = time.perf_counter()
                    fan()
                    timings[name].append((time.perf_counter() - started) * 1000)
                    cpu[name][0] += time.process_time() - own
                    cpu[name][1] += servers_cpu(pids) - served
    finally:
        for node in nodes:
            node.stop()
        runtimes["CRI"].close()
    calls = repeats * len(holders)  # one call per holder and query
    figures = {
        f"{name}_p{q}_ms": percentile(values, q)
        for name, values in timings.items()
        for q in (50, 90)
    }
    per_call = {
        f"{name}_{side}_cpu_ms_per_call": cpu[name][i] / calls * 1000
        for name in ("travel_documents", "floor", "plain_grpc")
        for i, side in enumerate(("querier", "server"))
    }
    return {
        "peers": len(holders),
        "repeats": repeats,
        **figures,
        **per_call,
        "travel_documents_cpu_ms_per_query": sum(cpu["travel_documents"]) / repeats * 1000,
        "floor_cpu_ms_per_query": sum(cpu["floor"]) / repeats * 1000,
        "plain_grpc_cpu_ms_per_query": sum(cpu["plain_grpc"]) / repeats * 1000,
        "p50_vs_plain_grpc": figures["travel_documents_p50_ms"] / figures["plain_grpc_p50_ms"],
        "p50_vs_floor": figures["travel_documents_p50_ms"] / figures["floor_p50_ms"],
        "floor_p50_vs_plain_grpc": figures["floor_p50_ms"] / figures["plain_grpc_p50_ms"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--holder", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--peers", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="query rounds per side")
    parser.add_argument("--workers", type=int, default=0, help="filter build processes")
    parser.add_argument("--skip", action="append", default=[], help="enlace, psi or fanout")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-match-"))
    result: dict[str, Any] = {"machine": machine(), "holder": args.holder}
    try:
        with ExitStack() as stack:
            sides: dict[str, tuple[dict[str, Any], Round]] = {}
            if "enlace" not in args.skip:
                sides["enlace"] = enlace_side(root, args.holder, args.queries, args.workers, stack)
            if "psi" not in args.skip:
                from bench._psi import psi_side

                sides["psi"] = psi_side(root, args.holder, args.queries, stack)
            # Rounds alternate, so both sides meet the same (shared, noisy) machine.
            rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
            for _ in range(args.rounds):
                for name, (_, one_round) in sides.items():
                    rounds[name].append(one_round())
            for name, (info, _) in sides.items():
                result[name] = info | median_round(rounds[name])
        if "fanout" not in args.skip:
            result["fanout"] = run_fanout(root, args.peers, args.repeats)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if "enlace" in result and "psi" in result:
        ours, theirs = result["enlace"], result["psi"]
        result["throughput_ratio"] = ours["elements_per_s"] / theirs["elements_per_s"]
        result["cpu_ratio"] = theirs["us_per_element_cpu"] / ours["us_per_element_cpu"]
        # On an idle 2-core machine PSI's exchange is sequential (request, process,
        # intersect), while ours pipelines across the two processes: its rate is bounded by
        # the busier side.
        result["projected_idle_ratio"] = (theirs["client_cpu_s"] + theirs["server_cpu_s"]) / max(
            ours["client_cpu_s"], ours["server_cpu_s"]
        )
        # Our querier blinds and finalises in worker processes (one per core), so with two
        # idle cores the bound is the total CPU over two.
        result["two_core_ratio"] = (theirs["client_cpu_s"] + theirs["server_cpu_s"]) / (
            (ours["client_cpu_s"] + ours["server_cpu_s"]) / 2
        )
    if args.json:
        print_json(result)
    else:
        report(result)
    return 0


def report(result: dict[str, Any]) -> None:
    print(f"machine: {result['machine']}; holder {result['holder']:,} records")
    if "enlace" in result:
        e = result["enlace"]
        b = e["build"]
        print(f"filter build: {b['records']:,} records -> {b['entries']:,} entries in "
              f"{b['wall_s']:.1f} s wall, {b['cpu_s']:.1f} CPU-s (target <= 60 s wall); "
              f"import {b['ingest_wall_s']:.1f} s")  # fmt: skip
        print(f"filter sync: {e['sync']['bytes']:,} bytes in {e['sync']['wall_s']:.2f} s")
    for name in ("enlace", "psi"):
        if name in result:
            r = result[name]
            print(f"{name:>7}: {r['queries']:,} queries, {r['hits']:,} hits "
                  f"(expected {r['expected_hits']:,}); {r['wall_s']:.2f} s wall "
                  f"= {r['us_per_element_wall']:.0f} us/element ({r['elements_per_s']:,.0f}/s); "
                  f"CPU {r['us_per_element_cpu']:.0f} us/element (client "
                  f"{r['client_cpu_s']:.2f} s, server {r['server_cpu_s']:.2f} s)")  # fmt: skip
    if "psi" in result:
        p = result["psi"]
        print(
            f"    psi: setup {p['setup_wall_s']:.1f} s wall, {p['setup_cpu_s']:.1f} CPU-s, "
            f"{p['setup_bytes']:,} bytes, transfer {p['setup_transfer_wall_s']:.2f} s"
        )
    if "throughput_ratio" in result:
        print(
            f"throughput ratio enlace / OpenMined PSI: {result['throughput_ratio']:.2f}x "
            f"(target >= 1.5x); CPU per element ratio: {result['cpu_ratio']:.2f}x"
        )
    if "projected_idle_ratio" in result:
        print(f"bound if our querier used one core only (PSI sequential CPU / our busier "
              f"side): {result['projected_idle_ratio']:.2f}x; if both sides spread over two "
              f"idle cores: {result['two_core_ratio']:.2f}x")  # fmt: skip
    if "fanout" in result:
        f = result["fanout"]
        print(
            f"fan-out to {f['peers']} peers ({f['repeats']} queries, warm channels): "
            f"travel_documents p50 {f['travel_documents_p50_ms']:.1f} ms, "
            f"p90 {f['travel_documents_p90_ms']:.1f} ms (target p50 <= 15 ms); three "
            f"document datasets p50 {f['all_document_datasets_p50_ms']:.1f} ms, "
            f"p90 {f['all_document_datasets_p90_ms']:.1f} ms"
        )
        print(
            f"fan-out CPU per travel_documents query: "
            f"{f['travel_documents_cpu_ms_per_query']:.1f} ms in total over the 2 cores; "
            f"querier {f['travel_documents_querier_cpu_ms_per_call']:.2f} ms per peer, "
            f"holder {f['travel_documents_server_cpu_ms_per_call']:.2f} ms per Evaluate"
        )
        print(
            f"same fan-out, plain gRPC Ping over mutual TLS to {f['peers']} trivial servers "
            f"(no envelope, audit, agreement or OPRF): p50 {f['plain_grpc_p50_ms']:.1f} ms, "
            f"p90 {f['plain_grpc_p90_ms']:.1f} ms, CPU {f['plain_grpc_cpu_ms_per_query']:.1f} ms "
            f"per query; the signed query's p50 is {f['p50_vs_plain_grpc']:.1f}x that"
        )
        print(
            f"same fan-out, floor (bench/_floor.py: only the signatures, OPRF and durable "
            f"nonce and audit rows the design requires, no node code): p50 "
            f"{f['floor_p50_ms']:.1f} ms, p90 {f['floor_p90_ms']:.1f} ms, CPU "
            f"{f['floor_cpu_ms_per_query']:.1f} ms per query ({f['floor_p50_vs_plain_grpc']:.1f}x "
            f"plain gRPC); the signed query's p50 is {f['p50_vs_floor']:.1f}x the floor's"
        )


if __name__ == "__main__":
    sys.exit(main())
