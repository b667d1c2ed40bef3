"""A regional pull: the Secretariat asks every member node for one CRM matrix of one quarter.

Why: the Secretariat's quarterly pull must stay short when every member holds millions of
records (the issue's target: at most 10 s for 11 nodes with 1M encounters each, on this
2-core machine). This benchmark builds that federation once, keeps it in a cache directory
(homes, keys, a 2-of-3 signed directory, every member's SQLite database with its synthetic
encounters imported through the real importer, the ST agreements), then on each run starts
one real ``enlace serve`` process per member, has the ST pull the matrix from all of them
concurrently (the code path of ``enlace st pull``) and reports, per node, the wall time of
its pull (client side, including retries), the signed call's round trip, and the total.

    python bench/bench_st_pull.py [--members 11] [--encounters 1000000] [--quarter 2023Q3]
                                  [--matrix M01] [--repeat 3] [--cache DIR] [--json]

Building the cache costs minutes per million encounters per member (generation and a
validated import); it is reused while its directory is valid. Figures only: nothing is
asserted, and tests never time anything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _util import machine, print_json

from node.records.codelists import REGIONAL_MEMBERS

ST = "CRM"
MARKER = "bench-ready.json"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build(root: Path, members: list[str], encounters: int) -> None:
    """Create the federation, generate and import every member's records, sign agreements."""
    from node.agreements import AgreementBook
    from node.demo.agreements import stats_grant
    from node.demo.federation import create_federation
    from node.ingest.pipeline import ingest
    from node.records.generate import generate
    from node.runtime import open_runtime
    from policies.agreement import Agreement
    from policies.signatures import SignedAgreement, dump_signed_agreement, sign_agreement

    if root.exists():
        shutil.rmtree(root)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    federation = create_federation(root, members, now, valid_days=90)
    runtimes = {c: open_runtime(h) for c, h in federation.homes.items()}
    try:
        for number, country in enumerate(members):
            files = root / "data" / country.lower()
            started = time.monotonic()
            generate(country, encounters, 500 + number, files)
            generated = time.monotonic()
            ingest(runtimes[country].store, "encounters", [files / "encounters.csv"], now=now)
            shutil.rmtree(files)  # the database holds the records now
            log(
                f"  {country}: {encounters:,} encounters generated in "
                f"{generated - started:.0f} s, imported in {time.monotonic() - generated:.0f} s"
            )
            agreement = Agreement(
                id=f"{country}-{ST}-STATS",
                version=1,
                parties=(country, ST),
                title=f"Cuadros trimestrales {country} → ST (benchmark)",
                valid_from=now - dt.timedelta(days=1),
                valid_until=now + dt.timedelta(days=365),
                grants=(stats_grant(country, ST),),
            )
            signed = SignedAgreement(agreement)
            for party in agreement.parties:
                signed = sign_agreement(signed, party, runtimes[party].signing_key)
            text = dump_signed_agreement(signed)
            for party in agreement.parties:
                AgreementBook(runtimes[party]).install_text(text, now)
    finally:
        for runtime in runtimes.values():
            runtime.close()
    expires = federation.directory.expires_at.isoformat()
    (root / MARKER).write_text(
        json.dumps({"members": members, "encounters": encounters, "expires_at": expires}),
        encoding="utf-8",
    )


def usable(root: Path, members: list[str], encounters: int) -> bool:
    marker = root / MARKER
    if not marker.exists():
        return False
    data = json.loads(marker.read_text(encoding="utf-8"))
    expires = dt.datetime.fromisoformat(data["expires_at"])
    fresh = expires - dt.datetime.now(dt.UTC) > dt.timedelta(days=7)
    return bool(data["members"] == members and data["encounters"] == encounters and fresh)


def measure(
    root: Path, members: list[str], quarter: str, matrix: str, repeat: int
) -> list[dict[str, Any]]:
    from node.demo.processes import NodeProcess
    from node.home import NodeHome
    from node.runtime import open_runtime
    from node.secretariat.office import Secretariat
    from node.secretariat.pull import matrix_items
    from node.secretariat.settings import SecretariatSettings
    from node.trust.directory import parse_directory_json

    directory = parse_directory_json((root / "directory.json").read_bytes())
    nodes = [
        NodeProcess(c, NodeHome(root / c.lower()), directory.member(c).endpoint) for c in members
    ]
    runs: list[dict[str, Any]] = []
    runtime = None
    try:
        started = time.monotonic()
        for node in nodes:
            node.start({"ENLACE_LOG_LEVEL": "WARNING"})
        for node in nodes:
            node.wait_ready(time.monotonic() + 120)
        log(f"  {len(nodes)} nodes serving after {time.monotonic() - started:.1f} s")
        runtime = open_runtime(NodeHome(root / ST.lower()))
        settings = SecretariatSettings(
            node_deadline_seconds=120.0, call_timeout_seconds=120.0, attempts=1
        )
        office = Secretariat(runtime, settings)
        for number in range(repeat):
            from node.secretariat.pull import run_pull

            report = run_pull(
                runtime,
                matrix_items([matrix], quarter),
                purpose="quarterly_matrices",
                trigger="benchmark",
                policy=office.policy,
            )
            rows = {r.member: r for r in runtime.store.secretariat.results(period=quarter)}
            per_node = {
                country: {
                    "status": outcome.status,
                    "wall_s": round(outcome.seconds, 3),
                    "rpc_ms": rows[country].coverage.get("elapsed_ms") if country in rows else None,
                    "records": rows[country].coverage.get("records_considered")
                    if country in rows
                    else None,
                }
                for country, outcome in sorted(report.members.items())
            }
            runs.append(
                {
                    "run": number + 1,
                    "total_s": round(report.seconds, 3),
                    "status": report.status,
                    "nodes": per_node,
                }
            )
            log(f"  run {number + 1}: {report.seconds:.2f} s total ({report.status})")
    finally:
        if runtime is not None:
            runtime.close()
        for node in nodes:
            node.stop()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=11, help="1..11 member nodes")
    parser.add_argument("--encounters", type=int, default=1_000_000, help="per member")
    parser.add_argument("--quarter", default="2023Q3")
    parser.add_argument("--matrix", default="M01")
    parser.add_argument("--repeat", type=int, default=3, help="pulls measured (1..10)")
    parser.add_argument("--cache", type=Path, default=None, help="federation cache directory")
    parser.add_argument("--rebuild", action="store_true", help="build the cache again")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.members <= len(REGIONAL_MEMBERS):
        parser.error(f"--members must be 1..{len(REGIONAL_MEMBERS)}")
    if not 1 <= args.repeat <= 10 or not 100 <= args.encounters <= 5_000_000:
        parser.error("--repeat 1..10, --encounters 100..5,000,000")
    members = list(REGIONAL_MEMBERS[: args.members])
    cache = args.cache or Path(tempfile.gettempdir()) / "enlace-bench-st-pull"
    root = cache / f"{args.members}x{args.encounters}"
    if args.rebuild or not usable(root, members, args.encounters):
        log(f"building the federation in {root} (once; reused while its directory is valid)")
        started = time.monotonic()
        build(root, members, args.encounters)
        log(f"  built in {time.monotonic() - started:.0f} s")
    runs = measure(root, members, args.quarter, args.matrix, args.repeat)
    totals = [r["total_s"] for r in runs]
    result = {
        "benchmark": "st_pull",
        "members": args.members,
        "encounters_per_member": args.encounters,
        "quarter": args.quarter,
        "matrix": args.matrix,
        "runs": runs,
        "total_s": {"first": totals[0], "median": statistics.median(totals), "best": min(totals)},
        "machine": machine(),
    }
    if args.json:
        print_json(result)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{args.matrix} {args.quarter} from {args.members} nodes "
                        f"× {args.encounters:,} encounters")  # fmt: skip
    table.add_column("node")
    for run in runs:
        table.add_column(f"run {run['run']} wall s", justify="right")
        table.add_column("rpc ms", justify="right")
    for country in members:
        cells = []
        for run in runs:
            node = run["nodes"][country]
            cells += [f"{node['wall_s']:.2f}", f"{node['rpc_ms'] or 0:.0f}"]
        table.add_row(country, *cells)
    table.add_row("TOTAL", *[x for r in runs for x in (f"{r['total_s']:.2f}", r["status"])])
    Console().print(table)


if __name__ == "__main__":
    main()
