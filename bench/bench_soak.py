"""Load and soak: many peers call one real node for minutes; throughput, latency, errors, memory.

Why: the issue's target is a 10-minute soak with 0 errors and less than 10% memory growth of
the serving node. A federation of PAN and ``--peers`` members is created in a temporary
directory; PAN imports synthetic encounters, grants every peer statistics, and runs as a real
``enlace serve`` process (its jobs — checkpoints, nonce purge, WAL — run as in production).
``--threads`` client threads, spread over the peers (each peer its own
:class:`~node.client.PeerClient`, keys and audit log), call a mix of ``NodeService/Ping``,
``NodeService/GetInfo`` and ``StatsService/Aggregate`` until ``--seconds`` have passed.

Memory: PAN's resident set (``VmRSS``) is sampled every ``--sample-every`` seconds; the
baseline is taken once the warm-up (``--warmup``, default 10% of the run, at least 10 s) is
over, and growth is (last − baseline) / baseline. A slope fitted to the samples after the
warm-up (MiB per minute) shows a steady leak that a short run would hide.

    python bench/bench_soak.py [--seconds 60] [--threads 16] [--peers 8] [--json]
    python bench/bench_soak.py --seconds 600 --json      # the soak of docs/assurance.md

Bounded: every thread stops at the deadline; loopback only; the temporary directory is
removed. Figures only; nothing is asserted (``--strict`` exits 1 on any error or on growth
above ``--max-growth`` percent, for a scheduled soak).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _util import machine, percentile, print_json

from enlace.v1 import node_pb2, stats_pb2
from node.client import PeerClient
from node.demo.agreements import sign_and_install, stats_grant
from node.demo.federation import create_federation
from node.demo.processes import NodeProcess
from node.errors import PeerError
from node.ingest.pipeline import ingest
from node.records.generate import generate
from node.runtime import NodeRuntime, open_runtime
from policies.agreement import Agreement, Quotas

PEERS = ("CRI", "HND", "GTM", "SLV", "NIC", "MEX", "BLZ", "DOM", "CAN", "USA")
PURPOSE = "quarterly_matrices"
#: (name, weight, method, request, response type, purpose)
MIX: tuple[tuple[str, int, str, Any, Any, str], ...] = (
    (
        "Ping",
        5,
        "/enlace.v1.NodeService/Ping",
        node_pb2.PingRequest(payload=b"soak" * 16),
        node_pb2.PingResponse,
        "",
    ),
    (
        "GetInfo",
        2,
        "/enlace.v1.NodeService/GetInfo",
        node_pb2.GetInfoRequest(),
        node_pb2.GetInfoResponse,
        "",
    ),
    (
        "Aggregate",
        3,
        "/enlace.v1.StatsService/Aggregate",
        stats_pb2.AggregateRequest(
            dataset="encounters",
            measure="persons",
            period="2023",
            dimensions=["nationality", "sex"],
        ),
        stats_pb2.AggregateResponse,
        PURPOSE,
    ),
)


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` from /proc (Linux), in bytes; 0 when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class Tally:
    """What the client threads observed; appended to under one lock."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, op: str, seconds: float, error: str = "") -> None:
        with self.lock:
            if error:
                self.errors[f"{op}: {error}"] += 1
            else:
                self.latencies.setdefault(op, []).append(seconds)


def worker(runtime: NodeRuntime, deadline: float, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    weights = [w for _, w, *_ in MIX]
    with PeerClient(runtime, "PAN", timeout=10.0) as client:
        while time.monotonic() < deadline:
            name, _, method, request, answer, purpose = rng.choices(MIX, weights)[0]
            started = time.perf_counter()
            try:
                client.call(method, request, answer, purpose=purpose)
            except PeerError as exc:
                tally.add(name, 0.0, f"{exc.status_name} {exc.message[:120]}")
                continue
            tally.add(name, time.perf_counter() - started)


def build(root: Path, peers: int, encounters: int, say: Any) -> tuple[Any, list[NodeRuntime]]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    members = PEERS[:peers]
    fed = create_federation(root / "fed", ("PAN", *members), now, secretariat="")
    pan = open_runtime(fed.homes["PAN"])
    generate("PAN", encounters, 21, root / "data")
    ingest(pan.store, "encounters", [root / "data" / "encounters.csv"], now=now)
    runtimes = {"PAN": pan} | {m: open_runtime(fed.homes[m]) for m in members}
    start = now - dt.timedelta(days=1)
    for member in members:
        grant = dataclasses.replace(stats_grant("PAN", member), quotas=Quotas(None, None))
        agreement = Agreement(
            f"SOAK-PAN-{member}",
            1,
            ("PAN", member),
            "Soak",
            start,
            start + dt.timedelta(days=30),
            (grant,),
        )
        sign_and_install(agreement, runtimes, now)
    pan.close()
    say(f"federation: PAN + {len(members)} peers; PAN holds {encounters} encounters")
    return fed, [runtimes[m] for m in members]


def run(args: argparse.Namespace, say: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="enlace-soak-") as tmp:
        fed, peers = build(Path(tmp), args.peers, args.encounters, say)
        node = NodeProcess("PAN", fed.homes["PAN"], fed.endpoint("PAN"))
        node.start({"ENLACE_LOG_LEVEL": "WARNING"})
        try:
            node.wait_ready(time.monotonic() + 60)
            assert node.process is not None
            pid = node.process.pid
            say(
                f"PAN serving as pid {pid} at {node.endpoint}; {args.threads} threads, "
                f"{args.seconds:.0f} s"
            )
            return measure(args, peers, pid, say) | _log_errors(node)
        finally:
            node.stop()
            for runtime in peers:
                runtime.close()


def measure(
    args: argparse.Namespace, peers: list[NodeRuntime], pid: int, say: Any
) -> dict[str, Any]:
    tally = Tally()
    begin = time.monotonic()
    deadline = begin + args.seconds
    threads = [
        threading.Thread(
            target=worker, args=(peers[i % len(peers)], deadline, tally, i), daemon=True
        )
        for i in range(args.threads)
    ]
    for thread in threads:
        thread.start()
    samples: list[tuple[float, int]] = [(0.0, rss_bytes(pid))]
    while time.monotonic() < deadline:
        time.sleep(min(args.sample_every, max(0.0, deadline - time.monotonic())))
        samples.append((time.monotonic() - begin, rss_bytes(pid)))
        if len(samples) % 12 == 0:
            say(
                f"  {samples[-1][0]:6.0f} s  rss {samples[-1][1] / 2**20:7.1f} MiB  "
                f"calls {sum(map(len, tally.latencies.values()))}  "
                f"errors {sum(tally.errors.values())}"
            )
    for thread in threads:
        thread.join(timeout=30)
    wall = time.monotonic() - begin
    return summarise(args, tally, samples, wall)


def summarise(
    args: argparse.Namespace, tally: Tally, samples: list[tuple[float, int]], wall: float
) -> dict[str, Any]:
    warmup = args.warmup if args.warmup is not None else max(10.0, args.seconds / 10)
    after = [(t, r) for t, r in samples if t >= warmup] or samples[-1:]
    base, last = after[0][1], after[-1][1]
    ok = sum(map(len, tally.latencies.values()))
    errors = sum(tally.errors.values())
    ops = {}
    for name, values in sorted(tally.latencies.items()):
        ms = [v * 1000 for v in values]
        ops[name] = {
            "calls": len(ms),
            "p50_ms": round(percentile(ms, 50), 2),
            "p90_ms": round(percentile(ms, 90), 2),
            "p99_ms": round(percentile(ms, 99), 2),
        }
    every = [v * 1000 for values in tally.latencies.values() for v in values]
    return {
        "params": {k: v for k, v in vars(args).items() if k not in ("json", "strict")},
        "machine": machine(),
        "seconds": round(wall, 1),
        "calls": ok + errors,
        "ok": ok,
        "errors": errors,
        "error_rate": round(errors / max(1, ok + errors), 6),
        "error_kinds": dict(tally.errors.most_common(10)),
        "calls_per_s": round(ok / wall, 1),
        "p50_ms": round(percentile(every, 50), 2) if every else None,
        "p90_ms": round(percentile(every, 90), 2) if every else None,
        "p99_ms": round(percentile(every, 99), 2) if every else None,
        "operations": ops,
        "rss_mib": {
            "start": round(samples[0][1] / 2**20, 1),
            "baseline": round(base / 2**20, 1),
            "end": round(last / 2**20, 1),
            "max": round(max(r for _, r in samples) / 2**20, 1),
        },
        "rss_growth_pct": round((last - base) / base * 100, 2) if base else None,
        "rss_slope_mib_per_min": round(_slope(after) * 60 / 2**20, 3),
        "warmup_s": warmup,
    }


def _slope(points: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS (bytes) over time (seconds); 0 with fewer than 2 points."""
    if len(points) < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / len(points)
    mean_r = sum(r for _, r in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (r - mean_r) for t, r in points) / spread if spread else 0.0


def _log_errors(node: NodeProcess) -> dict[str, Any]:
    """ERROR lines (unexpected exceptions) in the node's log, and the first one with what
    follows it (its traceback), since the log goes with the temporary directory."""
    try:
        text = node.log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {"server_log_errors": -1, "server_log_first_error": ""}
    lines = text.splitlines()
    errors = [i for i, line in enumerate(lines) if " ERROR " in line]
    first = "\n".join(lines[errors[0] : errors[0] + 30])[:3000] if errors else ""
    return {"server_log_errors": len(errors), "server_log_first_error": first}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="run time (max 3600)")
    parser.add_argument("--threads", type=int, default=16, help="client threads (max 64)")
    parser.add_argument("--peers", type=int, default=8, help=f"peer members (max {len(PEERS)})")
    parser.add_argument("--encounters", type=int, default=5000, help="records PAN holds")
    parser.add_argument("--sample-every", type=float, default=5.0, help="RSS sampling period (s)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before the baseline")
    parser.add_argument("--max-growth", type=float, default=10.0, help="with --strict (%%)")
    parser.add_argument("--strict", action="store_true", help="exit 1 on errors or growth")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if not (1 <= args.seconds <= 3600 and 1 <= args.threads <= 64):
        parser.error("--seconds must be 1..3600 and --threads 1..64")
    if not 1 <= args.peers <= len(PEERS) or not 100 <= args.encounters <= 200_000:
        parser.error(f"--peers must be 1..{len(PEERS)} and --encounters 100..200000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    result = run(args, say)
    if args.json:
        print_json(result)
    else:
        _print(result)
    if args.strict:
        grew = (result["rss_growth_pct"] or 0) > args.max_growth
        return 1 if result["errors"] or result["server_log_errors"] or grew else 0
    return 0


def _print(result: dict[str, Any]) -> None:
    print(
        f"{result['calls']} calls in {result['seconds']} s: {result['calls_per_s']} calls/s, "
        f"p50 {result['p50_ms']} ms, p90 {result['p90_ms']} ms, p99 {result['p99_ms']} ms"
    )
    for name, figures in result["operations"].items():
        print(
            f"  {name:<10} {figures['calls']:>8} calls  p50 {figures['p50_ms']:>7} ms  "
            f"p90 {figures['p90_ms']:>7} ms  p99 {figures['p99_ms']:>7} ms"
        )
    rss = result["rss_mib"]
    print(
        f"errors {result['errors']} (rate {result['error_rate']}); server log errors "
        f"{result['server_log_errors']}"
    )
    print(
        f"server RSS {rss['baseline']} → {rss['end']} MiB after warm-up "
        f"({result['rss_growth_pct']}%, slope {result['rss_slope_mib_per_min']} MiB/min, "
        f"max {rss['max']} MiB)"
    )
    for kind, count in result["error_kinds"].items():
        print(f"  {count} × {kind}")
    if result["server_log_first_error"]:
        print("first error in the server log:\n" + result["server_log_first_error"])


if __name__ == "__main__":
    raise SystemExit(main())
