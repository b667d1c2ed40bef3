"""Screening a passenger manifest against many peers: wall time and per-traveller cost.

Why: the issue's target is a 500-traveller manifest screened against 10 peers holding 1M
records each in at most 5 s. Figures only; nothing is asserted.

    python bench/bench_screen.py [--peers 10] [--records 1000000] [--travellers 500]
                                 [--dates covering,finest] [--rounds 3] [--json]
                                 [--share-build] [--keep DIR] [--lock FILE] [--nice-setup]
    python bench/bench_screen.py --ground-truth 20000     # what each date policy finds (no timing)

The full-size run (10 holders of 1M records: ~9M filter keys and ~2.9 GB of database each):

    python bench/bench_screen.py --share-build --keep /tmp/screen-1m --nice-setup \
        --lock /tmp/enlace-bench.lock --dates covering,finest --json

``--share-build`` gives every holder the first holder's OPRF master secret and copies its
filter entries instead of evaluating the same records ten times (about half an hour of
set-up here instead of hours); the screening does the same work either way, since every holder still
evaluates each element it is sent and the querier blinds independently for each. ``--keep``
keeps the set-up, and a later run with the same folder and sizes screens it again at once.
The querier's CPU counts its OPRF worker processes (``querier_workers_cpu_s``).

Set-up (timed separately, not part of the screening figure): one member's synthetic files of
``--records`` encounters (with their travel documents, alerts and persons of interest) are
generated once and imported into every peer; each peer builds its own filters under its own
keys, gets a matching agreement with the querier and serves as its own ``enlace serve``
process. The querier syncs every filter once (a one-time cost, reported), then screens the
PAXLST manifest ``--rounds`` times per birth-date policy (``--dates``, see
:mod:`node.matching.keys`; the policies alternate within each round so they share the machine's
state): read, normalise, blind, one batched Evaluate stream per peer and dataset over signed,
audited mutual-TLS gRPC, unblind, look up, merge per traveller. The median round of each policy
is reported with its per-traveller cost (wall and querier CPU) and its elements.

Screening cost grows with travellers x peers x keys per traveller; the holders' record counts
matter only through the filter sync and a binary search per element, so ``--records`` can be
lowered on a small machine without changing the per-traveller figure much (say so when
reporting).
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._util import machine, print_json, process_cpu_seconds

PURPOSE = "identity_verification"
SAVED_SETUP = "bench-screen.json"  # in a --keep folder: what was set up, for a later run
DATASETS = ("travel_documents", "document_alerts", "persons_of_interest", "identities")
IMPORT_ORDER = ("encounters", "travel_documents", "document_alerts", "persons_of_interest")


def agree(runtimes: dict[str, Any], holder: str, requester: str, now: dt.datetime) -> None:
    from node.agreements import AgreementBook
    from policies.agreement import Agreement, Grant, Quotas
    from policies.signatures import SignedAgreement, dump_signed_agreement, sign_agreement

    start = (now - dt.timedelta(days=1)).replace(microsecond=0)
    grant = Grant(holder=holder, requester=requester, service="match", datasets=DATASETS,
                  purposes=(PURPOSE,), quotas=Quotas(per_day=None, per_quarter=None))  # fmt: skip
    agreement = Agreement(
        id=f"{holder}-{requester}-SCREEN", version=1, parties=(holder, requester),
        title="benchmark", valid_from=start, valid_until=start + dt.timedelta(days=30),
        grants=(grant,),
    )  # fmt: skip
    signed = SignedAgreement(agreement)
    for party in agreement.parties:
        signed = sign_agreement(signed, party, runtimes[party].signing_key)
    for party in agreement.parties:
        AgreementBook(runtimes[party]).install_text(dump_signed_agreement(signed), now)


@contextmanager
def timed_section(lock: str | None, niced: bool) -> Iterator[None]:
    """The holders' processes, the sync and the screening rounds: back at normal priority
    after a ``--nice-setup`` set-up, and under ``--lock`` (an flock file) when given, so that
    a long set-up does not hold the machine's benchmark lock."""
    if niced:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    if lock is None:
        yield
        return
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _share_master_secret(source: Any, target: Any) -> None:
    """``--share-build``: the holder gets the first holder's OPRF master secret, so its filter
    entries are the first holder's and can be copied instead of evaluated again."""
    from node.matching.filters import load_master_secret, master_secret_path

    load_master_secret(source)  # created on first use
    path = master_secret_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(master_secret_path(source).read_bytes())
    path.chmod(0o600)


def _copy_entries(source: Path, target: Path) -> None:
    """Copy the first holder's filter entries (same records, same key) into ``target``."""
    import sqlite3

    from node.store.matching_store import PREFIX_INDEX

    conn = sqlite3.connect(target / "enlace.db", isolation_level=None)
    try:
        conn.execute("ATTACH DATABASE ? AS first", (str(source / "enlace.db"),))
        conn.execute("BEGIN")
        conn.execute(f"DROP INDEX IF EXISTS {PREFIX_INDEX}")
        conn.execute("DELETE FROM match_entries")
        conn.execute("INSERT INTO match_entries SELECT * FROM first.match_entries")
        conn.execute(f"CREATE INDEX {PREFIX_INDEX} ON match_entries (dataset, epoch, prefix)")
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE first")
    finally:
        conn.close()


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    return {pid: process_cpu_seconds(pid) or 0.0 for pid in pids}


def _set_up(
    root: Path,
    holders: list[str],
    records: int,
    travellers: int,
    now: dt.datetime,
    share_build: bool,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], bytes, int]:
    """Generate one member's files, import them into every holder, build (or, with
    ``share_build``, copy) the filters, sign the agreements, write the manifest."""
    from node.demo.federation import create_federation
    from node.ingest.pipeline import ingest
    from node.manifests.paxlst_writer import write_paxlst
    from node.manifests.sample import sample_manifest
    from node.matching.filters import Holder
    from node.records.generate import generate
    from node.runtime import open_runtime

    setup: dict[str, Any] = {"shared_build": share_build}
    started = time.perf_counter()
    files = root / "data"
    generate("PAN", records, 7, files)
    setup["generate_s"] = time.perf_counter() - started
    federation = create_federation(root / "fed", (*holders, "CRI"), now)
    runtimes = {c: open_runtime(federation.homes[c]) for c in (*holders, "CRI")}
    started = time.perf_counter()
    entries = 0
    for country in holders:
        rt = runtimes[country]
        if share_build and country != holders[0]:
            _share_master_secret(runtimes[holders[0]].home, rt.home)
        for dataset in IMPORT_ORDER:
            ingest(rt.store, dataset, [files / f"{dataset}.csv"], now=now)
        holder = Holder(rt.store, rt.home, country, rt.signing_key)
        if share_build and country != holders[0]:
            _copy_entries(federation.homes[holders[0]].root, federation.homes[country].root)
            reports = holder.update(now, force_publish=True)  # evaluates nothing new
            assert not any(r.records_keyed for r in reports), "the shared build evaluated records"
        else:
            reports = holder.rebuild(now)
        entries = sum(r.entries for r in reports)
        agree(runtimes, country, "CRI", now)
        rt.close()
    setup["import_and_build_s"] = time.perf_counter() - started
    setup["filter_entries_per_peer"] = entries
    manifest, planted_list = sample_manifest({"PAN": files}, travellers=travellers, seed=3,
                                        departure=now + dt.timedelta(hours=2))  # fmt: skip
    data = write_paxlst(manifest, recipient="CRI", prepared_at=now).encode()
    return setup, dict(federation.homes), runtimes, data, len(planted_list)


def run(
    root: Path,
    peers: int,
    records: int,
    travellers: int,
    rounds: int,
    dates: list[str],
    section: Any = None,
    share_build: bool = False,
) -> dict[str, Any]:
    from node.demo.processes import NodeProcess
    from node.home import NodeHome
    from node.records.codelists import REGIONAL_MEMBERS
    from node.runtime import open_runtime

    holders = [c for c in REGIONAL_MEMBERS if c != "CRI"][:peers]
    now = dt.datetime.now(dt.UTC)
    saved = root / SAVED_SETUP
    if saved.exists():  # --keep of an earlier run: the same federation, holders and manifest
        state = json.loads(saved.read_text(encoding="utf-8"))
        if (state["records"], state["peers"], state["travellers"]) != (records, peers, travellers):
            kept = f"{state['records']} records, {state['peers']} peers"
            raise SystemExit(f"{root} holds a set-up of {kept}, {state['travellers']} travellers")
        setup = {**state["setup"], "reused": True}
        homes = {c: NodeHome(root / "fed" / c.lower()) for c in (*holders, "CRI")}
        runtimes = {"CRI": open_runtime(homes["CRI"])}
        data, planted = (root / "manifest.edi").read_bytes(), state["planted"]
    else:
        setup, homes, runtimes, data, planted = _set_up(
            root, holders, records, travellers, now, share_build
        )
        state = {"records": records, "peers": peers, "travellers": travellers,
                 "planted": planted, "setup": setup}  # fmt: skip
        (root / "manifest.edi").write_bytes(data)
        saved.write_text(json.dumps(state), encoding="utf-8")
    directory = runtimes["CRI"].directory.current(now)
    nodes = [NodeProcess(c, homes[c], directory.member(c).endpoint) for c in holders]
    results: dict[str, list[dict[str, Any]]] = {policy: [] for policy in dates}
    with section if section is not None else timed_section(None, False):
        _screen(nodes, runtimes, holders, data, now, rounds, dates, setup, results)
    screening: dict[str, Any] = {}
    for policy, rows in results.items():
        median = sorted(rows, key=lambda r: r["wall_s"])[len(rows) // 2]
        screening[policy] = median | {
            "ms_per_traveller_wall": median["wall_s"] / travellers * 1000,
            "ms_per_traveller_querier_cpu": median["querier_cpu_s"] / travellers * 1000,
            "us_per_element_wall": median["wall_s"] / median["elements"] * 1e6,
            "elements_per_traveller_and_peer": median["elements"] / travellers / len(holders),
            "rounds_wall_s": [round(r["wall_s"], 3) for r in rows],
        }
    return {
        "peers": len(holders),
        "records_per_peer": records,
        "travellers": travellers,
        "planted": planted,
        "setup": setup,
        "screening": screening,
        "target_s": 5.0,
    }


def _screen(
    nodes: list[Any],
    runtimes: dict[str, Any],
    holders: list[str],
    data: bytes,
    now: dt.datetime,
    rounds: int,
    dates: list[str],
    setup: dict[str, Any],
    results: dict[str, list[dict[str, Any]]],
) -> None:
    """Start the holders, sync once, then screen ``rounds`` times per date policy."""
    from node.manifests.paxlst import read_paxlst
    from node.manifests.screen import screen_manifest, traveller_queries
    from node.matching.client import MatchClient
    from node.matching.sources import query_keys

    try:
        for node in nodes:
            node.start({"ENLACE_LOG_LEVEL": "WARNING"})
        deadline = time.monotonic() + 120
        for node in nodes:
            node.wait_ready(deadline)
        with MatchClient(runtimes["CRI"], timeout=120.0, workers=16) as client:
            started = time.perf_counter()
            for country in holders:
                for dataset in DATASETS:
                    client.sync(country, dataset, PURPOSE)
            setup["sync_all_s"] = time.perf_counter() - started
            for policy in dates:  # the per-traveller work alone: read, normalise, build keys
                cpu = time.process_time()
                for traveller in read_paxlst(data, today=now.date()).screened():
                    for query in traveller_queries(traveller, policy):  # type: ignore[arg-type]
                        query_keys(query, DATASETS)
                setup[f"travellers_cpu_s[{policy}]"] = time.process_time() - cpu
            for _, policy in ((n, p) for n in range(rounds) for p in dates):
                server = sum(process_cpu_seconds(n.process.pid) or 0.0 for n in nodes)
                workers = _cpu_by_pid(client.crypto.worker_pids())
                cpu, started = time.process_time(), time.perf_counter()
                parsed = read_paxlst(data, today=now.date())
                screening = screen_manifest(client, parsed, purpose=PURPOSE, dates=policy)
                wall, own = time.perf_counter() - started, time.process_time() - cpu
                server = sum(process_cpu_seconds(n.process.pid) or 0.0 for n in nodes) - server
                # the OPRF worker processes (all of their CPU if they started in this round)
                after = _cpu_by_pid(client.crypto.worker_pids())
                crypto = sum(t - workers.get(pid, 0.0) for pid, t in after.items())
                errors = sum(o.status == "error" for r in screening.travellers
                             for o in r.results.values())  # fmt: skip
                results[policy].append({
                    "wall_s": wall, "querier_cpu_s": own + crypto, "holders_cpu_s": server,
                    "querier_main_cpu_s": own, "querier_workers_cpu_s": crypto,
                    "elements": screening.elements, "errors": errors,
                    "travellers_hit": sum(1 for r in screening.travellers if r.hits()),
                    "hits": sorted(f"{t.position}:{o.peer}:{o.dataset}:{o.strength}"
                                   for t, o in screening.hits()),
                })  # fmt: skip
    finally:
        for node in nodes:
            node.stop()
        runtimes["CRI"].close()


def ground_truth(root: Path, records: int) -> dict[str, Any]:
    """Hits and true hits of each birth-date policy on generated data (no network, no timing)."""
    from node.manifests.sample import person_hits_by_policy
    from node.records.generate import generate

    generate("PAN", records, 7, root / "pan")
    generate("HND", records, 8, root / "hnd")
    out: dict[str, Any] = {}
    for policy, o in person_hits_by_policy(root / "pan", root / "hnd").items():
        out[policy] = {"travellers": o.travellers, "keys": o.keys, "hits": len(o.hits),
                       "true_hits": len(o.true_hits), "strengths": dict(o.strengths)}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peers", type=int, default=10)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--travellers", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--dates",
        default="covering",
        help="comma-separated birth-date policies to compare: every, covering, finest",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--lock", metavar="FILE", help="hold this flock file for the timed part only"
    )
    parser.add_argument(
        "--nice-setup",
        action="store_true",
        help="generate, import and build at the lowest priority; time at normal priority",
    )
    parser.add_argument(
        "--share-build",
        action="store_true",
        help="set-up only: give every holder the first holder's OPRF key and copy its filter "
        "entries instead of evaluating the same records ten times (the timed screening does "
        "the same work either way: each holder still evaluates every element it is sent)",
    )
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="set up in DIR and keep it; a later run with the same DIR and sizes skips the "
        "set-up and screens the same holders and manifest again",
    )
    parser.add_argument(
        "--ground-truth",
        type=int,
        metavar="RECORDS",
        default=0,
        help="only compare the date policies on generated data of this size",
    )
    args = parser.parse_args(argv)
    keep = Path(args.keep) if args.keep else None
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    root = keep or Path(tempfile.mkdtemp(prefix="bench-screen-"))
    if args.ground_truth:
        try:
            truth = ground_truth(root, args.ground_truth)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        if args.json:
            print_json(truth)
            return 0
        for policy, row in truth.items():
            print(f"{policy}: {row}")
        return 0
    try:
        dates = [d.strip() for d in args.dates.split(",") if d.strip()]
        if args.nice_setup:
            os.nice(19)
        section = timed_section(args.lock, args.nice_setup)
        result = run(
            root, args.peers, args.records, args.travellers, args.rounds, dates, section,
            share_build=args.share_build,
        )  # fmt: skip
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    result["machine"] = machine()
    if args.json:
        print_json(result)
        return 0
    for policy, s in result["screening"].items():
        print(f"[dates={policy}] {result['travellers']} travellers x {result['peers']} peers "
              f"({result['records_per_peer']:,} records each): {s['wall_s']:.2f} s wall "
              f"(target {result['target_s']} s; rounds {s['rounds_wall_s']}), "
              f"{s['ms_per_traveller_wall']:.2f} ms/traveller, {s['elements']:,} elements "
              f"({s['elements_per_traveller_and_peer']:.1f} per traveller and peer, "
              f"{s['us_per_element_wall']:.0f} us each), querier CPU {s['querier_cpu_s']:.2f} s, "
              f"holders CPU {s['holders_cpu_s']:.2f} s, {s['travellers_hit']} travellers hit "
              f"({len(s['hits'])} hits), {s['errors']} errors")  # fmt: skip
    print(f"set-up (not timed above): {result['setup']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
