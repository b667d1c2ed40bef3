"""What a biometric Search costs over the network, against the bare FAISS search it wraps.

Why: ``bench/bench_biometric.py`` measures the two-stage Hamming search in-process (a few ms
per probe at a million codes); a peer sees that plus the envelope, the agreement rule and quota,
the audit append on both sides, mutual TLS and the hit references. This benchmark measures, in
one run and on the same codes:

* ``faiss``: :class:`~node.biometrics.gallery.CodeGallery.search_batch` of one probe in this
  process (FAISS pinned to ``--threads``), wall and CPU time of the searching thread;
* ``search``: ``/enlace.v1.BiometricService/Search`` with one probe per call, from CRI's
  :class:`~node.client.PeerClient` to a real ``enlace serve`` process of PAN holding the
  gallery (a 2-node federation in a temporary directory, SQLite), with the server's CPU time;
* ``search_batch``: the same with ``--batch`` probes per call (time per probe);
* ``client``: :meth:`~node.biometrics.client.BiometricClient.search` of one template (the
  querier's projection, the call and the answer), what ``enlace match biometric`` costs.

The gallery has ``--gallery`` codes of the default length (format 2: a 512-bit prefix scanned,
the full code re-scoring the shortlist) for CRI: ``--enrolled`` synthetic persons
(:mod:`node.biometrics.synthetic`) projected under the real PAN–CRI pairwise key, the rest
uniformly random codes standing in for unrelated faces (a flat scan costs the same whatever the
bits, and an unrelated face's code under a random rotation has uniform bits). They are written
straight into PAN's store as its stored gallery for CRI, as if built from imported templates
(projecting a million templates would add half a minute and measure nothing here). PAN's
server loads them on the first search, which is timed separately. Probes are second captures
of the enrolled persons, so the hit count checks that the answers are right.

    python bench/bench_biometric_service.py [--gallery 1000000] [--enrolled 200] [--probes 200]
        [--batch 64] [--threads 1] [--seconds 120] [--json]

Bounded by ``--probes`` calls *and* ``--seconds`` per layer. Figures only; docs/biometrics.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core; no spinning BLAS threads

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _util import Sample, machine, print_json, process_cpu_seconds, run_bounded, summarise

from crypto.biohash import DEFAULT_BITS, protect
from enlace.v1 import biometric_pb2
from node.biometrics import gallery as gal
from node.biometrics import synthetic as syn
from node.biometrics.client import BiometricClient
from node.biometrics.holder import GalleryHolder
from node.biometrics.service import GET_EPOCH, SEARCH
from node.client import PeerClient
from node.demo.agreements import sign_and_install
from node.demo.federation import create_federation
from node.demo.processes import NodeProcess
from node.runtime import open_runtime
from node.store.biometric_store import GalleryState
from policies.agreement import Agreement, Grant, Quotas

PURPOSE = "identity_verification"
SEED = 20_260_101


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gallery", type=int, default=1_000_000, help="codes in the gallery")
    parser.add_argument("--enrolled", type=int, default=200, help="real persons among them")
    parser.add_argument("--probes", type=int, default=200, help="calls per layer (at most)")
    parser.add_argument("--batch", type=int, default=64, help="probes per call of search_batch")
    parser.add_argument("--threads", type=int, default=1, help="FAISS threads, both sides")
    parser.add_argument("--seconds", type=float, default=120.0, help="time budget per layer")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if not 1 <= args.enrolled <= args.gallery or args.probes < 1 or not 1 <= args.batch <= 1024:
        parser.error("need 1 <= enrolled <= gallery, probes >= 1, 1 <= batch <= 1024")
    return args


def agreement(now: dt.datetime) -> Agreement:
    start = (now - dt.timedelta(days=1)).replace(microsecond=0)
    return Agreement(
        id="PAN-CRI-BIO-BENCH",
        version=1,
        parties=("PAN", "CRI"),
        title="Benchmark",
        valid_from=start,
        valid_until=start + dt.timedelta(days=30),
        grants=(
            Grant(
                holder="PAN",
                requester="CRI",
                service="biometric",
                datasets=("biometric_templates",),
                purposes=(PURPOSE,),
                quotas=Quotas(per_day=None, per_quarter=None),
            ),
        ),
    )


def build_gallery(args: argparse.Namespace, root: Path, say: Any) -> dict[str, Any]:
    """The federation, the agreement and PAN's stored gallery for CRI; returns the probes."""
    now = dt.datetime.now(dt.UTC)
    fed = create_federation(root / "federation", ("PAN", "CRI"), now, secretariat="")
    runtimes = {c: open_runtime(fed.homes[c]) for c in ("PAN", "CRI")}
    try:
        sign_and_install(agreement(now), runtimes, now)
        pan = runtimes["PAN"]
        holder = GalleryHolder(pan.store, pan.home, "PAN", pan.directory)
        state = holder.state()
        key = holder.key_for("CRI", state, now)
        people = syn.population(args.enrolled, family_size=1)
        enrolled_faces, _ = syn.captures(people, 1, seed=SEED)
        probe_faces, _ = syn.captures(people, 1, seed=SEED + 1)
        rng = np.random.default_rng(SEED)
        codes = rng.integers(0, 256, (args.gallery, key.code_bytes), dtype=np.uint8)
        slots = rng.choice(args.gallery, args.enrolled, replace=False)
        codes[slots] = protect(enrolled_faces, key)
        ids = [f"PANB{i:09d}" for i in range(args.gallery)]
        started = time.perf_counter()
        rows = [(ids[i], "0" * 64, codes[i].tobytes()) for i in range(args.gallery)]
        marker = holder.source_marker()
        gallery_state = GalleryState(
            "CRI", state.epoch, key.key_id, state.bits, key.dim, marker, 0, now
        )
        pan.store.biometrics.apply_changes(gallery_state, [], rows, replace=True)
        del rows
        written = time.perf_counter() - started
        say(f"gallery of {args.gallery:,} codes written in {written:.1f} s")
        return {
            "write_s": round(written, 2),
            "fed": fed,
            "ids": ids,
            "codes": codes,
            "slots": slots,
            "probe_faces": probe_faces,
            "key": key,
            "epoch": state.epoch,
        }
    finally:
        for runtime in runtimes.values():
            runtime.close()


def faiss_layer(args: argparse.Namespace, made: dict[str, Any], probes: np.ndarray) -> Any:
    gal.pin_threads(args.threads)
    gallery = gal.CodeGallery(made["key"].bits, key_id=made["key"].key_id)
    gallery.add(made["ids"], made["codes"])
    expected = {made["ids"][s] for s in made["slots"]}
    found = 0
    latencies: list[float] = []
    cpu = 0.0
    begin = time.perf_counter()
    for row in probes[: args.probes]:
        if time.perf_counter() - begin > args.seconds:
            break
        t0, c0 = time.perf_counter(), time.thread_time()
        best = gallery.search_batch(row[None, :], 1)[0]
        cpu += time.thread_time() - c0
        latencies.append(time.perf_counter() - t0)
        found += best[0].id in expected and gallery.band(best[0].distance) != "no-hit"
    sample = Sample(latencies, sum(latencies), cpu, None)
    return summarise("faiss", "in-process exact search, one probe", sample), found


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    say = (lambda _m: None) if args.json else (lambda m: print(m, file=sys.stderr))
    results: dict[str, Any] = {"machine": machine(), "arguments": vars(args)}
    with tempfile.TemporaryDirectory(prefix="bench-bio-") as tmp:
        made = build_gallery(args, Path(tmp), say)
        key = made["key"]
        probes = protect(made["probe_faces"], key)
        results["gallery_write_s"] = made["write_s"]
        summary, found = faiss_layer(args, made, probes)
        layers = [summary.to_dict() | {"hits": found}]
        made.pop("codes"), made.pop("ids")
        fed = made["fed"]
        node = NodeProcess("PAN", fed.homes["PAN"], fed.endpoint("PAN"))
        node.start({"OMP_NUM_THREADS": str(args.threads), "ENLACE_LOG_LEVEL": "WARNING"})
        cri = open_runtime(fed.homes["CRI"])
        try:
            node.wait_ready(time.monotonic() + 60)
            pid = node.process.pid if node.process else 0
            with PeerClient(cri, "PAN", timeout=300) as client:
                epoch = client.call(
                    GET_EPOCH,
                    biometric_pb2.BiometricEpochRequest(),
                    biometric_pb2.BiometricEpochResponse,
                    purpose=PURPOSE,
                ).message
                assert epoch.key_id == key.key_id, "the two sides derive different keys"

                def request(rows: np.ndarray) -> biometric_pb2.BiometricSearchRequest:
                    return biometric_pb2.BiometricSearchRequest(
                        epoch=made["epoch"],
                        key_id=key.key_id,
                        bits=key.bits,
                        codes=[r.tobytes() for r in rows],
                    )

                cpu0, t0 = process_cpu_seconds(pid), time.perf_counter()
                client.call(
                    SEARCH,
                    request(probes[:1]),
                    biometric_pb2.BiometricSearchResponse,
                    purpose=PURPOSE,
                )
                load = {"wall_s": round(time.perf_counter() - t0, 3)}
                cpu1 = process_cpu_seconds(pid)
                if cpu0 is not None and cpu1 is not None:
                    load["server_cpu_s"] = round(cpu1 - cpu0, 3)
                results["first_search_loads_gallery"] = load
                say(f"first search (server loads {args.gallery:,} codes): {load}")
                hits = [0]
                cursor = [0]

                def one() -> None:
                    row = probes[cursor[0] % len(probes)][None, :]
                    cursor[0] += 1
                    answer = client.call(
                        SEARCH, request(row), biometric_pb2.BiometricSearchResponse, purpose=PURPOSE
                    )
                    hits[0] += answer.message.results[0].band != biometric_pb2.ProbeResult.NO_HIT

                sample = run_bounded(one, calls=args.probes, seconds=args.seconds, server_pid=pid)
                layers.append(
                    summarise("search", "Search over gRPC, one probe per call", sample).to_dict()
                    | {"hits": hits[0]}
                )
                batches = [probes[i : i + args.batch] for i in range(0, len(probes), args.batch)]
                turn = [0]

                def many() -> None:
                    rows = batches[turn[0] % len(batches)]
                    turn[0] += 1
                    client.call(
                        SEARCH,
                        request(rows),
                        biometric_pb2.BiometricSearchResponse,
                        purpose=PURPOSE,
                    )

                calls = max(1, args.probes // args.batch)
                sample = run_bounded(many, calls=calls, seconds=args.seconds, server_pid=pid)
                per_probe = summarise(
                    "search_batch", f"Search over gRPC, {args.batch} probes per call", sample
                ).to_dict()
                per_probe["per_probe_ms"] = round(per_probe["mean_ms"] / args.batch, 4)
                layers.append(per_probe)
            with BiometricClient(cri, timeout=300) as bio:
                faces = made["probe_faces"]
                cursor[0] = 0
                client_hits = [0]

                def full() -> None:
                    face = faces[cursor[0] % len(faces)][None, :]
                    cursor[0] += 1
                    report = bio.search(face, PURPOSE, peers=["PAN"])
                    client_hits[0] += report.outcomes[0].hit

                sample = run_bounded(full, calls=args.probes, seconds=args.seconds, server_pid=pid)
                layers.append(
                    summarise("client", "BiometricClient.search of one template", sample).to_dict()
                    | {"hits": client_hits[0]}
                )
        finally:
            cri.close()
            node.stop()
    results["layers"] = layers
    faiss_p50 = layers[0]["p50_ms"]
    for layer in layers:
        layer["p50_vs_faiss"] = round(layer["p50_ms"] / faiss_p50, 2) if faiss_p50 else None
    if args.json:
        print_json(results)
    else:
        show(results)
    return 0


def show(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    arguments = results["arguments"]
    table = Table(
        title=f"Biometric Search, gallery of {arguments['gallery']:,} {DEFAULT_BITS}-bit codes, "
        f"FAISS threads {arguments['threads']}"
    )
    for column in (
        "layer",
        "calls",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "mean ms",
        "server cpu ms",
        "p50 ×faiss",
        "hits",
    ):
        table.add_column(column, justify="right" if column != "layer" else "left")
    for layer in results["layers"]:
        server = layer.get("server_cpu_ms")
        table.add_row(
            layer["name"],
            str(layer["calls"]),
            f"{layer['p50_ms']:.2f}",
            f"{layer['p90_ms']:.2f}",
            f"{layer['p99_ms']:.2f}",
            f"{layer['mean_ms']:.2f}",
            "" if server is None else f"{server:.2f}",
            f"{layer['p50_vs_faiss']:.2f}",
            str(layer.get("hits", "")),
        )
    Console().print(table)
    batch = next(x for x in results["layers"] if x["name"] == "search_batch")
    print(f"batch of {arguments['batch']}: {batch['per_probe_ms']:.2f} ms per probe (mean)")
    print(f"first search, server loading the gallery: {results['first_search_loads_gallery']}")


if __name__ == "__main__":
    sys.exit(main())
