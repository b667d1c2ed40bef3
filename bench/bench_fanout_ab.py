"""One document query fanned out to 10 peers: the holders of a base revision against this tree.

Why: the fan-out's latency on this shared two-core machine moves by half between one hour and
the next, so a change to the holder's request path cannot be judged by two runs of
``bench_match.py`` at different times. Here both run at once: two federations of ``--peers``
holders each, one serving the code of ``--base`` (a git revision, exported with ``git
archive`` into a temporary directory), the other this working tree; one querier (this tree's
``MatchClient``) alternates queries between them, so drift on the machine hits both alike.
The figures are per side: p50 and p90 of the whole fan-out, the holders' CPU per call and the
querier's CPU per peer (from ``/proc`` and ``resource``), and this tree's ratios to the base.

``--storeless``: this tree's holders and its querier write nothing per call (no nonce, no
quota counter, no audit row; ``bench/_storeless.py``), so the run bounds what any storage
design could win; such a node breaks the design and exists only here.

What it cannot compare: querier-side changes (the querier is this tree's for both sides), and
revisions whose database schema differs from this tree's (both federations are built with
this tree's migrations; a base that cannot open them fails to start, and the run stops).

    .venv/bin/python bench/bench_fanout_ab.py --base HEAD~1            # table
    .venv/bin/python bench/bench_fanout_ab.py --base main --seconds 60 --json

Every loop is bounded by ``--seconds`` and ``--max-queries``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._util import machine, percentile, print_json, process_cpu_seconds  # noqa: E402
from bench.bench_match import (  # noqa: E402
    PURPOSE,
    STATES,
    document_holders,
    number,
    serve_nodes,
    write_documents,
)


def export_revision(revision: str, into: Path) -> str:
    """Write the tree of ``revision`` into ``into``; return its full commit id."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{revision}^{{commit}}"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return commit


@contextmanager
def working_directory(path: Path) -> Any:
    """``python -m node.cli.main`` imports ``node`` from its working directory first."""
    here = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(here)


def federation_side(
    root: Path, code: Path, holders: list[str], source: Path, *, storeless: bool = False
) -> tuple[Any, Any]:
    """A federation whose holders serve the code in ``code``; its querier's runtime (this
    tree's) and the holder processes. ``storeless``: neither the holders' stores nor the
    querier's write anything per call (``bench/_storeless.py``)."""
    federation, runtimes = document_holders(root, holders, source)
    env = {}
    if storeless:
        from bench._storeless import strip_instance

        strip_instance(runtimes["CRI"].store)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "bench" / "_storeless_site"), str(ROOT)])
    with working_directory(code):
        nodes = serve_nodes(federation, holders, env)
    return runtimes["CRI"], nodes


def run(
    base: str, peers: int, seconds: float, max_queries: int, *, storeless: bool = False
) -> dict[str, Any]:
    from node.matching.client import MatchClient
    from node.matching.sources import document_query
    from node.records.codelists import REGIONAL_MEMBERS

    holders = [c for c in REGIONAL_MEMBERS if c != "CRI"][:peers]
    work = Path(tempfile.mkdtemp(prefix="enlace-ab-"))
    sides = ("base", "tree")
    times: dict[str, list[float]] = {s: [] for s in sides}
    cpu = {s: {"holders": 0.0, "querier": 0.0} for s in sides}
    try:
        commit = export_revision(base, work / "base-code")
        source = work / "documents.csv"
        write_documents(source, 2000)
        with ExitStack() as stack:
            runtimes, processes, clients = {}, {}, {}
            for side, code in zip(sides, (work / "base-code", ROOT), strict=True):
                runtimes[side], processes[side] = federation_side(
                    work / side, code, holders, source, storeless=storeless and side == "tree"
                )
                stack.callback(runtimes[side].close)
                for node in processes[side]:
                    stack.callback(node.stop)
                clients[side] = stack.enter_context(
                    MatchClient(runtimes[side], timeout=10.0, workers=16)
                )
            query = [document_query(number(7), STATES[7])]

            def fan(side: str) -> None:
                report = clients[side].run(query, ["travel_documents"], purpose=PURPOSE)
                found = sum(o.status == "hit" for o in report.outcomes)
                if found != len(holders):  # a broken side must not produce a figure
                    raise RuntimeError(f"{side}: {found} of {len(holders)} holders answered hit")

            for side in sides:  # warm: channels, TLS sessions, filters, caches
                for _ in range(3):
                    fan(side)
            pids = {s: [n.process.pid for n in processes[s] if n.process] for s in sides}
            deadline = time.monotonic() + seconds
            rounds = 0
            while time.monotonic() < deadline and rounds < max_queries:
                for side in sides if rounds % 2 == 0 else reversed(sides):
                    served = sum(process_cpu_seconds(p) or 0.0 for p in pids[side])
                    own, started = time.process_time(), time.perf_counter()
                    fan(side)
                    times[side].append((time.perf_counter() - started) * 1000)
                    cpu[side]["querier"] += time.process_time() - own
                    cpu[side]["holders"] += (
                        sum(process_cpu_seconds(p) or 0.0 for p in pids[side]) - served
                    )
                rounds += 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    calls = rounds * len(holders)
    out: dict[str, Any] = {"base": base, "base_commit": commit, "peers": len(holders),
                           "queries_per_side": rounds, "tree_storeless": storeless}  # fmt: skip
    for side in sides:
        out[f"{side}_p50_ms"] = percentile(times[side], 50)
        out[f"{side}_p90_ms"] = percentile(times[side], 90)
        out[f"{side}_holder_cpu_ms_per_call"] = cpu[side]["holders"] / calls * 1000
        out[f"{side}_querier_cpu_ms_per_peer"] = cpu[side]["querier"] / calls * 1000
    for name in ("p50_ms", "p90_ms", "holder_cpu_ms_per_call"):
        out[f"tree_vs_base_{name.removesuffix('_ms')}"] = out[f"tree_{name}"] / out[f"base_{name}"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="git revision the base holders serve")
    parser.add_argument("--peers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30.0, help="time budget of the loop")
    parser.add_argument("--max-queries", type=int, default=2000, help="queries per side, at most")
    parser.add_argument(
        "--storeless",
        action="store_true",
        help="this tree's holders and querier write nothing per call (a bound; "
        "bench/_storeless.py)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.base, args.peers, args.seconds, args.max_queries, storeless=args.storeless)
    if args.json:
        print_json({**result, **machine()})
        return 0
    from rich.console import Console
    from rich.table import Table

    title = (
        f"fan-out to {result['peers']} holders, {result['queries_per_side']} queries per side, "
        f"base {args.base} ({result['base_commit'][:10]})"
    )
    table = Table(title=title)
    columns = ("holders serve", "p50 ms", "p90 ms", "holder CPU ms/call", "querier CPU ms/peer")
    for column in columns:
        table.add_column(column)
    tree_label = "this tree, storeless" if args.storeless else "this tree"
    for side, label in (("base", args.base), ("tree", tree_label)):
        table.add_row(label, *(f"{result[f'{side}_{k}']:.2f}" for k in (
            "p50_ms", "p90_ms", "holder_cpu_ms_per_call", "querier_cpu_ms_per_peer")))  # fmt: skip
    table.add_row("tree / base", *(f"{result[f'tree_vs_base_{k}']:.3f}" for k in (
        "p50", "p90", "holder_cpu_ms_per_call")), "—")  # fmt: skip
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
